/**
 * What an output policy (src/domain/channel/output-policy.ts) does to each PID of the input as its tables stand: one
 * byte of action bits a PID (dropped, remapped, a PAT or PMT to rewrite, SCTE-35 to judge), the PID it goes
 * out on, the programmes whose PAT entries stay, and what the policy cannot apply, in words. The rewriter
 * (rewriter.ts) builds it again whenever the PAT or a PMT changes or a new PID appears, and reads it per packet.
 */
import { remapPairs } from "../../domain/channel/output-policy-pids.ts";
import type { OutputPolicy } from "../../domain/channel/output-policy-schema.ts";
import { NULL_PID, type Pat, PID_COUNT, type Pmt, STREAM_TYPE_SCTE35 } from "../ts/index.ts";

// Action bits, one byte per PID.
export const DROP = 1;
export const REMAP = 2;
/** PAT or PMT: learnt, and rewritten when the policy changes it. */
export const PSI = 4;
/** SCTE-35 under a filter or strip: each section gets a verdict. */
export const CUE = 8;
export const SECTIONS = PSI | CUE;

export const pidText = (pid: number) => `PID 0x${pid.toString(16).padStart(4, "0")} (${pid})`;

interface PolicyTable {
  /** The action bits of each PID. */
  readonly action: Uint8Array;
  /** Where a PID with REMAP goes. */
  readonly remapTo: Uint16Array;
  /** PIDs the input has carried so far: the rewriter marks them as it reads. */
  readonly seen: Uint8Array;
  /** Programmes that go out: their PAT entries stay. */
  readonly programOut: ReadonlySet<number>;
  /** The PID an input PID's packets go out on (its own unless remapped). */
  readonly pidOut: (pid: number) => number;
  /**
   * Fills the table for the input's PAT and PMTs (by PMT PID). `programMissing`: the programme the policy
   * selects is not in the input, so everything but the PAT and the PMTs is dropped.
   */
  readonly build: (
    pat: Pat | null,
    pmts: ReadonlyMap<number, { readonly pmt: Pmt }>,
  ) => { readonly problems: ReadonlyArray<string>; readonly programMissing: boolean };
}

