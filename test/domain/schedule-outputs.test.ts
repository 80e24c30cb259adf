/**
 * The outputs a schedule owns (src/domain/schedule/schedule-outputs.ts), called directly: which outputs a window names,
 * which windows are on air by the stored progress (the outputs enabled and not yet disabled, and the rules in
 * warming to postroll: an extend, manual staging waiting for the operator's end, a skip, the clock past the end,
 * a window taken out of the schedule), what is held off, and the words the status and the 409 use.
 */
import { Schema } from "effect";
import { describe, expect, it } from "vitest";
import type { ChannelConfig } from "../../src/domain/channel/channel.ts";
import {
  enableRefusal,
  heldOutputs,
  heldWords,
  holdOutputs,
  windowsOnAir,
} from "../../src/domain/schedule/schedule-outputs.ts";
import { occurrences } from "../../src/domain/schedule/schedule-times.ts";
import type { OccurrenceProgress, ScheduleAction } from "../../src/domain/schedule/schedule-window.ts";
import { newProgress, Schedule } from "../../src/domain/schedule/schedule-window.ts";

const S = 1000;
const MIN = 60 * S;
const T0 = Date.parse("2026-12-05T19:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

const schedule = (...windows: ReadonlyArray<Record<string, unknown>>): Schedule =>
  Schema.decodeUnknownSync(Schedule)({ windows });

/** A channel as the rules read it: its id, outputs and schedule. */
const channel = (given: Schedule, enabled: Record<string, boolean>): ChannelConfig =>
  ({
    id: "match",
    outputs: Object.entries(enabled).map(([id, on]) => ({
      id,
      name: id,
      protocol: "udp",
      url: "udp://127.0.0.1:5000",
      enabled: on,
    })),
    schedule: given,
  }) as unknown as ChannelConfig;

const match = (extra: Record<string, unknown> = {}) => ({
  id: "match",
  start: iso(T0),
  time_zone: "Europe/Paris",
  duration_s: 3600,
  preroll_s: 30,
  postroll_s: 60,
  outputs: ["a"],
  ...extra,
});

/** The stored progress of the schedule's occurrence at T0 with `done` done. */
const progress = (
  given: Schedule,
  done: ReadonlyArray<ScheduleAction>,
  extra: Partial<OccurrenceProgress> & { closed?: boolean } = {},
) => {
  const occurrence = occurrences(given, T0 - 1, T0 + 1)[0];
  if (occurrence === undefined) throw new Error("no occurrence at T0");
  return { ...newProgress(occurrence), done, ...extra };
};

const ON = ["slate_on", "enable_outputs"] as const;

describe("the outputs a schedule owns", () => {
  it("are those its windows name; outside a window on air the enabled ones are held off", () => {
    const named = channel(schedule(match()), { a: true, b: true });
    expect(heldOutputs(named, new Set()).map((output) => output.id)).toEqual(["a"]);
    expect(heldOutputs(named, new Set(["match"]))).toEqual([]);
    const all = channel(schedule(match({ outputs: "all" })), { a: true, b: false, c: true });
    const held = holdOutputs(all, new Set());
    expect(held.outputs.map((output) => [output.id, output.enabled])).toEqual([
      ["a", false],
      ["b", false],
      ["c", false],
    ]);
    // Nothing to hold: the same channel, not a copy.
    expect(holdOutputs(held, new Set())).toBe(held);
  });

  it("a window is on air from its outputs' enable to their disable, while the rules put it in warming to postroll", () => {
    const given = schedule(match());
    const on = (stored: ReturnType<typeof progress>, now: number, which = given) =>
      [...windowsOnAir(channel(which, { a: true }), [stored], now)].join(",");
    expect(on(progress(given, []), T0 - 10 * S)).toBe("");
    expect(on(progress(given, ON), T0 - 10 * S)).toBe("match");
    expect(on(progress(given, [...ON, "go_live"]), T0 + 30 * MIN)).toBe("match");
    expect(on(progress(given, [...ON, "go_live", "slate_postroll"]), T0 + 60 * MIN + 30 * S)).toBe("match");
    // The clock past its end: the disable is due, the outputs are off.
    expect(on(progress(given, [...ON, "go_live", "slate_postroll"]), T0 + 62 * MIN)).toBe("");
    // Extended by 10 minutes: still on after the end it had.
    expect(on(progress(given, [...ON, "go_live"], { extended_s: 600 }), T0 + 65 * MIN)).toBe("match");
    expect(on(progress(given, [...ON, "go_live", "disable_outputs"]), T0 + 30 * MIN)).toBe("");
    expect(on(progress(given, ON, { skipped: true }), T0 - 10 * S)).toBe("");
    expect(on(progress(given, ON, { closed: true }), T0 - 10 * S)).toBe("");
    // Manual staging: live past its programme's end, waiting for the operator's end.
    const manual = schedule(match({ staging: "manual" }));
    const waiting = progress(manual, [...ON, "go_live"], { live_at: T0 });
    expect(on(waiting, T0 + 3 * 3600 * S, manual)).toBe("match");
    // A window taken out of the schedule (or moved) has nothing on air.
    expect(on(progress(given, ON), T0 - 10 * S, schedule(match({ id: "other" })))).toBe("");
    expect(on(progress(given, ON), T0 - 10 * S, schedule(match({ start: iso(T0 + 5 * MIN) })))).toBe("");
  });

  it("the status says until when an owned output is off, and the 409 says how to send it", () => {
    const given = schedule(
      match({ preroll_s: 30 }),
      match({ id: "late", start: iso(T0 + 3 * 3600 * S), preroll_s: 0, outputs: "all" }),
    );
    const named = channel(given, { a: false, b: false, c: true });
    const [a, b, c] = named.outputs;
    if (a === undefined || b === undefined || c === undefined) throw new Error("no outputs");
    const before = T0 - 10 * MIN;
    expect(heldWords(named, a, before)).toBe(
      "off until the window match at 2026-12-05 19:59:30 Europe/Paris (schedule)",
    );
    // b is named by the later window only; c is on.
    expect(heldWords(named, b, before)).toBe(
      "off until the window late at 2026-12-05 23:00 Europe/Paris (schedule)",
    );
    expect(heldWords(named, c, before)).toBeNull();
    // Inside its window (an operator switched it off, and may switch it on again): no hold to state.
    expect(heldWords(named, a, T0)).toBeNull();
    // Once match is over (the same schedule: what was found is not kept past its preroll), the next is late.
    expect(heldWords(named, a, T0 + 2 * 3600 * S)).toBe(
      "off until the window late at 2026-12-05 23:00 Europe/Paris (schedule)",
    );
    expect(heldWords(named, a, T0 + 5 * 3600 * S)).toBe(
      "off: no window of the schedule is to come (schedule)",
    );
    const notOwned = channel(schedule(match()), { a: false, z: false });
    expect(heldWords(notOwned, notOwned.outputs[1] ?? a, before)).toBeNull();
    expect(enableRefusal(named, "a", before)).toBe(
      "output a is run by the schedule (window match): it is off until the window at 2026-12-05 19:59:30 Europe/Paris; to send it outside the windows, leave it out of the window's outputs or remove the schedule",
    );
  });
});
