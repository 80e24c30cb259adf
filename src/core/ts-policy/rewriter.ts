/**
 * One output policy (src/domain/output-policy.ts) applied to a live TS, packet by packet. What goes out keeps
 * the input's packet count and continuity counters on every PID it carries: a PAT, PMT or SCTE-35 section that
 * changes or goes is laid over the same packets (same headers, same CC), stuffed with 0xFF, so switching an
 * output from one policy to another never breaks continuity.
 *
 *   const rewriter = makePolicyRewriter(policy)
 *   for each chunk: const out = rewriter.push(chunk); if (out !== null) send(out)   // copy `out` to keep it
 *
 * Per packet: a PID read and a look-up in a table rebuilt when the PAT or a PMT changes or a new PID appears.
 * Packets of section PIDs (PAT, PMTs, SCTE-35 under a filter or strip) are held from a section's first packet
 * until it completes, usually within that one packet.
 */
import { isUntouched, type OutputPolicy, remapPairs } from "../../domain/output-policy.ts";
import {
  contentHash,
  NULL_PID,
  PACKET,
  type Pat,
  PID_COUNT,
  type Pmt,
  parsePat,
  parsePmt,
  pidAt,
  rewritePat,
  rewritePmt,
  STREAM_TYPE_SCTE35,
  SYNC,
  sameBytes,
  sameContent,
  sealSection,
  sectionLength,
} from "../ts/index.ts";
import { type CueVerdict, cueVerdict } from "./cue-verdict.ts";

export type { CueVerdict } from "./cue-verdict.ts";
export { cueVerdict } from "./cue-verdict.ts";

export interface PolicyRewriter {
  /** Rewrites whole TS packets (length a multiple of 188). Returns what goes out now: `chunk` itself when nothing in it changed and nothing was held before, otherwise a view into the rewriter's own reusable memory valid only until the next push (callers copy). null when nothing goes out. */
  push(chunk: Uint8Array): Uint8Array | null;
  /** What the policy cannot apply to the input as last seen, in words (empty: all applies). */
  problems(): ReadonlyArray<string>;
  /** Cues seen on SCTE-35 PIDs this policy touches, with the verdict: called once per complete section. */
  onCue: ((pid: number, section: Uint8Array, verdict: CueVerdict) => void) | null;
  /** Packets withheld (dropped) so far, and cues withheld so far. */
  readonly counts: { packetsDropped: number; cuesWithheld: number };
  /** The PID an input PID's packets go out on under the policy as last applied; null when withheld. */
  readonly outputPid: (pid: number) => number | null;
}

/** Longest section we assemble: SCTE 35 allows 4093 bytes after the 3-byte header. */
const MAX_SECTION = 4096;
/** A group longer than this cannot be one section and its continuation: given up as garbage. */
const MAX_HELD = 32;

// Action bits, one byte per PID.
const DROP = 1;
const REMAP = 2;
/** PAT or PMT: learnt, and rewritten when the policy changes it. */
const PSI = 4;
/** SCTE-35 under a filter or strip: each section gets a verdict. */
const CUE = 8;
const SECTIONS = PSI | CUE;

const pidText = (pid: number) => `PID 0x${pid.toString(16).padStart(4, "0")} (${pid})`;

/** What becomes of one complete section in a held group, when not replaced by new bytes. */
const KEEP = 0;
const WITHHOLD = 1;

/** A section PID's held packets and the section being assembled. */
interface SectionPid {
  readonly pid: number;
  readonly held: Uint8Array;
  heldCount: number;
  readonly section: Uint8Array;
  sectionLength: number;
  /** Bytes the section in assembly has (3 + section_length); -1 before its header is in, 0 when none is. */
  need: number;
  /** The group's output sections back to back, and where each starts. */
  stream: Uint8Array;
  streamLength: number;
  starts: number[];
  /** Something in the group is not going out as it came. */
  altered: boolean;
  // PSI: the last input section, the table generation and the result, so a repeated PAT/PMT costs a compare.
  cacheIn: Uint8Array | null;
  cacheGeneration: number;
  cacheOut: Uint8Array | null;
  lastOut: Uint8Array | null;
  lastVersion: number;
}

const newSectionPid = (pid: number): SectionPid => ({
  pid,
  held: new Uint8Array(MAX_HELD * PACKET),
  heldCount: 0,
  section: new Uint8Array(MAX_SECTION),
  sectionLength: 0,
  need: 0,
  stream: new Uint8Array(MAX_HELD * PACKET),
  streamLength: 0,
  starts: [],
  altered: false,
  cacheIn: null,
  cacheGeneration: -1,
  cacheOut: null,
  lastOut: null,
  lastVersion: -1,
});

