/**
 * "Insert a break now": the cue an operator asks for (`POST /api/channels/{id}/cues`). The service encodes it
 * (src/core/scte35) and puts it on the channel's SCTE-35 PID, adding one to the PMT when the input has none.
 * - `splice_insert`: out of the network (or back in, `out: false`), with a break duration that returns by itself;
 * - `time_signal`: with one segmentation descriptor (`segmentation_type`, default 0x34, provider placement
 *   opportunity start) and its duration.
 * Immediate unless `at_pts` (90 kHz, the input's own clock) says when.
 */
import * as Schema from "effect/Schema";
import { intRange } from "../base/ints.ts";
import { oneOf } from "../base/literals.ts";

const strict = { parseOptions: { onExcessProperty: "error" } } as const;

export const CueInsertBody = Schema.Struct({
  command: oneOf("splice_insert", "time_signal").annotations({
    description: "splice_insert (an avail) or time_signal (with a segmentation descriptor)",
  }),
  duration_s: Schema.optional(
    Schema.Number.annotations({
      message: (issue) =>
        `must be a number of seconds from 0.1 to 86400, got ${JSON.stringify(issue.actual)}`,
    }).pipe(
      Schema.between(0.1, 86_400, {
        message: (issue) =>
          `must be a number of seconds from 0.1 to 86400, got ${JSON.stringify(issue.actual)}`,
      }),
    ),
  ).annotations({ description: "the break's length in seconds; absent: open-ended" }),
  out: Schema.optional(Schema.Boolean).annotations({
    description: "splice_insert: true (default) leaves the network for the break, false returns to it",
  }),
  event_id: Schema.optional(intRange(0, 0xffffffff)).annotations({
    description: "splice_event_id or segmentation_event_id; absent: one is chosen",
  }),
  segmentation_type: Schema.optional(intRange(0, 255)).annotations({
    description:
      "time_signal: the segmentation_type_id (default 52, 0x34: provider placement opportunity start)",
  }),
  at_pts: Schema.optional(intRange(0, 2 ** 33 - 1)).annotations({
    description: "the splice time on the input's 90 kHz clock; absent: immediate",
  }),
  program: Schema.optional(intRange(1, 65535)).annotations({
    description: "a multi-programme input's programme to cue; absent: the first in the PAT",
  }),
}).pipe(
  Schema.filter((body) => {
    if (body.command === "time_signal" && body.out !== undefined)
      return {
        path: ["out"],
        message: "is for splice_insert; a time_signal's segmentation_type says what it is",
      };
    if (body.command === "splice_insert" && body.segmentation_type !== undefined)
      return { path: ["segmentation_type"], message: "is for time_signal; a splice_insert has none" };
    return undefined;
  }),
  Schema.annotations({ identifier: "CueInsertBody", ...strict }),
);
export type CueInsertBody = typeof CueInsertBody.Type;

/** The default segmentation_type_id of an operator's time_signal: Provider Placement Opportunity Start. */
export const DEFAULT_SEGMENTATION_TYPE = 0x34;
