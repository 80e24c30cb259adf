/**
 * What an occurrence of a scheduled window needs now: its phase by the clock and the operator's commands, the
 * actions due and not yet done, and when to look again. The runner records each action in the occurrence's
 * progress right after doing it, so a node that takes over (or starts mid-window) repeats nothing and skips
 * nothing: it does what the phase still needs. The operator's commands (go-live, extend, end, skip) change
 * that progress here, refused in words when they do not fit the phase.
 *
 * Joining mid-window: each phase's actions are due only while the phase lasts, and what an earlier phase did
 * is undone in the ending only if it was done. In warming, preroll and live MediaLive is started when it was
 * not (late is still right: the programme needs it); the outputs are enabled in preroll and live; the slate
 * goes on only in preroll (never once the programme is on); go_live is due in live; the postroll's slate only
 * when the outputs were enabled. An occurrence whose programme passed with nothing done is missed: no action.
 */
import type { SchedulePhase } from "./schedule-phases.ts";
import { nextOccurrences } from "./schedule-times.ts";
import type { Occurrence, OccurrenceProgress, Schedule, ScheduleAction } from "./schedule-window.ts";
import { describeLocal } from "./schedule-zone.ts";

export interface StepOptions {
  /** The channel has a MediaLive link: only then are start_medialive and stop_medialive due. Absent: not. */
  readonly linked?: boolean;
}

export interface Step {
  /** The phase the clock (and the operator's commands) say. */
  readonly phase: SchedulePhase;
  /** The actions due now and not yet done, in order. */
  readonly due: ReadonlyArray<ScheduleAction>;
  /** When to look again (the next boundary), or null when only an operator (or nothing) moves it on. */
  readonly wake_at: number | null;
  /** Manual staging: waiting for the operator's go-live or end. */
  readonly waiting: "go_live" | "end" | null;
  /** The programme passed with nothing done: a sentence for the `schedule_missed` event. */
  readonly missed: string | null;
}

/** The occurrence's times as the operator's commands moved them. */
interface Times {
  readonly postroll_at: number;
  readonly end_at: number;
}

/** Where an extend or an operator's end put the postroll and the end (the step and the pages read the same). */
export const timesOf = (occurrence: Occurrence, progress: OccurrenceProgress): Times => {
  const postrollMs = occurrence.end_at - occurrence.postroll_at;
  const postroll_at = progress.ended_at ?? occurrence.postroll_at + Math.max(0, progress.extended_s) * 1000;
  return { postroll_at, end_at: postroll_at + postrollMs };
};

const PHASE_ORDER: Readonly<Record<SchedulePhase, number>> = {
  idle: 0,
  warming: 1,
  preroll: 2,
  live: 3,
  postroll: 4,
  ending: 5,
};

/** A phase never goes back: what was done holds the occurrence at least where it put it. */
const phaseByDone = (done: ReadonlyArray<ScheduleAction>): SchedulePhase =>
  done.includes("disable_outputs") || done.includes("stop_medialive")
    ? "ending"
    : done.includes("slate_postroll")
      ? "postroll"
      : done.includes("go_live")
        ? "live"
        : "idle";

const later = (a: SchedulePhase, b: SchedulePhase) => (PHASE_ORDER[a] >= PHASE_ORDER[b] ? a : b);

/** What ending undoes: only what was done. */
const undo = (done: ReadonlyArray<ScheduleAction>): ScheduleAction[] => [
  ...(done.includes("enable_outputs") ? (["disable_outputs"] as const) : []),
  ...(done.includes("start_medialive") ? (["stop_medialive"] as const) : []),
];

const phaseActions = (
  phase: SchedulePhase,
  done: ReadonlyArray<ScheduleAction>,
  linked: boolean,
): ScheduleAction[] => {
  const start: ScheduleAction[] = linked ? ["start_medialive"] : [];
  switch (phase) {
    case "warming":
      return start;
    case "preroll":
      return [...start, "enable_outputs", "slate_on"];
    case "live":
      return [...start, "enable_outputs", "go_live"];
    case "postroll":
      return done.includes("enable_outputs") ? ["slate_postroll"] : [];
    case "ending":
      return undo(done);
    default:
      return [];
  }
};

/**
 * The phase the clock says for an occurrence with its progress: the boundaries its window gives, moved by the
 * operator (go-live, extend, end, skip), held by manual staging, never before what was already done.
 */
