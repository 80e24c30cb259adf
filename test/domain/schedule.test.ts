/**
 * The schedule's rules (src/domain/schedule/), called directly: occurrences across both 2026 daylight-saving
 * changes in Paris and New York (UTC instants asserted, whatever the machine's own zone), a local time missing
 * on the spring-forward day, exceptions, one-off windows, the checks' sentences, the step of an occurrence
 * (joining mid-window, missed, manual staging), the operator's commands and the iCalendar file; then a runner
 * of a few lines stepped on Effect's TestClock through whole occurrences, as the real one steps them.
 */
import { Effect, Schema, TestClock, TestContext } from "effect";
import { describe, expect, it } from "vitest";
import { scheduleIcs } from "../../src/domain/schedule/schedule-ics.ts";
import { applyCommand, stepOccurrence } from "../../src/domain/schedule/schedule-steps.ts";
import { checkSchedule, nextOccurrences, occurrences } from "../../src/domain/schedule/schedule-times.ts";
import type {
  Occurrence,
  OccurrenceProgress,
  ScheduleAction,
} from "../../src/domain/schedule/schedule-window.ts";
import { newProgress, Schedule } from "../../src/domain/schedule/schedule-window.ts";

const MINUTE = 60_000;
const DAY = 86_400_000;
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

const schedule = (...windows: ReadonlyArray<Record<string, unknown>>): Schedule =>
  Schema.decodeUnknownSync(Schedule)({ windows });

const weekly = (
  id: string,
  zone: string,
  start: string,
  day: string,
  extra: Record<string, unknown> = {},
) => ({
  id,
  rrule: `DTSTART;TZID=${zone}:${start}\nRRULE:FREQ=WEEKLY;BYDAY=${day}`,
  duration_s: 7200,
  ...extra,
});

/** T0s (UTC ISO) of a schedule's occurrences between two instants. */
const t0s = (given: Schedule, from: string, to: string) =>
  occurrences(given, at(from), at(to)).map((o) => iso(o.t0));

