/**
 * `/assets/*`: the pages' two stylesheets and script from views/assets, and htmx with its WebSocket extension and
 * hls.js from the installed npm packages (no CDN). Read once at start; served with a short cache so an upgrade shows.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Hono } from "hono";

const require = createRequire(import.meta.url);
const own = (name: string) => new URL(`../../../views/assets/${name}`, import.meta.url);

const files: Record<string, { readonly path: string | URL; readonly type: string }> = {
  "app.css": { path: own("app.css"), type: "text/css; charset=utf-8" },
  "parts.css": { path: own("parts.css"), type: "text/css; charset=utf-8" },
  "app.js": { path: own("app.js"), type: "text/javascript; charset=utf-8" },
  "htmx.min.js": {
    path: require.resolve("htmx.org/dist/htmx.min.js"),
    type: "text/javascript; charset=utf-8",
  },
  "ws.js": { path: require.resolve("htmx-ext-ws/dist/ws.js"), type: "text/javascript; charset=utf-8" },
  // The channel page's preview player; loaded only when a preview is opened.
  "hls.min.js": {
    path: require.resolve("hls.js/dist/hls.min.js"),
    type: "text/javascript; charset=utf-8",
  },
};

export const assets = () => {
  const loaded = new Map(
    Object.entries(files).map(([name, file]) => [name, { body: readFileSync(file.path), type: file.type }]),
  );
  const app = new Hono();
  app.get("/:name", (c) => {
    const file = loaded.get(c.req.param("name"));
    if (file === undefined) return c.text("not found", 404);
    return c.body(new Uint8Array(file.body), 200, {
      "content-type": file.type,
      "cache-control": "public, max-age=300",
    });
  });
  return app;
};
