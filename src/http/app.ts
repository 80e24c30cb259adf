import { Hono } from "hono";
import { version } from "../version.ts";

/** The HTTP surface: REST under /api; pages and WebSocket join here as they are built. */
export const makeApp = (startedAt: number = Date.now()): Hono => {
  const app = new Hono();
  app.get("/api/health", (c) =>
    c.json({ status: "ok", version, uptime: Math.floor((Date.now() - startedAt) / 1000) }),
  );
  return app;
};
