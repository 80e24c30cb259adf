/**
 * Forwarding workers through the API and /metrics: a channel shows the worker that runs it, an operator moves
 * it to another (audited; a worker that does not exist is a 409 that names the ones that do), and Prometheus
 * reads each worker's channels, restarts and event-loop delay.
 */
import { afterEach, describe, expect, it } from "vitest";
import { freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe("forwarding workers", () => {
  it("a channel shows its worker, moves to another on request, and /metrics reads every worker", async () => {
    app = await makeTestApp(undefined, undefined, { DISTRIBUTARY_WORKERS: "2" });
    const port = await freeUdpPort();
    await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ id: "news", name: "News", rtp_ip: "127.0.0.1", rtp_port: port }),
    });
    const started = await json(await app.request("/api/channels/news/start", { method: "POST" }));
    expect(started.worker).toBe(0);

    const moved = await app.request("/api/channels/news/move", {
      method: "POST",
      body: JSON.stringify({ worker: 1 }),
    });
    expect(moved.status).toBe(200);
    expect((await json(moved)).worker).toBe(1);
    const events = await json(await app.request("/api/events?type=api_change"));
    expect(JSON.stringify(events)).toContain("moved from forwarding worker 0 to 1");

    const nowhere = await app.request("/api/channels/news/move", {
      method: "POST",
      body: JSON.stringify({ worker: 7 }),
    });
    expect(nowhere.status).toBe(409);
    expect(String((await json(nowhere)).detail)).toContain("there is no forwarding worker 7 (0–1)");
    const invalid = await app.request("/api/channels/news/move", {
      method: "POST",
      body: JSON.stringify({ worker: -1 }),
    });
    expect(invalid.status).toBe(400);
    const anonymous = await app.request("/api/channels/news/move", {
      method: "POST",
      body: JSON.stringify({ worker: 0 }),
      token: null,
    });
    expect(anonymous.status).toBe(401);

    const metrics = await (await app.request("/metrics")).text();
    expect(metrics).toContain('distributary_worker_channels{worker="0"} 0');
    expect(metrics).toContain('distributary_worker_channels{worker="1"} 1');
    expect(metrics).toContain('distributary_worker_restarts_total{worker="0"} 0');
    expect(metrics).toMatch(
      /distributary_worker_event_loop_delay_seconds\{worker="1",quantile="0\.99"\} [0-9.e-]+/,
    );
  });
});
