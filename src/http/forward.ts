/**
 * In a fleet, a request about one channel (`/api/channels/{id}` and below) is answered by the node that holds
 * the channel: it has the live figures, the recordings and the running outputs. The request goes on as it came
 * (method, path, query, body, the caller's own token — tokens are shared through the database) with
 * `X-Distributary-Forwarded-By`, and the holder's answer comes back as it is. A request that already carries
 * that header is never forwarded again, so two nodes that disagree about the holder cannot bounce it. The
 * header counts only beside `X-Distributary-Peer-Proof`, an HMAC of the node's name, the method and the path
 * keyed with the fleet's peer credential (the secret the nodes share through the database): a client, even one
 * holding an admin token, cannot make one, so its header is ignored and its request forwarded like any other.
 * The credential itself never travels.
 *
 * A holder that does not answer is left out of reads and stored changes: a refused or unfinished connection
 * (within 2 s), or a read that got no answer within 2 s, is handled here instead — a stored change is written
 * to the shared database wherever it is made, and the holder applies it from there. A live command (a cue, the
 * slate on or off, an input switch, a move) changes nothing stored: handled on a node that does not hold the
 * channel it would be acknowledged and never carried out, so it answers 503 when the holder cannot be reached;
 * so does a schedule's command (go-live, extend, end, skip), whose progress only the holder may write.
 * A change that reached the holder is never handled here as well — it could be carried out twice — so a change
 * the holder takes longer than 15 s to answer, or drops after it was sent, answers 504 or 502 saying so. One
 * exception: a holder cut off from the database answers a stored change "could not be saved; nothing was
 * changed" (503); a node that reaches the database then makes the change itself, and the holder applies it
 * from the database when it reaches it again.
 */
import { createHmac } from "node:crypto";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { Readable } from "node:stream";
import type { Context, MiddlewareHandler } from "hono";
import type { FleetShape } from "../effects/fleet/fleet-types.ts";
import type { AuthEnv } from "./auth.ts";
import { sameSecret } from "./auth.ts";
import { problemResponse } from "./problem.ts";

const FORWARDED_BY = "x-distributary-forwarded-by";
/** The peer's proof that it set FORWARDED_BY: see `peerProof`. */
const PEER_PROOF = "x-distributary-peer-proof";
/** How long a holder may take to accept the connection, and to answer a read, before this node answers. */
const HOLDER_ANSWER_MS = 2_000;
/** How long a change sent to the holder may take to be answered. */
const CHANGE_ANSWER_MS = 15_000;

/** The request headers that go on: the caller's token and what the body is. */
const SENT = ["authorization", "x-api-key", "content-type", "accept"] as const;
/** The answer's headers that come back: what the body is, and what the holder tells the caller to do. */
const KEPT = [
  "content-type",
  "content-disposition",
  "cache-control",
  "allow",
  "retry-after",
  "www-authenticate",
  "location",
] as const;

type Outcome =
  | { readonly kind: "answer"; readonly response: IncomingMessage }
  /** Nothing reached the holder (or a read got no answer): handle it here. */
  | { readonly kind: "unreachable" }
  /** A change reached the holder and got no answer: whether it was carried out is unknown. */
  | { readonly kind: "unknown"; readonly status: 502 | 504; readonly why: string };

const send = (target: URL, method: string, headers: Record<string, string>, body: Buffer | null) =>
  new Promise<Outcome>((resolve) => {
    const isRead = method === "GET" || method === "HEAD";
    let connected = false;
    let settled = false;
    const settle = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(answerTimer);
      if (outcome.kind !== "answer") request.destroy();
      resolve(outcome);
    };
    const request = (target.protocol === "https:" ? httpsRequest : httpRequest)(target, {
      method,
      headers: body === null ? headers : { ...headers, "content-length": String(body.length) },
    });
    const connectTimer = setTimeout(() => {
      if (!connected) settle({ kind: "unreachable" });
    }, HOLDER_ANSWER_MS);
    const answerTimer = setTimeout(
      () =>
        settle(
          isRead
            ? { kind: "unreachable" }
            : {
                kind: "unknown",
                status: 504,
                why: `did not answer within ${CHANGE_ANSWER_MS / 1000} s`,
              },
        ),
      isRead ? HOLDER_ANSWER_MS : CHANGE_ANSWER_MS,
    );
    request.on("socket", (socket) => {
      if (!socket.connecting) connected = true;
      else socket.once("connect", () => (connected = true));
    });
    request.on("response", (response) => settle({ kind: "answer", response }));
    request.on("error", (error) =>
      settle(
        !connected || isRead
          ? { kind: "unreachable" }
          : { kind: "unknown", status: 502, why: `dropped the connection (${error.message})` },
      ),
    );
    request.end(body ?? undefined);
  });

/**
 * What a forwarding node sends to prove it is a peer: an HMAC keyed with the peer credential, over the node's
 * name, the method and the path, so a proof seen on one request opens no other command.
 */
export const peerProof = (peerToken: string, node: string, method: string, pathAndQuery: string) =>
  createHmac("sha256", peerToken).update(`${node}\n${method.toUpperCase()}\n${pathAndQuery}`).digest("hex");

