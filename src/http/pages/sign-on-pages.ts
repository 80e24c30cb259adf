/**
 * Signing in and out through the company's identity provider (effects/control/sign-on.ts). `/auth/login`
 * sends the browser to the provider with a fresh PKCE verifier, state and nonce, kept for ten minutes in an
 * HttpOnly cookie of their own (so the callback may reach any node of a fleet); `/auth/callback` exchanges the
 * code, lets openid-client check the ID token, and starts the person's session if an access rule gives them a
 * role; signing out (`/logout`, `/auth/logout`) ends the session here and sends the browser to the provider's
 * end_session_endpoint with the ID token as hint, back to the login page after. Every outcome is audited with
 * the person's subject, issuer and name, and counted in `distributary_auth_logins_total{outcome}`.
 */
import type * as Effect from "effect/Effect";
import * as Runtime from "effect/Runtime";
import type { Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { ActiveSignOn, LoginTransaction, SignOn } from "../../effects/control/sign-on.ts";
import type { AuthEnv } from "../auth.ts";
import type { makeSessions } from "./session.ts";
import { nextAfterLogin, secureRequest } from "./session.ts";

const TRANSACTION_COOKIE = "dst_signin";
const TRANSACTION_PATH = "/auth";
const TRANSACTION_SECONDS = 600;

const encode = (transaction: LoginTransaction) =>
  Buffer.from(JSON.stringify(transaction)).toString("base64url");

const decode = (text: string | undefined): LoginTransaction | undefined => {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as Partial<LoginTransaction>;
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

/** The words of a failure to show a person: an Error's message, never more than a line. */
const wordsOf = (error: unknown) =>
  (error instanceof Error ? error.message : String(error)).split("\n")[0]?.slice(0, 200) ?? "";

export const signOnPages = (deps: {
  readonly app: Hono<AuthEnv>;
  readonly signOn: SignOn;
  readonly active: ActiveSignOn;
  readonly sessions: ReturnType<typeof makeSessions>;
  readonly runtime: Runtime.Runtime<never>;
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

  app.get("/auth/login", async (c) => {
    const next = nextAfterLogin(c, c.req.query("next"));
    try {
      const { url, transaction } = await active.beginLogin(next);
      setCookie(c, TRANSACTION_COOKIE, encode(transaction), {
        httpOnly: true,
        sameSite: "Lax",
        path: TRANSACTION_PATH,
        maxAge: TRANSACTION_SECONDS,
        secure: active.httpsPublic || secureRequest(c),
      });
      return c.redirect(url, 302);
    } catch (error) {
      await run(
        active.recordLogin(
          "failed",
          "sign-on",
          `the provider ${issuer} could not be reached: ${wordsOf(error)}`,
        ),
      );
      return refused(
        c,
        `The identity provider could not be reached: ${wordsOf(error)}. Try again shortly.`,
        next,
        502,
      );
    }
  });

  app.get("/auth/callback", async (c) => {
    const transaction = decode(getCookie(c, TRANSACTION_COOKIE));
    deleteCookie(c, TRANSACTION_COOKIE, { path: TRANSACTION_PATH });
    if (transaction === undefined) {
      await run(
        active.recordLogin(
          "failed",
          "sign-on",
          "a callback came without a sign-in started here (or over 10 minutes old)",
        ),
      );
      return refused(
        c,
        "This sign-in was not started here, or took over 10 minutes: sign in again.",
        "/",
        400,
      );
    }
    const providerError = c.req.query("error");
    if (providerError !== undefined) {
      const why = c.req.query("error_description") ?? providerError;
      await run(
        active.recordLogin("failed", "sign-on", `the provider ${issuer} refused the sign-in: ${why}`),
      );
      return refused(c, `The identity provider refused the sign-in: ${why}.`, transaction.next, 403);
    }
    let signedIn: Awaited<ReturnType<ActiveSignOn["finishLogin"]>>;
    try {
      signedIn = await active.finishLogin(new URL(c.req.url).search, transaction);
    } catch (error) {
      await run(
        active.recordLogin("failed", "sign-on", `the sign-in's answer was refused: ${wordsOf(error)}`),
      );
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
