/**
 * Host side of the two redundancy cores (src/core/assembly/merge.ts and fec.ts), each its own WebAssembly
 * module and memory so that the packet core's layout stays as it is. As with PacketCore, the views are made
 * once and a call allocates nothing; a datagram handed back is a view into the module's memory, valid until
 * the next call on the same instance.
 */
import { FEC as FEC_LAYOUT, MERGE as MERGE_LAYOUT } from "./build/layout.ts";
import { type CoreLayout, checkLayout, instantiate } from "./wasm.ts";

// Both modules share slots.ts: the same input region and status address (build/layout.ts, generated).
const { INPUT, STATUS } = MERGE_LAYOUT;
const INPUT_CAPACITY = MERGE_LAYOUT.SLOT_SIZE;
/** A status field's index among the status struct's 32-bit words. */
const statusWord = (address: number) => (address - STATUS) >> 2;

const checkRedundancyLayout = (name: string, exports: CoreLayout): void =>
  checkLayout(
    exports,
    { input: INPUT, inputCapacity: INPUT_CAPACITY, status: STATUS },
    `${name} core layout does not match redundancy-core.ts (rebuild with npm run build:core)`,
  );

/** What MergeCore.insert says about a datagram. */
export const MergeInsert = {
  /** The first copy of its sequence number: kept until its turn. */
  Stored: MERGE_LAYOUT.INSERT_STORED,
  /** A later copy of a packet kept or already sent: dropped. */
  Duplicate: MERGE_LAYOUT.INSERT_DUPLICATE,
  /** Not RTP version 2, or shorter than an RTP header: merging needs sequence numbers. */
  NotRtp: MERGE_LAYOUT.E_NOT_RTP,
  /** Larger than a merge slot (2048 bytes). */
  TooLong: MERGE_LAYOUT.E_TOO_LONG,
  /** Its sequence number was given up as lost before it came. */
  Late: MERGE_LAYOUT.E_LATE,
  /** Too far ahead of the packets still waiting: release with no window, then insert again. */
  Ahead: MERGE_LAYOUT.E_AHEAD,
} as const;
export type MergeInsert = (typeof MergeInsert)[keyof typeof MergeInsert];

/** Sequence-merge figures; `received` and `firstCopies` are per path index. */
export interface MergeSnapshot {
  readonly released: number;
  /** Sequence numbers no path delivered within the window. */
  readonly skipped: number;
  readonly duplicates: number;
  readonly late: number;
  readonly notRtp: number;
  readonly tooLong: number;
  readonly resyncs: number;
  readonly pending: number;
  readonly received: ReadonlyArray<number>;
  /** Packets each path delivered first: what it contributed to the merged stream. */
  readonly firstCopies: ReadonlyArray<number>;
}

const M = {
  outAddress: statusWord(MERGE_LAYOUT.ST_OUT_ADDRESS),
  next: statusWord(MERGE_LAYOUT.ST_NEXT),
  pending: statusWord(MERGE_LAYOUT.ST_PENDING),
  released: statusWord(MERGE_LAYOUT.ST_RELEASED),
  skipped: statusWord(MERGE_LAYOUT.ST_SKIPPED),
  duplicates: statusWord(MERGE_LAYOUT.ST_DUPLICATES),
  late: statusWord(MERGE_LAYOUT.ST_LATE),
  notRtp: statusWord(MERGE_LAYOUT.ST_NOT_RTP),
  tooLong: statusWord(MERGE_LAYOUT.ST_TOO_LONG),
  resyncs: statusWord(MERGE_LAYOUT.ST_RESYNCS),
  received: statusWord(MERGE_LAYOUT.ST_RECEIVED),
  firstCopies: statusWord(MERGE_LAYOUT.ST_FIRST_COPIES),
} as const;

interface MergeExports extends CoreLayout {
  readonly insert: (length: number, path: number, nowMs: number) => number;
  readonly release: (nowMs: number, windowMs: number) => number;
  readonly reset: () => void;
}

