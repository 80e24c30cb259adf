/**
 * Signing in and out through the company's identity provider (effects/control/sign-on.ts). `/auth/login`
 * sends the browser to the provider with a fresh PKCE verifier, state and nonce, kept for ten minutes in an
 * HttpOnly cookie of their own (so the callback may reach any node of a fleet); `/auth/callback` exchanges the
 * code, lets openid-client check the ID token, and starts the person's session if an access rule gives them a
 * role; signing out (`/logout`, `/auth/logout`) ends the session here and sends the browser to the provider's
 * end_session_endpoint with the ID token as hint, back to the login page after. Every outcome is audited with
 * the person's subject, issuer and name, and counted in `distributary_auth_logins_total{outcome}`.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type * as Effect from "effect/Effect";
import * as Runtime from "effect/Runtime";
import type { Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { excerpt } from "../../domain/base/excerpt.ts";
import type { ActiveSignOn, LoginTransaction, SignOn } from "../../effects/control/sign-on.ts";
import { type AuthEnv, clientAddress, makeRecordGate } from "../auth.ts";
import type { makeSessions } from "./session.ts";
import { nextAfterLogin, secureRequest } from "./session.ts";

/**
 * The sign-in's cookie: `__Host-` over https (Secure, Path=/, no Domain: no other host or port may set it), a
 * plain name over http (a lab, a test on localhost), where browsers do not all keep a Secure cookie. Either way
 * it is signed, so only this service (or a node of its fleet) can have made it.
 */
const TRANSACTION_COOKIE = { secure: "__Host-dst_signin", plain: "dst_signin" } as const;
const TRANSACTION_SECONDS = 600;

/** `body.at.mac`: the transaction, when it was made, and their HMAC-SHA256 under `key`. */
export const signTransaction = (transaction: LoginTransaction, key: Buffer, now = Date.now()) => {
  const signed = `${Buffer.from(JSON.stringify(transaction)).toString("base64url")}.${now.toString(36)}`;
  return `${signed}.${createHmac("sha256", key).update(signed).digest("base64url")}`;
};

/** The transaction of a cookie this service signed less than 10 minutes ago; undefined for any other text. */
export const openTransaction = (
  text: string | undefined,
  key: Buffer,
  now = Date.now(),
): LoginTransaction | undefined => {
  const [body, at, mac, ...rest] = text?.split(".") ?? [];
  if (body === undefined || at === undefined || mac === undefined || rest.length > 0) return undefined;
  // Compared as text: another spelling of the same bytes (base64url's spare bits) is not this service's.
  const expected = Buffer.from(createHmac("sha256", key).update(`${body}.${at}`).digest("base64url"));
  const given = Buffer.from(mac);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  const made = Number.parseInt(at, 36);
  if (!(made <= now && now - made < TRANSACTION_SECONDS * 1000)) return undefined;
  try {
    const value = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as Partial<LoginTransaction>;
    return typeof value.verifier === "string" &&
      typeof value.state === "string" &&
      typeof value.nonce === "string" &&
      typeof value.next === "string"
      ? (value as LoginTransaction)
      : undefined;
  } catch {
    return undefined;
  }
};

/**
 * The key that signs sign-in cookies: in a fleet, made from the credential its nodes share (a sign-in begun on
 * one node may come back to another); on one box, a random key of this process.
 */
export const transactionKey = (peerToken: () => string | null) => {
  const own = randomBytes(32);
  return (): Buffer => {
    const shared = peerToken();
    return shared === null
      ? own
      : createHmac("sha256", shared).update("distributary sign-in transaction").digest();
  };
};

