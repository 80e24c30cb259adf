/**
 * Who may read /metrics, as each setting of DISTRIBUTARY_METRICS_AUTH says: by default a viewer token or the
 * scrape-only DISTRIBUTARY_METRICS_TOKEN (which opens nothing else); with `loopback`, a Prometheus on the same
 * host without a token, and nobody else.
 */
import { afterEach, describe, expect, it } from "vitest";
import { json, makeTestApp, type TestApp } from "../support/app.ts";

const SCRAPE_TOKEN = "scrape-only-token-5b2e7c0d9a1f4e3b8c6d";
let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe("access to /metrics", () => {
  it("token mode: a viewer token or the scrape token reads it; the scrape token opens nothing else", async () => {
    app = await makeTestApp(undefined, undefined, { DISTRIBUTARY_METRICS_TOKEN: SCRAPE_TOKEN });
    const viewer = await json(
      await app.request("/api/tokens", {
        method: "POST",
        body: JSON.stringify({ name: "grafana", role: "viewer" }),
      }),
    );
    const byViewer = await app.request("/metrics", { token: String(viewer.token) });
    expect(byViewer.status).toBe(200);
    expect(await byViewer.text()).toContain("distributary_build_info");
    const byScrapeToken = await app.request("/metrics", { token: SCRAPE_TOKEN });
    expect(byScrapeToken.status).toBe(200);
    expect(byScrapeToken.headers.get("content-type")).toContain("text/plain");
    expect((await app.request("/api/channels", { token: SCRAPE_TOKEN })).status).toBe(401);
    expect((await app.request("/metrics", { token: null })).status).toBe(401);
    expect((await app.request("/metrics", { token: "wrong-token-wrong-token-wrong" })).status).toBe(401);
  });

  it("loopback mode: no token needed from 127.0.0.1; a request not from loopback is refused", async () => {
    app = await makeTestApp(undefined, undefined, { DISTRIBUTARY_METRICS_AUTH: "loopback" });
    const port = await app.listen();
    const local = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(local.status).toBe(200);
    expect(await local.text()).toContain("distributary_ready 1");
    // app.request has no socket behind it: its address is unknown, not loopback.
    const unknown = await app.request("/metrics", { token: null });
    expect(unknown.status).toBe(403);
    expect(String((await json(unknown)).detail)).toContain("DISTRIBUTARY_METRICS_AUTH=loopback");
  });
});
