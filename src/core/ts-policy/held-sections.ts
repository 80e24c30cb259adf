/**
 * The packets an output policy's rewriter (rewriter.ts) holds on a section PID (the PAT, the PMTs, SCTE-35
 * under a filter or strip) and the sections read from them: a group of packets is held from a section's first
 * packet until it completes, and each whole section is handed to the rewriter, which decides what goes out in
 * its place. What cannot be read (a section too long, a pointer past the packet, bytes that are not stuffing)
 * marks the group altered, so that it goes out laid over again rather than as it came.
 */
import { PACKET, sectionLength } from "../ts/index.ts";

/** Longest section we assemble: SCTE 35 allows 4093 bytes after the 3-byte header. */
const MAX_SECTION = 4096;
/** A group longer than this cannot be one section and its continuation: given up as garbage. */
export const MAX_HELD = 32;

/** A section PID's held packets and the section being assembled. */
export interface SectionPid {
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

export const newSectionPid = (pid: number): SectionPid => ({
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

/** Takes a whole section read on `state.pid` (a view into `state.section`, valid during the call). */
type Complete = (state: SectionPid, section: Uint8Array) => void;

/** Adds payload bytes [at, end) of `packet` to the section in assembly; returns where it stopped reading. */
function assemble(
  state: SectionPid,
  packet: Uint8Array,
  at: number,
  end: number,
  complete: Complete,
): number {
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

export function abandon(state: SectionPid): void {
  state.need = 0;
  state.sectionLength = 0;
  state.altered = true;
}

const stuffing = (packet: Uint8Array, from: number, to: number) => {
  for (let i = from; i < to; i++) if (packet[i] !== 0xff) return false;
  return true;
};

/** Reads one packet of a section PID (already held at `packet`); `complete` takes each whole section. */
export function readSections(state: SectionPid, packet: Uint8Array, base: number, complete: Complete): void {
  const end = base + PACKET;
  const flags = packet[base + 3] ?? 0;
  if ((flags & 0x10) === 0) return;
  let at = base + ((flags & 0x20) !== 0 ? 5 + (packet[base + 4] ?? 0) : 4);
  if (at >= end) {
    state.altered = true;
    return;
  }
  if (((packet[base + 1] ?? 0) & 0x40) === 0) {
    if (state.need !== 0) assemble(state, packet, at, end, complete);
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
    const stop = assemble(state, packet, at, first, complete);
    if (state.need !== 0) abandon(state);
    else if (!stuffing(packet, stop, first)) state.altered = true;
  } else if (!stuffing(packet, at, first)) state.altered = true;
  at = first;
  while (at < end && packet[at] !== 0xff) {
    state.need = -1;
    state.sectionLength = 0;
    at = assemble(state, packet, at, end, complete);
    if (state.need !== 0) return;
  }
}
