/**
 * An HLS output's PUT to its origin. The origin is operator text, so what it may reach is checked on the
 * address actually connected to, at every connection: the name is resolved here, every address it gives is
 * vetted (src/domain/channel/addresses.ts), and the socket connects to a vetted one, so a name that changes its
 * answer between a check and the connection (DNS rebinding) cannot slip through. Redirects are not followed.
 *
 * What a viewer may read of a failure says no more than whether an HTTP server answered: a closed port, a
 * silent one, a TLS-only one and one that speaks something else all read "no HTTP answer".
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import * as Effect from "effect/Effect";
import { type PushAddressPolicy, pushAddressProblem } from "../../domain/channel/addresses.ts";
import { OutputError } from "../../domain/channel/output-error.ts";

/** Public addresses only: what the service uses unless told otherwise. */
export const publicOnly: PushAddressPolicy = { allowPrivate: false };

/** A refusal in words, raised where the address is known and reported as it is. */
export class RefusedAddress extends Error {}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** `dns.lookup` for the sockets of one origin: it answers only with addresses the policy allows. */
export const vettedLookup =
  (policy: PushAddressPolicy, origin: string) =>
  (hostname: string, options: { family?: number | string; all?: boolean }, callback: LookupCallback) => {
    const family = options.family === 4 || options.family === 6 ? options.family : 0;
    dnsLookup(hostname, { all: true, family }, (error, addresses) => {
      if (error !== null) return callback(error, "");
      for (const { address } of addresses) {
        const problem = pushAddressProblem(address, policy, origin, true);
        if (problem !== null) return callback(new RefusedAddress(problem), "");
      }
      const first = addresses[0];
      if (first === undefined) return callback(new Error(`${hostname} has no address`), "");
      return options.all === true ? callback(null, addresses) : callback(null, first.address, first.family);
    });
  };

/** The resolver's own failures say nothing about what listens where: they may be told as they are. */
export const isNameError = (cause: unknown): boolean =>
  typeof cause === "object" &&
  cause !== null &&
  "code" in cause &&
  (cause.code === "ENOTFOUND" || cause.code === "EAI_AGAIN" || cause.code === "EAI_NONAME");

interface Pusher {
  /** PUTs `body` to `<origin>/<name>`; fails in words a viewer may read. */
  readonly put: (name: string, body: Uint8Array | string) => Effect.Effect<void, OutputError>;
  /** Closes the connections kept open. */
  readonly close: () => void;
}

/** `origin` is the push URL without a trailing `/`; `shown` its masked form. */
export const makePusher = (origin: string, shown: string, policy: PushAddressPolicy): Pusher => {
  const url = new URL(origin);
  const secure = url.protocol === "https:";
  // Keep-alive: one connection for a segment and its playlist; every new one is vetted by the lookup.
  const agent = secure ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  const lookup = vettedLookup(policy, shown);
  const noAnswer = `could not deliver to the origin ${shown}: no HTTP answer`;

  const send = (name: string, body: Uint8Array | string, signal: AbortSignal) =>
    new Promise<IncomingMessage>((resolve, reject) => {
      const request = (secure ? httpsRequest : httpRequest)(`${origin}/${name}`, {
        method: "PUT",
        agent,
        lookup,
        signal,
        headers: {
          "content-type": name.endsWith(".m3u8") ? "application/vnd.apple.mpegurl" : "video/mp2t",
          "content-length": Buffer.byteLength(body),
        },
      });
      request.on("response", resolve);
      request.on("error", reject);
      request.end(body);
    });

  const put = (name: string, body: Uint8Array | string) =>
    Effect.gen(function* () {
      // A literal address is connected to as it is, without a lookup: checked here.
      const literal = url.hostname.replace(/^\[|\]$/g, "");
      const problem = isIP(literal) === 0 ? null : pushAddressProblem(literal, policy, shown, false);
      if (problem !== null) return yield* new OutputError({ reason: "invalid_url", message: problem });
      const response = yield* Effect.tryPromise({
        try: (signal) => send(name, body, AbortSignal.any([signal, AbortSignal.timeout(10_000)])),
        catch: (cause) =>
          cause instanceof RefusedAddress
            ? new OutputError({ reason: "resolve_failed", message: cause.message })
            : isNameError(cause)
              ? new OutputError({
                  reason: "resolve_failed",
                  message: `the origin ${shown}: its name does not resolve`,
                })
              : new OutputError({ reason: "connect_refused", message: noAnswer }),
      });
      response.resume();
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        return yield* new OutputError({
          reason: "connect_refused",
          message: `the origin ${shown} answered a redirect (${status}) to the PUT of ${name}: redirects are not followed`,
        });
      }
      if (status < 200 || status >= 300) {
        return yield* new OutputError({
          reason: "connect_refused",
          message: `the origin ${shown} answered HTTP ${status} to the PUT of ${name}`,
        });
      }
    });

  return { put, close: () => agent.destroy() };
};
