/**
 * The operator pages: server-rendered HTML (views/) over the read model and the event bus, forms that post
 * and redirect, and one WebSocket per page (live.ts) that keeps them current. Here: the login, the rules every
 * page follows, and the signed-in pages mounted behind the session check — the overview and channels
 * (channel-pages.ts), the events page and Settings (admin-pages.ts). Actions go through the same commands as
 * the REST API, in the name of the signed-in token (handler.ts). Every post is checked for this server's
 * origin and bounded by what its form can hold before any of it is read. Wrong tokens at the login count with
 * the API's.
 */
import * as Runtime from "effect/Runtime";
import { type Context, Hono } from "hono";
import { html } from "hono/html";
import { page } from "../../../views/layout.ts";
import { excerpt } from "../../domain/base/excerpt.ts";
import { MAX_SLATE_IMAGE_BYTES } from "../../domain/channel/slate.ts";
import { refusalOn } from "../access.ts";
import { type AuthEnv, countFailure } from "../auth.ts";
import { limitBody, MAX_BODY_BYTES, MAX_IMPORT_BODY_BYTES, MAX_LOGIN_BODY_BYTES } from "../body-limit.ts";
import { accessRulePages } from "./access-rule-pages.ts";
import { adminPages } from "./admin-pages.ts";
import { assets } from "./assets.ts";
import { channelPages } from "./channel-pages.ts";
import { fleetPages } from "./fleet-pages.ts";
import { formFields, type PageServices, render, viewerOf } from "./handler.ts";
import { medialivePages } from "./medialive-pages.ts";
import { notifierPages } from "./notifier-pages.ts";
import { makePersonSessions } from "./person-sessions.ts";
import { schedulePages } from "./schedule-pages.ts";
import { makeSessions, nextAfterLogin, sameOrigin } from "./session.ts";
import { signOnPages, transactionKey } from "./sign-on-pages.ts";

/**
 * What the pages may load: their own scripts, stylesheet, images and connections (the WebSocket included),
 * the preview's media and hls.js's worker from blob: URLs, and no framing by anyone.
 */
const pagePolicy = (provider: string | undefined) =>
  [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self' blob:",
    "worker-src 'self' blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    // Signing out goes on to the identity provider's logout.
    `form-action 'self'${provider === undefined ? "" : ` ${provider}`}`,
    "frame-ancestors 'none'",
  ].join("; ");

/** The login page: "Sign in with …" when sign-on is configured, the token form always. */
const loginPage = (error: string | undefined, next: string, provider: string | undefined) =>
  page({ title: "Log in", viewer: null, body: loginForm(error, next, provider) });

const loginForm = (
  error: string | undefined,
  next: string,
  provider: string | undefined,
) => html`<section class="login" aria-labelledby="login-title">
  <h1 id="login-title">Log in</h1>
  ${
    provider === undefined
      ? ""
      : html`<p><a class="button sign-on" href="/auth/login?next=${encodeURIComponent(next)}">Sign in with ${provider}</a></p>
  <p class="muted">Or with a token:</p>`
  }
  <form method="post" action="/login" class="stacked">
    <input type="hidden" name="next" value="${next}" />
    <label>Token <input type="password" name="token" required autocomplete="current-password" ${error === undefined ? "" : html`aria-invalid="true" aria-describedby="token-error"`} /></label>
    ${error === undefined ? "" : html`<p class="field-error" id="token-error" role="alert">${error}</p>`}
    <button type="submit" class="primary">Log in</button>
  </form>
  <p class="muted">The admin token was printed when the service first started. Tokens are managed in Settings.</p>
</section>`;

