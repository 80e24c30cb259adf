/**
 * Who is calling, and may they. A token comes as `Authorization: Bearer …`, `X-API-Key: …` (a local token
 * only: a JWT there is refused in words), or for a
 * browser's WebSocket (which cannot set headers) as a viewer token in `?token=` on `/ws`: only a read-only
 * token may travel in a URL, where proxies and histories keep it. Wrong tokens are counted per client
 * address, one count for the API, `/login` and `/hls`: past the limit, that address's wrong tokens get 429
 * with Retry-After until its oldest failure is a minute old. A valid token is never refused by the limiter.
 * With sign-on configured, a bearer JWT of the identity provider is taken too (control/sign-on.ts): one it
 * refuses is a 401 whose `WWW-Authenticate` says why (RFC 6750's invalid_token), counted by the limiter as a
 * wrong token is; a valid one whose person no access rule gives a role is a 403.
 */
import { timingSafeEqual } from "node:crypto";
import { getConnInfo } from "@hono/node-server/conninfo";
import * as Option from "effect/Option";
import type { Context, MiddlewareHandler } from "hono";
import type { Role, ScopedChannel } from "../domain/control/access.ts";
import { allows, unscopedRole } from "../domain/control/access.ts";
import { describeCaller, describeGrants, type Principal } from "../effects/control/auth.ts";
import { looksLikeJwt } from "../effects/control/jwt.ts";
import type { BearerOutcome } from "../effects/control/sign-on.ts";
import { problemResponse } from "./problem.ts";

/**
 * What the checks of rights per channel need from the service: a channel's id and tags as stored, and where a
 * refusal goes (an audit row, at most one a minute per caller). Set for every request (see access.ts).
 */
export interface ChannelAccess {
  /** The channel's id and tags; undefined when no channel has this id. */
  readonly channel: (id: string) => ScopedChannel | undefined;
  /** Records a refusal: `what` is the request ("POST /api/channels/us-1/start"), `why` the answer's detail. */
  readonly refused: (principal: Principal, what: string, why: string) => void;
}

export interface AuthEnv {
  /** `inFleet`: set for the pages, whether this service is a node of a fleet (its menu then shows Nodes). */
  Variables: { principal: Principal; inFleet?: boolean; access?: ChannelAccess };
}

/** Whether every grant of the caller reaches every channel: the caller of today's tokens, refused as before. */
export const unscoped = (principal: Principal) => principal.grants.every((grant) => grant.channels === "*");

export const forbidden = (detail: string) => problemResponse({ status: 403, title: "Forbidden", detail });

/** Whether a presented secret is the expected one, in a time that does not tell how much of it matched. */
export const sameSecret = (given: string, expected: string) => {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
};

/**
 * Sets `key` last in `map` (a Map keeps insertion order, so the first key is the one set longest ago) and
 * forgets the first keys past `max`.
 */
const keepLatest = <K, V>(map: Map<K, V>, key: K, value: V, max: number) => {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) {
    const stalest = map.keys().next().value;
    if (stalest === undefined) break;
    map.delete(stalest);
  }
};

export interface FailureLimiter {
  /** Seconds until the address may try again; 0 when it may try now. */
  readonly retryAfter: (address: string, now: number) => number;
  readonly recordFailure: (address: string, now: number) => void;
  /** Addresses with recent failures: bounded. */
  readonly size: () => number;
}

/**
 * Wrong tokens per address over a sliding window. Only failures are limited: a valid token is never refused.
 * The table is bounded: past `maxAddresses` the address whose last failure is oldest is forgotten first.
 */
export const makeFailureLimiter = (
  maxFailures = 10,
  windowMs = 60_000,
  maxAddresses = 10_000,
): FailureLimiter => {
  const failures = new Map<string, number[]>();
  const recent = (address: string, now: number) => {
    const kept = (failures.get(address) ?? []).filter((at) => now - at < windowMs);
    if (kept.length === 0) failures.delete(address);
    else failures.set(address, kept);
    return kept;
  };
  return {
    retryAfter: (address, now) => {
      const kept = recent(address, now);
      const oldest = kept[0];
      return kept.length < maxFailures || oldest === undefined
        ? 0
        : Math.ceil((oldest + windowMs - now) / 1000);
    },
    recordFailure: (address, now) => {
      keepLatest(failures, address, [...recent(address, now), now].slice(-maxFailures), maxAddresses);
    },
    size: () => failures.size,
  };
};

