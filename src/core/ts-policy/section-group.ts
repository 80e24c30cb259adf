/**
 * A section PID's held packets under an output policy (rewriter.ts), and the sections that go out in their
 * place: a group of packets is held from a section's first packet until it completes, each whole section is
 * handed to the rewriter, which decides what goes out in its place, and the group goes out as it came, laid
 * over again with its output sections (same headers and CC, payload only), or not at all. What cannot be read
 * (a section too long, a pointer past the packet, bytes that are not stuffing: the reader's `onLoss`) marks the
 * group altered, so that it goes out laid over again rather than as it came.
 */
import {
  contentHash,
  MAX_SCTE35_SECTION,
  PACKET,
  type PacketOut,
  SectionReader,
  sameContent,
  sealSection,
} from "../ts/index.ts";

/** A group longer than this cannot be one section and its continuation: given up as garbage. */
export const MAX_HELD = 32;

export interface SectionPid {
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

/** A new group on `pid`, whose complete sections (CRC right or not) go to `onSection`. */
export const newSectionPid = (pid: number, onSection: (state: SectionPid, section: Uint8Array) => void) => {
  const state: SectionPid = {
    pid,
    held: new Uint8Array(MAX_HELD * PACKET),
    heldCount: 0,
    reader: new SectionReader((section) => onSection(state, section), {
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
  return state;
};

/** Holds the packet at `chunk[at]` in the group and reads it. */
export const hold = (state: SectionPid, chunk: Uint8Array, at: number): void => {
  const base = state.heldCount * PACKET;
  for (let i = 0; i < PACKET; i++) state.held[base + i] = chunk[at + i] ?? 0;
  state.heldCount++;
  state.reader.read(state.held, base);
};

/** One output section joins the group's stream. */
export const appendSection = (state: SectionPid, bytes: Uint8Array): void => {
  if (state.streamLength + bytes.length > state.stream.length) {
    const bigger = new Uint8Array(state.stream.length * 2 + bytes.length);
    bigger.set(state.stream.subarray(0, state.streamLength));
    state.stream = bigger;
  }
  state.starts.push(state.streamLength);
  state.stream.set(bytes, state.streamLength);
  state.streamLength += bytes.length;
};

/** The group went out: the next starts empty. */
export const clearGroup = (state: SectionPid): void => {
  state.heldCount = 0;
  state.streamLength = 0;
  state.starts.length = 0;
  state.altered = false;
};

/**
 * Seals a rewritten PSI section with a version number that is a hash of its content (32 values), moved on by
 * one when the hash matches the last different table's, kept when the table is the last one again.
 */
export const sealVersioned = (state: SectionPid, rewritten: Uint8Array): void => {
  const hash = contentHash(rewritten) % 32;
  let version = hash;
  if (state.lastOut !== null && !sameContent(state.lastOut, rewritten) && hash === state.lastVersion)
    version = (hash + 1) % 32;
  if (state.lastOut !== null && sameContent(state.lastOut, rewritten)) version = state.lastVersion;
  sealSection(rewritten, version);
  state.lastOut = rewritten;
  state.lastVersion = version;
};

/**
 * Lays the group's output sections over its packets (same headers and CC, payload only), each packet put out
 * by `emit` first; false if they do not fit, and then nothing of the group stays in `out`.
 */
export const relay = (
  state: SectionPid,
  out: PacketOut,
  emit: (bytes: Uint8Array, at: number, pid: number) => void,
): boolean => {
  const start = out.length;
  const total = state.streamLength;
  let position = 0;
  let next = 0;
  for (let k = 0; k < state.heldCount; k++) {
    const from = k * PACKET;
    emit(state.held, from, state.pid);
    const bytes = out.bytes;
    const p = out.length - PACKET;
    const flags = state.held[from + 3] ?? 0;
    if ((flags & 0x10) === 0) continue;
    bytes[p + 3] = (flags & 0xcf) | 0x10;
    let i = p + 4;
    const startHere = next < state.starts.length && (state.starts[next] ?? 0) < position + 183;
    if (position >= total || startHere) {
      bytes[p + 1] = (bytes[p + 1] ?? 0) | 0x40;
      bytes[i++] = position >= total ? 0 : (state.starts[next] ?? 0) - position;
      while (next < state.starts.length && (state.starts[next] ?? 0) < position + 183) next++;
    } else bytes[p + 1] = (bytes[p + 1] ?? 0) & 0xbf;
    // A section must start in a packet whose pointer_field says so: one that would start in the last byte of
    // a packet without PUSI waits for the next.
    const limit = startHere || next >= state.starts.length ? total : (state.starts[next] ?? total);
    const take = Math.min(limit - position, p + PACKET - i);
    if (take > 0) {
      bytes.set(state.stream.subarray(position, position + take), i);
      position += take;
      i += take;
    }
    bytes.fill(0xff, i, p + PACKET);
  }
  if (position < total) {
    out.length = start;
    return false;
  }
  return true;
};
