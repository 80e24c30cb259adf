/**
 * What the API and the pages show of a channel's schedule (`GET /api/channels/{id}/schedule`): its windows,
 * the phase it is in now, and the next occurrences with their phase times as ISO instants, each with what was
 * done and whether it waits for an operator. The times an operator's extend or end moved are shown where they
 * now are. Pure: the runner (src/effects/schedule/) hands in the clock and the stored progress.
 */
import * as Schema from "effect/Schema";

import { SCHEDULE_PHASES, type SchedulePhase } from "./schedule-phases.ts";
import { timesOf } from "./schedule-steps.ts";
import type { Occurrence, OccurrenceProgress } from "./schedule-window.ts";

/** The operator's commands on a schedule, as the API's paths name them. */
export const SCHEDULE_COMMANDS = ["go-live", "extend", "end", "skip"] as const;
export type ScheduleCommandName = (typeof SCHEDULE_COMMANDS)[number];

export const ExtendBody = Schema.Struct({
  seconds: Schema.Int.pipe(Schema.between(1, 86_400)).annotations({
    description: "seconds added to the live part (postroll and ending move later); 1 to 86400",
  }),
}).annotations({ identifier: "ScheduleExtendBody", parseOptions: { onExcessProperty: "error" } });

const Instant = Schema.String.annotations({ description: "ISO 8601 instant (UTC)" });

export const OccurrenceView = Schema.Struct({
  window: Schema.String,
  key: Schema.String.annotations({
    description: "the window's id and its T0: `sat@2026-12-05T19:00:00.000Z`",
  }),
  time_zone: Schema.String.annotations({ description: "the window's zone, for showing its times" }),
  warm_at: Instant,
  preroll_at: Instant,
  live_at: Instant,
  postroll_at: Instant,
  end_at: Instant,
  phase: Schema.Literal(...SCHEDULE_PHASES),
  done: Schema.Array(Schema.String).annotations({ description: "the actions done, in order" }),
  waiting: Schema.NullOr(Schema.Literal("go_live", "end")).annotations({
    description: "manual staging: waiting for the operator's go-live or end",
  }),
  extended_s: Schema.Number,
  skipped: Schema.Boolean,
}).annotations({ identifier: "ScheduleOccurrence" });
export type OccurrenceView = typeof OccurrenceView.Type;

export const ScheduleView = Schema.Struct({
  channel: Schema.String,
  windows: Schema.Array(Schema.Unknown).annotations({ description: "the schedule's windows, as stored" }),
  phase: Schema.Literal(...SCHEDULE_PHASES).annotations({
    description: "the phase of the occurrence in progress; idle between them",
  }),
  current: Schema.NullOr(OccurrenceView).annotations({ description: "the occurrence in progress, if any" }),
  next: Schema.Array(OccurrenceView).annotations({
    description: "the occurrence in progress (if any) and the next ones, up to 5",
  }),
}).annotations({ identifier: "ScheduleView" });
export type ScheduleView = typeof ScheduleView.Type;

/**
 * An occurrence's times as its progress has moved them, as the domain's step reads them: a go-live moves the
 * programme's start, an extend the postroll and the end, an operator's end puts the postroll at that moment.
 */
export const movedTimes = (occurrence: Occurrence, progress: OccurrenceProgress | undefined) => ({
  warm_at: occurrence.warm_at,
  preroll_at: occurrence.preroll_at,
  live_at: progress?.live_at ?? occurrence.live_at,
  ...(progress === undefined
    ? { postroll_at: occurrence.postroll_at, end_at: occurrence.end_at }
    : timesOf(occurrence, progress)),
});

const iso = (ms: number) => new Date(ms).toISOString();

export interface OccurrenceState {
  readonly progress: OccurrenceProgress | undefined;
  readonly phase: SchedulePhase;
  readonly waiting: "go_live" | "end" | null;
}

export const occurrenceView = (occurrence: Occurrence, state: OccurrenceState): OccurrenceView => {
  const times = movedTimes(occurrence, state.progress);
  return {
    window: occurrence.window,
    key: occurrence.key,
    time_zone: occurrence.time_zone,
    warm_at: iso(times.warm_at),
    preroll_at: iso(times.preroll_at),
    live_at: iso(times.live_at),
    postroll_at: iso(times.postroll_at),
    end_at: iso(times.end_at),
    phase: state.phase,
    done: state.progress?.done ?? [],
    waiting: state.waiting,
    extended_s: state.progress?.extended_s ?? 0,
    skipped: state.progress?.skipped ?? false,
  };
};
