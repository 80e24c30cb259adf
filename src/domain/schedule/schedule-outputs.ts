/**
 * The outputs a channel's schedule owns: those its windows name (a window's "all": every output of the
 * channel). Outside the windows they are off. An owned output may be on only while an occurrence of a window
 * naming it is on air: the runner enabled its outputs and has not disabled them, and the rules put it in
 * warming, preroll, live or postroll (one the clock or a skip put in its ending is off). The commands store an
 * owned output off when a schedule is saved and when one is added outside its windows, and refuse an
 * operator's enable there; channels resume with them off; the runner turns off one enabled otherwise. Also the
 * words the status shows for an owned output that is off. Pure: the clock and the stored progress come in.
 */
import type { ChannelConfig, OutputConfig } from "../channel/channel.ts";
import type { SchedulePhase } from "./schedule-phases.ts";
import { stepOccurrence } from "./schedule-steps.ts";
import { nextOccurrences, occurrences } from "./schedule-times.ts";
import type { Occurrence, OccurrenceProgress, Schedule, ScheduleWindow } from "./schedule-window.ts";
import { describeLocal, localTime } from "./schedule-zone.ts";

/** An occurrence's progress as the store keeps it (`closed`: nothing more to do). */
type Progress = OccurrenceProgress & { readonly closed?: boolean };

const names = (window: ScheduleWindow, outputId: string) =>
  window.outputs === "all" || window.outputs.includes(outputId);

/** The first window of the channel's schedule that names the output, or undefined: not the schedule's. */
export const ownerOf = (channel: ChannelConfig, outputId: string): ScheduleWindow | undefined =>
  channel.schedule?.windows.find((window) => names(window, outputId));

const ON_AIR: ReadonlySet<SchedulePhase> = new Set(["warming", "preroll", "live", "postroll"]);

/** The ids of the windows whose occurrence is on air at `now` by the stored progress. */
export const windowsOnAir = (
  channel: ChannelConfig,
  progress: Iterable<Progress>,
  now: number,
): ReadonlySet<string> => {
  const onAir = new Set<string>();
  const schedule = channel.schedule;
  if (schedule == null) return onAir;
  for (const stored of progress) {
    if (stored.closed === true || !stored.done.includes("enable_outputs")) continue;
    if (stored.done.includes("disable_outputs")) continue;
    // Its window as the schedule now has it: a window taken out (or moved) has nothing on air.
    const occurrence = occurrences(schedule, stored.t0 - 1, stored.t0 + 1).find((o) => o.key === stored.key);
    if (occurrence === undefined) continue;
    if (ON_AIR.has(stepOccurrence(occurrence, stored, occurrence.staging, now).phase))
      onAir.add(occurrence.window);
  }
  return onAir;
};

/** Whether the schedule lets the output be on: not one it owns, or a window naming it is on air. */
export const mayBeOn = (channel: ChannelConfig, outputId: string, onAir: ReadonlySet<string>): boolean =>
  ownerOf(channel, outputId) === undefined ||
  (channel.schedule?.windows ?? []).some((window) => onAir.has(window.id) && names(window, outputId));

/** The outputs the schedule holds off now: enabled, owned, and no window naming them on air. */
export const heldOutputs = (channel: ChannelConfig, onAir: ReadonlySet<string>): OutputConfig[] =>
  channel.outputs.filter((output) => output.enabled && !mayBeOn(channel, output.id, onAir));

/** The channel with the outputs its schedule holds off stored off (the same object when there are none). */
export const holdOutputs = (channel: ChannelConfig, onAir: ReadonlySet<string>): ChannelConfig => {
  const held = new Set(heldOutputs(channel, onAir).map((output) => output.id));
  return held.size === 0
    ? channel
    : {
        ...channel,
        outputs: channel.outputs.map((output) =>
          held.has(output.id) ? { ...output, enabled: false } : output,
        ),
      };
};

/** "2026-12-05 19:59:30 Europe/Paris": describeLocal, with the seconds when the instant has some. */
const when = (ms: number, zone: string) => {
  const seconds = localTime(ms, zone).ics.slice(-2);
  const text = describeLocal(ms, zone);
  return seconds === "00" ? text : text.replace(/ (\d{2}:\d{2}) /, ` $1:${seconds} `);
};

/**
 * The next occurrences of each schedule (by its object: the configuration keeps an unchanged channel's), kept
 * until the first of them whose outputs go on after the time they were found at: until then the next one to
 * go on, for any output, is among them.
 */
const found = new WeakMap<
  Schedule,
  { readonly at: number; readonly until: number; readonly next: Occurrence[] }
>();
const LOOK_AHEAD = 8;

const upcoming = (schedule: Schedule, now: number): Occurrence[] => {
  const kept = found.get(schedule);
  if (kept !== undefined && now >= kept.at && now < kept.until) return kept.next;
  const next = nextOccurrences(schedule, now, LOOK_AHEAD);
  const until =
    next.find((occurrence) => occurrence.preroll_at > now)?.preroll_at ?? Number.POSITIVE_INFINITY;
  found.set(schedule, { at: now, until, next });
  return next;
};

/** The occurrences (under way and next) of windows naming the output. */
const naming = (channel: ChannelConfig, outputId: string, now: number): Occurrence[] => {
  const schedule = channel.schedule;
  if (schedule == null) return [];
  return upcoming(schedule, now).filter((occurrence) => {
    const window = schedule.windows.find((candidate) => candidate.id === occurrence.window);
    return window !== undefined && names(window, outputId);
  });
};

/** The next occurrence whose outputs go on, of a window naming the output. */
const nextOn = (channel: ChannelConfig, outputId: string, now: number) =>
  naming(channel, outputId, now).find((occurrence) => occurrence.preroll_at > now);

/**
 * What the status says of an output the schedule owns and that is off: "off until the window sat at
 * 2026-12-05 19:55 Europe/Paris (schedule)" (when its outputs go on: the preroll, or T0 without one). Null for
 * an output that is on, that the schedule does not own, or that is off inside its window's preroll-to-end (an
 * operator's switch, which may put it on again).
 */
export const heldWords = (channel: ChannelConfig, output: OutputConfig, now: number): string | null => {
  if (output.enabled || ownerOf(channel, output.id) === undefined) return null;
  if (naming(channel, output.id, now).some((o) => o.preroll_at <= now && now < o.end_at)) return null;
  const next = nextOn(channel, output.id, now);
  return next === undefined
    ? "off: no window of the schedule is to come (schedule)"
    : `off until the window ${next.window} at ${when(next.preroll_at, next.time_zone)} (schedule)`;
};

/** An operator's enable of an output the schedule owns, outside its windows: the sentence of the 409. */
export const enableRefusal = (channel: ChannelConfig, outputId: string, now: number): string => {
  const next = nextOn(channel, outputId, now);
  const owner = ownerOf(channel, outputId)?.id ?? "";
  const until =
    next === undefined
      ? "no window of the schedule is to come"
      : `it is off until the window at ${when(next.preroll_at, next.time_zone)}`;
  return `output ${outputId} is run by the schedule (window ${owner}): ${until}; to send it outside the windows, leave it out of the window's outputs or remove the schedule`;
};
