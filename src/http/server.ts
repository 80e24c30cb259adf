import { type ServerType, serve } from "@hono/node-server";
import { Effect, Layer } from "effect";
import { PinoLoggerLive } from "../effects/logging.ts";
import { ServicesLive } from "../effects/services.ts";
import { layerFile } from "../effects/store.ts";
import { version } from "../version.ts";
import { makeApp } from "./app.ts";

export interface ListenOptions {
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
      const server = serve(
        { fetch: app.fetch, port: options.port, hostname: options.hostname ?? "0.0.0.0" },
        () => resume(Effect.succeed(server)),
      );
      server.once("error", (error) => resume(Effect.fail(error)));
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void));
        if ("closeAllConnections" in server) server.closeAllConnections();
      }),
  );

/** The API and WebSocket on a port, for as long as the layer lives. */
export const HttpLive = (options: ListenOptions) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const { app, injectWebSocket, webSockets } = yield* makeApp();
      const server = yield* listen(app, options);
      injectWebSocket(server);
      // Upgraded sockets are no longer the HTTP server's to close; end them first so closing it does not wait.
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          for (const client of webSockets.clients) client.terminate();
        }),
      );
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : options.port;
      yield* Effect.logInfo(
        `distributary ${version} listening on http://${options.hostname ?? "0.0.0.0"}:${port}`,
      );
    }),
  );

export interface ServiceOptions extends ListenOptions {
  readonly configDir: string;
}

/**
 * The whole service. Layers close in reverse: the HTTP server stops first, then the control plane (waiting for
 * a store write in progress), then the channel supervisor stops every channel and reaps every child.
 */
export const ServiceLive = (options: ServiceOptions) =>
  HttpLive(options).pipe(
    Layer.provide(ServicesLive),
    Layer.provide(layerFile(options.configDir)),
    Layer.provide(PinoLoggerLive()),
  );
