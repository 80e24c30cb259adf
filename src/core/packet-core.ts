/**
 * Host side of the WebAssembly packet core (src/core/assembly). One PacketCore per input, each with its own
 * instance and memory. The core's regions sit at fixed addresses, read from build/layout.ts (generated from
 * assembly/layout.ts by the build, and checked against the module at load); the views over them are made
 * once, so a push allocates nothing.
 *
 * Not thread-safe and not re-entrant across inputs: each PacketCore belongs to the one fiber that receives
 * its input.
 *
 * One file, over 450 lines, because it is the host's table of the core's binary layout (status words, event
 * records, PID and program tables), mirrored field for field from src/core/assembly; split, that one layout
 * would be spread over several files that must change together.
 */
import { CORE } from "./build/layout.ts";
import { PACKET, type Pat, type Pmt, readPat, readPmt } from "./ts/index.ts";
import { type CoreLayout, checkLayout, instantiate, type WasmMemory } from "./wasm.ts";

const {
  INPUT,
  INPUT_CAPACITY,
  STATUS,
  PROGRAMS,
  MAX_PROGRAMS,
  PROGRAM_STRIDE,
  EVENTS,
  EVENTS_SIZE,
  PIDS,
  PID_COUNT,
  PID_STRIDE,
  F_SCTE35,
  F_REFERENCED,
  F_HAS_PCR,
  RX_HEADERS,
  RX_IOVECS,
  RX_NAMES,
  RX_DATA,
  RX_RESULTS,
  RX_OUT,
  RX_SLOTS,
  RX_SLOT_BYTES,
} = CORE;

/** A status field's index among the status struct's 32-bit words. */
const statusWord = (address: number) => (address - STATUS) >> 2;

const S = {
  lastStatus: statusWord(CORE.ST_LAST_STATUS),
  payloadOffset: statusWord(CORE.ST_PAYLOAD_OFFSET),
  payloadLength: statusWord(CORE.ST_PAYLOAD_LENGTH),
  inputKind: statusWord(CORE.ST_INPUT_KIND),
  datagrams: statusWord(CORE.ST_DATAGRAMS),
  packets: statusWord(CORE.ST_PACKETS),
  malformed: statusWord(CORE.ST_MALFORMED),
  rtpPayloadType: statusWord(CORE.ST_RTP_PAYLOAD_TYPE),
  rtpSsrc: statusWord(CORE.ST_RTP_SSRC),
  rtpLastSequence: statusWord(CORE.ST_RTP_LAST_SEQUENCE),
  rtpLost: statusWord(CORE.ST_RTP_LOST),
  rtpDuplicate: statusWord(CORE.ST_RTP_DUPLICATE),
  rtpReordered: statusWord(CORE.ST_RTP_REORDERED),
  rtpSsrcChanges: statusWord(CORE.ST_RTP_SSRC_CHANGES),
  rtpRestarts: statusWord(CORE.ST_RTP_RESTARTS),
  rejectOtherKind: statusWord(CORE.ST_REJECT_OTHER_KIND),
  rejectSsrc: statusWord(CORE.ST_REJECT_SSRC),
  rejectPayloadType: statusWord(CORE.ST_REJECT_PAYLOAD_TYPE),
  rejectSender: statusWord(CORE.ST_REJECT_SENDER),
  rejectOwnOutput: statusWord(CORE.ST_REJECT_OWN_OUTPUT),
  syncLocked: statusWord(CORE.ST_SYNC_LOCKED),
  syncLoss: statusWord(CORE.ST_SYNC_LOSS),
  syncByteErrors: statusWord(CORE.ST_SYNC_BYTE_ERRORS),
  patErrors: statusWord(CORE.ST_PAT_ERRORS),
  ccErrors: statusWord(CORE.ST_CC_ERRORS),
  pmtErrors: statusWord(CORE.ST_PMT_ERRORS),
  pidErrors: statusWord(CORE.ST_PID_ERRORS),
  transportErrors: statusWord(CORE.ST_TRANSPORT_ERRORS),
  crcErrors: statusWord(CORE.ST_CRC_ERRORS),
  adaptationFieldErrors: statusWord(CORE.ST_ADAPTATION_ERRORS),
  sectionErrors: statusWord(CORE.ST_SECTION_ERRORS),
  eventHead: statusWord(CORE.ST_EV_HEAD),
  eventTail: statusWord(CORE.ST_EV_TAIL),
  eventsDropped: statusWord(CORE.ST_EV_DROPPED),
  patVersion: statusWord(CORE.ST_PAT_VERSION),
  transportStreamId: statusWord(CORE.ST_TS_ID),
  scte35Sections: statusWord(CORE.ST_SCTE35_SECTIONS),
  runAccepted: statusWord(CORE.ST_RUN_ACCEPTED),
  runBytes: statusWord(CORE.ST_RUN_BYTES),
  runUniform: statusWord(CORE.ST_RUN_UNIFORM),
} as const;