/** The ST 2022-7 merge and reorder buffer: first copy of each RTP sequence number, released in order. */
export class MergeCore {
  readonly #exports: MergeExports;
  readonly #bytes: Uint8Array;
  readonly #input: Uint8Array;
  readonly #u32: Uint32Array;
  readonly #f64: Float64Array;

  private constructor(exports: MergeExports) {
    checkRedundancyLayout("merge", exports);
    this.#exports = exports;
    this.#bytes = new Uint8Array(exports.memory.buffer);
    this.#input = this.#bytes.subarray(INPUT, INPUT + INPUT_CAPACITY);
    this.#u32 = new Uint32Array(exports.memory.buffer);
    this.#f64 = new Float64Array(exports.memory.buffer);
  }

  static load(): MergeCore {
    return new MergeCore(instantiate("merge", "redundancy core") as MergeExports);
  }

  /** `path` (0-3) only labels the counters. */
  insert(datagram: Uint8Array, path: number, nowMs: number): MergeInsert {
    // An oversized datagram is not copied: the core refuses it by its length alone.
    if (datagram.length <= INPUT_CAPACITY) this.#input.set(datagram);
    return this.#exports.insert(datagram.length, path, nowMs) as MergeInsert;
  }

  /**
   * The next datagram in sequence, or null while the next is missing and the packet after the gap has waited
   * less than `windowMs` (a negative window gives gaps up at once).
   */
  release(nowMs: number, windowMs: number): Uint8Array | null {
    const length = this.#exports.release(nowMs, windowMs);
    if (length <= 0) return null;
    const at = this.#word(M.outAddress);
    return this.#bytes.subarray(at, at + length);
  }

