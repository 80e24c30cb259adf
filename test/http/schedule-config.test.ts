/**
 * A channel's schedule (`schedule`) through the API as an operator writes it: a bad one refused by POST, PATCH
 * and import with a problem+json 400 that names the window, the field and the fault (a rule rrule-temporal
 * cannot read, an unknown zone, an exception that is not a date, an output the channel lacks, two windows that
 * overlap), nothing stored; a good one stored with its defaults, shown by GET, changed and removed (null) by
 * PATCH (on a running channel too), audited, and carried whole through an export and an import. Weekly rules
 * recur for ever, so the overlaps found in the 366 days ahead do not depend on the day the test runs.
 */
import { describe, expect, it } from "vitest";
import { json, useTestApp } from "../support/app.ts";

const app = useTestApp();

type Issue = { readonly field: string; readonly message: string };

const send = (path: string, method: string, body: unknown) =>
  app.request(path, { method, body: JSON.stringify(body) });

const sat = {
  id: "sat",
  rrule: "DTSTART;TZID=Europe/Paris:20261205T200000\nRRULE:FREQ=WEEKLY;BYDAY=SA",
  exdates: ["2026-12-26"],
  duration_s: 7200,
  medialive_lead_s: 600,
  preroll_s: 300,
  postroll_s: 120,
  outputs: "all",
  staging: "auto",
};

const channelBody = (id: string, port: number, schedule: unknown) => ({
  id,
  name: `Scheduled ${id}`,
  rtp_ip: "127.0.0.1",
  rtp_port: port,
  outputs: [{ id: "main", protocol: "udp", url: "udp://127.0.0.1:7990" }],
  // The preroll and the postroll show the slate.
  slate: { after_ms: 1000 },
  schedule,
});

/** A 400 problem+json: its detail and field issues. */
const refused = async (response: Response) => {
  expect(response.status, await response.clone().text()).toBe(400);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  const problem = await json(response);
  return { detail: String(problem.detail), errors: (problem.errors ?? []) as Issue[] };
};

const scheduleOf = async (id: string) => (await json(await app.request(`/api/channels/${id}`))).schedule;

