/**
 * Page sessions: logging in with a token gives an HttpOnly, SameSite=Strict cookie holding a random session
 * id; the session keeps the token's sha256 (as the token list does), in this process's memory on one box and
 * in the fleet's database in a fleet (`tokenStore`: read at each request of the pages, so any node serves it
 * and a logout on one ends it on all). Every request checks the token again, so revoking it (or changing its
 * role) ends or changes the session at once. A person signed in through the identity provider
 * has a session of its own kind (person-sessions.ts: in the fleet's database when there is one), its cookie
 * SameSite=Lax so that the provider's redirect back to /auth/callback brings it. Only the sha256 of a cookie's
 * id is kept. Form posts must come from this server's own pages: the Origin (or, without one, the Referer)
 * must name the host the request was sent to; so must the Origin of the pages' WebSocket, since SameSite does
 * not keep another port of the same host from using the cookie.
 */
import { randomBytes } from "node:crypto";
import type * as Option from "effect/Option";
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import {
  type PersonSession,
  sessionHash,
  type TokenSessionStore,
} from "../../effects/config/person-sessions.ts";
import { type Principal, tokenHash } from "../../effects/control/auth.ts";
import type { AuthEnv } from "../auth.ts";
import { type PersonSessions, TOUCH_EVERY_MS } from "./person-sessions.ts";

const COOKIE = "dst_session";
const MAX_SESSIONS = 10_000;
const IDLE_MS = 12 * 60 * 60 * 1000;

interface Session {
  /** The token's sha256. */
  readonly sha256: string;
  lastSeen: number;
}

/** Whether the request came over https (itself, or as a proxy in front of it says). */
export const secureRequest = (c: Context) =>
  new URL(c.req.url).protocol === "https:" || c.req.header("x-forwarded-proto") === "https";

export const makeSessions = (
  authenticate: (secret: string) => Option.Option<Principal>,
  people: PersonSessions | null = null,
  tokens: {
    readonly byHash: (sha256: string) => Option.Option<Principal>;
    readonly store: TokenSessionStore | null;
  } | null = null,
) => {
  const byHash = (sha256: string, secret?: string) =>
    tokens !== null ? tokens.byHash(sha256) : authenticate(secret ?? "");
  /** Token sessions, by the sha256 of their cookie's id. */
  const sessions = new Map<string, Session>();
  /** Without a check by hash (`tokens`), the token itself, by the same key: in this process's memory only. */
  const secrets = new Map<string, string>();

  const principalOf = (c: Context): Principal | null => principalFor(getCookie(c, COOKIE));

  /** The signed-in token or person of session `id`, checked again now; null when it ended or was revoked. */
  const principalFor = (id: string | undefined): Principal | null => {
    if (id === undefined) return null;
    const key = sessionHash(id);
    const session = sessions.get(key);
    if (session === undefined) return people?.principalFor(id) ?? null;
    if (Date.now() - session.lastSeen > IDLE_MS) {
      sessions.delete(key);
      void tokens?.store?.remove(key).catch(() => undefined);
      return null;
    }
    const principal = byHash(session.sha256, secrets.get(key));
    if (principal._tag === "None") {
      // The token was revoked: the session ends with it.
      sessions.delete(key);
      void tokens?.store?.remove(key).catch(() => undefined);
      return null;
    }
    session.lastSeen = Date.now();
    return principal.value;
  };

  return {
    /** Starts a session for a valid token (stored first in a fleet); false when the token is not valid. */
    login: async (c: Context, secret: string): Promise<boolean> => {
      if (authenticate(secret)._tag === "None") return false;
      if (sessions.size >= MAX_SESSIONS) {
        const oldest = [...sessions].sort((a, b) => a[1].lastSeen - b[1].lastSeen)[0];
        if (oldest !== undefined) {
          sessions.delete(oldest[0]);
          secrets.delete(oldest[0]);
        }
      }
      const id = randomBytes(32).toString("base64url");
      const key = sessionHash(id);
      const session = { sha256: tokenHash(secret), lastSeen: Date.now() };
      await tokens?.store?.put(key, session.sha256, session.lastSeen);
      sessions.set(key, session);
      if (tokens === null) secrets.set(key, secret);
      setCookie(c, COOKIE, id, { httpOnly: true, sameSite: "Strict", path: "/", secure: secureRequest(c) });
      return true;
    },
    /** Starts the session of a person signed in through the identity provider. */
    startPerson: async (
      c: Context,
      claims: Readonly<Record<string, unknown>>,
      idToken: string,
      httpsPublic: boolean,
    ) => {
      if (people === null) throw new Error("sign-on is not configured");
      const id = await people.start(claims, idToken);
      const secure = httpsPublic || secureRequest(c);
      setCookie(c, COOKIE, id, { httpOnly: true, sameSite: "Lax", path: "/", secure });
    },
    /** Ends the session here (and, for a person's, in the store); what a person's kept, for the provider. */
    logout: async (c: Context): Promise<PersonSession | undefined> => {
      const id = getCookie(c, COOKIE);
      deleteCookie(c, COOKIE, { path: "/" });
      if (id === undefined) return undefined;
      const key = sessionHash(id);
      secrets.delete(key);
      const token = sessions.delete(key);
      if (tokens?.store != null) {
        const stored = await tokens.store.get(key).catch(() => undefined);
        await tokens.store.remove(key).catch(() => undefined);
        if (token || stored !== undefined) return undefined;
      }
      if (token || people === null) return undefined;
      return people.end(id);
    },
    /** Reads a person's session from its store before the request goes on (a token's is here already). */
    load: (async (c, next) => {
      const id = getCookie(c, COOKIE);
      // A fleet's token session as the database has it now: made on another node, or ended there.
      const store = tokens?.store;
      if (id !== undefined && store != null) {
        const key = sessionHash(id);
        const stored = await store.get(key).then(
          (found) => found ?? null,
          () => undefined,
        );
        if (stored === null) sessions.delete(key);
        else if (stored !== undefined) {
          const lastSeen = Math.max(stored.lastSeen, sessions.get(key)?.lastSeen ?? 0);
          sessions.set(key, { sha256: stored.tokenSha256, lastSeen });
          if (Date.now() - stored.lastSeen > TOUCH_EVERY_MS)
            await store.touch(key, Date.now()).catch(() => undefined);
        }
      }
      if (id !== undefined && people !== null && !sessions.has(sessionHash(id))) await people.load(id);
      await next();
    }) as MiddlewareHandler,
    /** Why a person signed in has no page: the access rules give them no role. */
    refusal: (c: Context): string | undefined => {
      const outcome = people?.outcomeFor(getCookie(c, COOKIE));
      return outcome?.ok === false ? outcome.words : undefined;
    },
    principalOf,
    principalFor,
    sessionId: (c: Context) => getCookie(c, COOKIE),
    /** Pages need a session: without one, the login page, then back here. */
    require: (): MiddlewareHandler<AuthEnv> => async (c, next) => {
      const principal = principalOf(c);
      if (principal === null) {
        if (c.req.method !== "GET") return c.text("your session has ended; log in again", 401);
        return c.redirect(`/login?next=${encodeURIComponent(new URL(c.req.url).pathname)}`);
      }
      c.set("principal", principal);
      await next();
    },
  };
};