  /**
   * Once `release` returned null: when the gap it waits on expires (the arrival of the packet after it plus
   * `windowMs`), or null when nothing waits.
   */
  gapExpiry(windowMs: number): number | null {
    if (this.#word(M.pending) === 0) return null;
    return (this.#f64[MERGE_LAYOUT.ST_GAP_ARRIVED >> 3] ?? 0) + windowMs;
  }

  get memoryBytes(): number {
    return this.#exports.memory.buffer.byteLength;
  }

  snapshot(): MergeSnapshot {
    const lanes = (first: number) => [0, 1, 2, 3].map((lane) => this.#word(first + lane));
    return {
      released: this.#word(M.released),
      skipped: this.#word(M.skipped),
      duplicates: this.#word(M.duplicates),
      late: this.#word(M.late),
      notRtp: this.#word(M.notRtp),
      tooLong: this.#word(M.tooLong),
      resyncs: this.#word(M.resyncs),
      pending: this.#word(M.pending),
      received: lanes(M.received),
      firstCopies: lanes(M.firstCopies),
    };
  }

  reset(): void {
    this.#exports.reset();
  }

  #word(index: number): number {
    return this.#u32[(STATUS >> 2) + index] ?? 0;
  }
}

/** What FecCore.media and FecCore.fec return for a datagram they could not use. */
export const FecStatus = {
  NotRtp: FEC_LAYOUT.E_NOT_RTP,
  TooLong: FEC_LAYOUT.E_TOO_LONG,
  /** An FEC packet whose header is cut short, names another code than XOR, or protects an impossible set. */
  MalformedFec: FEC_LAYOUT.E_MALFORMED_FEC,
} as const;
export type FecStatus = (typeof FecStatus)[keyof typeof FecStatus];

export interface FecSnapshot {
  readonly mediaPackets: number;
  readonly columnPackets: number;
  readonly rowPackets: number;
  /**
   * Media packets rebuilt from FEC that the media stream lacked: one rebuilt before its own copy came (an FEC
   * socket read first) is not counted; one rebuilt ahead of the media stream counts once the stream passes it.
   */
  readonly recovered: number;
  /** Media packets still missing once no FEC packet could bring them back. */
  readonly unrecoverable: number;
  readonly malformedFec: number;
  /** FEC packets that came after the media they protect had left the buffer. */
  readonly staleFec: number;
  readonly notRtp: number;
  readonly tooLong: number;
}

const F = {
  recoveredNow: statusWord(FEC_LAYOUT.ST_RECOVERED_NOW),
  media: statusWord(FEC_LAYOUT.ST_MEDIA),
  column: statusWord(FEC_LAYOUT.ST_COLUMN),
  row: statusWord(FEC_LAYOUT.ST_ROW),
  recovered: statusWord(FEC_LAYOUT.ST_RECOVERED),
  unrecoverable: statusWord(FEC_LAYOUT.ST_UNRECOVERABLE),
  malformedFec: statusWord(FEC_LAYOUT.ST_MALFORMED_FEC),
  notRtp: statusWord(FEC_LAYOUT.ST_NOT_RTP),
  tooLong: statusWord(FEC_LAYOUT.ST_TOO_LONG),
  staleFec: statusWord(FEC_LAYOUT.ST_STALE_FEC),
} as const;

interface FecExports extends CoreLayout {
  readonly media: (length: number) => number;
  readonly fec: (length: number) => number;
  readonly recoveredAddress: () => number;
  readonly mediaAddress: (sequence: number) => number;
  readonly mediaLength: (sequence: number) => number;
  readonly reset: () => void;
}

/** SMPTE 2022-1 column and row FEC decoder for one input. */
export class FecCore {
  readonly #exports: FecExports;
  readonly #bytes: Uint8Array;
  readonly #input: Uint8Array;
  readonly #u32: Uint32Array;
  readonly #recovered: number;

  private constructor(exports: FecExports) {
    checkRedundancyLayout("fec", exports);
    this.#exports = exports;
    this.#bytes = new Uint8Array(exports.memory.buffer);
    this.#input = this.#bytes.subarray(INPUT, INPUT + INPUT_CAPACITY);
    this.#u32 = new Uint32Array(exports.memory.buffer);
    this.#recovered = exports.recoveredAddress();
  }

  static load(): FecCore {
    return new FecCore(instantiate("fec", "redundancy core") as FecExports);
  }

  /** Keeps a media datagram for recovery. Returns how many packets it completed (see `recovered`). */
  media(datagram: Uint8Array): number {
    if (datagram.length <= INPUT_CAPACITY) this.#input.set(datagram);
    return this.#exports.media(datagram.length);
  }

  /** Takes a column or row FEC datagram. Returns how many media packets it rebuilt (see `recovered`). */
  fec(datagram: Uint8Array): number {
    if (datagram.length <= INPUT_CAPACITY) this.#input.set(datagram);
    return this.#exports.fec(datagram.length);
  }

  /** The i-th packet rebuilt by the last call, as a whole RTP datagram. */
  recovered(index: number): Uint8Array {
    const sequence = this.#u32[(this.#recovered >> 2) + index] ?? 0;
    const at = this.#exports.mediaAddress(sequence);
    return this.#bytes.subarray(at, at + this.#exports.mediaLength(sequence));
  }

  get memoryBytes(): number {
    return this.#exports.memory.buffer.byteLength;
  }

  snapshot(): FecSnapshot {
    const word = (index: number) => this.#u32[(STATUS >> 2) + index] ?? 0;
    return {
      mediaPackets: word(F.media),
      columnPackets: word(F.column),
      rowPackets: word(F.row),
      recovered: word(F.recovered),
      unrecoverable: word(F.unrecoverable),
      malformedFec: word(F.malformedFec),
      staleFec: word(F.staleFec),
      notRtp: word(F.notRtp),
      tooLong: word(F.tooLong),
    };
  }

  reset(): void {
    this.#exports.reset();
  }
}
