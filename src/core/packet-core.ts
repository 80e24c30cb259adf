/**
 * Host side of the WebAssembly packet core (src/core/assembly). One PacketCore per input, each with its own
 * instance and memory. The core's regions sit at fixed addresses, read from build/layout.ts (generated from
 * assembly/layout.ts by the build, and checked against the module at load); the views over them are made
 * once, so a push allocates nothing.
 *
 * What it counts is read out by packet-core-snapshot.ts, what it reports by packet-core-events.ts, both through
 * the views of packet-core-memory.ts.
 *
 * Not thread-safe and not re-entrant across inputs: each PacketCore belongs to the one fiber that receives
 * its input.
 */
import { CORE } from "./build/layout.ts";
import { type CoreEvent, decodeEvent, type InputKind, inputKindOf } from "./packet-core-events.ts";
import { type CoreMemory, coreMemory, i32At, u32At, u64At } from "./packet-core-memory.ts";
import {
  type CoreCounters,
  type CoreSnapshot,
  readCounters,
  readPids,
  readPrograms,
} from "./packet-core-snapshot.ts";
import { PACKET } from "./ts/index.ts";
import { type CoreLayout, checkLayout, instantiate, prepareInstances, type WasmMemory } from "./wasm.ts";

const { INPUT, INPUT_CAPACITY, STATUS, EVENTS, EVENTS_SIZE } = CORE;
const { RX_HEADERS, RX_IOVECS, RX_NAMES, RX_DATA, RX_RESULTS, RX_OUT, RX_SLOTS, RX_SLOT_BYTES } = CORE;

/**
 * What push returns for a datagram it rejected whole (never forwarded): counted as malformed (not whole TS)
 * up to TsSyncByteMissing, then each under its own reason.
 */
export const CoreStatus = {
  /** Empty, or too short to be RTP and not a TS datagram. */
  TooShort: CORE.E_TOO_SHORT,
  /** Larger than the core's input region (64 KiB). */
  TooLong: CORE.E_TOO_LONG,
  /** Neither RTP version 2 nor TS (first byte 0x47, length a multiple of 188). */
  UnknownFormat: CORE.E_UNKNOWN_FORMAT,
  /** The RTP CSRC list runs past the datagram. */
  RtpCsrcOverrun: CORE.E_RTP_CSRC,
  /** The RTP header extension runs past the datagram. */
  RtpExtensionOverrun: CORE.E_RTP_EXTENSION,
  /** The RTP padding count is 0 or larger than what follows the header. */
  RtpBadPadding: CORE.E_RTP_PADDING,
  /** The TS payload is not a whole number of 188-byte packets. */
  TsLengthNotMultipleOf188: CORE.E_TS_LENGTH,
  /** A 188-byte packet of the datagram does not start with the sync byte 0x47. */
  TsSyncByteMissing: CORE.E_SYNC,
  /** Plain TS on an input locked to RTP, or RTP on one locked to plain TS. */
  OtherInputKind: CORE.E_OTHER_KIND,
  /** RTP from another SSRC than the one the input is locked to. */
  ForeignSsrc: CORE.E_FOREIGN_SSRC,
  /** RTP with a payload type other than 33 (MPEG-2 TS). */
  WrongPayloadType: CORE.E_PAYLOAD_TYPE,
  /** From a sender outside the input's allow-list (reported by the host with rejectSender). */
  SenderNotAllowed: CORE.E_SENDER,
  /** Sent by one of the service's own outputs (reported by the host with rejectOwnOutput). */
  OwnOutput: CORE.E_OWN_OUTPUT,
  /** RTP whose sequence number the input already took within its receive window (counted in rtp.duplicate). */
  RtpDuplicate: CORE.E_RTP_DUPLICATE,
} as const;
export type CoreStatus = (typeof CoreStatus)[keyof typeof CoreStatus];

/** Where a reader writes datagrams for pushMany: offsets into `memory`, in the 64-bit Linux struct layout. */
export interface ReadSlots {
  readonly memory: Uint8Array;
  /** struct mmsghdr × slots (64 bytes each). */
  readonly headers: number;
  /** struct iovec × slots (16 bytes each). */
  readonly iovecs: number;
  /** 32 bytes of sockaddr room × slots. */
  readonly names: number;
  /** slotBytes × slots. */
  readonly data: number;
  readonly slots: number;
  readonly slotBytes: number;
}

