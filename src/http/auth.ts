/**
 * Who is calling, and may they. A token comes as `Authorization: Bearer …`, `X-API-Key: …`, or for a
 * browser's WebSocket (which cannot set headers) as `?token=` on `/ws`. Wrong tokens are counted per client
 * address: past the limit, that address's wrong tokens get 429 with Retry-After until its oldest failure is a
 * minute old. A valid token is never refused by the limiter.
 */
import { getConnInfo } from "@hono/node-server/conninfo";
import { Option } from "effect";
import type { Context, MiddlewareHandler } from "hono";
import { allows, type Principal, type Role } from "../effects/auth.ts";
import { problemResponse } from "./problem.ts";

export interface AuthEnv {
  Variables: { principal: Principal };
}

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
  // A Map keeps insertion order: an address is moved to the end on each failure, so the first is the stalest.
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
      const kept = [...recent(address, now), now].slice(-maxFailures);
      failures.delete(address);
      failures.set(address, kept);
      while (failures.size > maxAddresses) {
        const stalest = failures.keys().next().value;
        if (stalest === undefined) break;
        failures.delete(stalest);
      }
    },
    size: () => failures.size,
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

export const presentedToken = (c: Context, allowQuery: boolean): string | undefined => {
  const header = c.req.header("authorization");
  const bearer = header === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  return bearer ?? c.req.header("x-api-key") ?? (allowQuery ? c.req.query("token") : undefined);
};

const unauthorized = (detail: string) =>
  problemResponse(
    { status: 401, title: "Unauthorized", detail },
    { "www-authenticate": 'Bearer realm="distributary"' },
  );

export const authenticate =
  (
    authenticateToken: (token: string) => Option.Option<Principal>,
    limiter: FailureLimiter,
  ): MiddlewareHandler<AuthEnv> =>
  async (c, next) => {
    const token = presentedToken(c, c.req.path === "/ws");
    if (token === undefined) {
      return unauthorized("this needs a token: send 'Authorization: Bearer <token>' or 'X-API-Key: <token>'");
    }
    // A valid token passes whatever the address did before: the limiter slows guessing, not the rightful user.
    const valid = authenticateToken(token);
    if (Option.isSome(valid)) {
      c.set("principal", valid.value);
      return next();
    }
    const address = clientAddress(c);
    const now = Date.now();
    const wait = limiter.retryAfter(address, now);
    if (wait > 0) {
      return problemResponse(
        {
          status: 429,
          title: "Too many failed attempts",
          detail: `too many wrong tokens from this address; try again in ${wait} s`,
        },
        { "retry-after": String(wait) },
      );
    }
    limiter.recordFailure(address, now);
    return unauthorized("the token is not valid");
  };

export const requireRole =
  (role: Role): MiddlewareHandler<AuthEnv> =>
  async (c, next) => {
    const principal = c.get("principal");
    if (!allows(principal.role, role)) {
      return problemResponse({
        status: 403,
        title: "Forbidden",
        detail: `this needs the ${role} role; the token '${principal.name}' has ${principal.role}`,
      });
    }
    await next();
  };
