/**
 * One output policy (src/domain/output-policy.ts) applied to a live TS, packet by packet. What goes out keeps
 * the input's packet count and continuity counters on every PID it carries: a PAT, PMT or SCTE-35 section that
 * changes or goes is laid over the same packets (same headers, same CC), stuffed with 0xFF, so switching an
 * output from one policy to another never breaks continuity.
 *
 *   const rewriter = makePolicyRewriter(policy)
 *   for each chunk: const out = rewriter.push(chunk); if (out !== null) send(out)   // copy `out` to keep it
 *
 * Per packet: a PID read and a look-up in a table (policy-table.ts) rebuilt when the PAT or a PMT changes or a
 * new PID appears. Packets of section PIDs (PAT, PMTs, SCTE-35 under a filter or strip) are held from a
 * section's first packet until it completes, usually within that one packet (`SectionPid`), the sections read
 * by the toolkit's SectionReader.
 */
import { isUntouched } from "../../domain/output-policy.ts";
import type { OutputPolicy } from "../../domain/output-policy-schema.ts";
import {
  contentHash,
  MAX_SCTE35_SECTION,
  PACKET,
  type Pat,
  type Pmt,
  parsePat,
  parsePmt,
  pidAt,
  rewritePat,
  rewritePmt,
  SectionReader,
  SYNC,
  sameBytes,
  sameContent,
  sealSection,
} from "../ts/index.ts";
import type { TsFilter } from "../ts-filter.ts";
import { type CueVerdict, cueVerdict } from "./cue-verdict.ts";
import { DROP, makePolicyTable, PSI, pidText, REMAP, SECTIONS } from "./policy-table.ts";

export type { CueVerdict } from "./cue-verdict.ts";
export { cueVerdict } from "./cue-verdict.ts";

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

/** A group longer than this cannot be one section and its continuation: given up as garbage. */
const MAX_HELD = 32;

/**
 * A section PID's held packets and the sections read from them: a group of packets is held from a section's
 * first packet until it completes, and each whole section is handed to the rewriter, which decides what goes
 * out in its place. What cannot be read (a section too long, a pointer past the packet, bytes that are not
 * stuffing: the reader's `onLoss`) marks the group altered, so that it goes out laid over again rather than as
 * it came.
 */
interface SectionPid {
  readonly pid: number;
  readonly held: Uint8Array;
  heldCount: number;
  readonly reader: SectionReader;
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

  let out = new Uint8Array(64 * PACKET);
  let outLength = 0;
  /** False while what goes out is still `chunk` itself, up to the packet being read. */
  let diverged = false;
  let current: Uint8Array = out;

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

  function newSectionPid(pid: number): SectionPid {
    const state: SectionPid = {
      pid,
      held: new Uint8Array(MAX_HELD * PACKET),
      heldCount: 0,
      reader: new SectionReader((section) => complete(state, section), {
        max: MAX_SCTE35_SECTION,
        keepBadCrc: true,
        onLoss: () => {
          state.altered = true;
        },
      }),
      stream: new Uint8Array(MAX_HELD * PACKET),
      streamLength: 0,
      starts: [],
      altered: false,
      cacheIn: null,
      cacheGeneration: -1,
      cacheOut: null,
      lastOut: null,
      lastVersion: -1,
    };
    states.set(pid, state);
    return state;
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
      const state = states.get(pid) ?? newSectionPid(pid);
      if (state.heldCount === MAX_HELD) {
        state.reader.drop();
        state.altered = true;
        flush(state);
      }
      const base = state.heldCount * PACKET;
      for (let i = 0; i < PACKET; i++) state.held[base + i] = chunk[at + i] ?? 0;
      state.heldCount++;
      state.reader.read(state.held, base);
      if (!state.reader.inSection) flush(state);
    }
    if (!diverged) return chunk.length === 0 ? null : chunk;
    return outLength === 0 ? null : out.subarray(0, outLength);
  }

  return self;
};