/** Whether `from` (an Origin or Referer) names the host the request was sent to. */
const fromThisHost = (c: Context, from: string | undefined): boolean => {
  const host = c.req.header("host");
  if (host === undefined || from === undefined || from === "null") return false;
  try {
    return new URL(from).host === host;
  } catch {
    return false;
  }
};

/** Refuses a form post that did not come from this server's own pages (cross-site request forgery). */
export const sameOrigin: MiddlewareHandler = async (c, next) => {
  if (c.req.method === "GET" || c.req.method === "HEAD") return next();
  if (!fromThisHost(c, c.req.header("origin") ?? c.req.header("referer"))) {
    return c.text("refused: this form was not sent from this server's own pages", 403);
  }
  return next();
};

/**
 * Refuses the pages' WebSocket opened by another origin, or with no Origin at all: a browser always sends
 * one on an upgrade, and a page on another port of this host would otherwise read the live pages with the
 * operator's cookie.
 */
export const sameOriginSocket: MiddlewareHandler = async (c, next) => {
  if (!fromThisHost(c, c.req.header("origin"))) {
    return c.text("refused: this WebSocket was not opened by this server's own pages", 403);
  }
  return next();
};

/**
 * Where a login goes next: `next` resolved as the browser will resolve it, kept only when it is a path on this
 * service's own origin. A backslash, a control character, `//` at its start (before or after the dots are
 * resolved: `/.//evil.example` is `//evil.example`, another host to a browser) or an encoded slash or
 * backslash sends the person to the overview instead.
 */
export const nextAfterLogin = (c: Context, next: string | undefined): string => {
  if (next === undefined || !next.startsWith("/") || /[\\\p{Cc}]|%(25)*(2f|5c)/iu.test(next)) return "/";
  const own = new URL(c.req.url).origin;
  try {
    const target = new URL(next, own);
    const path = `${target.pathname}${target.search}${target.hash}`;
    // The path as a Location header: resolved against any other origin, it must stay on that origin.
    const elsewhere = "http://origin.invalid";
    return target.origin === own && !path.startsWith("//") && new URL(path, elsewhere).origin === elsewhere
      ? path
      : "/";
  } catch {
    return "/";
  }
};