/** Field offsets inside a PID entry and a program entry, as 32-bit word indices. */
const PD = {
  packets: CORE.PD_PACKETS >> 2,
  payloadBytes: CORE.PD_PAYLOAD_BYTES >> 2,
  lastPcr: CORE.PD_LAST_PCR >> 2,
  ccErrors: CORE.PD_CC_ERRORS >> 2,
  randomAccess: CORE.PD_RANDOM_ACCESS >> 2,
  discontinuities: CORE.PD_DISCONTINUITIES >> 2,
  adaptationErrors: CORE.PD_ADAPTATION_ERRORS >> 2,
  flags: CORE.PD_FLAGS >> 2,
  scrambled: CORE.PD_SCRAMBLED >> 2,
  ccState: CORE.PD_CC_STATE >> 2,
} as const;
const PG = {
  inUse: CORE.PG_IN_USE >> 2,
  number: CORE.PG_NUMBER >> 2,
  pmtPid: CORE.PG_PMT_PID >> 2,
  pcrPid: CORE.PG_PCR_PID >> 2,
  version: CORE.PG_VERSION >> 2,
} as const;

const EV = {
  pad: CORE.EV_PAD,
  pat: CORE.EV_PAT,
  pmt: CORE.EV_PMT,
  scte35: CORE.EV_SCTE35,
  ccError: CORE.EV_CC_ERROR,
  sync: CORE.EV_SYNC,
  inputKind: CORE.EV_INPUT_KIND,
  rtpPayloadType: CORE.EV_RTP_PAYLOAD_TYPE,
  tr101290: CORE.EV_TR101290,
  crcError: CORE.EV_CRC_ERROR,
} as const;

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

export type InputKind = "unknown" | "rtp" | "udp-ts";
const INPUT_KINDS: ReadonlyArray<InputKind> = ["unknown", "rtp", "udp-ts"];

export interface PatProgram {
  readonly program: number;
  readonly pmtPid: number;
}
export interface PmtStream {
  readonly streamType: number;
  readonly pid: number;
  readonly descriptors: Uint8Array;
}
/** TR 101 290 first-priority indicators raised by the time-based and table checks. */
export type Tr101290Indicator = "PAT_error" | "PMT_error" | "PID_error";

interface EventBase {
  /** The nowMs of the push that raised the event; null when that push had no clock. */
  readonly atMs: number | null;
}
export type CoreEvent =
  | (EventBase & {
      readonly type: "pat";
      readonly version: number;
      readonly transportStreamId: number;
      readonly programs: ReadonlyArray<PatProgram>;
      readonly networkPid: number | null;
    })
  | (EventBase & {
      readonly type: "pmt";
      readonly pid: number;
      readonly program: number;
      readonly version: number;
      readonly pcrPid: number;
      readonly programInfo: Uint8Array;
      readonly streams: ReadonlyArray<PmtStream>;
    })
  | (EventBase & {
      readonly type: "scte35";
      readonly pid: number;
      /** The last PCR of the section's program, in 27 MHz ticks; null before one was seen. */
      readonly pcr: number | null;
      /** The whole section, table_id 0xFC through CRC_32, CRC verified. */
      readonly section: Uint8Array;
    })
  | (EventBase & {
      readonly type: "ccError";
      readonly pid: number;
      readonly expected: number;
      readonly got: number;
    })
  | (EventBase & { readonly type: "sync"; readonly locked: boolean })
  | (EventBase & { readonly type: "inputKind"; readonly kind: InputKind })
  | (EventBase & {
      readonly type: "rtpPayloadType";
      readonly previous: number | null;
      readonly payloadType: number;
    })
  | (EventBase & { readonly type: "tr101290"; readonly indicator: Tr101290Indicator; readonly pid: number })
  | (EventBase & { readonly type: "crcError"; readonly pid: number; readonly tableId: number });