export const makePolicyTable = (policy: OutputPolicy): PolicyTable => {
  const scte35 = policy.scte35 ?? "pass";
  const keepList = policy.pids?.keep === undefined ? null : new Set(policy.pids.keep);
  const dropList = policy.pids?.drop === undefined ? null : new Set(policy.pids.drop);
  const pairs = remapPairs(policy.remap);
  const programWanted = policy.program ?? null;
  /** PIDs nobody named are dropped under a keep-list or a programme selection, kept otherwise. */
  const unnamed = keepList !== null || programWanted !== null ? DROP : 0;

  const action = new Uint8Array(PID_COUNT);
  const remapTo = new Uint16Array(PID_COUNT);
  const seen = new Uint8Array(PID_COUNT);
  /**
   * PIDs a PMT listed as SCTE-35 (0x86) and no PMT has listed as anything else since: as the packet core does,
   * such a PID keeps its role when a later PMT leaves it out (same-version PMTs seen in the wild alternate
   * between listing it and not), so a strip or a filter still applies to the cues that keep coming on it.
   */
  const cuePid = new Uint8Array(PID_COUNT);
  const programOut = new Set<number>();

  const wouldDrop = (pid: number) => (keepList !== null ? !keepList.has(pid) : (dropList?.has(pid) ?? false));
  const pidOut = (pid: number) => (((action[pid] ?? 0) & REMAP) !== 0 ? (remapTo[pid] ?? pid) : pid);

  const build: PolicyTable["build"] = (pat, pmts) => {
    const said: string[] = [];
    action.fill(0);
    for (let pid = 0; pid < PID_COUNT; pid++) {
      if (keepList !== null) action[pid] = keepList.has(pid) && programWanted === null ? 0 : DROP;
      else if (programWanted !== null) action[pid] = DROP;
      else if (dropList?.has(pid)) action[pid] = DROP;
    }
    action[NULL_PID] = unnamed !== 0 || dropList?.has(NULL_PID) ? DROP : 0;
    action[0] = PSI;
    programOut.clear();
    const named = new Uint8Array(PID_COUNT);
    named[0] = 1;
    const programs = pat?.programs ?? [];
    const selected = programs.filter(
      (p) => p.program !== 0 && (programWanted === null || p.program === programWanted),
    );
    if (pat !== null && programWanted !== null && selected.length === 0) {
      const carried = programs.filter((p) => p.program !== 0).map((p) => p.program);
      said.push(
        `programme ${programWanted} is not in the input (it carries ${carried.length > 0 ? carried.join(", ") : "none"})`,
      );
      action.fill(DROP);
      action[0] = PSI | DROP;
      for (const p of programs) if (p.program !== 0) action[p.pid] = PSI | DROP;
      return { problems: said, programMissing: true };
    }
    // The NIT: dropped with a programme selection, else as any other PID.
    for (const p of programs) {
      named[p.pid] = 1;
      if (p.program === 0 && programWanted === null && (action[p.pid] ?? 0) === 0) programOut.add(0);
      if (p.program !== 0 && !selected.includes(p)) action[p.pid] = PSI | DROP;
      for (const s of pmts.get(p.pid)?.pmt.streams ?? []) named[s.pid] = 1;
      const pcr = pmts.get(p.pid)?.pmt.pcrPid;
      if (pcr !== undefined) named[pcr] = 1;
    }
    for (const p of selected) {
      const known = pmts.get(p.pid)?.pmt;
      if (known === undefined) {
        // Not learnt yet: it goes out until its PMT says otherwise.
        programOut.add(p.program);
        action[p.pid] = PSI;
        continue;
      }
      let kept = 0;
      for (const s of known.streams) {
        cuePid[s.pid] = s.streamType === STREAM_TYPE_SCTE35 ? 1 : 0;
        if (wouldDrop(s.pid)) {
          action[s.pid] = DROP;
          continue;
        }
        kept++;
        action[s.pid] =
          s.streamType === STREAM_TYPE_SCTE35 && scte35 !== "pass"
            ? scte35 === "strip"
              ? CUE | DROP
              : CUE
            : 0;
      }
      if (policy.pids !== undefined && kept === 0) {
        action[p.pid] = PSI | DROP;
        continue;
      }
      programOut.add(p.program);
      action[p.pid] = PSI;
      const pcr = known.pcrPid;
      if (pcr !== NULL_PID && ((action[pcr] ?? 0) & DROP) !== 0 && ((action[pcr] ?? 0) & CUE) === 0) {
        action[pcr] = 0;
        if (wouldDrop(pcr)) said.push(`${pidText(pcr)} carries programme ${p.program}'s PCR: kept`);
      }
    }
    if (scte35 !== "pass")
      for (let pid = 0; pid < PID_COUNT; pid++) {
        // Dropped already (another programme's, or by the PID lists): it stays dropped.
        if (cuePid[pid] !== 1 || ((action[pid] ?? 0) & (CUE | PSI | DROP)) !== 0) continue;
        action[pid] = scte35 === "strip" ? CUE | DROP : CUE;
      }
    const carries = (pid: number) => seen[pid] === 1 || named[pid] === 1;
    // The PAT and the PMTs always go out, rewritten: a policy that names a PMT's PID to drop or remap is said
    // (PID 0 and the other tables' below 0x0010 are refused when the policy is saved).
    const pmtOf = new Map(programs.filter((p) => p.program !== 0).map((p) => [p.pid, p.program] as const));
    for (const pid of dropList ?? []) {
      const program = pmtOf.get(pid);
      if (program !== undefined)
        said.push(
          `pids.drop: ${pidText(pid)} is programme ${program}'s PMT, which always stays: drop its streams, or keep another programme with "program"`,
        );
    }
    const movedAway = new Set(pairs.map(([from]) => from));
    for (const [from, to] of pairs) {
      const program = pmtOf.get(from);
      if (program !== undefined) {
        said.push(
          `remap: ${pidText(from)} is programme ${program}'s PMT, which is never remapped: left as it is`,
        );
        continue;
      }
      if (!carries(from)) said.push(`remap: ${pidText(from)} is not in the input`);
      if (carries(to) && !movedAway.has(to) && ((action[to] ?? 0) & DROP) === 0) {
        said.push(
          `remap: ${pidText(from)} would become ${pidText(to).slice(4)}, which the input already carries: left as it is`,
        );
        continue;
      }
      action[from] = (action[from] ?? 0) | REMAP;
      remapTo[from] = to;
    }
    for (const pid of keepList ?? [])
      if (!carries(pid)) said.push(`pids.keep: ${pidText(pid)} is not in the input`);
    for (const pid of dropList ?? [])
      if (!carries(pid)) said.push(`pids.drop: ${pidText(pid)} is not in the input`);
    return { problems: said, programMissing: false };
  };

  return { action, remapTo, seen, programOut, pidOut, build };
};