interface CoreExports extends CoreLayout {
  readonly push: (length: number, nowMs: number) => number;
  readonly pushMany: (from: number, count: number, nowMs: number) => number;
  readonly trustSender: (slot: number) => void;
  readonly distrustSender: () => void;
  readonly rejectSlot: (slot: number, reason: number) => void;
  readonly rejectOversize: () => number;
  readonly rejectSender: () => number;
  readonly rejectOwnOutput: () => number;
  readonly configure: (silenceMs: number, lockSsrc: number) => void;
  readonly reset: () => void;
  readonly ping: () => number;
  readonly nextSeenPid: (pid: number) => number;
  readonly pcrRepetitionLimit: (ms: number) => void;
}

export class PacketCore {
  readonly #exports: CoreExports;
  readonly #wasmMemory: WasmMemory;
  readonly #memory: CoreMemory;
  readonly #input: Uint8Array;
  /**
   * `uniformRun`'s views, one per run length: a read of a steady stream gives the same few lengths turn after
   * turn, and a new view a turn and input was most of a forwarding thread's garbage (the memory never grows,
   * as `#input` assumes).
   */
  readonly #runViews = new Map<number, Uint8Array>();

  private constructor(exports: CoreExports) {
    this.#exports = exports;
    this.#wasmMemory = exports.memory;
    checkLayout(
      exports,
      { input: INPUT, inputCapacity: INPUT_CAPACITY, status: STATUS },
      "packet core layout does not match packet-core.ts (rebuild with npm run build:core)",
    );
    this.#memory = coreMemory(exports.memory.buffer);
    this.#input = this.#memory.bytes.subarray(INPUT, INPUT + INPUT_CAPACITY);
  }

  /** Compiles the module on first use; every call returns a new, independent instance. */
  static load(): PacketCore {
    return new PacketCore(instantiate("core", "packet core") as CoreExports);
  }

  /** Makes the memories of the next `count` cores now (wasm.ts `prepareInstances`), for `load` to use. */
  static prepare(count: number): void {
    prepareInstances("core", "packet core", count);
  }

  /**
   * Runs one datagram through the core. `nowMs` is its arrival time on any monotonic millisecond clock;
   * without it the time-based TR 101 290 checks (PAT/PMT every 500 ms, PID presence) are off.
   * Returns the number of TS packets in it, or a negative CoreStatus.
   */
  push(datagram: Uint8Array, nowMs = -1): number {
    if (datagram.length > INPUT_CAPACITY) return this.#exports.rejectOversize();
    this.#input.set(datagram);
    return this.#exports.push(datagram.length, nowMs);
  }

  /**
   * The core's read slots: where recvmmsg(2) writes a batch of datagrams, their senders and lengths, for
   * pushMany to check them where they landed (the struct mmsghdr array is the reader's to fill in).
   */
  get readSlots(): ReadSlots {
    return {
      memory: this.#memory.bytes,
      headers: RX_HEADERS,
      iovecs: RX_IOVECS,
      names: RX_NAMES,
      data: RX_DATA,
      slots: RX_SLOTS,
      slotBytes: RX_SLOT_BYTES,
    };
  }

  /**
   * Checks the datagrams read into the read slots, from `from` up to `count`, as push checks one, and puts
   * each accepted TS payload after the one before it in the run (`run`, `runPayloads`). Stops at the first
   * datagram of another sender than the trusted one and returns its slot: the host then trusts that sender
   * (`trustSender`) or refuses the datagram (`rejectSlot`) and calls again from there. Returns `count` when
   * it went through them all. `from` 0 starts a new run.
   */
  pushMany(from: number, count: number, nowMs: number): number {
    return this.#exports.pushMany(from, count, nowMs);
  }

  /** The sender of the datagram in `slot` may send: its datagrams go through pushMany without asking. */
  trustSender(slot: number): void {
    this.#exports.trustSender(slot);
  }

  /** The senders allowed changed: pushMany asks about every sender again. */
  distrustSender(): void {
    this.#exports.distrustSender();
  }

  /** Counts the datagram in `slot` as refused by the host (SenderNotAllowed or OwnOutput); pushMany goes on past it. */
  rejectSlot(slot: number, reason: typeof CoreStatus.SenderNotAllowed | typeof CoreStatus.OwnOutput): void {
    this.#exports.rejectSlot(slot, reason);
  }

  /** How many datagrams the last pushMany run accepted. */
  get runAccepted(): number {
    return this.#status(CORE.ST_RUN_ACCEPTED);
  }

