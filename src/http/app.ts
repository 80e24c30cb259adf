/**
 * The HTTP surface: REST under /api (one sub-app per resource), the WebSocket, and the rules that hold for
 * all of them — bodies larger than the schema allows are refused, every route but health, readiness and the
 * OpenAPI document needs a token, errors are problem+json. Built inside the service's scope: the WebSocket
 * feeds live in it.
 */
import { createNodeWebSocket } from "@hono/node-ws";
import * as Effect from "effect/Effect";
import * as FiberSet from "effect/FiberSet";
import * as Option from "effect/Option";
import * as Runtime from "effect/Runtime";
import { Hono, type MiddlewareHandler } from "hono";
import type { UpgradeWebSocket } from "hono/ws";
import type { ChannelId } from "../domain/base/ids.ts";
import { MAX_SLATE_IMAGE_BYTES } from "../domain/channel/slate.ts";
import { Channels } from "../effects/channel/channels.ts";
import { ConfigState } from "../effects/config/config-state.ts";
import { memorySessionStore } from "../effects/config/person-sessions.ts";
import { Database } from "../effects/config/postgres/database.ts";
import {
  postgresSessionStore,
  postgresTokenSessionStore,
} from "../effects/config/postgres/person-sessions.ts";
import { ConfigCode } from "../effects/config-code/config-code.ts";
import { AccessRules } from "../effects/control/access-rules.ts";
import { Auth } from "../effects/control/auth.ts";
import { ConfigTransfer } from "../effects/control/config-transfer.ts";
import { Control } from "../effects/control/control.ts";
import { jwtUnexpired } from "../effects/control/jwt.ts";
import { SignOn } from "../effects/control/sign-on.ts";
import { EventBus } from "../effects/events/event-bus.ts";
import { Fleet } from "../effects/fleet/fleet.ts";
import type { FleetShape } from "../effects/fleet/fleet-types.ts";
import { MediaLive } from "../effects/medialive/medialive.ts";
import { Notifications } from "../effects/notify/deliveries.ts";
import { Notifiers } from "../effects/notify/notifiers.ts";
import { Recordings } from "../effects/outputs/recordings.ts";
import { runtimeName, runtimeVersion } from "../effects/runtime/process/runtime.ts";
import { ScheduleRunner } from "../effects/schedule/runner.ts";
import { Metrics } from "../effects/status/metrics.ts";
import { ReadModel } from "../effects/status/read-model.ts";
import { Readiness } from "../effects/status/readiness.ts";
import { Thumbnails } from "../effects/status/thumbnails.ts";
import { version } from "../version.ts";
import { makeChannelAccess, refusalCounter, refusalOn, requireAnywhere } from "./access.ts";
import { accessApi } from "./api/access.ts";
import { auditApi } from "./api/audit.ts";
import { channelsApi } from "./api/channels.ts";
import { clusterApi, serviceDiscovery, serviceDiscoveryDoc, withPeer } from "./api/cluster.ts";
import { configApi } from "./api/config.ts";
import { eventsApi } from "./api/events.ts";
import { medialiveApi } from "./api/medialive.ts";
import { nodesApi } from "./api/nodes.ts";
import { notifiersApi } from "./api/notifiers.ts";
import { outputsApi } from "./api/outputs.ts";
import { scheduleApi } from "./api/schedule.ts";
import { tokensApi } from "./api/tokens.ts";
import { type AuthEnv, authenticate, makeFailureLimiter, presentedToken } from "./auth.ts";
import { limitBody, MAX_BODY_BYTES, MAX_IMPORT_BODY_BYTES } from "./body-limit.ts";
import { forwardToHolder } from "./forward.ts";
import { serveHls } from "./hls.ts";
import { metricsAccessConfig, metricsGuard } from "./metrics.ts";
import { openApiDocument } from "./openapi.ts";
import { liveSocket } from "./pages/live.ts";
import { pagesApp } from "./pages/routes.ts";
import { sameOriginSocket } from "./pages/session.ts";
import { internalError, problemResponse } from "./problem.ts";
import { makeApi, makeRun, mounted, type RouteDoc, unmatched } from "./routes.ts";
import { BAD_TOKEN_REASON, channelsSocket, NO_TOKEN_REASON, refusedSocket } from "./ws.ts";

/** The routes anyone may ask, without a token: liveness, readiness and this API's description. */
const openRoutes = (
  startedAt: number,
  readiness: Readiness,
  fleet: FleetShape,
  routes: () => ReadonlyArray<RouteDoc>,
) => {
  const open = makeApi();
  open.on(
    { method: "get", path: "/health", access: "public", summary: "Liveness: the process answers" },
    (c) =>
      c.json({
        status: "ok",
        version,
        runtime: runtimeName,
        runtime_version: runtimeVersion,
        uptime: Math.floor((Date.now() - startedAt) / 1000),
      }),
  );
  open.on(
    {
      method: "get",
      path: "/ready",
      access: "public",
      summary:
        "Readiness: 200 once the store is loaded, the channels that were running were started and, in a fleet, the " +
        "node has joined (its first round renewed and read the leases; 503 before); " +
        "lists the channels that failed to start",
    },
    (c) =>
      !readiness.ready()
        ? c.json({ status: "starting", not_resumed: [] }, 503)
        : !fleet.ready()
          ? c.json({ status: "joining", not_resumed: [] }, 503)
          : c.json({ status: "ready", not_resumed: readiness.notResumed() }),
  );
  open.on(
    { method: "get", path: "/openapi.json", access: "public", summary: "This API, as OpenAPI 3.1" },
    (c) => c.json(openApiDocument(routes())),
  );
  return open;
};

