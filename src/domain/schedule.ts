/**
 * A channel's schedule: event windows (an RFC 5545 recurrence in a named time zone, or a one-off start) and
 * the rules that say, for a given instant, which occurrence is in which phase and what must be done now.
 * Pure: no clock is read here, every time comes in as ms since the epoch, so the runner (src/effects) and the
 * tests (TestClock) drive it alike. Recurrences are expanded by rrule-temporal, which keeps a 20:00 local
 * window at 20:00 local across daylight-saving changes whatever the machine's own zone.
 */
import { Schema } from "effect";
import type { SchedulePhase } from "./schedule-phases.ts";

export { SCHEDULE_PHASES, type SchedulePhase } from "./schedule-phases.ts";

const strict = { parseOptions: { onExcessProperty: "error" } } as const;

export const ScheduleWindow = Schema.Struct({
  id: Schema.String,
  rrule: Schema.optional(Schema.String),
  start: Schema.optional(Schema.String),
  time_zone: Schema.optional(Schema.String),
  exdates: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  duration_s: Schema.Number,
  medialive_lead_s: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  preroll_s: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  postroll_s: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  outputs: Schema.optionalWith(Schema.Union(Schema.Literal("all"), Schema.Array(Schema.String)), {
    default: () => "all" as const,
  }),
  staging: Schema.optionalWith(Schema.Literal("auto", "manual"), { default: () => "auto" as const }),
}).annotations({ identifier: "ScheduleWindow", ...strict });
export type ScheduleWindow = typeof ScheduleWindow.Type;

export const Schedule = Schema.Struct({
  windows: Schema.Array(ScheduleWindow),
}).annotations({ identifier: "Schedule", ...strict });
export type Schedule = typeof Schedule.Type;

/** One occurrence of a window; every time in ms since the epoch. */
export interface Occurrence {
  readonly window: string;
  /** `${window}@${t0 as an ISO instant}`: the occurrence's name in stored progress and events. */
  readonly key: string;
  readonly t0: number;
  /** t0 − medialive_lead − preroll: MediaLive is started. */
  readonly warm_at: number;
  /** t0 − preroll: the outputs are enabled, on the slate. */
  readonly preroll_at: number;
  /** = t0: the programme. */
  readonly live_at: number;
  /** t0 + duration: the slate again. */
  readonly postroll_at: number;
  /** postroll_at + postroll: outputs disabled, MediaLive stopped. */
  readonly end_at: number;
}

/** What the runner does for an occurrence, each at most once (recorded in `done` right after doing it). */
export type ScheduleAction =
  | "start_medialive"
  | "enable_outputs"
  | "slate_on"
  | "go_live"
  | "slate_postroll"
  | "disable_outputs"
  | "stop_medialive";

/** The progress of one occurrence, as the runner stores it (plain JSON). */
export interface OccurrenceProgress {
  readonly key: string;
  readonly window: string;
  readonly t0: number;
  readonly phase: SchedulePhase;
  readonly done: ReadonlyArray<ScheduleAction>;
  /** Seconds added by the operator's extends: they move postroll_at and end_at. */
  readonly extended_s: number;
  /** When the operator ended it (postroll from then), or null. */
  readonly ended_at: number | null;
  /** When the operator's go-live made it live (manual staging, or early), or null. */
  readonly live_at: number | null;
  /** The operator skipped it: it ends at once. */
  readonly skipped: boolean;
}

export interface StepOptions {
  /** The channel has a MediaLive link: only then is start_medialive (and stop_medialive) due. */
  readonly linked?: boolean;
}

export interface Step {
  /** The phase the clock (and the operator's commands) say. */
  readonly phase: SchedulePhase;
  /** The actions due now and not yet done, in order. */
  readonly due: ReadonlyArray<ScheduleAction>;
  /** When to look again (the next boundary), or null when nothing more will happen. */
  readonly wake_at: number | null;
  /** Manual staging: waiting for the operator's go-live or end. */
  readonly waiting: "go_live" | "end" | null;
  /** The occurrence passed with nothing done: a sentence for the `schedule_missed` event. */
  readonly missed: string | null;
}

export type ScheduleCommand =
  | { readonly kind: "go-live" }
  | { readonly kind: "extend"; readonly seconds: number }
  | { readonly kind: "end" }
  | { readonly kind: "skip" };

export interface CommandOptions {
  /** The occurrence after this one (of any window): an extend must end before its warm_at. */
  readonly next?: Occurrence | null;
}

export type CommandResult = { readonly progress: OccurrenceProgress } | { readonly error: string };

const notYet = (): never => {
  throw new Error("schedule: not implemented yet");
};

export const checkSchedule = (
  _schedule: Schedule,
  _outputIds: ReadonlyArray<string>,
  _now: number,
): ReadonlyArray<string> => notYet();

export const occurrences = (_schedule: Schedule, _fromMs: number, _toMs: number): Occurrence[] => notYet();

export const nextOccurrences = (_schedule: Schedule, _now: number, _count: number): Occurrence[] => notYet();

export const newProgress = (occurrence: Occurrence): OccurrenceProgress => ({
  key: occurrence.key,
  window: occurrence.window,
  t0: occurrence.t0,
  phase: "idle",
  done: [],
  extended_s: 0,
  ended_at: null,
  live_at: null,
  skipped: false,
});

export const stepOccurrence = (
  _occurrence: Occurrence,
  _progress: OccurrenceProgress,
  _staging: "auto" | "manual",
  _now: number,
  _options?: StepOptions,
): Step => notYet();

export const applyCommand = (
  _occurrence: Occurrence,
  _progress: OccurrenceProgress,
  _command: ScheduleCommand,
  _now: number,
  _options?: CommandOptions,
): CommandResult => notYet();

export const scheduleIcs = (
  _channel: { readonly id: string; readonly name: string },
  _schedule: Schedule,
  _now: number,
): string => notYet();
