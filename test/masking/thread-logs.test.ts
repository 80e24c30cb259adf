/**
 * A line a channel logs inside a forwarding thread reaches the service's log, through its logger and its
 * masking, like every other line: here the slate's (src/effects/channel/slate.ts), said when an operator asks
 * for the slate before the input's format is known, in a channel whose id is also its RTMP output's stream
 * key. The line arrives as the service's own (JSON), the key masked.
 */
import { afterEach, expect, it } from "vitest";
import { eventually, freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const KEY = "k7q2-m9x4-v8w1-zt3p";

it("a slate's line from a forwarding thread reaches the service's log, masked", async () => {
  app = await makeTestApp(undefined, undefined, { DISTRIBUTARY_WORKERS: "1" });
  const test = app;
  const created = await test.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      id: KEY,
      name: "Thread logs",
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
      slate: { after_ms: 1000 },
      outputs: [{ name: "cdn", protocol: "rtmp", url: `rtmp://127.0.0.1:1/live/${KEY}` }],
    }),
  });
  expect(created.status, JSON.stringify(await json(created.clone()))).toBe(201);
  expect((await test.request(`/api/channels/${KEY}/start`, { method: "POST" })).status).toBe(200);
  const asked = await test.request(`/api/channels/${KEY}/slate`, {
    method: "POST",
    body: JSON.stringify({ on: true }),
  });
  expect(asked.status, JSON.stringify(await json(asked.clone()))).toBeLessThan(500);
  const line = await eventually(
    "the slate's line in the service's log",
    () => test.logs.find((entry) => entry.includes("the slate cannot go on")),
    5_000,
  );
  expect(JSON.parse(line)).toMatchObject({
    msg: expect.stringContaining("channel ****: the slate cannot go on"),
  });
  expect(line).not.toContain(KEY);
});