export const pagesApp = (services: PageServices) => {
  const { auth, limiter, runtime } = services;
  const active = services.signOn.active;
  const sessions = makeSessions(
    auth.authenticate,
    active === null ? null : makePersonSessions(services.personSessions, active.sessionPrincipal),
    { byHash: auth.authenticateHash, store: services.tokenSessions ?? null },
  );
  const provider = active?.providerName;
  const policy = pagePolicy(active?.providerOrigin);
  const app = new Hono<AuthEnv>();

  app.use("*", async (c, next) => {
    await next();
    c.header("content-security-policy", policy);
  });
  // Each post may carry what its form holds: a token at the login, a channel elsewhere, a document at the
  // import. Past the login, the limit applies after the session check, so nobody unknown sends a document.
  const limits = {
    login: limitBody(MAX_LOGIN_BODY_BYTES),
    form: limitBody(MAX_BODY_BYTES),
    import: limitBody(MAX_IMPORT_BODY_BYTES),
    // A slate picture in its multipart wrapping.
    picture: limitBody(MAX_SLATE_IMAGE_BYTES + 64 * 1024),
  };
  app.route("/assets", assets());
  // Past the stylesheets and scripts: a person's session is read from its store (the fleet's database).
  app.use("*", sessions.load);
  app.use("*", sameOrigin);

  app.get("/login", (c) =>
    c.html(loginPage(sessions.refusal(c), nextAfterLogin(c, c.req.query("next")), provider)),
  );
  app.post("/login", limits.login, async (c) => {
    const fields = await Runtime.runPromise(runtime)(formFields(c));
    const next = nextAfterLogin(c, fields.next);
    if (await sessions.login(c, fields.token ?? "")) return c.redirect(next, 303);
    const wait = countFailure(limiter, c);
    if (wait > 0) {
      c.header("retry-after", String(wait));
      return c.html(
        loginPage(`Too many wrong tokens from this address: try again in ${wait} s.`, next, provider),
        429,
      );
    }
    return c.html(loginPage("That token is not valid.", next, provider), 401);
  });
  const signOn =
    active === null
      ? null
      : signOnPages({
          app,
          signOn: services.signOn,
          active,
          sessions,
          runtime,
          key: transactionKey(services.fleet.peerToken),
          refused: (c, message, next, status) => c.html(loginPage(message, next, provider), status),
        });
  const logout = async (c: Context) => {
    if (signOn !== null) return signOn.logout(c);
    await sessions.logout(c);
    return c.redirect("/login", 303);
  };
  app.post("/logout", limits.login, logout);
  app.post("/auth/logout", limits.login, logout);

  const signedIn = new Hono<AuthEnv>();
  signedIn.use("*", sessions.require());
  signedIn.use("*", (c, next) => {
    c.set("inFleet", services.fleet.enabled);
    return next();
  });
  // A channel's pages (and its recordings, stills, slate picture) are for those whose grants reach it: anyone
  // else gets a 403 page saying which channel and what they hold. Each action checks its own role too.
  signedIn.use("*", async (c, next) => {
    const id = /^\/channels\/([^/]+)/.exec(c.req.path)?.[1];
    if (id === undefined || c.req.path === "/channels/new" || c.req.path === "/channels/bulk") return next();
    let channel = id;
    try {
      channel = decodeURIComponent(id);
    } catch {
      // Not an encoding any channel's id has: checked as it is, which no grant by id reaches.
    }
    const refusal = refusalOn(c, c.get("access")?.channel(channel) ?? { id: channel }, "viewer");
    if (refusal === null) return next();
    return render(
      c,
      "Not your channel",
      html`<h1>Not your channel</h1><p role="alert">${refusal.message}</p><p><a href="/">Your channels</a></p>`,
      undefined,
      403,
    );
  });
  signedIn.use("*", (c, next) =>
    c.req.method === "GET" || c.req.method === "HEAD"
      ? next()
      : (c.req.path === "/settings/import"
          ? limits.import
          : c.req.path.endsWith("/slate/image")
            ? limits.picture
            : limits.form)(c, next),
  );
  signedIn.route("/", channelPages(services));
  signedIn.route("/", medialivePages(services));
  signedIn.route("/", schedulePages(services));
  signedIn.route("/", adminPages(services));
  signedIn.route("/", notifierPages(services));
  signedIn.route("/", accessRulePages(services));
  signedIn.route("/", fleetPages(services));

  app.route("/", signedIn);
  /** A browser's answer for a page route that does not exist: a page with the layout and a way home. */
  const notFound = (c: Context<AuthEnv>) =>
    c.html(
      page({
        title: "Not found",
        viewer: c.get("principal") === undefined ? null : viewerOf(c),
        body: html`<section class="not-found" aria-labelledby="not-found-title">
          <h1 id="not-found-title">Not found</h1>
          <p role="alert">There is no page at <code>${excerpt(c.req.path)}</code>.</p>
          <p><a href="/">Back to the channels</a></p>
        </section>`,
      }),
      404,
    );
  return { app, sessions, notFound };
};