/**
 * The WebSocket's token check. A browser cannot read the status of a refused upgrade: without a valid token the
 * socket opens and is closed at once with 4401 (4429 while the address is limited) and a reason that says what
 * to add.
 */
const socketTokenGuard = (
  upgradeWebSocket: UpgradeWebSocket,
  requireToken: MiddlewareHandler<AuthEnv>,
): MiddlewareHandler<AuthEnv> => {
  const refused = {
    noToken: refusedSocket(upgradeWebSocket, 4401, NO_TOKEN_REASON),
    badToken: refusedSocket(upgradeWebSocket, 4401, BAD_TOKEN_REASON),
    limited: refusedSocket(
      upgradeWebSocket,
      4429,
      "too many wrong tokens from this address; try again later",
    ),
  };
  return async (c, next) => {
    let passed = false;
    const response = await requireToken(c, async () => {
      passed = true;
    });
    if (passed) return next();
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket" || !(response instanceof Response))
      return response;
    const socket =
      response.status === 429
        ? refused.limited
        : presentedToken(c, true) === undefined
          ? refused.noToken
          : refused.badToken;
    return socket(c, next);
  };
};

export const makeApp = (startedAt: number = Date.now()) =>
  Effect.gen(function* () {
    const control = yield* Control;
    const recordings = yield* Recordings;
    const readiness = yield* Readiness;
    const readModel = yield* ReadModel;
    const bus = yield* EventBus;
    const transfer = yield* ConfigTransfer;
    const configCode = yield* ConfigCode;
    const metrics = yield* Metrics;
    const thumbnails = yield* Thumbnails;
    const auth = yield* Auth;
    const signOn = yield* SignOn;
    const accessRules = yield* AccessRules;
    const channels = yield* Channels;
    const medialive = yield* MediaLive;
    const schedules = yield* ScheduleRunner;
    const fleet = yield* Fleet;
    const notifiers = yield* Notifiers;
    const notifications = yield* Notifications;
    // A fleet node's database (its audit trail); none on one box.
    const database = yield* Effect.serviceOption(Database);
    const runtime = yield* Effect.runtime<never>();
    const run = makeRun(runtime);
    const runFork = yield* FiberSet.makeRuntime<never>();

    const app = new Hono<AuthEnv>();
    const { upgradeWebSocket, injectWebSocket, wss } = createNodeWebSocket({ app });
    // Every check of rights per channel reads the stored channels' tags and audits its refusals through this.
    const configs = yield* ConfigState;
    const access = makeChannelAccess(
      () => configs.current().channels,
      bus,
      runtime,
      Date.now,
      refusalCounter(metrics.registry),
    );
    app.use("*", (c, next) => {
      c.set("access", access);
      return next();
    });

    let routes: ReadonlyArray<RouteDoc> = [];
    const open = openRoutes(startedAt, readiness, fleet, () => routes);
    app.route("/api", open.app);

    const limiter = makeFailureLimiter();
    // The API takes the fleet's peer credential too; the pages and the HLS files do not.
    const apiToken = withPeer(fleet, auth.authenticate);
    const jwtSignOn = signOn.active;
    const checkJwt = (token: string) =>
      jwtSignOn?.takesJwt(token) === true ? jwtSignOn.verifyBearer(token) : undefined;
    const requireToken = authenticate(apiToken, limiter, checkJwt);
    const metricsAccess = yield* Effect.orDie(metricsAccessConfig);
    const scrapeGuard = metricsGuard(metricsAccess, requireToken);
    // Before the API's token check: service discovery is guarded as /metrics is (a loopback Prometheus needs
    // no token).
    app.get(serviceDiscoveryDoc.path, scrapeGuard, serviceDiscovery(fleet));
    app.use("/api/*", requireToken);
    // After the token check: a body is bounded before it is read, and only a known caller's is read at all.
    const importLimit = limitBody(MAX_IMPORT_BODY_BYTES);
    const bodyLimited = limitBody(MAX_BODY_BYTES);
    // A slate picture may be larger than any JSON body but an import.
    const imageLimit = limitBody(MAX_SLATE_IMAGE_BYTES);
    app.use("/api/*", (c, next) =>
      (c.req.path === "/api/config"
        ? importLimit
        : c.req.path.endsWith("/slate/image")
          ? imageLimit
          : bodyLimited)(c, next),
    );
    // In a fleet, a channel's own routes are answered by its holder (live figures, recordings, its outputs).
    app.use("/api/channels/*", forwardToHolder(fleet));
    const socketToken = socketTokenGuard(upgradeWebSocket, requireToken);
    app.get(
      "/ws",
      socketToken,
      requireAnywhere("viewer"),
      channelsSocket(
        readModel,
        bus,
        runFork,
        upgradeWebSocket,
        // A JWT, checked when the socket opened, stays valid until it expires.
        (token) =>
          Option.isSome(apiToken(token)) || (jwtSignOn?.takesJwt(token) === true && jwtUnexpired(token)),
      ),
    );
    const pages = pagesApp({
      control,
      recordings,
      readModel,
      bus,
      medialive,
      schedules,
      auth,
      transfer,
      configCode,
      thumbnails,
      fleet,
      notifiers,
      notifications,
      accessRules,
      runtime,
      limiter,
      signOn,
      personSessions: Option.match(database, {
        onNone: () => memorySessionStore(),
        onSome: postgresSessionStore,
      }),
      tokenSessions: Option.match(database, {
        onNone: () => null,
        onSome: postgresTokenSessionStore,
      }),
    });
    // A person's session is read from its store before the stills, the HLS files and the pages' WebSocket ask.
    for (const path of ["/ui/*", "/hls/*"]) app.use(path, pages.sessions.load);
    app.get(
      "/ui/ws",
      sameOriginSocket,
      liveSocket({
        readModel,
        bus,
        sessions: pages.sessions,
        thumbnails,
        fleet,
        schedules,
        runFork,
        upgradeWebSocket,
      }),
    );
    app.get("/ui/thumbs/:file", (c) => {
      const principal = pages.sessions.principalOf(c);
      if (principal === null) return c.text("log in first", 401);
      const channel = c.req.param("file").replace(/\.jpg$/, "") as ChannelId;
      c.set("principal", principal);
      const refusal = refusalOn(c, access.channel(channel) ?? { id: channel }, "viewer");
      if (refusal !== null) return c.text(refusal.message, 403);
      const still = thumbnails.still(channel);
      if (still === undefined) return c.body(null, 404);
      return c.body(new Uint8Array(still), 200, {
        "content-type": "image/jpeg",
        "cache-control": "private, max-age=10",
      });
    });
    app.get(
      "/hls/:channel/:output/:file",
      serveHls({
        sessionPrincipal: pages.sessions.principalOf,
        authenticate: auth.authenticate,
        checkJwt,
        limiter,
        served: channels.hls,
      }),
    );
    // The channel page's preview: a session only (the page's own), started by asking, ended by not asking.
    app.get(
      "/ui/preview/:channel/:file",
      serveHls({
        sessionPrincipal: pages.sessions.principalOf,
        authenticate: () => Option.none(),
        limiter,
        served: (channel) => Runtime.runPromise(runtime)(channels.preview(channel)),
        waitForPlaylistMs: 8_000,
      }),
    );
    app.get("/metrics", scrapeGuard, async (c) =>
      c.body(await Runtime.runPromise(runtime)(metrics.render), 200, { "content-type": metrics.contentType }),
    );

    const resources = [
      ["/api/channels", channelsApi(control, readModel, bus, fleet, run)],
      ["/api/channels", outputsApi(control, recordings, readModel, run)],
      ["/api/channels", medialiveApi(medialive, run)],
      ["/api/channels", scheduleApi(schedules, run)],
      ["/api/events", eventsApi(bus, run)],
      ["/api/tokens", tokensApi(auth, run)],
      ["/api/access", accessApi(accessRules, run)],
      ["/api/notifiers", notifiersApi(notifiers, notifications, run)],
      ["/api/config", configApi(transfer, configCode, run)],
      ["/api/nodes", nodesApi(fleet, bus, run)],
      ["/api/cluster", clusterApi(fleet, run)],
      ["/api/audit", auditApi(database, run)],
    ] as const;
    for (const [prefix, api] of resources) app.route(prefix, api.app);
    routes = [
      ...mounted("/api", open),
      ...resources.flatMap(([prefix, api]) => mounted(prefix, api)),
      serviceDiscoveryDoc,
    ];
    // What no API route took stays in the API (404, or 405 with the path's methods), never in the pages.
    app.all("/api/*", unmatched(routes));
    app.route("/", pages.app);

    // A browser asking for a page that does not exist gets a page; API clients a problem.
    app.notFound((c) =>
      !c.req.path.startsWith("/api/") &&
      (c.req.method === "GET" || c.req.method === "HEAD") &&
      (c.req.header("accept") ?? "").includes("text/html")
        ? pages.notFound(c)
        : problemResponse({
            status: 404,
            title: "Not found",
            detail: `no route for ${c.req.method} ${c.req.path}`,
          }),
    );
    app.onError((error) => {
      const { problem, reference } = internalError();
      Runtime.runFork(runtime)(Effect.logError(`request failed (reference ${reference})`, error));
      return problemResponse(problem);
    });

    return { app, injectWebSocket, webSockets: wss, routes: () => routes } as const;
  });