/** The words of a failure to show a person: an Error's message, never more than a line. */
const wordsOf = (error: unknown) =>
  excerpt((error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "");

export const signOnPages = (deps: {
  readonly app: Hono<AuthEnv>;
  readonly signOn: SignOn;
  readonly active: ActiveSignOn;
  readonly sessions: ReturnType<typeof makeSessions>;
  readonly runtime: Runtime.Runtime<never>;
  /** The key that signs the sign-in's cookie (transactionKey). */
  readonly key: () => Buffer;
  /** The login page with a message, answered with `status`. */
  readonly refused: (
    c: Context,
    message: string,
    next: string,
    status: 400 | 403 | 502,
  ) => Response | Promise<Response>;
}) => {
  const { app, signOn, active, sessions, refused } = deps;
  const run = (effect: Effect.Effect<unknown>) => Runtime.runPromise(deps.runtime)(effect);
  const issuer = active.issuer;
  const gate = makeRecordGate();
  /** Whether the browser is sent the `__Host-` cookie: it reached this service over https. */
  const secure = (c: Context) => active.httpsPublic || secureRequest(c);
  const cookieName = (c: Context) => TRANSACTION_COOKIE[secure(c) ? "secure" : "plain"];
  /**
   * A failed sign-in of a caller nobody knows yet: audited at a few a minute per address (the next recorded one
   * says how many were left out), else only counted, so nobody can wash the event history out with them.
   */
  const recordFailure = (c: Context, detail: string) => {
    const { record, unrecorded } = gate.admit(clientAddress(c), Date.now());
    if (!record) return run(active.countUnrecorded());
    const more =
      unrecorded === 0
        ? ""
        : ` (and ${unrecorded} more refused from this address before it, not recorded: too many)`;
    return run(active.recordLogin("failed", "sign-on", `${detail}${more}`));
  };

  app.get("/auth/login", async (c) => {
    const next = nextAfterLogin(c, c.req.query("next"));
    try {
      const { url, transaction } = await active.beginLogin(next);
      setCookie(c, cookieName(c), signTransaction(transaction, deps.key()), {
        httpOnly: true,
        sameSite: "Lax",
        path: "/",
        maxAge: TRANSACTION_SECONDS,
        secure: secure(c),
      });
      return c.redirect(url, 302);
    } catch (error) {
      await recordFailure(c, `the provider ${issuer} could not be reached: ${wordsOf(error)}`);
      return refused(
        c,
        `The identity provider could not be reached: ${wordsOf(error)}. Try again shortly.`,
        next,
        502,
      );
    }
  });

  app.get("/auth/callback", async (c) => {
    const name = cookieName(c);
    const transaction = openTransaction(getCookie(c, name), deps.key());
    deleteCookie(c, name, { path: "/", secure: secure(c) });
    if (transaction === undefined) {
      await recordFailure(c, "a callback came without a sign-in started here (or over 10 minutes old)");
      return refused(
        c,
        "This sign-in was not started here, or took over 10 minutes: sign in again.",
        "/",
        400,
      );
    }
    const providerError = c.req.query("error");
    if (providerError !== undefined) {
      // The provider's words come in the URL, from whoever made it: kept short and printable.
      const why = excerpt(c.req.query("error_description") ?? providerError);
      await recordFailure(c, `the provider ${issuer} refused the sign-in: ${why}`);
      return refused(c, `The identity provider refused the sign-in: ${why}.`, transaction.next, 403);
    }
    let signedIn: Awaited<ReturnType<ActiveSignOn["finishLogin"]>>;
    try {
      signedIn = await active.finishLogin(new URL(c.req.url).search, transaction);
    } catch (error) {
      await recordFailure(c, `the sign-in's answer was refused: ${wordsOf(error)}`);
      return refused(c, `The sign-in could not be completed: ${wordsOf(error)}.`, transaction.next, 400);
    }
    const person = active.sessionPrincipal(signedIn.claims);
    const who = `${String(signedIn.claims.sub)} at ${String(signedIn.claims.iss)}`;
    const roles = active.rolesOf(signedIn.claims);
    if (!person.ok) {
      await run(
        active.recordLogin(
          "no_role",
          active.actorFor(signedIn.claims),
          `sign-in of ${who} (${roles}) refused: ${person.words}`,
        ),
      );
      return refused(c, `${person.words}. Ask an admin for an access rule.`, transaction.next, 403);
    }
    await sessions.startPerson(c, signedIn.claims, signedIn.idToken, active.httpsPublic);
    await run(
      active.recordLogin(
        "success",
        person.principal,
        `${person.principal.name} (${who}; ${roles}) signed in as ${person.principal.role}`,
      ),
    );
    // Checked again: the cookie came back from the browser.
    return c.redirect(nextAfterLogin(c, transaction.next), 303);
  });

  const logout = async (c: Context) => {
    const principal = sessions.principalOf(c);
    const ended = await sessions.logout(c);
    if (ended === undefined) return c.redirect("/login", 303);
    await run(
      signOn.audited(
        principal ?? active.actorFor(ended.claims),
        "auth.sign_out",
        `${String(ended.claims.sub)} at ${String(ended.claims.iss)} signed out`,
      ),
    );
    return c.redirect((await active.endSessionUrl(ended.idToken)) ?? "/login", 303);
  };
  return { logout };
};