export interface PidSnapshot {
  readonly pid: number;
  /** From the PMT; null for PIDs no PMT lists. */
  readonly streamType: number | null;
  readonly packets: number;
  /** TS bytes: packets × 188. */
  readonly bytes: number;
  /** Bytes after the header and adaptation field. */
  readonly payloadBytes: number;
  readonly ccErrors: number;
  readonly randomAccess: number;
  readonly discontinuities: number;
  readonly adaptationFieldErrors: number;
  readonly scrambled: number;
  /** 27 MHz ticks; null before a PCR was seen on this PID. */
  readonly lastPcr: number | null;
  /** Sections on this PID are delivered as scte35 events. */
  readonly scte35: boolean;
  /** Listed in the current PMT of its program. */
  readonly referenced: boolean;
  /** The continuity counter of its last packet; null before one was seen. */
  readonly lastCc: number | null;
}

export interface ProgramSnapshot {
  readonly program: number;
  readonly pmtPid: number;
  readonly pcrPid: number | null;
  readonly pmtVersion: number | null;
}

/** Datagrams dropped whole, by reason; none of their bytes reach an output. */
export interface CoreRejections {
  /** Not whole TS: = malformed. */
  readonly notTs: number;
  readonly otherKind: number;
  readonly foreignSsrc: number;
  readonly payloadType: number;
  readonly senderNotAllowed: number;
  /** Sent by one of the service's own outputs: an output aimed at an input. */
  readonly ownOutput: number;
}

export interface CoreSnapshot {
  readonly datagrams: number;
  readonly packets: number;
  readonly bytes: number;
  /** Datagrams that were not whole TS (also rejected.notTs). */
  readonly malformed: number;
  readonly rejected: CoreRejections;
  readonly inputKind: InputKind;
  /** The locked source's figures; they describe the input only while inputKind is "rtp". */
  readonly rtp: {
    readonly payloadType: number | null;
    readonly ssrc: number | null;
    readonly lastSequence: number | null;
    readonly lost: number;
    readonly duplicate: number;
    readonly reordered: number;
    readonly ssrcChanges: number;
    /** Times the same SSRC restarted its sequence (a jump confirmed by the next packet, RFC 3550 A.1). */
    readonly restarts: number;
  };
  readonly syncLocked: boolean;
  readonly tr101290: {
    readonly syncLoss: number;
    readonly syncByteErrors: number;
    readonly patErrors: number;
    readonly ccErrors: number;
    readonly pmtErrors: number;
    readonly pidErrors: number;
    readonly transportErrors: number;
    readonly crcErrors: number;
  };
  readonly adaptationFieldErrors: number;
  readonly sectionErrors: number;
  readonly scte35Sections: number;
  readonly eventsDropped: number;
  readonly pat: { readonly version: number; readonly transportStreamId: number } | null;
  readonly programs: ReadonlyArray<ProgramSnapshot>;
  readonly pids: ReadonlyArray<PidSnapshot>;
}

/** The snapshot without its tables: cheap enough to take for every input every second. */
export type CoreCounters = Omit<CoreSnapshot, "programs" | "pids">;

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
}

const u64 = (words: Uint32Array, index: number): number =>
  (words[index] ?? 0) + (words[index + 1] ?? 0) * 0x1_0000_0000;

export class PacketCore {
  readonly #exports: CoreExports;
  readonly #memory: WasmMemory;
  readonly #bytes: Uint8Array;
  readonly #input: Uint8Array;
  readonly #u32: Uint32Array;
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;

