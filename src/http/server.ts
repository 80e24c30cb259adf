import type { Server } from "node:net";
import { join } from "node:path";
import { createAdaptorServer, type ServerType, serve } from "@hono/node-server";
import * as Console from "effect/Console";
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import * as Option from "effect/Option";
import { DATABASE_START_WAIT_MS, layerPostgres } from "../effects/config/postgres/layer.ts";
import { databaseUrl } from "../effects/config/settings.ts";
import { layerFile } from "../effects/config/store.ts";
import { Auth } from "../effects/control/auth.ts";
import { PinoLoggerLive } from "../effects/events/logging.ts";
import { UPGRADE_LISTEN_FD_ENV } from "../effects/handover/peer.ts";
import { serveUpgrades } from "../effects/handover/upgrade.ts";
import { RecordingsDir } from "../effects/outputs/recordings.ts";
import { runtimeName, runtimeVersion } from "../effects/runtime/process/runtime.ts";
import { ServicesFleet, ServicesLive } from "../effects/services.ts";
import { version } from "../version.ts";
import { makeApp } from "./app.ts";

interface ListenOptions {
  readonly port: number;
  readonly hostname?: string;
}

interface Fetchable {
  readonly fetch: (request: Request, env?: unknown) => Response | Promise<Response>;
}

/** Listens while the scope is open; closing the scope stops accepting and closes open connections. */
export const listen = (app: Fetchable, options: ListenOptions) =>
  Effect.acquireRelease(
    Effect.async<ServerType, Error>((resume) => {
      // An upgrade's new process accepts on the socket the old one listens on (handover/upgrade.ts).
      const inherited = Number(process.env[UPGRADE_LISTEN_FD_ENV] ?? Number.NaN);
      const server = Number.isInteger(inherited)
        ? createAdaptorServer({ fetch: app.fetch, hostname: options.hostname ?? "0.0.0.0" })
        : serve({ fetch: app.fetch, port: options.port, hostname: options.hostname ?? "0.0.0.0" }, () =>
            resume(Effect.succeed(server)),
          );
      if (Number.isInteger(inherited)) server.listen({ fd: inherited }, () => resume(Effect.succeed(server)));
      server.once("error", (error) => resume(Effect.fail(error)));
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void));
        if ("closeAllConnections" in server) server.closeAllConnections();
      }),
  );

/**
 * Closes every open WebSocket as a restart (1012: pages and well-behaved clients try again by themselves),
 * waits up to half a second for the closing handshakes, then ends whatever is left.
 */
interface OpenSocket {
  readonly once: (event: "close", listener: () => void) => unknown;
  readonly close: (code: number, reason: string) => void;
  readonly terminate: () => void;
}

export const closeWebSockets = (server: { readonly clients: Iterable<OpenSocket> }) =>
  Effect.async<void>((resume) => {
    const open = [...server.clients];
    let left = open.length;
    if (left === 0) return resume(Effect.void);
    const timer = setTimeout(() => {
      for (const client of open) client.terminate();
      resume(Effect.void);
    }, 500);
    for (const client of open) {
      client.once("close", () => {
        left -= 1;
        if (left > 0) return;
        clearTimeout(timer);
        resume(Effect.void);
      });
      client.close(1012, "the service is restarting");
    }
  });

/** The API and WebSocket on a port, for as long as the layer lives. */
const HttpLive = (options: ServiceOptions) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const { app, injectWebSocket, webSockets } = yield* makeApp();
      const server = yield* listen(app, options);
      injectWebSocket(server);
      // Upgraded sockets are no longer the HTTP server's to close; end them first so closing it does not wait.
      yield* Effect.addFinalizer(() => closeWebSockets(webSockets));
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : options.port;
      // distributary upgrade and SIGUSR2: a new process takes this one's place without a gap.
      yield* serveUpgrades({ server: server as Server, configDir: options.configDir });
      const secret = (yield* Auth).takeFirstStartSecret();
      if (secret !== null) {
        const host =
          options.hostname === undefined || ["0.0.0.0", "::"].includes(options.hostname)
            ? "localhost"
            : options.hostname;
        const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
        // On stdout and not through the logger: the only time the token exists in clear.
        yield* Console.log(
          [
            "distributary: created an admin token (it is stored only as a hash and is not shown again):",
            "",
            `  ${secret}`,
            "",
            `Log in with it at ${url}/ or, for example:`,
            `  curl -H "Authorization: Bearer ${secret}" ${url}/api/channels`,
            "",
          ].join("\n"),
        );
      }
      yield* Effect.logInfo(
        `distributary ${version} (${runtimeName} ${runtimeVersion}) listening on http://${(options.hostname ?? "0.0.0.0").includes(":") ? `[${options.hostname}]` : (options.hostname ?? "0.0.0.0")}:${port}${options.hostname === "::" ? " (every IPv6 and IPv4 address)" : ""}`,
      );
    }),
  );

interface ServiceOptions extends ListenOptions {
  readonly configDir: string;
}

/**
 * The whole service. Layers close in reverse: the HTTP server stops first, then the control plane (waiting for
 * a store write in progress), then the channel supervisor stops every channel and reaps every child.
 */
export const ServiceLive = (options: ServiceOptions) =>
  Layer.unwrapEffect(
    Effect.map(databaseUrl, (url) =>
      Option.isSome(url)
        ? // A fleet node: configuration, tokens, audit and cues in PostgreSQL; recordings stay local.
          HttpLive(options).pipe(
            Layer.provide(ServicesFleet),
            Layer.provide(layerPostgres(url.value, { waitMs: DATABASE_START_WAIT_MS, holdNode: true })),
          )
        : HttpLive(options).pipe(Layer.provide(ServicesLive), Layer.provide(layerFile(options.configDir))),
    ),
  ).pipe(
    Layer.provide(Layer.succeed(RecordingsDir, join(options.configDir, "recordings"))),
    Layer.provide(PinoLoggerLive()),
  );
