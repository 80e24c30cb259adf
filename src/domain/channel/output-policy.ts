/**
 * What one output takes of its channel's stream (`policy` on an output; absent or null: the input's packets
 * untouched, byte for byte). Everything here is TS-level work, no decoding of the media:
 * - `scte35`: `pass` (the default), `strip` (no cue and no SCTE-35 PID in its PMT), or a filter that keeps or
 *   drops each cue whole (kept cues stay byte-exact);
 * - `pids`: keep only a list, or drop a list (the PAT and the PMTs always stay, rewritten to match);
 * - `remap`: PID → PID, e.g. `{"257": 259}`; refused in words when two PIDs would become one;
 * - `program`: one programme (service) out of a multi-programme input: its PMT, its PIDs, a PAT naming it alone.
 */
import type { FieldIssue } from "../base/errors.ts";
import { remapPairs } from "./output-policy-pids.ts";
import type { OutputPolicy } from "./output-policy-schema.ts";

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
