/**
 * What one output takes of its channel's stream (`policy` on an output; absent or null: the input's packets
 * untouched, byte for byte). Everything here is TS-level work, no decoding of the media:
 * - `scte35`: `pass` (the default), `strip` (no cue and no SCTE-35 PID in its PMT), or a filter that keeps or
 *   drops each cue whole (kept cues stay byte-exact);
 * - `pids`: keep only a list, or drop a list (the PAT and the PMTs always stay, rewritten to match);
 * - `remap`: PID → PID, e.g. `{"257": 259}`; refused in words when two PIDs would become one;
 * - `program`: one programme (service) out of a multi-programme input: its PMT, its PIDs, a PAT naming it alone.
 */
import * as Schema from "effect/Schema";
import type { FieldIssue } from "./errors.ts";
import { intRange, show } from "./ints.ts";
import { oneOf } from "./literals.ts";

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
type PidPolicy = typeof PidPolicy.Type;

const PID_KEY = /^(0x[0-9a-f]{1,4}|[0-9]{1,4})$/i;
/** A PID as a JSON key: decimal or 0x hex. */
const pidOfKey = (key: string): number | null => (PID_KEY.test(key) ? Number(key) : null);

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
type Remap = typeof Remap.Type;

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

/** The remap as [from, to] pairs, in key order. */
export const remapPairs = (remap: Remap | undefined): ReadonlyArray<readonly [number, number]> =>
  Object.entries(remap ?? {}).flatMap(([key, to]) => {
    const from = pidOfKey(key);
    return from === null ? [] : [[from, to] as const];
  });

/** Whether a policy changes anything at the TS level: none, or all its parts at their defaults, does not. */
export const isUntouched = (policy: OutputPolicy | null | undefined): boolean =>
  policy == null ||
  ((policy.scte35 === undefined || policy.scte35 === "pass") &&
    policy.pids === undefined &&
    remapPairs(policy.remap).length === 0 &&
    policy.program === undefined);

/** One text per distinct policy: outputs with equal keys share one rewriter. */
export const policyKey = (policy: OutputPolicy): string =>
  JSON.stringify({
    scte35: policy.scte35 ?? "pass",
    pids: policy.pids ?? null,
    remap: [...remapPairs(policy.remap)].sort((a, b) => a[0] - b[0]),
    program: policy.program ?? null,
  });

/** Whether two policies do the same to an output's stream (none and one at its defaults alike): the one test. */
export const samePolicy = (
  a: OutputPolicy | null | undefined,
  b: OutputPolicy | null | undefined,
): boolean =>
  isUntouched(a)
    ? isUntouched(b)
    : !isUntouched(b) && a != null && b != null && policyKey(a) === policyKey(b);

/**
 * What a policy asks of the stream's tables: the PAT and the PMTs always go out, rewritten to match, so a drop
 * or a remap naming a PMT's PID cannot be done. Given the programmes a running channel's input carries, each
 * such PID is refused in words on its field (a channel whose stream is not read yet says it in the output's
 * problems instead, once it is).
 */
export const tablePidIssues = (
  policy: OutputPolicy,
  programs: ReadonlyArray<{ readonly program: number; readonly pmtPid: number }>,
): FieldIssue[] => {
  const pmtOf = new Map(programs.filter((p) => p.program !== 0).map((p) => [p.pmtPid, p.program] as const));
  const issues: FieldIssue[] = [];
  (policy.pids?.drop ?? []).forEach((pid, index) => {
    const program = pmtOf.get(pid);
    if (program !== undefined)
      issues.push({
        field: `policy.pids.drop[${index}]`,
        message: `PID ${pid} is programme ${program}'s PMT, which always stays: drop its streams, or keep another programme with "program"`,
      });
  });
  for (const [from] of remapPairs(policy.remap)) {
    const program = pmtOf.get(from);
    if (program !== undefined)
      issues.push({
        field: "policy.remap",
        message: `PID ${from} is programme ${program}'s PMT, which is never remapped: remap its streams instead`,
      });
  }
  return issues;
};