/** Whether a request's FORWARDED_BY comes from a peer that proved it. */
const fromPeer = (fleet: FleetShape, c: Context<AuthEnv>): boolean => {
  const node = c.req.header(FORWARDED_BY);
  const proof = c.req.header(PEER_PROOF);
  const token = fleet.peerToken();
  if (node === undefined || proof === undefined || token === null || token === "") return false;
  const url = new URL(c.req.url);
  return sameSecret(proof, peerProof(token, node, c.req.method, `${url.pathname}${url.search}`));
};

/**
 * The live commands (they change nothing stored, only what the holder is doing now), and how to say that one
 * was not carried out.
 */
const LIVE: ReadonlyArray<{ readonly path: RegExp; readonly nothing: string }> = [
  { path: /^\/api\/channels\/[^/]+\/cues\/?$/, nothing: "nothing was inserted" },
  { path: /^\/api\/channels\/[^/]+\/slate\/?$/, nothing: "the slate was not switched" },
  { path: /^\/api\/channels\/[^/]+\/input\/?$/, nothing: "the input was not switched" },
  { path: /^\/api\/channels\/[^/]+\/move\/?$/, nothing: "the channel was not moved" },
  // The schedule's progress is the holder's to write: another node would refuse it.
  {
    path: /^\/api\/channels\/[^/]+\/schedule\/(go-live|extend|end|skip)\/?$/,
    nothing: "the schedule's command was not carried out",
  },
];
const liveCommand = (method: string, path: string) =>
  method === "POST" ? (LIVE.find((command) => command.path.test(path))?.nothing ?? null) : null;

/** The channel id a path under /api/channels/ names, if any (the list itself names none). */
const channelOfPath = (path: string): string | null => {
  const segment = /^\/api\/channels\/([^/]+)/.exec(path)?.[1];
  if (segment === undefined) return null;
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
};

/** The title of the answer to a stored change that reached no database: nothing was changed. */
const NOT_SAVED = "Configuration could not be saved; nothing was changed";

const readAll = async (response: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

/** A problem answer's title; undefined for anything else. */
const titleOf = (answer: Buffer): unknown => {
  try {
    return (JSON.parse(answer.toString("utf8")) as { title?: unknown }).title;
  } catch {
    return undefined;
  }
};

export const forwardToHolder =
  (fleet: FleetShape): MiddlewareHandler<AuthEnv> =>
  async (c: Context<AuthEnv>, next) => {
    if (!fleet.enabled || fleet.self === null || fromPeer(fleet, c)) return next();
    const channel = channelOfPath(c.req.path);
    const found = channel === null ? null : await fleet.holder(channel);
    if (found === null) return next();
    const live = liveCommand(c.req.method, c.req.path);
    const notCarriedOut = () =>
      problemResponse({
        status: 503,
        title: "Holder unreachable",
        detail: `the holder ${found.node} did not answer: ${live}; send it again once ${found.node} answers or another node holds channel '${channel}'`,
      });
    if (found.url === null) return live === null ? next() : notCarriedOut();
    const holder = found.url;
    const url = new URL(c.req.url);
    const pathAndQuery = `${url.pathname}${url.search}`;
    const target = new URL(`${holder.replace(/\/+$/, "")}${pathAndQuery}`);
    const token = fleet.peerToken();
    const headers: Record<string, string> = { [FORWARDED_BY]: fleet.self };
    if (token !== null && token !== "")
      headers[PEER_PROOF] = peerProof(token, fleet.self, c.req.method, pathAndQuery);
    for (const name of SENT) {
      const value = c.req.header(name);
      if (value !== undefined) headers[name] = value;
    }
    // Read through the body limit before the API's; Hono keeps it, so a local answer reads it again.
    const body =
      c.req.method === "GET" || c.req.method === "HEAD" ? null : Buffer.from(await c.req.arrayBuffer());
    const outcome = await send(target, c.req.method, headers, body);
    if (outcome.kind === "unreachable") return live === null ? next() : notCarriedOut();
    if (outcome.kind === "unknown") {
      return problemResponse({
        status: outcome.status,
        title: outcome.status === 504 ? "Holder timed out" : "Holder dropped the request",
        detail:
          `the node holding channel '${channel}' (${holder}) ${outcome.why}; ` +
          `the change may or may not have been made: check GET /api/channels/${channel} before sending it again`,
      });
    }
    const { response } = outcome;
    const kept = new Headers();
    for (const name of KEPT) {
      const value = response.headers[name];
      if (typeof value === "string") kept.set(name, value);
    }
    if (live === null && body !== null && response.statusCode === 503) {
      const answer = await readAll(response);
      if (fleet.databaseReachable() && titleOf(answer) === NOT_SAVED) return next();
      return new Response(new Uint8Array(answer), { status: 503, headers: kept });
    }
    const status = response.statusCode ?? 502;
    const empty = c.req.method === "HEAD" || status === 204 || status === 304;
    if (empty) response.resume();
    return new Response(empty ? null : (Readable.toWeb(response) as ReadableStream<Uint8Array>), {
      status,
      headers: kept,
    });
  };
