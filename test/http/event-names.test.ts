/**
 * Events name what they are about: an output's state change reads "output CDN (1a1bb558…)" in the API's
 * events, the log and the channel page's event list, and keeps the full ids as fields for queries.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  ADMIN_TOKEN,
  eventually,
  freeUdpPort,
  json,
  loginSession,
  makeTestApp,
  type TestApp,
  udpSink,
} from "../support/app.ts";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

interface Event {
  readonly type: string;
  readonly channel: string | null;
  readonly output: string | null;
  readonly channel_name: string | null;
  readonly output_name: string | null;
  readonly state?: string;
}

describe("events name their output and channel", () => {
  it("an output's state change names the output in the API, the log and the channel page", async () => {
    app = await makeTestApp();
    const test = app;
    const sink = await udpSink();
    try {
      const created = await test.request("/api/channels", {
        method: "POST",
        body: JSON.stringify({
          name: "News",
          rtp_ip: "127.0.0.1",
          rtp_port: await freeUdpPort(),
          outputs: [{ name: "CDN", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
        }),
      });
      expect(created.status).toBe(201);
      const channel = (await json(created)) as { id: string; outputs: Array<{ id: string }> };
      const outputId = String(channel.outputs[0]?.id);
      expect((await test.request(`/api/channels/${channel.id}/start`, { method: "POST" })).status).toBe(200);

      const connected = await eventually("the output's connected event", async () => {
        const body = (await json(await test.request(`/api/channels/${channel.id}/events`))) as {
          events: Event[];
        };
        return body.events.find((event) => event.type === "output_state" && event.state === "connected");
      });
      expect(connected).toMatchObject({
        channel: channel.id,
        output: outputId,
        channel_name: "News",
        output_name: "CDN",
      });

      const label = `output CDN (${outputId.slice(0, 8)}…)`;
      const line = await eventually("the log line of the connected output", () =>
        test.logs.find(
          (candidate) => candidate.includes('"event":"output_state"') && candidate.includes("connected"),
        ),
      );
      expect(line).toContain(`${label} of channel News (${channel.id.slice(0, 8)}…) connected`);
      expect(line).toContain(`"output":"${outputId}"`);
      expect(line).toContain(`"channel":"${channel.id}"`);

      const cookie = await loginSession(test, ADMIN_TOKEN);
      const page = await test.request(`/channels/${channel.id}`, { token: null, headers: { cookie } });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain(`${label}: connected`);
    } finally {
      await sink.close();
    }
  });
});
