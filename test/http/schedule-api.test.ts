/**
 * A channel's schedule through the API, against the real service on the real clock: the view (the phase now,
 * the next occurrences with their phase times), the calendar (text/calendar), the operator's commands (extend
 * moves the end, end starts the postroll now, a command out of its phase is a 409 in words, a bad body a 400
 * problem+json), roles (a viewer reads, an operator commands) and the audit trail in the token's name.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, useTestApp } from "../support/app.ts";

const app = useTestApp();
const tokens: Record<"viewer" | "operator", string> = { viewer: "", operator: "" };

beforeAll(async () => {
  for (const role of ["viewer", "operator"] as const) {
    const created = await json(
      await app.request("/api/tokens", {
        method: "POST",
        body: JSON.stringify({ name: `schedule-${role}`, role }),
      }),
    );
    tokens[role] = String(created.token);
  }
});

type Json = Record<string, unknown>;
const S = 1000;

const create = async (id: string, schedule: unknown) => {
  const response = await app.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      id,
      name: `Scheduled ${id}`,
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
      outputs: [
        { id: "out1", protocol: "udp", url: `udp://127.0.0.1:${await freeUdpPort()}`, enabled: false },
      ],
      slate: { after_ms: 1000 },
      schedule,
    }),
  });
  expect(response.status, await response.clone().text()).toBe(201);
};
const view = async (id: string) =>
  json(await app.request(`/api/channels/${id}/schedule`, { token: tokens.viewer }));
const command = (id: string, kind: string, body?: unknown, token = tokens.operator) =>
  app.request(`/api/channels/${id}/schedule/${kind}`, {
    method: "POST",
    token,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

describe("the schedule's API", () => {
  it("shows the occurrence in progress and the next ones; extend and end move its times; refusals in words", async () => {
    const t0 = Math.ceil(Date.now() / 1000) * 1000 - 10 * S;
    await create("live", {
      windows: [
        {
          id: "now",
          start: new Date(t0).toISOString(),
          time_zone: "Europe/Paris",
          duration_s: 600,
          preroll_s: 30,
          postroll_s: 20,
        },
        {
          id: "weekly",
          rrule: "DTSTART;TZID=Europe/Paris:20261205T200000\nRRULE:FREQ=WEEKLY;BYDAY=SA",
          duration_s: 3600,
        },
      ],
    });
    const live = await eventually("the runner to take the occurrence live", async () => {
      const shown = await view("live");
      return ((shown.current as Json | null)?.done as string[] | undefined)?.includes("go_live")
        ? shown
        : undefined;
    });
    const current = live.current as Json;
    expect(current).toMatchObject({
      window: "now",
      time_zone: "Europe/Paris",
      live_at: new Date(t0).toISOString(),
      postroll_at: new Date(t0 + 600 * S).toISOString(),
      end_at: new Date(t0 + 620 * S).toISOString(),
      done: ["enable_outputs", "go_live"],
      waiting: null,
    });
    const next = live.next as Json[];
    expect(next).toHaveLength(5);
    expect(next.slice(1).every((occurrence) => occurrence.window === "weekly")).toBe(true);
    // 20:00 in Paris is 19:00 UTC in winter.
    expect(String(next[1]?.live_at)).toMatch(/T19:00:00.000Z$/);

    const extended = await command("live", "extend", { seconds: 60 });
    expect(extended.status).toBe(200);
    expect(((await json(extended)).current as Json).end_at).toBe(new Date(t0 + 680 * S).toISOString());

    const refused = await command("live", "go-live");
    expect(refused.status).toBe(409);
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    expect(String((await json(refused)).detail)).toContain("cannot go live: it is in live");

    const bad = await command("live", "extend", { seconds: "soon" });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("content-type")).toBe("application/problem+json");
    expect(JSON.stringify(await json(bad))).toContain("seconds");

    const ended = await command("live", "end");
    expect(ended.status).toBe(200);
    expect((await json(ended)).phase).toBe("postroll");

    const audit = ((await json(await app.request("/api/events?type=api_change&limit=500"))).events as Json[])
      .filter((event) => event.channel === "live" && String(event.action).startsWith("schedule."))
      .map((event) => `${event.action} by ${event.actor}`);
    expect(audit).toEqual(
      expect.arrayContaining(["schedule.extend by schedule-operator", "schedule.end by schedule-operator"]),
    );
  });

  it("the calendar, roles, and a channel without a schedule", async () => {
    await create("cal", {
      windows: [
        {
          id: "sat",
          rrule: "DTSTART;TZID=Europe/Paris:20261205T200000\nRRULE:FREQ=WEEKLY;BYDAY=SA",
          duration_s: 7200,
          exdates: ["2026-12-26"],
        },
      ],
    });
    const ics = await app.request("/api/channels/cal/schedule.ics", { token: tokens.viewer });
    expect(ics.status).toBe(200);
    expect(ics.headers.get("content-type")).toBe("text/calendar; charset=utf-8");
    const text = await ics.text();
    expect(text).toContain("BEGIN:VCALENDAR\r\n");
    expect(text).toContain("RRULE:FREQ=WEEKLY;BYDAY=SA");
    expect(text).toContain("UID:sat@cal.distributary");

    expect((await command("cal", "skip", undefined, tokens.viewer)).status).toBe(403);
    const skipped = await command("cal", "skip");
    expect(skipped.status, await skipped.clone().text()).toBe(200);
    expect(((await json(skipped)).next as Json[])[0]).toMatchObject({ window: "sat", skipped: true });

    await create("none", null);
    const missing = await app.request("/api/channels/none/schedule", { token: tokens.viewer });
    expect(missing.status).toBe(404);
    expect(String((await json(missing)).detail)).toContain("has no schedule");
  });
});
