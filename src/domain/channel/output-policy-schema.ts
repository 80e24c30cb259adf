/**
 * The shape of `policy` on an output, as the API takes it and the store keeps it (what each part means:
 * output-policy.ts). The forwarding threads never load this file: they read policies already checked, through
 * output-policy.ts, which needs no Schema.
 */
import * as Schema from "effect/Schema";
import { intRange, show } from "../base/ints.ts";
import { oneOf } from "../base/literals.ts";
import { pidOfKey, remapPairs } from "./output-policy-pids.ts";

const strict = { parseOptions: { onExcessProperty: "error" } } as const;

/** An elementary stream's PID: 0x0000–0x000F are the tables' and 0x1FFF is the null packets'. */
const MIN_ES_PID = 0x0010;
const MAX_ES_PID = 0x1ffe;
const EsPid = intRange(MIN_ES_PID, MAX_ES_PID);

/** Commands a filter may drop, by the names the cue log uses. */
const CUE_COMMANDS = [
  "splice_null",
  "splice_schedule",
  "splice_insert",
  "time_signal",
  "bandwidth_reservation",
  "private_command",
] as const;

const Scte35Filter = Schema.Struct({
  segmentation_types: Schema.optional(
    Schema.Array(intRange(0, 255)).pipe(Schema.minItems(1), Schema.maxItems(256)),
  ).annotations({
    description:
      "keep only cues with a segmentation descriptor of one of these segmentation_type_id values (e.g. 52–55: provider and distributor placement opportunities); a cue without one is dropped",
  }),
  drop_web_delivery_restricted: Schema.optional(Schema.Boolean).annotations({
    description:
      "drop cues whose segmentation descriptor restricts delivery and does not allow web delivery (web_delivery_allowed_flag 0)",
  }),
  drop_regional_blackout: Schema.optional(Schema.Boolean).annotations({
    description:
      "drop cues whose segmentation descriptor restricts delivery with a regional blackout (no_regional_blackout_flag 0)",
  }),
  drop_commands: Schema.optional(Schema.Array(oneOf(...CUE_COMMANDS)).pipe(Schema.maxItems(6))).annotations({
    description: "drop cues carrying these splice commands",
  }),
}).pipe(
  Schema.filter((filter) =>
    filter.segmentation_types === undefined &&
    filter.drop_web_delivery_restricted !== true &&
    filter.drop_regional_blackout !== true &&
    (filter.drop_commands ?? []).length === 0
      ? 'a filter needs at least one rule: segmentation_types, drop_web_delivery_restricted, drop_regional_blackout or drop_commands; "pass" keeps every cue'
      : undefined,
  ),
  Schema.annotations({ identifier: "Scte35Filter", ...strict }),
);

const Scte35Policy = Schema.Union(oneOf("pass", "strip"), Scte35Filter).annotations({
  description: '"pass" (default): every cue; "strip": none, and no SCTE-35 PID in the PMT; or a filter',
});

const pidList = Schema.Array(EsPid).pipe(Schema.minItems(1), Schema.maxItems(64));

const PidPolicy = Schema.Struct({
  keep: Schema.optional(pidList).annotations({ description: "only these PIDs (with the PAT and the PMTs)" }),
  drop: Schema.optional(pidList).annotations({ description: "all but these PIDs" }),
}).pipe(
  Schema.filter((pids) =>
    (pids.keep === undefined) === (pids.drop === undefined)
      ? 'give exactly one of keep and drop, e.g. {"keep": [256, 257]} or {"drop": [258]}'
      : undefined,
  ),
  Schema.annotations({
    identifier: "PidPolicy",
    description:
      '{"keep": [...]}: only these PIDs (with the PAT and the PMTs, rewritten); {"drop": [...]}: all but these',
    ...strict,
  }),
);
export type PidPolicy = typeof PidPolicy.Type;

/** The most PIDs a remap names: checked before any of them (validate.ts reads `maxProperties`). */
const MAX_REMAP = 64;

const Remap = Schema.Record({ key: Schema.String, value: EsPid })
  .pipe(
    Schema.filter(
      (remap) => {
        const entries = Object.entries(remap);
        if (entries.length > MAX_REMAP) return `must map at most ${MAX_REMAP} PIDs, got ${entries.length}`;
        const targets = new Map<number, number>();
        const keys = new Map<number, string>();
        for (const [key, to] of entries) {
          const from = pidOfKey(key);
          if (from === null || from < MIN_ES_PID || from > MAX_ES_PID)
            return `each key must be a PID from ${MIN_ES_PID} to ${MAX_ES_PID} (decimal or 0x hex; the PAT's, 0, and the other tables' below ${MIN_ES_PID} are never remapped), got ${show(key)}`;
          const named = keys.get(from);
          if (named !== undefined)
            return `PID ${from} is named twice (${show(named)} and ${show(key)}): name each PID once`;
          keys.set(from, key);
          const before = targets.get(to);
          if (before !== undefined)
            return `PIDs ${before} and ${from} would both become ${to}: a remap must not make two PIDs one`;
          targets.set(to, from);
        }
        return undefined;
      },
      { jsonSchema: { maxProperties: MAX_REMAP } },
    ),
  )
  .annotations({
    identifier: "Remap",
    description: 'PID → PID, e.g. {"257": 259} or {"0x101": 259}; the PMT is rewritten to match',
  });
export type Remap = typeof Remap.Type;

export const OutputPolicy = Schema.Struct({
  scte35: Schema.optional(Scte35Policy),
  pids: Schema.optional(PidPolicy),
  remap: Schema.optional(Remap),
  program: Schema.optional(
    intRange(1, 65535).annotations({
      description: "one programme (program_number) of a multi-programme input: it alone goes out",
    }),
  ),
}).pipe(
  Schema.filter(policyProblem),
  Schema.annotations({
    identifier: "OutputPolicy",
    description: "what this output takes of the stream; absent or null: every packet untouched",
    ...strict,
  }),
);
export type OutputPolicy = typeof OutputPolicy.Type;

/** Where the parts of a policy contradict each other, in words on the field to fix. */
function policyProblem(policy: {
  readonly pids?: PidPolicy | undefined;
  readonly remap?: Remap | undefined;
}) {
  const remap = remapPairs(policy.remap);
  const moved = new Set(remap.map(([from]) => from));
  const pids = policy.pids;
  const drop = pids?.drop;
  if (drop !== undefined) {
    const dropped = remap.find(([from]) => drop.includes(from));
    if (dropped !== undefined)
      return {
        path: ["remap"],
        message: `PID ${dropped[0]} is both dropped (pids.drop) and remapped: drop it or remap it`,
      };
  }
  const keep = pids?.keep;
  if (keep !== undefined) {
    const clash = remap.find(([from, to]) => keep.includes(to) && !moved.has(to) && to !== from);
    if (clash !== undefined)
      return {
        path: ["remap"],
        message: `PID ${clash[0]} would become ${clash[1]}, which pids.keep keeps as it is: a remap must not make two PIDs one`,
      };
  }
  return undefined;
}
