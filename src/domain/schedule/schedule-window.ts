/**
 * A channel's schedule as the API takes it and the store keeps it: event windows, each an RFC 5545 recurrence
 * (`rrule`, DTSTART in a named time zone or UTC) or a one-off `start`, with exceptions, a programme length and
 * the times around it (MediaLive's lead, the slate before and after). The shapes are checked here; what needs
 * the rule read or the clock (a rule that cannot be read, an unknown zone, overlaps) is schedule-times.ts.
 * Also the plain types the schedule's rules and its runner share: an occurrence and its stored progress.
 */
import * as Schema from "effect/Schema";
import { intRange, show } from "../base/ints.ts";
import { oneOf } from "../base/literals.ts";
import type { SchedulePhase } from "./schedule-phases.ts";

const strict = { parseOptions: { onExcessProperty: "error" } } as const;

/** Windows one schedule may have. */
export const MAX_WINDOWS = 16;
/** Exceptions one window may list. */
export const MAX_EXDATES = 100;
const MAX_RRULE_LENGTH = 500;

/** The most JSON a schedule can take within its schema (a window: its rule, exceptions, outputs and times). */
export const MAX_SCHEDULE_JSON_BYTES = MAX_WINDOWS * (MAX_RRULE_LENGTH + MAX_EXDATES * 45 + 64 * 70 + 512);

const text = (max: number) =>
  Schema.String.annotations({ message: (issue) => `must be a string, got ${show(issue.actual)}` }).pipe(
    Schema.maxLength(max, { message: () => `must be at most ${max} characters` }),
  );

const WindowId = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_-]{1,40}$/, {
    message: (issue) => `must be 1–40 letters, digits, '-' or '_', got ${show(issue.actual)}`,
  }),
);

/** An instant as ISO 8601 with its offset (or Z): a one-off start, or an exception by its exact time. */
export const isoInstant = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

const OneOffStart = Schema.String.pipe(
  Schema.filter((start) =>
    isoInstant.test(start) && !Number.isNaN(Date.parse(start))
      ? undefined
      : `must be an ISO 8601 time with its offset, e.g. "2026-12-05T20:00:00+01:00"; got ${show(start)}`,
  ),
);

const Seconds = intRange(0, 86_400);

export const ScheduleWindow = Schema.Struct({
  id: WindowId,
  rrule: Schema.optional(
    text(MAX_RRULE_LENGTH).annotations({
      description:
        "RFC 5545: a DTSTART line with a TZID (or a UTC time ending in Z) and an RRULE line, e.g. DTSTART;TZID=Europe/Paris:20261205T200000\\nRRULE:FREQ=WEEKLY;BYDAY=SA",
    }),
  ),
  start: Schema.optional(
    OneOffStart.annotations({
      jsonSchema: { description: "a one-off window's start, ISO 8601 with its offset" },
    }),
  ),
  time_zone: Schema.optional(
    text(64).annotations({
      description: "IANA name: a one-off window's zone for pages and ICS; default UTC",
    }),
  ),
  exdates: Schema.optionalWith(Schema.Array(text(40)).pipe(Schema.maxItems(MAX_EXDATES)), {
    default: () => [],
  }).annotations({
    description:
      "occurrences left out: local dates (YYYY-MM-DD, in the window's zone) or instants (ISO 8601 with offset)",
  }),
  duration_s: intRange(1, 7 * 86_400).annotations({ description: "seconds of programme from T0" }),
  medialive_lead_s: Schema.optionalWith(Seconds, { default: () => 0 }).annotations({
    description: "seconds before the preroll at which MediaLive is started; default 0",
  }),
  preroll_s: Schema.optionalWith(Seconds, { default: () => 0 }).annotations({
    description: "seconds before T0 at which the outputs go on, on the slate; default 0",
  }),
  postroll_s: Schema.optionalWith(Seconds, { default: () => 0 }).annotations({
    description: "seconds of slate after the programme; default 0",
  }),
  outputs: Schema.optionalWith(
    Schema.Union(Schema.Literal("all"), Schema.Array(text(64)).pipe(Schema.maxItems(64))),
    { default: () => "all" as const },
  ).annotations({ description: '"all" (default) or the ids of the outputs the window runs' }),
  staging: Schema.optionalWith(oneOf("auto", "manual"), { default: () => "auto" as const }).annotations({
    description: "auto (default): the clock moves the phases; manual: go-live and end wait for an operator",
  }),
}).pipe(
  Schema.filter((window) =>
    (window.rrule === undefined) === (window.start === undefined)
      ? {
          path: [window.rrule === undefined ? "start" : "rrule"],
          message:
            'give exactly one of rrule (a recurrence) and start (a one-off, e.g. "2026-12-05T20:00:00+01:00")',
        }
      : undefined,
  ),
  Schema.annotations({ identifier: "ScheduleWindow", ...strict }),
);
export type ScheduleWindow = typeof ScheduleWindow.Type;

export const Schedule = Schema.Struct({
  windows: Schema.Array(ScheduleWindow).pipe(
    Schema.maxItems(MAX_WINDOWS, { message: () => `must have at most ${MAX_WINDOWS} windows` }),
  ),
}).annotations({
  identifier: "Schedule",
  description: "the channel's event windows; null: none",
  ...strict,
});
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
  /** The window's IANA zone (its rule's TZID, or a one-off's time_zone; UTC by default): for people. */
  readonly time_zone: string;
  /** The window's staging, so a runner holding only occurrences can step them. */
  readonly staging: "auto" | "manual";
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