export const stepOccurrence = (
  occurrence: Occurrence,
  progress: OccurrenceProgress,
  staging: "auto" | "manual",
  now: number,
  options?: StepOptions,
): Step => {
  const linked = options?.linked ?? false;
  const { done } = progress;
  const idle = (missed: string | null = null): Step => ({
    phase: "idle",
    due: [],
    wake_at: null,
    waiting: null,
    missed,
  });
  if (progress.skipped) {
    const due = undo(done).filter((action) => !done.includes(action));
    return due.length === 0 ? idle() : { phase: "ending", due, wake_at: null, waiting: null, missed: null };
  }
  const { postroll_at, end_at } = timesOf(occurrence, progress);
  const wentLive = progress.live_at !== null && now >= progress.live_at;
  // Manual staging holds the programme for the operator: its go-live, then its end.
  const manual = staging === "manual";
  const holdsLive = manual && wentLive && progress.ended_at === null;
  const liveFrom = progress.live_at ?? (manual ? null : occurrence.live_at);
  let clock: SchedulePhase;
  let wake_at: number | null;
  let waiting: Step["waiting"] = null;
  if (now < occurrence.warm_at) [clock, wake_at] = ["idle", occurrence.warm_at];
  else if (now < occurrence.preroll_at && !wentLive) [clock, wake_at] = ["warming", occurrence.preroll_at];
  else if (holdsLive) [clock, wake_at, waiting] = ["live", null, now >= postroll_at ? "end" : null];
  else if (now < postroll_at && (liveFrom === null || now < liveFrom)) {
    const waits = liveFrom === null && now >= occurrence.live_at;
    [clock, wake_at] = ["preroll", liveFrom ?? (waits ? postroll_at : occurrence.live_at)];
    if (waits) waiting = "go_live";
  } else if (now < postroll_at) [clock, wake_at] = ["live", postroll_at];
  else if (now < end_at) [clock, wake_at] = ["postroll", end_at];
  else [clock, wake_at] = ["ending", null];
  if (holdsLive && waiting === null) wake_at = postroll_at;
  const phase = later(clock, phaseByDone(done));
  if (done.length === 0 && PHASE_ORDER[phase] >= PHASE_ORDER.postroll)
    return idle(
      `the occurrence of window ${occurrence.window} at ${describeLocal(occurrence.t0, occurrence.time_zone)} passed with nothing done (its programme ended at ${describeLocal(postroll_at, occurrence.time_zone)})`,
    );
  const due = phaseActions(phase, done, linked).filter((action) => !done.includes(action));
  if (phase === "ending" && due.length === 0) return idle();
  return { phase, due, wake_at, waiting, missed: null };
};

export type ScheduleCommand =
  | { readonly kind: "go-live" }
  | { readonly kind: "extend"; readonly seconds: number }
  | { readonly kind: "end" }
  | { readonly kind: "skip" };

export interface CommandOptions {
  /** The occurrence after this one (of any window): an extension must end before it warms up. */
  readonly next?: Occurrence | null;
  /** Or the schedule, where the next occurrence is found when `next` is not given. */
  readonly schedule?: Schedule;
  /** The window's staging (default: the occurrence's). */
  readonly staging?: "auto" | "manual";
}

export type CommandResult = { readonly progress: OccurrenceProgress } | { readonly error: string };

/** The longest one extension may add. */
const MAX_EXTEND_S = 86_400;

/**
 * An operator's command on an occurrence: go-live (in warming or preroll: live from now), extend (before its
 * end: the programme and its postroll later, not into the next occurrence), end (in preroll or live: postroll
 * from now), skip (before it ended: whatever was done is undone, at once). Refusals are sentences for a 409.
 */
export const applyCommand = (
  occurrence: Occurrence,
  progress: OccurrenceProgress,
  command: ScheduleCommand,
  now: number,
  options?: CommandOptions,
): CommandResult => {
  const step = stepOccurrence(occurrence, progress, options?.staging ?? occurrence.staging, now, {
    linked: true,
  });
  const zone = occurrence.time_zone;
  const name = `the occurrence of window ${occurrence.window} at ${describeLocal(occurrence.t0, zone)}`;
  const over =
    progress.skipped ||
    step.missed !== null ||
    step.phase === "ending" ||
    (step.phase === "idle" && now >= occurrence.warm_at);
  const where = over
    ? "it is over"
    : `it is ${step.phase === "idle" ? "not yet warming" : `in ${step.phase}`}`;
  switch (command.kind) {
    case "go-live":
      if (step.phase !== "warming" && step.phase !== "preroll")
        return { error: `${name} cannot go live: ${where}; go-live is for warming or preroll` };
      return { progress: { ...progress, live_at: now, phase: "live" } };
    case "end":
      if (step.phase !== "preroll" && step.phase !== "live")
        return { error: `${name} cannot be ended: ${where}; end is for preroll or live` };
      return { progress: { ...progress, ended_at: now, phase: "postroll" } };
    case "skip":
      if (over) return { error: `${name} cannot be skipped: it is over` };
      return {
        progress: { ...progress, skipped: true, phase: undo(progress.done).length > 0 ? "ending" : "idle" },
      };
    case "extend": {
      const seconds = command.seconds;
      if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_EXTEND_S)
        return { error: `an extension is 1 to ${MAX_EXTEND_S} whole seconds; got ${seconds}` };
      if (over) return { error: `${name} cannot be extended: it is over` };
      if (progress.ended_at !== null)
        return {
          error: `${name} cannot be extended: an operator ended it at ${describeLocal(progress.ended_at, zone)}`,
        };
      const extended = { ...progress, extended_s: progress.extended_s + seconds };
      const end = timesOf(occurrence, extended).end_at;
      const next =
        options?.next ??
        (options?.schedule === undefined
          ? null
          : nextOccurrences(options.schedule, occurrence.t0, 3).find(
              (other) => other.key !== occurrence.key && other.warm_at >= occurrence.warm_at,
            ));
      if (next != null && next.key !== occurrence.key && end > next.warm_at)
        return {
          error: `extending ${name} by ${seconds} s would end it at ${describeLocal(end, zone)}, after the next occurrence (window ${next.window} at ${describeLocal(next.t0, next.time_zone)}) warms up at ${describeLocal(next.warm_at, next.time_zone)}`,
        };
      return { progress: extended };
    }
  }
};