/** Whether a refusal is written to the event history now, and how many before it from its address were not. */
export interface RecordGate {
  readonly admit: (address: string, now: number) => { readonly record: boolean; readonly unrecorded: number };
  /** Addresses with a bucket: bounded. */
  readonly size: () => number;
}

/**
 * Refusals of callers nobody knows yet (a bare /auth/callback), recorded at a rate: a token bucket per address
 * (`burst` at once, then one each `everyMs`) and one for all addresses together (`burst` × 10, then one each
 * `everyMs` / 10), so a flood from one address or many writes a few events, not thousands. What was left out is
 * counted per address and told by its next recorded refusal. The table is bounded as the failure limiter's is.
 */
export const makeRecordGate = (burst = 10, everyMs = 6_000, maxAddresses = 10_000): RecordGate => {
  interface Bucket {
    tokens: number;
    at: number;
    unrecorded: number;
  }
  const buckets = new Map<string, Bucket>();
  const all: Bucket = { tokens: burst * 10, at: 0, unrecorded: 0 };
  const refill = (bucket: Bucket, now: number, size: number, every: number) => {
    bucket.tokens = Math.min(size, bucket.tokens + (now - bucket.at) / every);
    bucket.at = now;
  };
  return {
    admit: (address, now) => {
      const bucket = buckets.get(address) ?? { tokens: burst, at: now, unrecorded: 0 };
      keepLatest(buckets, address, bucket, maxAddresses);
      refill(bucket, now, burst, everyMs);
      refill(all, now, burst * 10, everyMs / 10);
      if (bucket.tokens < 1 || all.tokens < 1) {
        bucket.unrecorded += 1;
        return { record: false, unrecorded: bucket.unrecorded };
      }
      bucket.tokens -= 1;
      all.tokens -= 1;
      const unrecorded = bucket.unrecorded;
      bucket.unrecorded = 0;
      return { record: true, unrecorded };
    },
    size: () => buckets.size,
  };
};

export const clientAddress = (c: Context): string => {
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    // app.request() in tests has no socket behind it.
    return "unknown";
  }
};

/** The token in `Authorization: Bearer …`: the only place a JWT is taken. */
export const bearerToken = (c: Context): string | undefined => {
  const header = c.req.header("authorization");
  return header === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
};

/** The token in `Authorization: Bearer …` or `X-API-Key`. */
export const headerToken = (c: Context): string | undefined => bearerToken(c) ?? c.req.header("x-api-key");

/** Why a JWT in `X-API-Key` is refused: that header is for local tokens. */
export const JWT_IN_API_KEY =
  "the token is not valid here: a JWT is taken only in the Authorization header, never in X-API-Key (which is for local tokens)";

export const presentedToken = (c: Context, allowQuery: boolean): string | undefined =>
  headerToken(c) ?? (allowQuery ? c.req.query("token") : undefined);

/**
 * Counts a refused token against the client's address: 0 once counted, or the seconds to wait when the
 * address is already past the limit (then nothing more is counted and the caller answers 429).
 */
export const countFailure = (limiter: FailureLimiter, c: Context): number => {
  const address = clientAddress(c);
  const now = Date.now();
  const wait = limiter.retryAfter(address, now);
  if (wait === 0) limiter.recordFailure(address, now);
  return wait;
};

const TOO_MANY_FAILURES = "too many wrong tokens from this address";

export const tooManyFailures = (wait: number) =>
  problemResponse(
    {
      status: 429,
      title: "Too many failed attempts",
      detail: `${TOO_MANY_FAILURES}; try again in ${wait} s`,
    },
    { "retry-after": String(wait) },
  );

