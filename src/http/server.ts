import { type ServerType, serve } from "@hono/node-server";
import { Effect } from "effect";
import type { Hono } from "hono";

export interface ListenOptions {
  readonly port: number;
  readonly hostname?: string;
}

/** Listens while the scope is open; closing the scope stops accepting and closes open connections. */
export const listen = (app: Hono, options: ListenOptions) =>
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