describe("a channel's schedule through the API", () => {
  it("a bad schedule is a 400 that names the window and the fault, and nothing is stored", async () => {
    const bad = await refused(
      await send(
        "/api/channels",
        "POST",
        channelBody("bad", 7100, {
          windows: [
            { ...sat, rrule: "DTSTART;TZID=Europe/Paris:20261205T200000\nRRULE:FREQ=WEEKLY;BYDAY=XX" },
            { id: "zone", start: "2026-12-08T20:00:00+01:00", time_zone: "Europe/Atlantis", duration_s: 60 },
            { id: "ex", start: "2026-12-09T20:00:00Z", exdates: ["2026-13-01"], duration_s: 60 },
            { id: "out", start: "2026-12-10T20:00:00Z", outputs: ["main", "backup"], duration_s: 60 },
          ],
        }),
      ),
    );
    expect(bad.errors).toEqual([
      {
        field: "schedule.windows[0]",
        message: "window sat: the rule cannot be read: Invalid BYDAY value: XX",
      },
      {
        field: "schedule.windows[1]",
        message: 'window zone: unknown time zone "Europe/Atlantis" in time_zone',
      },
      {
        field: "schedule.windows[2]",
        message: `window ex: exdate "2026-13-01" is not a date (YYYY-MM-DD, in the window's zone) nor an instant (ISO 8601 with offset)`,
      },
      {
        field: "schedule.windows[3]",
        message: 'window out: output "backup" is not an output of this channel',
      },
    ]);
    expect(bad.detail).toContain("window sat: the rule cannot be read");
    expect((await app.request("/api/channels/bad")).status).toBe(404);

    const overlap = await refused(
      await send(
        "/api/channels",
        "POST",
        channelBody("overlap", 7102, {
          windows: [sat, { ...sat, id: "sun", rrule: sat.rrule.replace("T200000", "T213000") }],
        }),
      ),
    );
    expect(overlap.errors).toHaveLength(1);
    expect(overlap.errors[0]?.field).toBe("schedule.windows");
    expect(overlap.errors[0]?.message).toMatch(
      /^windows sat and sun overlap on \d{4}-\d{2}-\d{2} 20:00 Europe\/Paris: sat runs until \d{4}-\d{2}-\d{2} 22:02 Europe\/Paris, after sun warms up at \d{4}-\d{2}-\d{2} 21:15 Europe\/Paris$/,
    );

    const shape = await refused(
      await send(
        "/api/channels",
        "POST",
        channelBody("shape", 7104, { windows: [{ ...sat, start: "2026-12-05T20:00:00+01:00" }] }),
      ),
    );
    expect(shape.errors).toContainEqual({
      field: "schedule.windows[0].rrule",
      message:
        'give exactly one of rrule (a recurrence) and start (a one-off, e.g. "2026-12-05T20:00:00+01:00")',
    });
    expect((await app.request("/api/channels/shape")).status).toBe(404);

    const slateless = await refused(
      await send("/api/channels", "POST", {
        ...channelBody("slateless", 7106, { windows: [sat] }),
        slate: null,
      }),
    );
    expect(slateless.errors).toEqual([
      {
        field: "schedule.windows[0]",
        message: `window sat: its preroll and postroll show the channel's slate, and the channel has none: turn it on ("slate": {"after_ms": 1000}) or set preroll_s and postroll_s to 0`,
      },
    ]);
    expect((await app.request("/api/channels/slateless")).status).toBe(404);
  });

  it("a good one is stored with its defaults, shown by GET, changed by PATCH (a bad change refused), exported and imported whole, removed by null", async () => {
    const created = await send("/api/channels", "POST", channelBody("weekly", 7110, { windows: [sat] }));
    expect(created.status, await created.clone().text()).toBe(201);
    expect(await scheduleOf("weekly")).toEqual({ windows: [sat] });
    // Its slate stays while a window's preroll needs it.
    const unslated = await refused(await send("/api/channels/weekly", "PATCH", { slate: null }));
    expect(unslated.errors[0]?.message).toContain(
      "window sat: its preroll and postroll show the channel's slate",
    );

    const oneOff = {
      id: "final",
      start: "2026-12-08T20:00:00+01:00",
      time_zone: "Europe/Paris",
      duration_s: 5400,
    };
    const patched = await send("/api/channels/weekly", "PATCH", { schedule: { windows: [sat, oneOff] } });
    expect(patched.status, await patched.clone().text()).toBe(200);
    const both = {
      windows: [
        sat,
        {
          ...oneOff,
          exdates: [],
          medialive_lead_s: 0,
          preroll_s: 0,
          postroll_s: 0,
          outputs: "all",
          staging: "auto",
        },
      ],
    };
    expect(await scheduleOf("weekly")).toEqual(both);

    // A change into an overlap is refused and the stored schedule stays.
    const clash = await refused(
      await send("/api/channels/weekly", "PATCH", {
        schedule: { windows: [sat, { ...sat, id: "again", rrule: sat.rrule.replace("T200000", "T210000") }] },
      }),
    );
    expect(clash.errors[0]?.message).toMatch(
      /^windows again and sat overlap on|^windows sat and again overlap on/,
    );
    expect(await scheduleOf("weekly")).toEqual(both);

    const audit = (await json(await app.request("/api/events?type=api_change"))).events as Array<{
      detail: string;
    }>;
    expect(audit.map((event) => event.detail)).toContain("channel weekly (Scheduled weekly) changed");

    const exported = (await json(await app.request("/api/config"))) as {
      channels: Array<{ id: string; schedule?: unknown }>;
    };
    expect(exported.channels.find((channel) => channel.id === "weekly")?.schedule).toEqual(both);
    expect((await app.request("/api/channels/weekly", { method: "DELETE" })).status).toBeLessThan(300);
    const imported = await send("/api/config", "POST", exported);
    expect(imported.status, await imported.clone().text()).toBeLessThan(300);
    expect(await scheduleOf("weekly")).toEqual(both);

    // An import with a bad schedule is refused whole, in the same words.
    const broken = {
      version: 1,
      channels: exported.channels.map((channel) =>
        channel.id === "weekly"
          ? { ...channel, schedule: { windows: [{ ...sat, exdates: ["someday"] }] } }
          : channel,
      ),
    };
    const refusedImport = await refused(await send("/api/config", "POST", broken));
    expect(refusedImport.detail).toContain(
      `window sat: exdate "someday" is not a date (YYYY-MM-DD, in the window's zone) nor an instant (ISO 8601 with offset)`,
    );
    expect(await scheduleOf("weekly")).toEqual(both);

    const removed = await send("/api/channels/weekly", "PATCH", { schedule: null });
    expect(removed.status, await removed.clone().text()).toBe(200);
    expect(await scheduleOf("weekly")).toBeUndefined();
  });

  it("an output a window names cannot be deleted until the window no longer names it; a running channel's schedule changes", async () => {
    const windows = [{ ...sat, outputs: ["main"] }];
    const created = await send("/api/channels", "POST", channelBody("named", 7120, { windows }));
    expect(created.status, await created.clone().text()).toBe(201);
    const refusedDelete = await app.request("/api/channels/named/outputs/main", { method: "DELETE" });
    expect(refusedDelete.status).toBe(409);
    expect(refusedDelete.headers.get("content-type")).toBe("application/problem+json");
    expect(String((await json(refusedDelete)).detail)).toBe(
      "output main is named by the schedule's window sat; take it out of the window's outputs first",
    );
    // On a running channel: the change is taken and the channel runs on.
    expect((await app.request("/api/channels/named/start", { method: "POST" })).status).toBe(200);
    const patched = await send("/api/channels/named", "PATCH", { schedule: { windows: [sat] } });
    expect(patched.status, await patched.clone().text()).toBe(200);
    const running = await json(await app.request("/api/channels/named"));
    expect(running.status).toBe("running");
    expect(running.schedule).toEqual({ windows: [sat] });
    expect((await app.request("/api/channels/named/outputs/main", { method: "DELETE" })).status).toBeLessThan(
      300,
    );
  });
});