  /**
   * The TS payloads the last run accepted, one after the other, when each is a whole number of 7-packet
   * datagrams (the usual case: the outputs send it as it is); null otherwise (see `runPayloads`).
   */
  uniformRun(): Uint8Array | null {
    if (this.#status(CORE.ST_RUN_UNIFORM) === 0) return null;
    const bytes = this.#status(CORE.ST_RUN_BYTES);
    let view = this.#runViews.get(bytes);
    if (view === undefined) {
      view = this.#memory.bytes.subarray(RX_OUT, RX_OUT + bytes);
      this.#runViews.set(bytes, view);
    }
    return view;
  }

  /** Each TS payload the last run accepted, in order. */
  runPayloads(onPayload: (payload: Uint8Array) => void): void {
    if (this.#status(CORE.ST_RUN_BYTES) === 0) return;
    for (let slot = 0; slot < RX_SLOTS; slot++) {
      const result = RX_RESULTS + slot * 16;
      const length = u32At(this.#memory, result + 8);
      if (i32At(this.#memory, result) <= 0 || length === 0) continue;
      const offset = RX_OUT + u32At(this.#memory, result + 4);
      onPayload(this.#memory.bytes.subarray(offset, offset + length));
      if (offset + length >= RX_OUT + this.#status(CORE.ST_RUN_BYTES)) return;
    }
  }

  /** Counts a datagram the host dropped because its sender is not allowed; returns SenderNotAllowed. */
  rejectSender(): number {
    return this.#exports.rejectSender();
  }

  /** Counts a datagram the host dropped because one of the service's own outputs sent it; returns OwnOutput. */
  rejectOwnOutput(): number {
    return this.#exports.rejectOwnOutput();
  }

  /**
   * How long the input kind (RTP or plain TS) and the RTP source the core locked to must be silent before it
   * takes another (the channel's failover time; 500 ms until set). `lockSsrc: false` for a merged stream,
   * whose packets come from two inputs. Kept across reset.
   */
  configure(options: { readonly silenceMs: number; readonly lockSsrc: boolean }): void {
    this.#exports.configure(options.silenceMs, options.lockSsrc ? 1 : 0);
  }

  /**
   * The PCR_repetition_error limit (TR 101 290 2.3a): "default" 100 ms, "dvb" 40 ms (its ETSI limit for
   * DVB networks). Kept across reset.
   */
  pcrRepetition(limit: "default" | "dvb"): void {
    this.#exports.pcrRepetitionLimit(limit === "dvb" ? CORE.PCR_REPETITION_DVB_MS : CORE.PCR_REPETITION_MS);
  }

  /** An empty call into the module, for measuring the cost of crossing into WebAssembly. */
  ping(): number {
    return this.#exports.ping();
  }

  /** Where the TS packets of the last pushed datagram start in it (after any RTP header). */
  get payloadOffset(): number {
    return this.#status(CORE.ST_PAYLOAD_OFFSET);
  }

  /** How many TS bytes the last pushed datagram holds; 0 when it was malformed. */
  get payloadLength(): number {
    return this.#status(CORE.ST_PAYLOAD_LENGTH);
  }

  get inputKind(): InputKind {
    return inputKindOf(this.#status(CORE.ST_INPUT_KIND));
  }

  /** The WebAssembly memory's size, for checking that it never grows. */
  get memoryBytes(): number {
    return this.#wasmMemory.buffer.byteLength;
  }

  /** Hands every queued event to `onEvent`, oldest first; returns how many. */
  drainEvents(onEvent: (event: CoreEvent) => void): number {
    const head = this.#status(CORE.ST_EV_HEAD);
    let tail = this.#status(CORE.ST_EV_TAIL);
    let count = 0;
    while (tail !== head) {
      const at = EVENTS + (tail & (EVENTS_SIZE - 1));
      const type = u32At(this.#memory, at);
      const size = u32At(this.#memory, at + 4);
      tail = (tail + size) >>> 0;
      // Committed before the callback, so an event is never delivered twice if the callback throws.
      this.#memory.u32[CORE.ST_EV_TAIL >> 2] = tail;
      if (type === CORE.EV_PAD) continue;
      onEvent(decodeEvent(this.#memory, type, at));
      count++;
    }
    return count;
  }

  /** Everything the core knows, its program and PID tables included (walks all 8192 PID slots). */
  snapshot(): CoreSnapshot {
    return {
      ...this.counters(),
      programs: readPrograms(this.#memory),
      pids: readPids(this.#memory, this.#exports.nextSeenPid),
    };
  }

  /** The TS bytes read so far (the counters' `bytes`), alone: what the read model samples each second. */
  bytes(): number {
    return u64At(this.#memory, CORE.ST_PACKETS) * PACKET;
  }

  /** The counters alone, without walking the tables. */
  counters(): CoreCounters {
    return readCounters(this.#memory);
  }

  /** Forgets everything the core has seen, as if newly loaded. */
  reset(): void {
    this.#exports.reset();
  }

  #status(address: number): number {
    return u32At(this.#memory, address);
  }
}