/** The same, computed while the process runs in another zone: the answer must not change. */
const inZone = <A>(zone: string, run: () => A): A => {
  const saved = process.env.TZ;
  process.env.TZ = zone;
  try {
    return run();
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
};

describe("occurrences across daylight-saving changes", () => {
  it("a weekly 20:00 Europe/Paris window stays 20:00 local through 29 March and 25 October 2026", () => {
    const paris = schedule(weekly("sun", "Europe/Paris", "20260301T200000", "SU"));
    const spring = ["2026-03-22T19:00:00.000Z", "2026-03-29T18:00:00.000Z", "2026-04-05T18:00:00.000Z"];
    const autumn = ["2026-10-18T18:00:00.000Z", "2026-10-25T19:00:00.000Z", "2026-11-01T19:00:00.000Z"];
    expect(t0s(paris, "2026-03-20T00:00:00Z", "2026-04-06T00:00:00Z")).toEqual(spring);
    expect(t0s(paris, "2026-10-17T00:00:00Z", "2026-11-02T00:00:00Z")).toEqual(autumn);
    // The machine's own zone changes nothing.
    for (const zone of ["America/Los_Angeles", "Asia/Tokyo"])
      expect(inZone(zone, () => t0s(paris, "2026-03-20T00:00:00Z", "2026-04-06T00:00:00Z"))).toEqual(spring);
  });

  it("a weekly 20:00 America/New_York window stays 20:00 local through 8 March and 1 November 2026", () => {
    const york = schedule(weekly("sun", "America/New_York", "20260301T200000", "SU"));
    expect(t0s(york, "2026-03-01T00:00:00Z", "2026-03-10T00:00:00Z")).toEqual([
      "2026-03-02T01:00:00.000Z",
      "2026-03-09T00:00:00.000Z",
    ]);
    expect(t0s(york, "2026-10-25T00:00:00Z", "2026-11-03T00:00:00Z")).toEqual([
      "2026-10-26T00:00:00.000Z",
      "2026-11-02T01:00:00.000Z",
    ]);
  });

  it("02:30 on the spring-forward day does not exist: the occurrence is shifted forward to 03:30, not dropped", () => {
    const night = schedule({
      id: "night",
      rrule: "DTSTART;TZID=Europe/Paris:20260327T023000\nRRULE:FREQ=DAILY",
      duration_s: 600,
    });
    expect(t0s(night, "2026-03-27T00:00:00Z", "2026-03-31T00:00:00Z")).toEqual([
      "2026-03-27T01:30:00.000Z", // 02:30 CET
      "2026-03-28T01:30:00.000Z",
      "2026-03-29T01:30:00.000Z", // 03:30 CEST: 02:30 does not exist that night
      "2026-03-30T00:30:00.000Z", // 02:30 CEST
    ]);
    // 02:30 happens twice on 25 October: the first (CEST) is the occurrence.
    expect(t0s(night, "2026-10-24T12:00:00Z", "2026-10-25T12:00:00Z")).toEqual(["2026-10-25T00:30:00.000Z"]);
  });

  it("UNTIL, an instant in UTC, ends a rule in its zone where it says, across the spring change", () => {
    const until = (instant: string) =>
      schedule({
        id: "u",
        rrule: `DTSTART;TZID=Europe/Paris:20260301T200000\nRRULE:FREQ=WEEKLY;BYDAY=SU;UNTIL=${instant}`,
        duration_s: 600,
      });
    expect(t0s(until("20260405T180000Z"), "2026-03-28T00:00:00Z", "2026-05-01T00:00:00Z")).toEqual([
      "2026-03-29T18:00:00.000Z",
      "2026-04-05T18:00:00.000Z",
    ]);
    expect(t0s(until("20260405T175959Z"), "2026-03-28T00:00:00Z", "2026-05-01T00:00:00Z")).toEqual([
      "2026-03-29T18:00:00.000Z",
    ]);
  });

  it("a rule in UTC, and its phase times from T0", () => {
    const utc = schedule({
      id: "u",
      rrule: "DTSTART:20261205T200000Z\nRRULE:FREQ=DAILY;COUNT=2",
      duration_s: 3600,
      medialive_lead_s: 600,
      preroll_s: 300,
      postroll_s: 120,
    });
    const [first, second, third] = occurrences(utc, at("2026-12-01T00:00:00Z"), at("2026-12-31T00:00:00Z"));
    expect(third).toBeUndefined();
    expect(second?.key).toBe("u@2026-12-06T20:00:00.000Z");
    expect(first).toEqual({
      window: "u",
      key: "u@2026-12-05T20:00:00.000Z",
      t0: at("2026-12-05T20:00:00Z"),
      warm_at: at("2026-12-05T19:45:00Z"),
      preroll_at: at("2026-12-05T19:55:00Z"),
      live_at: at("2026-12-05T20:00:00Z"),
      postroll_at: at("2026-12-05T21:00:00Z"),
      end_at: at("2026-12-05T21:02:00Z"),
      time_zone: "UTC",
      staging: "auto",
    });
    // An occurrence counts from its warm-up to its end: a range that only touches its warm-up has it.
    expect(t0s(utc, "2026-12-05T19:50:00Z", "2026-12-05T19:51:00Z")).toEqual(["2026-12-05T20:00:00.000Z"]);
    expect(t0s(utc, "2026-12-05T21:02:00Z", "2026-12-05T21:30:00Z")).toEqual([]);
  });
});

describe("exceptions and one-off windows", () => {
  const sat = weekly("sat", "Europe/Paris", "20261205T200000", "SA", {
    exdates: ["2026-12-26", "2027-01-09T20:00:00+01:00"],
  });

  it("exdates remove exactly those days, by local date or by instant", () => {
    expect(t0s(schedule(sat), "2026-12-01T00:00:00Z", "2027-01-20T00:00:00Z")).toEqual([
      "2026-12-05T19:00:00.000Z",
      "2026-12-12T19:00:00.000Z",
      "2026-12-19T19:00:00.000Z",
      "2027-01-02T19:00:00.000Z",
      "2027-01-16T19:00:00.000Z",
    ]);
  });

  it("a one-off window occurs once; the next occurrences begin with the one under way", () => {
    const given = schedule(sat, {
      id: "final",
      start: "2026-12-08T20:00:00+01:00",
      time_zone: "Europe/Paris",
      duration_s: 5400,
    });
    expect(t0s(given, "2026-12-08T00:00:00Z", "2026-12-31T00:00:00Z")).toEqual([
      "2026-12-08T19:00:00.000Z",
      "2026-12-12T19:00:00.000Z",
      "2026-12-19T19:00:00.000Z",
    ]);
    const during = nextOccurrences(given, at("2026-12-05T20:30:00Z"), 3);
    expect(during.map((o) => o.key)).toEqual([
      "sat@2026-12-05T19:00:00.000Z",
      "final@2026-12-08T19:00:00.000Z",
      "sat@2026-12-12T19:00:00.000Z",
    ]);
    expect(during[1]?.time_zone).toBe("Europe/Paris");
    // A yearly window is found a year ahead.
    const yearly = schedule({
      id: "y",
      rrule: "DTSTART:20260101T000000Z\nRRULE:FREQ=YEARLY",
      duration_s: 60,
    });
    expect(nextOccurrences(yearly, at("2026-02-01T00:00:00Z"), 2).map((o) => iso(o.t0))).toEqual([
      "2027-01-01T00:00:00.000Z",
      "2028-01-01T00:00:00.000Z",
    ]);
  });
});

describe("checkSchedule", () => {
  const now = at("2026-11-27T08:00:00Z");

  it("takes the issue's example", () => {
    const example = schedule(
      weekly("sat", "Europe/Paris", "20261205T200000", "SA", {
        exdates: ["2026-12-26"],
        medialive_lead_s: 600,
        preroll_s: 300,
        postroll_s: 120,
        outputs: ["a"],
      }),
    );
    expect(checkSchedule(example, ["a", "b"], now)).toEqual([]);
  });

  it("refuses two windows whose occurrences overlap, in words", () => {
    const clash = schedule(
      weekly("sat", "Europe/Paris", "20261205T200000", "SA"),
      weekly("sun", "Europe/Paris", "20261205T213000", "SA", { medialive_lead_s: 600 }),
    );
    expect(checkSchedule(clash, [], now)).toEqual([
      "windows sat and sun overlap on 2026-12-05 20:00 Europe/Paris: sat runs until 2026-12-05 22:00 Europe/Paris, after sun warms up at 2026-12-05 21:20 Europe/Paris",
    ]);
    const itself = schedule({
      id: "d",
      rrule: "DTSTART:20261201T000000Z\nRRULE:FREQ=DAILY",
      duration_s: 86_400,
      postroll_s: 60,
    });
    expect(checkSchedule(itself, [], now)).toEqual([
      "window d overlaps itself on 2026-12-01 00:00 UTC: one occurrence runs until 2026-12-02 00:01 UTC (with its postroll), after the next warms up at 2026-12-02 00:00 UTC",
    ]);
    // Back to back is no overlap.
    const abutting = schedule(
      weekly("a", "Europe/Paris", "20261205T200000", "SA", { duration_s: 3600 }),
      weekly("b", "Europe/Paris", "20261205T210000", "SA", { duration_s: 3600 }),
    );
    expect(checkSchedule(abutting, [], now)).toEqual([]);
  });

  it("names the window and the fault of a bad rule, zone, exception, id or output", () => {
    const bad = schedule(
      {
        id: "r",
        rrule: "DTSTART;TZID=Europe/Paris:20261205T200000\nRRULE:FREQ=WEEKLY;BYDAY=XX",
        duration_s: 60,
      },
      { id: "z", rrule: "DTSTART;TZID=Europe/Atlantis:20261205T200000\nRRULE:FREQ=WEEKLY", duration_s: 60 },
      { id: "f", rrule: "DTSTART:20261205T200000\nRRULE:FREQ=WEEKLY", duration_s: 60 },
      { id: "o", start: "2026-12-05T20:00:00Z", time_zone: "Mars/Olympus", duration_s: 60 },
      { id: "x", start: "2027-12-05T20:00:00Z", exdates: ["2026-02-30", "next tuesday"], duration_s: 60 },
      { id: "x", start: "2028-12-05T20:00:00Z", outputs: ["a", "nope"], duration_s: 60 },
    );
    expect(checkSchedule(bad, ["a"], now)).toEqual([
      "window r: the rule cannot be read: Invalid BYDAY value: XX",
      'window z: unknown time zone "Europe/Atlantis" in DTSTART',
      "window f: DTSTART must be a local time with its zone (DTSTART;TZID=Europe/Paris:20261205T200000) or a UTC time ending in Z; got DTSTART:20261205T200000",
      'window o: unknown time zone "Mars/Olympus" in time_zone',
      `window x: exdate "2026-02-30" is not a date (YYYY-MM-DD, in the window's zone) nor an instant (ISO 8601 with offset)`,
      `window x: exdate "next tuesday" is not a date (YYYY-MM-DD, in the window's zone) nor an instant (ISO 8601 with offset)`,
      "window x: its id is taken by an earlier window",
      'window x: output "nope" is not an output of this channel',
    ]);
  });

  it("refuses a rule finer than hourly, and the schema refuses a window with both or neither start", () => {
    const refusals = (rule: string) =>
      checkSchedule(
        schedule({ id: "r", rrule: `DTSTART:20261205T200000Z\nRRULE:${rule}`, duration_s: 60 }),
        [],
        now,
      );
    expect(refusals("FREQ=MINUTELY")).toEqual([
      "window r: the rule cannot be used: FREQ must be one of HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY; got MINUTELY",
    ]);
    expect(refusals("FREQ=HOURLY;BYMINUTE=0,15,30,45")).toEqual([
      "window r: occurs more than 10000 times in the next 366 days",
    ]);
    expect(refusals("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30")).toEqual([
      "window r: the rule gives no occurrence that rrule-temporal finds (Maximum iterations (2000) exceeded in all())",
    ]);
    expect(() => schedule({ id: "n", duration_s: 60 })).toThrow(/give exactly one of rrule .* and start/);
    expect(() => schedule({ id: "bad id!", start: "2026-12-05T20:00:00Z", duration_s: 60 })).toThrow(
      /must be 1–40 letters/,
    );
    expect(() => schedule({ id: "s", start: "2026-12-05 20:00", duration_s: 60 })).toThrow(/with its offset/);
  });
});

/** An occurrence of a one-off window with every time: warm 19:45, preroll 19:55, T0 20:00, postroll 21:00, end 21:02. */
const window = (extra: Record<string, unknown> = {}) =>
  schedule({
    id: "w",
    start: "2026-12-05T20:00:00Z",
    duration_s: 3600,
    medialive_lead_s: 600,
    preroll_s: 300,
    postroll_s: 120,
    ...extra,
  });
const only = (given: Schedule): Occurrence => {
  const [found] = occurrences(given, 0, at("2030-01-01T00:00:00Z"));
  if (found === undefined) throw new Error("no occurrence");
  return found;
};
const occ = only(window());
const T0 = occ.t0;
const progress = (done: ReadonlyArray<ScheduleAction>, more: Partial<OccurrenceProgress> = {}) => ({
  ...newProgress(occ),
  done,
  ...more,
});
const linked = { linked: true };

describe("stepOccurrence", () => {
  it("walks the phases by the clock, each with its actions, and says when to look next", () => {
    const step = (minutes: number, done: ReadonlyArray<ScheduleAction>) =>
      stepOccurrence(occ, progress(done), "auto", T0 + minutes * MINUTE, linked);
    expect(step(-20, [])).toMatchObject({ phase: "idle", due: [], wake_at: occ.warm_at });
    expect(step(-15, [])).toMatchObject({
      phase: "warming",
      due: ["start_medialive"],
      wake_at: occ.preroll_at,
    });
    expect(step(-5, ["start_medialive"])).toMatchObject({
      phase: "preroll",
      due: ["enable_outputs", "slate_on"],
      wake_at: T0,
    });
    const live = ["start_medialive", "enable_outputs", "slate_on"] as const;
    expect(step(0, live)).toMatchObject({ phase: "live", due: ["go_live"], wake_at: occ.postroll_at });
    expect(step(60, [...live, "go_live"])).toMatchObject({
      phase: "postroll",
      due: ["slate_postroll"],
      wake_at: occ.end_at,
    });
    expect(step(62, [...live, "go_live", "slate_postroll"])).toMatchObject({
      phase: "ending",
      due: ["disable_outputs", "stop_medialive"],
    });
    expect(step(62, [...live, "go_live", "slate_postroll", "disable_outputs", "stop_medialive"])).toEqual({
      phase: "idle",
      due: [],
      wake_at: null,
      waiting: null,
      missed: null,
    });
  });

  it("a node restarting mid-window with done up to slate_on, the clock in live: go_live alone", () => {
    const step = stepOccurrence(
      occ,
      progress(["start_medialive", "enable_outputs", "slate_on"]),
      "auto",
      T0 + 10 * MINUTE,
      linked,
    );
    expect(step.phase).toBe("live");
    expect(step.due).toEqual(["go_live"]);
  });

  it("a node joining in live with nothing done: MediaLive (when linked), the outputs and go-live, no slate", () => {
    const now = T0 + 10 * MINUTE;
    expect(stepOccurrence(occ, progress([]), "auto", now, linked).due).toEqual([
      "start_medialive",
      "enable_outputs",
      "go_live",
    ]);
    expect(stepOccurrence(occ, progress([]), "auto", now).due).toEqual(["enable_outputs", "go_live"]);
    // In the postroll, with the outputs never enabled: nothing to put on the slate, only MediaLive to stop.
    expect(
      stepOccurrence(occ, progress(["start_medialive"]), "auto", T0 + 61 * MINUTE, linked),
    ).toMatchObject({
      phase: "postroll",
      due: [],
    });
    expect(stepOccurrence(occ, progress(["start_medialive"]), "auto", T0 + 63 * MINUTE, linked).due).toEqual([
      "stop_medialive",
    ]);
  });

  it("an occurrence that passed with nothing done is missed, and gets no action", () => {
    for (const minutes of [61, 90, 24 * 60]) {
      const step = stepOccurrence(occ, progress([]), "auto", T0 + minutes * MINUTE, linked);
      expect(step).toMatchObject({ phase: "idle", due: [], wake_at: null });
      expect(step.missed).toBe(
        "the occurrence of window w at 2026-12-05 20:00 UTC passed with nothing done (its programme ended at 2026-12-05 21:00 UTC)",
      );
    }
  });

  it("manual staging waits for the operator's go-live at T0 and for the end after the programme", () => {
    const manual = only(window({ staging: "manual" }));
    const started = progress(["start_medialive", "enable_outputs", "slate_on"]);
    const atT0 = stepOccurrence(manual, started, "manual", T0 + MINUTE, linked);
    expect(atT0).toMatchObject({
      phase: "preroll",
      due: [],
      waiting: "go_live",
      wake_at: manual.postroll_at,
    });
    const live = applyCommand(manual, started, { kind: "go-live" }, T0 + 2 * MINUTE);
    if (!("progress" in live)) throw new Error(live.error);
    expect(stepOccurrence(manual, live.progress, "manual", T0 + 2 * MINUTE, linked)).toMatchObject({
      phase: "live",
      due: ["go_live"],
      waiting: null,
    });
    const goneLive = { ...live.progress, done: [...live.progress.done, "go_live" as const] };
    // Past the programme's planned end it stays live, waiting for the operator's end.
    expect(stepOccurrence(manual, goneLive, "manual", T0 + 90 * MINUTE, linked)).toMatchObject({
      phase: "live",
      due: [],
      waiting: "end",
      wake_at: null,
    });
    const ended = applyCommand(manual, goneLive, { kind: "end" }, T0 + 95 * MINUTE);
    if (!("progress" in ended)) throw new Error(ended.error);
    expect(stepOccurrence(manual, ended.progress, "manual", T0 + 95 * MINUTE, linked)).toMatchObject({
      phase: "postroll",
      due: ["slate_postroll"],
      wake_at: T0 + 97 * MINUTE,
    });
    // Never taken live: after the programme's time the slate and the ending come by the clock.
    expect(stepOccurrence(manual, started, "manual", T0 + 61 * MINUTE, linked).phase).toBe("postroll");
  });
});

describe("the operator's commands", () => {
  const next = only(window({ id: "next", start: "2026-12-05T21:30:00Z" }));

  it("extend moves the postroll and the end, and is refused into the next occurrence", () => {
    const live = progress(["start_medialive", "enable_outputs", "slate_on", "go_live"]);
    const now = T0 + 50 * MINUTE;
    const extended = applyCommand(occ, live, { kind: "extend", seconds: 600 }, now, { next });
    if (!("progress" in extended)) throw new Error(extended.error);
    expect(extended.progress.extended_s).toBe(600);
    expect(stepOccurrence(occ, extended.progress, "auto", T0 + 65 * MINUTE, linked)).toMatchObject({
      phase: "live",
      wake_at: T0 + 70 * MINUTE,
    });
    expect(stepOccurrence(occ, extended.progress, "auto", T0 + 71 * MINUTE, linked).wake_at).toBe(
      T0 + 72 * MINUTE,
    );
    // The next warms up at 21:15: 21:10 + 120 s of postroll fits, 10 more minutes do not.
    expect(applyCommand(occ, extended.progress, { kind: "extend", seconds: 600 }, now, { next })).toEqual({
      error:
        "extending the occurrence of window w at 2026-12-05 20:00 UTC by 600 s would end it at 2026-12-05 21:22 UTC, after the next occurrence (window next at 2026-12-05 21:30 UTC) warms up at 2026-12-05 21:15 UTC",
    });
    // The same found from the schedule itself.
    const both = schedule(
      {
        id: "w",
        start: "2026-12-05T20:00:00Z",
        duration_s: 3600,
        medialive_lead_s: 600,
        preroll_s: 300,
        postroll_s: 120,
      },
      {
        id: "next",
        start: "2026-12-05T21:30:00Z",
        duration_s: 3600,
        medialive_lead_s: 600,
        preroll_s: 300,
        postroll_s: 120,
      },
    );
    expect(
      applyCommand(occ, extended.progress, { kind: "extend", seconds: 600 }, now, { schedule: both }),
    ).toMatchObject({ error: expect.stringContaining("warms up at 2026-12-05 21:15 UTC") });
    expect(applyCommand(occ, live, { kind: "extend", seconds: 600 }, now, { schedule: both })).toHaveProperty(
      "progress",
    );
    expect(applyCommand(occ, live, { kind: "extend", seconds: 0 }, now)).toEqual({
      error: "an extension is 1 to 86400 whole seconds; got 0",
    });
    expect(applyCommand(occ, live, { kind: "extend", seconds: 60 }, T0 + 63 * MINUTE)).toMatchObject({
      error: expect.stringContaining("cannot be extended: it is over"),
    });
  });

  it("go-live only in warming or preroll, end only in preroll or live", () => {
    const warming = progress(["start_medialive"]);
    const early = applyCommand(occ, warming, { kind: "go-live" }, T0 - 12 * MINUTE);
    if (!("progress" in early)) throw new Error(early.error);
    expect(early.progress).toMatchObject({ live_at: T0 - 12 * MINUTE, phase: "live" });
    expect(stepOccurrence(occ, early.progress, "auto", T0 - 12 * MINUTE, linked)).toMatchObject({
      phase: "live",
      due: ["enable_outputs", "go_live"],
    });
    expect(applyCommand(occ, progress([]), { kind: "go-live" }, T0 - 30 * MINUTE)).toEqual({
      error:
        "the occurrence of window w at 2026-12-05 20:00 UTC cannot go live: it is not yet warming; go-live is for warming or preroll",
    });
    const live = progress(["start_medialive", "enable_outputs", "slate_on", "go_live"]);
    expect(applyCommand(occ, live, { kind: "go-live" }, T0 + MINUTE)).toMatchObject({
      error: expect.stringContaining("cannot go live: it is in live"),
    });
    const ended = applyCommand(occ, live, { kind: "end" }, T0 + 30 * MINUTE);
    if (!("progress" in ended)) throw new Error(ended.error);
    expect(ended.progress.ended_at).toBe(T0 + 30 * MINUTE);
    expect(stepOccurrence(occ, ended.progress, "auto", T0 + 30 * MINUTE, linked)).toMatchObject({
      phase: "postroll",
      due: ["slate_postroll"],
      wake_at: T0 + 32 * MINUTE,
    });
    expect(applyCommand(occ, warming, { kind: "end" }, T0 - 12 * MINUTE)).toMatchObject({
      error: expect.stringContaining("cannot be ended: it is in warming; end is for preroll or live"),
    });
  });

  it("skip undoes what was done at once, and a skipped future occurrence does nothing", () => {
    const preroll = progress(["start_medialive", "enable_outputs", "slate_on"]);
    const skipped = applyCommand(occ, preroll, { kind: "skip" }, T0 - 2 * MINUTE);
    if (!("progress" in skipped)) throw new Error(skipped.error);
    expect(stepOccurrence(occ, skipped.progress, "auto", T0 - 2 * MINUTE, linked)).toMatchObject({
      phase: "ending",
      due: ["disable_outputs", "stop_medialive"],
    });
    const future = applyCommand(occ, progress([]), { kind: "skip" }, T0 - DAY);
    if (!("progress" in future)) throw new Error(future.error);
    for (const minutes of [-15, 0, 61, 70])
      expect(stepOccurrence(occ, future.progress, "auto", T0 + minutes * MINUTE, linked)).toEqual({
        phase: "idle",
        due: [],
        wake_at: null,
        waiting: null,
        missed: null,
      });
    expect(applyCommand(occ, future.progress, { kind: "skip" }, T0)).toMatchObject({
      error: expect.stringContaining("cannot be skipped: it is over"),
    });
  });
});

describe("scheduleIcs", () => {
  it("one VEVENT per window in its zone, CRLF lines folded at 75 octets", () => {
    const given = schedule(
      weekly("sat", "Europe/Paris", "20261205T200000", "SA", { exdates: ["2026-12-26"] }),
      { id: "final", start: "2026-12-08T20:00:00+01:00", time_zone: "Europe/Paris", duration_s: 5400 },
    );
    const name = `Coupe de France — quarts de finale, diffusion principale; ${"très ".repeat(8)}long`;
    const ics = scheduleIcs({ id: "ch1", name }, given, at("2026-11-27T08:00:00Z"));
    expect(ics.endsWith("\r\n")).toBe(true);
    const lines = ics.split("\r\n").slice(0, -1);
    for (const line of lines) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(75);
    const unfolded = ics.replace(/\r\n /g, "").split("\r\n");
    expect(unfolded).toContain("BEGIN:VCALENDAR");
    expect(unfolded.filter((line) => line === "BEGIN:VEVENT")).toHaveLength(2);
    expect(unfolded).toContain("UID:sat@ch1.distributary");
    expect(unfolded).toContain("DTSTAMP:20261127T080000Z");
    expect(unfolded).toContain("DTSTART;TZID=Europe/Paris:20261205T200000");
    expect(unfolded).toContain("RRULE:FREQ=WEEKLY;BYDAY=SA");
    expect(unfolded).toContain("EXDATE;TZID=Europe/Paris:20261226T200000");
    expect(unfolded).toContain("DURATION:PT7200S");
    expect(unfolded).toContain("UID:final@ch1.distributary");
    expect(unfolded).toContain("DTSTART;TZID=Europe/Paris:20261208T200000");
    expect(unfolded).toContain(`SUMMARY:${name.replace(/[;,]/g, (c) => `\\${c}`)}`);
    expect(ics).not.toContain("\n\n");
  });
});

describe("the rules stepped on the TestClock", () => {
  /**
   * A runner in a few lines: read the clock, step, do what is due (record it), sleep until the step's wake-up
   * (or a minute while an operator is awaited), as the real runner does; starting from `from` with `given`.
   */
  const run = (given: Occurrence, from: number, until: number, start: OccurrenceProgress) =>
    Effect.gen(function* () {
      yield* TestClock.setTime(from);
      let state = start;
      const log: string[] = [];
      const loop = Effect.gen(function* () {
        for (;;) {
          const now = yield* TestClock.currentTimeMillis;
          const step = stepOccurrence(given, state, given.staging, now, linked);
          if (step.missed !== null) log.push(`${iso(now)} missed`);
          for (const action of step.due) {
            log.push(`${iso(now)} ${action}`);
            state = { ...state, done: [...state.done, action], phase: step.phase };
          }
          if (step.due.length > 0) continue;
          if (step.wake_at === null) return;
          yield* Effect.sleep(Math.max(1, step.wake_at - now));
        }
      });
      const fiber = yield* Effect.fork(loop);
      yield* TestClock.adjust(until - from);
      yield* fiber.pipe(Effect.timeout("1 second"), Effect.ignore);
      return log;
    }).pipe(Effect.provide(TestContext.TestContext), Effect.runPromise);

  it("a whole occurrence: each action at its phase's time, once", async () => {
    expect(await run(occ, T0 - DAY, T0 + DAY, newProgress(occ))).toEqual([
      "2026-12-05T19:45:00.000Z start_medialive",
      "2026-12-05T19:55:00.000Z enable_outputs",
      "2026-12-05T19:55:00.000Z slate_on",
      "2026-12-05T20:00:00.000Z go_live",
      "2026-12-05T21:00:00.000Z slate_postroll",
      "2026-12-05T21:02:00.000Z disable_outputs",
      "2026-12-05T21:02:00.000Z stop_medialive",
    ]);
  });

  it("a weekly Paris window over the spring change: warm-ups at 19:50 local, 18:50Z then 17:50Z", async () => {
    const given = schedule(
      weekly("sun", "Europe/Paris", "20260322T200000", "SU", { medialive_lead_s: 300, preroll_s: 300 }),
    );
    const starts: string[] = [];
    for (const found of occurrences(given, at("2026-03-21T00:00:00Z"), at("2026-03-30T00:00:00Z"))) {
      const log = await run(found, found.t0 - DAY, found.t0 + DAY, newProgress(found));
      starts.push(...log.filter((line) => line.endsWith("start_medialive")));
    }
    expect(starts).toEqual([
      "2026-03-22T18:50:00.000Z start_medialive",
      "2026-03-29T17:50:00.000Z start_medialive",
    ]);
  });

  it("a takeover mid-window repeats nothing and skips nothing", async () => {
    const before = progress(["start_medialive", "enable_outputs", "slate_on"]);
    expect(await run(occ, T0 + 10 * MINUTE, T0 + DAY, before)).toEqual([
      "2026-12-05T20:10:00.000Z go_live",
      "2026-12-05T21:00:00.000Z slate_postroll",
      "2026-12-05T21:02:00.000Z disable_outputs",
      "2026-12-05T21:02:00.000Z stop_medialive",
    ]);
    expect(await run(occ, T0 + 2 * 60 * MINUTE, T0 + DAY, newProgress(occ))).toEqual([
      "2026-12-05T22:00:00.000Z missed",
    ]);
  });
});
