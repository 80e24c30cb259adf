/**
 * An RRULE that gives one of its parts twice (`FREQ=DAILY;FREQ=WEEKLY`, `BYHOUR=1;BYHOUR=2`) is refused through
 * the API with a 400 that names the part, at creation, by PATCH and by import, and nothing is stored: RFC 5545
 * allows each part once, and one reader keeping the first and another the last would run two different rules.
 */
import { describe, expect, it } from "vitest";
import { json, useTestApp } from "../support/app.ts";

const app = useTestApp();

const window = (rule: string) => ({
  id: "twice",
  rrule: `DTSTART;TZID=Europe/Paris:20261205T200000\nRRULE:${rule}`,
  duration_s: 3600,
});

const channel = (id: string, port: number, rule?: string) => ({
  id,
  name: id,
  rtp_ip: "127.0.0.1",
  rtp_port: port,
  outputs: [{ id: "main", protocol: "udp", url: "udp://127.0.0.1:7991" }],
  ...(rule === undefined ? {} : { schedule: { windows: [window(rule)] } }),
});

const send = (path: string, method: string, body: unknown) =>
  app.request(path, { method, body: JSON.stringify(body) });

const refusal = async (response: Response) => {
  const text = await response.text();
  expect(response.status, text).toBe(400);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  return text;
};

describe("an RRULE's parts", () => {
  it("a part given twice is a 400 naming it, by POST, PATCH and import; nothing is stored", async () => {
    const freq = await refusal(
      await send("/api/channels", "POST", channel("freq", 7201, "FREQ=DAILY;FREQ=WEEKLY")),
    );
    expect(freq).toContain("window twice");
    expect(freq).toContain("FREQ is given more than once");
    expect((await app.request("/api/channels/freq")).status).toBe(404);

    expect((await send("/api/channels", "POST", channel("plain", 7202))).status).toBe(201);
    const hour = await refusal(
      await send("/api/channels/plain", "PATCH", {
        schedule: { windows: [window("FREQ=DAILY;BYHOUR=1;BYMINUTE=0;byhour=2")] },
      }),
    );
    expect(hour).toContain("BYHOUR is given more than once");
    expect((await json(await app.request("/api/channels/plain"))).schedule ?? null).toBeNull();

    const imported = await send("/api/config", "POST", {
      version: 1,
      channels: [channel("imported", 7203, "FREQ=WEEKLY;BYDAY=SA;BYDAY=SU")],
    });
    expect(imported.status).toBeGreaterThanOrEqual(400);
    expect(await imported.text()).toContain("BYDAY is given more than once");
    expect((await app.request("/api/channels/imported")).status).toBe(404);
  });

  it("each part once, several values in one part, is taken", async () => {
    const taken = await send(
      "/api/channels",
      "POST",
      channel("once", 7204, "FREQ=DAILY;BYHOUR=1,2;BYMINUTE=0"),
    );
    expect(taken.status, await taken.clone().text()).toBe(201);
  });
});
