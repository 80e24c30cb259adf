/**
 * One output policy (src/domain/channel/output-policy.ts) applied to a live TS, packet by packet. What goes out keeps
 * the input's packet count and continuity counters on every PID it carries: a PAT, PMT or SCTE-35 section that
 * changes or goes is laid over the same packets (same headers, same CC), stuffed with 0xFF, so switching an
 * output from one policy to another never breaks continuity.
 *
 *   const rewriter = makePolicyRewriter(policy)
 *   for each chunk: const out = rewriter.push(chunk); if (out !== null) send(out)   // copy `out` to keep it
 *
 * Per packet: a PID read and a look-up in a table (policy-table.ts) rebuilt when the PAT or a PMT changes or a
 * new PID appears. Packets of section PIDs (PAT, PMTs, SCTE-35 under a filter or strip) are held from a
 * section's first packet until it completes, usually within that one packet, the sections read by the
 * toolkit's SectionReader (section-group.ts).
 */
import { isUntouched } from "../../domain/channel/output-policy.ts";
import type { OutputPolicy } from "../../domain/channel/output-policy-schema.ts";
import {
  PACKET,
  PacketOut,
  type Pat,
  type Pmt,
  parsePat,
  parsePmt,
  pidAt,
  rewritePat,
  rewritePmt,
  SYNC,
  sameBytes,
  sameContent,
} from "../ts/index.ts";
import type { TsFilter } from "../ts-filter.ts";
import { type CueVerdict, cueVerdict } from "./cue-verdict.ts";
import { DROP, makePolicyTable, PSI, pidText, REMAP, SECTIONS } from "./policy-table.ts";
import {
  appendSection,
  clearGroup,
  hold,
  MAX_HELD,
  newSectionPid,
  relay,
  type SectionPid,
  sealVersioned,
} from "./section-group.ts";

export interface PolicyRewriter extends TsFilter {
  /** A TS filter (ts-filter.ts): rewrites whole TS packets (length a multiple of 188). Returns what goes out now: `chunk` itself when nothing in it changed and nothing was held before, otherwise a view into the rewriter's own reusable memory valid only until the next push (callers copy). null when nothing goes out. */
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

/** What becomes of one complete section in a held group, when not replaced by new bytes. */
const KEEP = 0;
const WITHHOLD = 1;

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
  const table = makePolicyTable(policy);
  const { action, remapTo, seen, programOut, pidOut } = table;
  const states = new Map<number, SectionPid>();
  let generation = 0;
  let pat: Pat | null = null;
  let patBytes: Uint8Array | null = null;
  const pmts = new Map<number, { pmt: Pmt; bytes: Uint8Array }>();
  let problems: ReadonlyArray<string> = [];
  let dirty = true;

  const out = new PacketOut();
  /** False while what goes out is still `chunk` itself, up to the packet being read. */
  let diverged = false;
  let current: Uint8Array = out.bytes;

  const counts = { packetsDropped: 0, cuesWithheld: 0 };
  const outputPid = (pid: number): number | null => (((action[pid] ?? 0) & DROP) !== 0 ? null : pidOut(pid));
  const self: PolicyRewriter = { push, problems: () => problems, onCue: null, counts, outputPid };

  function rebuild(): void {
    dirty = false;
    generation++;
    const built = table.build(pat, pmts);
    problems = built.problems;
    if (built.programMissing) return;
    // Packets held on a PID that no longer takes sections go as they came.
    for (const state of states.values()) {
      if (((action[state.pid] ?? 0) & SECTIONS) === 0 && state.heldCount > 0) {
        state.altered = false;
        state.reader.drop();
        flush(state);
      }
    }
  }

  /** From here on, what goes out is built in `out`: the chunk's packets before `at` first. */
  function diverge(at: number): void {
    if (diverged) return;
    diverged = true;
    out.length = 0;
    out.append(current, 0, at);
  }

  /** Appends a packet, with its PID remapped when the policy says so. */
  function emit(bytes: Uint8Array, at: number, pid: number): void {
    out.reserve(PACKET);
    const o = out.bytes;
    const q = out.length;
    for (let i = 0; i < PACKET; i++) o[q + i] = bytes[at + i] ?? 0;
    if (((action[pid] ?? 0) & REMAP) !== 0) {
      const to = remapTo[pid] ?? pid;
      o[q + 1] = ((o[q + 1] ?? 0) & 0xe0) | (to >> 8);
      o[q + 2] = to & 0xff;
    }
    out.length += PACKET;
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
      rewritten = rewritePmt(input, pmt, { keep: (s) => ((action[s.pid] ?? 0) & DROP) === 0, pidOut });
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
    sealVersioned(state, rewritten);
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
    appendSection(state, bytes);
  }

  /** The group is over: its packets go out as they came, laid over again, or not at all. */
  function flush(state: SectionPid): void {
    const n = state.heldCount;
    const a = action[state.pid] ?? 0;
    if ((a & DROP) !== 0) counts.packetsDropped += n;
    else if (!state.altered) for (let k = 0; k < n; k++) emit(state.held, k * PACKET, state.pid);
    else if (!relay(state, out, emit)) {
      problems = [
        ...problems,
        `${pidText(state.pid)}: sections did not fit their packets again: sent as they came`,
      ];
      for (let k = 0; k < n; k++) emit(state.held, k * PACKET, state.pid);
    }
    clearGroup(state);
  }

  function push(chunk: Uint8Array): Uint8Array | null {
    current = chunk;
    diverged = false;
    out.length = 0;
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
        state = newSectionPid(pid, complete);
        states.set(pid, state);
      }
      if (state.heldCount === MAX_HELD) {
        state.reader.drop();
        state.altered = true;
        flush(state);
      }
      hold(state, chunk, at);
      if (!state.reader.inSection) flush(state);
    }
    if (!diverged) return chunk.length === 0 ? null : chunk;
    return out.length === 0 ? null : out.view();
  }

  return self;
};