  private constructor(exports: CoreExports) {
    this.#exports = exports;
    this.#memory = exports.memory;
    const buffer = exports.memory.buffer;
    checkLayout(
      exports,
      { input: INPUT, inputCapacity: INPUT_CAPACITY, status: STATUS },
      "packet core layout does not match packet-core.ts (rebuild with npm run build:core)",
    );
    this.#bytes = new Uint8Array(buffer);
    this.#input = this.#bytes.subarray(INPUT, INPUT + INPUT_CAPACITY);
    this.#u32 = new Uint32Array(buffer);
    this.#i32 = new Int32Array(buffer);
    this.#f64 = new Float64Array(buffer);
  }

  /** Compiles the module on first use; every call returns a new, independent instance. */
  static load(): PacketCore {
    return new PacketCore(instantiate("core", "packet core") as CoreExports);
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
      memory: this.#bytes,
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
    return this.#status(S.runAccepted);
  }

  /**
   * The TS payloads the last run accepted, one after the other, when each is a whole number of 7-packet
   * datagrams (the usual case: the outputs send it as it is); null otherwise (see `runPayloads`).
   */
  uniformRun(): Uint8Array | null {
    if (this.#status(S.runUniform) === 0) return null;
    return this.#bytes.subarray(RX_OUT, RX_OUT + this.#status(S.runBytes));
  }

  /** Each TS payload the last run accepted, in order. */
  runPayloads(onPayload: (payload: Uint8Array) => void): void {
    if (this.#status(S.runBytes) === 0) return;
    for (let slot = 0; slot < RX_SLOTS; slot++) {
      const result = (RX_RESULTS >> 2) + slot * 4;
      const length = this.#u32[result + 2] ?? 0;
      if ((this.#i32[result] ?? 0) <= 0 || length === 0) continue;
      const offset = RX_OUT + (this.#u32[result + 1] ?? 0);
      onPayload(this.#bytes.subarray(offset, offset + length));
      if (offset + length >= RX_OUT + this.#status(S.runBytes)) return;
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

  /** An empty call into the module, for measuring the cost of crossing into WebAssembly. */
  ping(): number {
    return this.#exports.ping();
  }

  /** Where the TS packets of the last pushed datagram start in it (after any RTP header). */
  get payloadOffset(): number {
    return this.#u32[(STATUS >> 2) + S.payloadOffset] ?? 0;
  }

  /** How many TS bytes the last pushed datagram holds; 0 when it was malformed. */
  get payloadLength(): number {
    return this.#u32[(STATUS >> 2) + S.payloadLength] ?? 0;
  }

  get inputKind(): InputKind {
    return INPUT_KINDS[this.#status(S.inputKind)] ?? "unknown";
  }

  /** The WebAssembly memory's size, for checking that it never grows. */
  get memoryBytes(): number {
    return this.#memory.buffer.byteLength;
  }

  /** Hands every queued event to `onEvent`, oldest first; returns how many. */
  drainEvents(onEvent: (event: CoreEvent) => void): number {
    const head = this.#status(S.eventHead);
    let tail = this.#status(S.eventTail);
    let count = 0;
    while (tail !== head) {
      const at = EVENTS + (tail & (EVENTS_SIZE - 1));
      const type = this.#u32[at >> 2] ?? EV.pad;
      const size = this.#u32[(at >> 2) + 1] ?? 8;
      tail = (tail + size) >>> 0;
      // Committed before the callback, so an event is never delivered twice if the callback throws.
      this.#u32[(STATUS >> 2) + S.eventTail] = tail;
      if (type === EV.pad) continue;
      onEvent(this.#decodeEvent(type, at));
      count++;
    }
    return count;
  }

  /** Everything the core knows, its program and PID tables included (walks all 8192 PID slots). */
  snapshot(): CoreSnapshot {
    return { ...this.counters(), programs: this.#programs(), pids: this.#pids() };
  }

  /** The TS bytes read so far (the counters' `bytes`), alone: what the read model samples each second. */
  bytes(): number {
    return u64(this.#u32, (STATUS >> 2) + S.packets) * PACKET;
  }

  /** The counters alone, without walking the tables. */
  counters(): CoreCounters {
    const status = (index: number) => this.#status(index);
    const signed = (index: number) => this.#i32[(STATUS >> 2) + index] ?? -1;
    const rtpStarted = signed(S.rtpPayloadType) >= 0;
    const patVersion = signed(S.patVersion);
    const packets = u64(this.#u32, (STATUS >> 2) + S.packets);
    return {
      datagrams: u64(this.#u32, (STATUS >> 2) + S.datagrams),
      packets,
      bytes: packets * PACKET,
      malformed: status(S.malformed),
      rejected: {
        notTs: status(S.malformed),
        otherKind: status(S.rejectOtherKind),
        foreignSsrc: status(S.rejectSsrc),
        payloadType: status(S.rejectPayloadType),
        senderNotAllowed: status(S.rejectSender),
        ownOutput: status(S.rejectOwnOutput),
      },
      inputKind: this.inputKind,
      rtp: {
        payloadType: rtpStarted ? signed(S.rtpPayloadType) : null,
        ssrc: rtpStarted ? status(S.rtpSsrc) : null,
        lastSequence: rtpStarted ? signed(S.rtpLastSequence) : null,
        lost: status(S.rtpLost),
        duplicate: status(S.rtpDuplicate),
        reordered: status(S.rtpReordered),
        ssrcChanges: status(S.rtpSsrcChanges),
        restarts: status(S.rtpRestarts),
      },
      syncLocked: status(S.syncLocked) !== 0,
      tr101290: {
        syncLoss: status(S.syncLoss),
        syncByteErrors: status(S.syncByteErrors),
        patErrors: status(S.patErrors),
        ccErrors: status(S.ccErrors),
        pmtErrors: status(S.pmtErrors),
        pidErrors: status(S.pidErrors),
        transportErrors: status(S.transportErrors),
        crcErrors: status(S.crcErrors),
      },
      adaptationFieldErrors: status(S.adaptationFieldErrors),
      sectionErrors: status(S.sectionErrors),
      scte35Sections: status(S.scte35Sections),
      eventsDropped: status(S.eventsDropped),
      pat: patVersion < 0 ? null : { version: patVersion, transportStreamId: signed(S.transportStreamId) },
    };
  }

  /** Forgets everything the core has seen, as if newly loaded. */
  reset(): void {
    this.#exports.reset();
  }

  #status(index: number): number {
    return this.#u32[(STATUS >> 2) + index] ?? 0;
  }

  #programs(): ProgramSnapshot[] {
    const programs: ProgramSnapshot[] = [];
    for (let i = 0; i < MAX_PROGRAMS; i++) {
      const word = (PROGRAMS + i * PROGRAM_STRIDE) >> 2;
      if (this.#u32[word + PG.inUse] === 0) continue;
      const version = this.#i32[word + PG.version] ?? -1;
      programs.push({
        program: this.#u32[word + PG.number] ?? 0,
        pmtPid: this.#u32[word + PG.pmtPid] ?? 0,
        pcrPid: version < 0 ? null : (this.#u32[word + PG.pcrPid] ?? null),
        pmtVersion: version < 0 ? null : version,
      });
    }
    return programs.sort((a, b) => a.program - b.program);
  }

  #pids(): PidSnapshot[] {
    const pids: PidSnapshot[] = [];
    // Only the PIDs the core marked as seen: the others' entries hold nothing, and reading them would make
    // their pages resident on kernels without a zero page.
    const next = this.#exports.nextSeenPid;
    for (let pid = next(0); pid < PID_COUNT; pid = next(pid + 1)) {
      const word = (PIDS + pid * PID_STRIDE) >> 2;
      const flags = this.#u32[word + PD.flags] ?? 0;
      const packets = u64(this.#u32, word + PD.packets);
      if (packets === 0 && (flags & (F_REFERENCED | F_SCTE35)) === 0) continue;
      const streamType = (flags >> 8) & 0xff;
      pids.push({
        pid,
        streamType: (flags & (F_REFERENCED | F_SCTE35)) === 0 ? null : streamType,
        packets,
        bytes: packets * PACKET,
        payloadBytes: u64(this.#u32, word + PD.payloadBytes),
        ccErrors: this.#u32[word + PD.ccErrors] ?? 0,
        randomAccess: this.#u32[word + PD.randomAccess] ?? 0,
        discontinuities: this.#u32[word + PD.discontinuities] ?? 0,
        adaptationFieldErrors: this.#u32[word + PD.adaptationErrors] ?? 0,
        scrambled: this.#u32[word + PD.scrambled] ?? 0,
        lastPcr: (flags & F_HAS_PCR) === 0 ? null : (this.#f64[(word + PD.lastPcr) >> 1] ?? null),
        scte35: (flags & F_SCTE35) !== 0,
        referenced: (flags & F_REFERENCED) !== 0,
        lastCc: ccOf(this.#u32[word + PD.ccState] ?? 0),
      });
    }
    return pids;
  }

  #decodeEvent(type: number, at: number): CoreEvent {
    const word = at >> 2;
    const clock = this.#f64[(at + 8) >> 3] ?? -1;
    const atMs = clock < 0 ? null : clock;
    const a = this.#u32[word + 4] ?? 0;
    const b = this.#u32[word + 5] ?? 0;
    const c = this.#u32[word + 6] ?? 0;
    switch (type) {
      case EV.pat:
        return { type: "pat", atMs, ...parsePat(this.#bytes.subarray(at + 24, at + 24 + b)) };
      case EV.pmt:
        return { type: "pmt", atMs, pid: a, ...parsePmt(this.#bytes.slice(at + 24, at + 24 + b)) };
      case EV.scte35: {
        const pcr = this.#f64[(at + 24) >> 3] ?? -1;
        return {
          type: "scte35",
          atMs,
          pid: a,
          pcr: pcr < 0 ? null : pcr,
          section: this.#bytes.slice(at + 32, at + 32 + b),
        };
      }
      case EV.ccError:
        return { type: "ccError", atMs, pid: a, expected: b, got: c };
      case EV.sync:
        return { type: "sync", atMs, locked: a !== 0 };
      case EV.inputKind:
        return { type: "inputKind", atMs, kind: INPUT_KINDS[a] ?? "unknown" };
      case EV.rtpPayloadType:
        return { type: "rtpPayloadType", atMs, previous: a === 0xffffffff ? null : a, payloadType: b };
      case EV.tr101290:
        return { type: "tr101290", atMs, indicator: INDICATORS[a] ?? "PID_error", pid: b };
      case EV.crcError:
        return { type: "crcError", atMs, pid: a, tableId: b };
      default:
        throw new Error(`packet core: unknown event type ${type} at ${at}`);
    }
  }
}

const INDICATORS: Readonly<Record<number, Tr101290Indicator>> = {
  [CORE.IND_PAT_ERROR]: "PAT_error",
  [CORE.IND_PMT_ERROR]: "PMT_error",
  [CORE.IND_PID_ERROR]: "PID_error",
};

/** PD_CC_STATE: bits 0–3 the last CC, bit 4 set once one was seen. */
const ccOf = (state: number): number | null => ((state & 0x10) === 0 ? null : state & 0x0f);

// The core has checked table_id, syntax, lengths and CRC of the sections it hands over: these only read fields.
const parsePat = (s: Uint8Array) => {
  const pat = readPat(s) as Pat;
  const programs: PatProgram[] = [];
  let networkPid: number | null = null;
  for (const { program, pid } of pat.programs) {
    if (program === 0) networkPid = pid;
    else programs.push({ program, pmtPid: pid });
  }
  return { version: pat.version, transportStreamId: pat.transportStreamId, programs, networkPid };
};

const parsePmt = (s: Uint8Array) => {
  const pmt = readPmt(s) as Pmt;
  return {
    program: pmt.program,
    version: pmt.version,
    pcrPid: pmt.pcrPid,
    programInfo: s.subarray(12, pmt.infoEnd),
    streams: pmt.streams.map(
      (stream): PmtStream => ({
        streamType: stream.streamType,
        pid: stream.pid,
        descriptors: s.subarray(stream.start + 5, stream.end),
      }),
    ),
  };
};