const passThrough = (): PolicyRewriter => ({
  push: (chunk) => (chunk.length === 0 ? null : chunk),
  problems: () => [],
  onCue: null,
  counts: { packetsDropped: 0, cuesWithheld: 0 },
  outputPid: (pid) => pid,
});

export const makePolicyRewriter = (policy: OutputPolicy): PolicyRewriter => {
  if (isUntouched(policy)) return passThrough();
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
  const states = new Map<number, SectionPid>();
  let generation = 0;
  let pat: Pat | null = null;
  let patBytes: Uint8Array | null = null;
  const pmts = new Map<number, { pmt: Pmt; bytes: Uint8Array }>();
  /** Programmes that go out: their PAT entries stay. */
  const programOut = new Set<number>();
  let problems: ReadonlyArray<string> = [];
  let dirty = true;

  let out = new Uint8Array(64 * PACKET);
  let outLength = 0;
  /** False while what goes out is still `chunk` itself, up to the packet being read. */
  let diverged = false;
  let current: Uint8Array = out;

  const counts = { packetsDropped: 0, cuesWithheld: 0 };
  const outputPid = (pid: number): number | null => (((action[pid] ?? 0) & DROP) !== 0 ? null : pidOut(pid));
  const self: PolicyRewriter = { push, problems: () => problems, onCue: null, counts, outputPid };

  const wouldDrop = (pid: number) => (keepList !== null ? !keepList.has(pid) : (dropList?.has(pid) ?? false));

  function rebuild(): void {
    dirty = false;
    generation++;
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
      problems = said;
      return;
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
    problems = said;
    // Packets held on a PID that no longer takes sections go as they came.
    for (const state of states.values()) {
      if (((action[state.pid] ?? 0) & SECTIONS) === 0 && state.heldCount > 0) {
        state.altered = false;
        state.need = 0;
        flush(state);
      }
    }
  }

  const pidOut = (pid: number) => (((action[pid] ?? 0) & REMAP) !== 0 ? (remapTo[pid] ?? pid) : pid);

  function reserve(bytes: number): void {
    if (outLength + bytes <= out.length) return;
    const bigger = new Uint8Array(Math.max(out.length * 2, outLength + bytes));
    bigger.set(out.subarray(0, outLength));
    out = bigger;
  }

  /** From here on, what goes out is built in `out`: the chunk's packets before `at` first. */
  function diverge(at: number): void {
    if (diverged) return;
    diverged = true;
    reserve(at);
    out.set(current.subarray(0, at));
    outLength = at;
  }

  /** Appends a packet, with its PID remapped when the policy says so. */
  function emit(bytes: Uint8Array, at: number, pid: number): void {
    reserve(PACKET);
    for (let i = 0; i < PACKET; i++) out[outLength + i] = bytes[at + i] ?? 0;
    if (((action[pid] ?? 0) & REMAP) !== 0) {
      const to = remapTo[pid] ?? pid;
      out[outLength + 1] = ((out[outLength + 1] ?? 0) & 0xe0) | (to >> 8);
      out[outLength + 2] = to & 0xff;
    }
    outLength += PACKET;
  }

  /** The output section for a complete PAT or PMT on `state.pid`. */
  function psiResult(state: SectionPid, section: Uint8Array): Uint8Array | typeof KEEP | typeof WITHHOLD {
    const tableId = section[0];
    const isPat = state.pid === 0;
    if ((isPat && tableId !== 0x00) || (!isPat && tableId !== 0x02)) return KEEP;
    const fresh =
      state.cacheIn === null || state.cacheIn.length !== section.length || !sameBytes(state.cacheIn, section);
    if (fresh) {
      state.cacheIn = section.slice();
      if (isPat) {
        const parsed = parsePat(state.cacheIn);
        if (parsed === null) return forget(state);
        if (patBytes === null || !sameContent(patBytes, state.cacheIn)) dirty = true;
        pat = parsed;
        patBytes = state.cacheIn;
      } else {
        const parsed = parsePmt(state.cacheIn);
        if (parsed === null) return forget(state);
        const before = pmts.get(state.pid);
        if (before === undefined || !sameContent(before.bytes, state.cacheIn)) dirty = true;
        pmts.set(state.pid, { pmt: parsed, bytes: state.cacheIn });
      }
    }
    if (dirty) rebuild();
    if (!fresh && state.cacheGeneration === generation) return state.cacheOut ?? KEEP;
    const input = state.cacheIn as Uint8Array;
    let rewritten: Uint8Array;
    if (isPat) {
      const entries = (pat?.programs ?? [])
        .filter((p) => programOut.has(p.program))
        .map((p) => ({ program: p.program, pid: pidOut(p.pid) }));
      rewritten = rewritePat(input, entries);
    } else {
      const pmt = pmts.get(state.pid)?.pmt as Pmt;
      rewritten = rewritePmt(input, pmt, (s) => ((action[s.pid] ?? 0) & DROP) === 0, pidOut);
    }
    state.cacheGeneration = generation;
    if (sameContent(rewritten, input)) {
      state.cacheOut = null;
      return KEEP;
    }
    if (rewritten.length > input.length) {
      // Cannot happen (entries only go or change PID), but would not fit the input's packets.
      problems = [
        ...problems,
        `${pidText(state.pid)}: the rewritten table is longer than the input's: sent as it is`,
      ];
      state.cacheOut = null;
      return KEEP;
    }
    const hash = contentHash(rewritten) % 32;
    let version = hash;
    if (state.lastOut !== null && !sameContent(state.lastOut, rewritten) && hash === state.lastVersion)
      version = (hash + 1) % 32;
    if (state.lastOut !== null && sameContent(state.lastOut, rewritten)) version = state.lastVersion;
    sealSection(rewritten, version);
    state.lastOut = rewritten;
    state.lastVersion = version;
    state.cacheOut = rewritten;
    return rewritten;
  }

  /** A PSI section that does not parse (bad CRC, bad lengths): withheld, and not cached as learnt. */
  function forget(state: SectionPid): typeof WITHHOLD {
    state.cacheIn = null;
    return WITHHOLD;
  }

  /** A complete section on a section PID: what goes out in its place joins the group's stream. */
  function complete(state: SectionPid, section: Uint8Array): void {
    let result: Uint8Array | number;
    if (state.pid === 0 || ((action[state.pid] ?? 0) & PSI) !== 0) {
      result = psiResult(state, section);
    } else {
      const verdict = cueVerdict(scte35, section);
      if (self.onCue !== null) self.onCue(state.pid, section.slice(), verdict);
      if (!verdict.kept) counts.cuesWithheld++;
      result = verdict.kept ? KEEP : WITHHOLD;
    }
    if (result === WITHHOLD) {
      state.altered = true;
      return;
    }
    const bytes = typeof result === "number" ? section : result;
    if (bytes !== section) state.altered = true;
    if (state.streamLength + bytes.length > state.stream.length) {
      const bigger = new Uint8Array(state.stream.length * 2 + bytes.length);
      bigger.set(state.stream.subarray(0, state.streamLength));
      state.stream = bigger;
    }
    state.starts.push(state.streamLength);
    state.stream.set(bytes, state.streamLength);
    state.streamLength += bytes.length;
  }

  /** Adds payload bytes [at, end) of `packet` to the section in assembly; returns where it stopped reading. */
  function assemble(state: SectionPid, packet: Uint8Array, at: number, end: number): number {
    let i = at;
    while (i < end) {
      if (state.need === -1 && state.sectionLength >= 3) {
        state.need = 3 + sectionLength(state.section);
        if (state.need > MAX_SECTION) {
          abandon(state);
          return end;
        }
      }
      const want = state.need > 0 ? state.need - state.sectionLength : 3 - state.sectionLength;
      const take = Math.min(want, end - i);
      for (let k = 0; k < take; k++) state.section[state.sectionLength + k] = packet[i + k] ?? 0;
      state.sectionLength += take;
      i += take;
      if (state.need > 0 && state.sectionLength === state.need) {
        state.need = 0;
        complete(state, state.section.subarray(0, state.sectionLength));
        state.sectionLength = 0;
        return i;
      }
    }
    return i;
  }

  function abandon(state: SectionPid): void {
    state.need = 0;
    state.sectionLength = 0;
    state.altered = true;
  }

  const stuffing = (packet: Uint8Array, from: number, to: number) => {
    for (let i = from; i < to; i++) if (packet[i] !== 0xff) return false;
    return true;
  };

  /** Reads one packet of a section PID (already held at `packet`). */
  function readSections(state: SectionPid, packet: Uint8Array, base: number): void {
    const end = base + PACKET;
    const flags = packet[base + 3] ?? 0;
    if ((flags & 0x10) === 0) return;
    let at = base + ((flags & 0x20) !== 0 ? 5 + (packet[base + 4] ?? 0) : 4);
    if (at >= end) {
      state.altered = true;
      return;
    }
    if (((packet[base + 1] ?? 0) & 0x40) === 0) {
      if (state.need !== 0) assemble(state, packet, at, end);
      else if (!stuffing(packet, at, end)) state.altered = true;
      return;
    }
    const pointer = packet[at] ?? 0;
    at++;
    const first = at + pointer;
    if (first >= end) {
      abandon(state);
      return;
    }
    if (state.need !== 0) {
      const stop = assemble(state, packet, at, first);
      if (state.need !== 0) abandon(state);
      else if (!stuffing(packet, stop, first)) state.altered = true;
    } else if (!stuffing(packet, at, first)) state.altered = true;
    at = first;
    while (at < end && packet[at] !== 0xff) {
      state.need = -1;
      state.sectionLength = 0;
      at = assemble(state, packet, at, end);
      if (state.need !== 0) return;
    }
  }

  /** The group is over: its packets go out as they came, laid over again, or not at all. */
  function flush(state: SectionPid): void {
    const n = state.heldCount;
    const a = action[state.pid] ?? 0;
    if ((a & DROP) !== 0) counts.packetsDropped += n;
    else if (!state.altered) for (let k = 0; k < n; k++) emit(state.held, k * PACKET, state.pid);
    else if (!relay(state)) {
      problems = [
        ...problems,
        `${pidText(state.pid)}: sections did not fit their packets again: sent as they came`,
      ];
      for (let k = 0; k < n; k++) emit(state.held, k * PACKET, state.pid);
    }
    state.heldCount = 0;
    state.streamLength = 0;
    state.starts.length = 0;
    state.altered = false;
  }

  /** Lays the group's output sections over its packets (same headers and CC, payload only); false if they do not fit. */
  function relay(state: SectionPid): boolean {
    const start = outLength;
    const total = state.streamLength;
    let position = 0;
    let next = 0;
    for (let k = 0; k < state.heldCount; k++) {
      const from = k * PACKET;
      emit(state.held, from, state.pid);
      const p = outLength - PACKET;
      const flags = state.held[from + 3] ?? 0;
      if ((flags & 0x10) === 0) continue;
      out[p + 3] = (flags & 0xcf) | 0x10;
      let i = p + 4;
      const startHere = next < state.starts.length && (state.starts[next] ?? 0) < position + 183;
      if (position >= total || startHere) {
        out[p + 1] = (out[p + 1] ?? 0) | 0x40;
        out[i++] = position >= total ? 0 : (state.starts[next] ?? 0) - position;
        while (next < state.starts.length && (state.starts[next] ?? 0) < position + 183) next++;
      } else out[p + 1] = (out[p + 1] ?? 0) & 0xbf;
      // A section must start in a packet whose pointer_field says so: one that would start in the last byte of
      // a packet without PUSI waits for the next.
      const limit = startHere || next >= state.starts.length ? total : (state.starts[next] ?? total);
      const take = Math.min(limit - position, p + PACKET - i);
      if (take > 0) {
        out.set(state.stream.subarray(position, position + take), i);
        position += take;
        i += take;
      }
      out.fill(0xff, i, p + PACKET);
    }
    if (position < total) {
      outLength = start;
      return false;
    }
    return true;
  }

  function push(chunk: Uint8Array): Uint8Array | null {
    current = chunk;
    diverged = false;
    outLength = 0;
    const whole = chunk.length - (chunk.length % PACKET);
    if (whole !== chunk.length) diverge(0);
    for (let at = 0; at < whole; at += PACKET) {
      if (chunk[at] !== SYNC) {
        diverge(at);
        counts.packetsDropped++;
        continue;
      }
      const pid = pidAt(chunk, at);
      if (seen[pid] === 0) {
        seen[pid] = 1;
        dirty = true;
      }
      if (dirty) {
        diverge(at);
        rebuild();
      }
      const a = action[pid] ?? 0;
      if (a === 0) {
        if (diverged) emit(chunk, at, pid);
        continue;
      }
      diverge(at);
      if ((a & SECTIONS) === 0) {
        if ((a & DROP) !== 0) counts.packetsDropped++;
        else emit(chunk, at, pid);
        continue;
      }
      let state = states.get(pid);
      if (state === undefined) {
        state = newSectionPid(pid);
        states.set(pid, state);
      }
      if (state.heldCount === MAX_HELD) {
        abandon(state);
        flush(state);
      }
      const base = state.heldCount * PACKET;
      for (let i = 0; i < PACKET; i++) state.held[base + i] = chunk[at + i] ?? 0;
      state.heldCount++;
      readSections(state, state.held, base);
      if (state.need === 0) flush(state);
    }
    if (!diverged) return chunk.length === 0 ? null : chunk;
    return outLength === 0 ? null : out.subarray(0, outLength);
  }

  return self;
};
