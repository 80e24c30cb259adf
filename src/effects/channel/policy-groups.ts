/**
 * A channel's outputs that take something other than the untouched stream (an output `policy`,
 * domain/channel/output-policy.ts), in groups: one per distinct policy, each with one rewriter (core/ts-policy) that
 * does the work once for all of its outputs. The fan-out offers a group what it offers every output; the group
 * rewrites it and hands the result to its outputs as the channel does to the others: the plain UDP ones in a
 * turn batch of the group's, the rest through their queues (one copy shared by them). An output without a
 * policy stays on the channel's own path, untouched and at today's cost.
 *
 * A new group (an output's policy changed, live) is taught the PAT and the PMTs the channel last saw, so it
 * rewrites from its first packet. The rewriters keep every continuity counter the input gave on the PIDs they
 * let through, so an output that moves between groups, or out of them, sees no continuity error on the PIDs
 * both give it; `route` says what each gives, for the channel's bridges on the others (move-bridges.ts).
 */
import { type PatEvent, type PmtEvent, patPackets, pmtPackets } from "../../core/psi-build.ts";
import { cueVerdict } from "../../core/ts-policy/cue-verdict.ts";
import { makePolicyRewriter, type PolicyRewriter } from "../../core/ts-policy/rewriter.ts";
import { policyKey } from "../../domain/channel/output-policy.ts";
import type { OutputPolicy } from "../../domain/channel/output-policy-schema.ts";
import type { Output } from "../outputs/writer.ts";
import { makeTurnBatch, type TurnBatch } from "../runtime/sockets/turn-batch.ts";
import type { CueWithheld } from "./scte35-watcher.ts";

/** An enabled output as the groups see it. */
export interface PolicyMember {
  readonly id: string;
  readonly name: string;
  readonly policy: OutputPolicy;
  readonly output: Output;
}

interface Group {
  readonly rewriter: PolicyRewriter;
  readonly batch: TurnBatch;
  queued: ReadonlyArray<(chunk: Uint8Array) => void>;
  readonly members: Set<string>;
  readonly offer: (chunk: Uint8Array) => void;
}

type PsiEvent = PatEvent | PmtEvent;

export interface PolicyGroups {
  /**
   * Puts each output with a policy in its group (made, or kept from before) and drops the groups left empty;
   * returns one offer per group for the channel's fan-out.
   */
  readonly rebuild: (members: ReadonlyArray<PolicyMember>) => ReadonlyArray<(chunk: Uint8Array) => void>;
  /** The channel's core read a PAT or a PMT: kept, to teach groups made later. */
  readonly psi: (event: PsiEvent) => void;
  /** The PAT and PMTs last seen, as packets (none before a PAT): what a stage that starts late reads first. */
  readonly psiPackets: () => Uint8Array;
  /** The outputs whose SCTE-35 policy keeps this cue from them, with the rule. */
  readonly withheld: (
    section: Uint8Array,
    outputs: ReadonlyArray<{
      readonly id: string;
      readonly name: string;
      readonly policy?: OutputPolicy | null;
    }>,
  ) => ReadonlyArray<CueWithheld>;
  /** How the output's group maps input PIDs to its PIDs (null: withheld); null for an output in no group. */
  readonly route: (outputId: string) => ((pid: number) => number | null) | null;
  /** What an output's policy cannot apply to the input as last seen, in words; empty when all applies. */
  readonly problems: (outputId: string) => ReadonlyArray<string>;
  /** Cues and packets the output's group kept from it. */
  readonly counts: (
    outputId: string,
  ) => { readonly packetsDropped: number; readonly cuesWithheld: number } | null;
}

export const makePolicyGroups = (onBatchChange: () => void): PolicyGroups => {
  const groups = new Map<string, Group>();
  /** Which group each output is in. */
  const memberOf = new Map<string, Group>();
  let pat: PatEvent | null = null;
  const pmts = new Map<number, PmtEvent>();

  const psiPackets = () => {
    if (pat === null) return new Uint8Array(0);
    const parts = [patPackets(pat), ...[...pmts.values()].map(pmtPackets)];
    return Buffer.concat(parts);
  };
  /** A new rewriter reads the PAT and PMTs last seen before its first chunk (what it gives back is dropped). */
  const teach = (rewriter: PolicyRewriter) => {
    const packets = psiPackets();
    if (packets.length > 0) rewriter.push(packets);
  };

  const makeGroup = (policy: OutputPolicy): Group => {
    const rewriter = makePolicyRewriter(policy);
    teach(rewriter);
    const group: Group = {
      rewriter,
      batch: makeTurnBatch(onBatchChange),
      queued: [],
      members: new Set(),
      offer: (chunk) => {
        const out = rewriter.push(chunk);
        if (out === null) return;
        if (group.batch.sinks.length > 0) group.batch.add(out);
        const queued = group.queued;
        if (queued.length === 0) return;
        // The queues keep chunks by reference, and `out` is the rewriter's memory or the channel's view.
        const copy = Buffer.allocUnsafe(out.length);
        copy.set(out);
        for (let i = 0; i < queued.length; i++) queued[i]?.(copy);
      },
    };
    return group;
  };

  const rebuild = (members: ReadonlyArray<PolicyMember>) => {
    // What waits in a group's batch leaves for the sinks it was gathered for.
    for (const group of groups.values()) {
      group.batch.flush();
      group.members.clear();
    }
    memberOf.clear();
    const sinks = new Map<Group, NonNullable<ReturnType<Output["batchSink"]>>[]>();
    const queued = new Map<Group, Array<(chunk: Uint8Array) => void>>();
    for (const member of members) {
      const key = policyKey(member.policy);
      let group = groups.get(key);
      if (group === undefined) {
        group = makeGroup(member.policy);
        groups.set(key, group);
      }
      group.members.add(member.id);
      memberOf.set(member.id, group);
      const sink = member.output.batchSink();
      if (sink !== null) sinks.set(group, [...(sinks.get(group) ?? []), sink]);
      else queued.set(group, [...(queued.get(group) ?? []), member.output.offer]);
    }
    for (const [key, group] of groups) {
      if (group.members.size === 0) {
        groups.delete(key);
        continue;
      }
      group.batch.sinks = sinks.get(group) ?? [];
      group.queued = queued.get(group) ?? [];
    }
    return [...groups.values()].map((group) => group.offer);
  };

  return {
    rebuild,
    psiPackets,
    psi: (event) => {
      if (event.type === "pat") {
        pat = event;
        // A programme that left the PAT takes its PMT with it.
        const pids = new Set(event.programs.map((program) => program.pmtPid));
        for (const pid of pmts.keys()) if (!pids.has(pid)) pmts.delete(pid);
      } else pmts.set(event.pid, event);
    },
    withheld: (section, outputs) => {
      const withheld: CueWithheld[] = [];
      for (const output of outputs) {
        const scte35 = output.policy?.scte35;
        if (scte35 === undefined || scte35 === "pass") continue;
        const verdict = cueVerdict(scte35, section);
        if (!verdict.kept)
          withheld.push({ output: output.id, name: output.name, rule: verdict.rule ?? "policy" });
      }
      return withheld;
    },
    route: (outputId) => memberOf.get(outputId)?.rewriter.outputPid ?? null,
    problems: (outputId) => memberOf.get(outputId)?.rewriter.problems() ?? [],
    counts: (outputId) => memberOf.get(outputId)?.rewriter.counts ?? null,
  };
};