const unauthorized = (detail: string) =>
  problemResponse(
    { status: 401, title: "Unauthorized", detail },
    { "www-authenticate": 'Bearer realm="distributary"' },
  );

/** A bearer JWT's check, or undefined when the token is no JWT this service takes (sign-on off, no audience). */
export type JwtCheck = (token: string) => Promise<BearerOutcome> | undefined;

/** RFC 6750's refusal of a bearer token, its reason in words (quotes and backslashes left out of the header). */
export const invalidToken = (detail: string) =>
  problemResponse(
    { status: 401, title: "Unauthorized", detail },
    {
      "www-authenticate": `Bearer realm="distributary", error="invalid_token", error_description="${detail.replace(/["\\]/g, "'")}"`,
    },
  );

/** The answer to a bearer JWT: on to the route with its principal (null), or the refusal it earned. */
export const answerJwt = async (
  c: Context<AuthEnv>,
  outcome: BearerOutcome,
  limiter: FailureLimiter,
): Promise<Response | null> => {
  if (outcome.ok) {
    c.set("principal", outcome.principal);
    return null;
  }
  if (outcome.status === 403)
    return problemResponse({ status: 403, title: "Forbidden", detail: outcome.words });
  if (outcome.status === 503)
    return problemResponse(
      { status: 503, title: "Service Unavailable", detail: outcome.words },
      { "retry-after": "5" },
    );
  const wait = countFailure(limiter, c);
  return wait > 0 ? tooManyFailures(wait) : invalidToken(outcome.words);
};

export const authenticate =
  (
    authenticateToken: (token: string) => Option.Option<Principal>,
    limiter: FailureLimiter,
    checkJwt: JwtCheck = () => undefined,
  ): MiddlewareHandler<AuthEnv> =>
  async (c, next) => {
    const inHeader = headerToken(c);
    const inUrl = inHeader === undefined && c.req.path === "/ws" ? c.req.query("token") : undefined;
    const token = inHeader ?? inUrl;
    if (token === undefined) {
      return unauthorized("this needs a token: send 'Authorization: Bearer <token>' or 'X-API-Key: <token>'");
    }
    // A valid token passes whatever the address did before: the limiter slows guessing, not the rightful user.
    // An operator's or admin's token in a URL is refused as an unknown one is, so the answer tells a guesser
    // nothing about the tokens that exist.
    const valid = authenticateToken(token);
    if (Option.isSome(valid) && (inUrl === undefined || valid.value.role === "viewer")) {
      c.set("principal", valid.value);
      return next();
    }
    // Only as a bearer token: a JWT opens more than a viewer's URL token may.
    const bearer = bearerToken(c);
    const jwt = bearer === undefined || Option.isSome(valid) ? undefined : checkJwt(bearer);
    if (jwt !== undefined) return (await answerJwt(c, await jwt, limiter)) ?? next();
    const wait = countFailure(limiter, c);
    if (wait > 0) return tooManyFailures(wait);
    if (bearer === undefined && inHeader !== undefined && looksLikeJwt(inHeader))
      return invalidToken(JWT_IN_API_KEY);
    return unauthorized(
      inUrl === undefined
        ? "the token is not valid"
        : "the token is not valid here: a token in the URL must be a viewer (read-only) token; send any other in 'Authorization: Bearer <token>'",
    );
  };

/**
 * A node-wide route (settings, tokens, access rules, import/export, nodes, metrics): only the grants over every
 * channel count, so an admin of the EU channels is no admin here.
 */
export const requireRole =
  (role: Role): MiddlewareHandler<AuthEnv> =>
  async (c, next) => {
    const principal = c.get("principal");
    const held = unscopedRole(principal.grants);
    if (held !== null && allows(held, role)) return next();
    if (unscoped(principal))
      return forbidden(`this needs the ${role} role; ${describeCaller(principal)} has ${principal.role}`);
    const why =
      `this needs the ${role} role over every channel (a node-wide route); ` +
      `${describeCaller(principal)} holds ${describeGrants(principal.grants)}`;
    c.get("access")?.refused(principal, `${c.req.method} ${c.req.path}`, why);
    return forbidden(why);
  };
