/**
 * In a fleet, a request about one channel (`/api/channels/{id}` and below) is answered by the node that holds
 * the channel: it has the live figures, the recordings and the running outputs. The request goes on as it came
 * (method, path, query, body, the caller's own token — tokens are shared through the database) with
 * `X-Distributary-Forwarded-By`, and the holder's answer comes back as it is. A request that already carries
 * that header is never forwarded again, so two nodes that disagree about the holder cannot bounce it.
 *
 * A holder that does not answer is left out: a refused or unfinished connection (within 2 s), or a read that
 * got no answer within 2 s, is handled here instead. A change that reached the holder is never handled here
 * as well — it could be carried out twice — so a change the holder takes longer than 15 s to answer, or drops
 * after it was sent, answers 504 or 502 saying so.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { Readable } from "node:stream";
import type { Context, MiddlewareHandler } from "hono";
import type { FleetShape } from "../effects/fleet/fleet-types.ts";
import type { AuthEnv } from "./auth.ts";
import { problemResponse } from "./problem.ts";

export const FORWARDED_BY = "x-distributary-forwarded-by";
/** How long a holder may take to accept the connection, and to answer a read, before this node answers. */
export const HOLDER_ANSWER_MS = 2_000;
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

export const forwardToHolder =
  (fleet: FleetShape): MiddlewareHandler<AuthEnv> =>
  async (c: Context<AuthEnv>, next) => {
    if (!fleet.enabled || fleet.self === null || c.req.header(FORWARDED_BY) !== undefined) return next();
    const channel = channelOfPath(c.req.path);
    const holder = channel === null ? null : await fleet.holderUrl(channel);
    if (holder === null) return next();
    const url = new URL(c.req.url);
    const target = new URL(`${holder.replace(/\/+$/, "")}${url.pathname}${url.search}`);
    const headers: Record<string, string> = { [FORWARDED_BY]: fleet.self };
    for (const name of SENT) {
      const value = c.req.header(name);
      if (value !== undefined) headers[name] = value;
    }
    // Read through the body limit before the API's; Hono keeps it, so a local answer reads it again.
    const body =
      c.req.method === "GET" || c.req.method === "HEAD" ? null : Buffer.from(await c.req.arrayBuffer());
    const outcome = await send(target, c.req.method, headers, body);
    if (outcome.kind === "unreachable") return next();
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
    const status = response.statusCode ?? 502;
    const empty = c.req.method === "HEAD" || status === 204 || status === 304;
    if (empty) response.resume();
    return new Response(empty ? null : (Readable.toWeb(response) as ReadableStream<Uint8Array>), {
      status,
      headers: kept,
    });
  };
