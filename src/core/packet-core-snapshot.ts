/**
 * What a packet core has counted, read out of its memory for the host: the counters of its status struct
 * (taken for every input every second, so cheap) and, for a full snapshot, its program and PID tables. The
 * fields are read at the addresses build/layout.ts gives; packet-core.ts hands over the memory.
 */
import { CORE } from "./build/layout.ts";
import { type InputKind, inputKindOf } from "./packet-core-events.ts";
import { type CoreMemory, f64At, i32At, u32At, u64At } from "./packet-core-memory.ts";
import { PACKET } from "./ts/index.ts";

interface PidSnapshot {
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
  /** Arrival times on the push's clock (nowMs), null before one: its last packet, PCR, PES start, PTS. */
  readonly lastSeenMs: number | null;
  readonly lastPcrMs: number | null;
  readonly lastPesMs: number | null;
  readonly lastPtsMs: number | null;
  /** The PTS of that PES start, 90 kHz. */
  readonly lastPts: number | null;
  /** TR 101 290 second priority, on this PID (2.3a, 2.3b, 2.5). */
  readonly pcrRepetitionErrors: number;
  readonly pcrDiscontinuityErrors: number;
  readonly ptsErrors: number;
}

interface ProgramSnapshot {
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
    /** Over 100 ms between a PID's PCRs, or 40 ms with the "dvb" limit (PacketCore.pcrRepetition). */
    readonly pcrRepetitionErrors: number;
    /** A PCR over 100 ms on from the last, or before it, without the discontinuity_indicator. */
    readonly pcrDiscontinuityErrors: number;
    /** Over 700 ms between a PES PID's PTSs. */
    readonly ptsErrors: number;
  };
  /** The last PCR's arrival on any PID, on the push's clock; null before one (or without a clock). */
  readonly lastPcrMs: number | null;
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

/** The counters of the status struct. */
export const readCounters = (memory: CoreMemory): CoreCounters => {
  const status = (address: number) => u32At(memory, address);
  const signed = (address: number) => i32At(memory, address);
  const rtpStarted = signed(CORE.ST_RTP_PAYLOAD_TYPE) >= 0;
  const patVersion = signed(CORE.ST_PAT_VERSION);
  const packets = u64At(memory, CORE.ST_PACKETS);
  return {
    datagrams: u64At(memory, CORE.ST_DATAGRAMS),
    packets,
    bytes: packets * PACKET,
    malformed: status(CORE.ST_MALFORMED),
    rejected: {
      notTs: status(CORE.ST_MALFORMED),
      otherKind: status(CORE.ST_REJECT_OTHER_KIND),
      foreignSsrc: status(CORE.ST_REJECT_SSRC),
      payloadType: status(CORE.ST_REJECT_PAYLOAD_TYPE),
      senderNotAllowed: status(CORE.ST_REJECT_SENDER),
      ownOutput: status(CORE.ST_REJECT_OWN_OUTPUT),
    },
    inputKind: inputKindOf(status(CORE.ST_INPUT_KIND)),
    rtp: {
      payloadType: rtpStarted ? signed(CORE.ST_RTP_PAYLOAD_TYPE) : null,
      ssrc: rtpStarted ? status(CORE.ST_RTP_SSRC) : null,
      lastSequence: rtpStarted ? signed(CORE.ST_RTP_LAST_SEQUENCE) : null,
      lost: status(CORE.ST_RTP_LOST),
      duplicate: status(CORE.ST_RTP_DUPLICATE),
      reordered: status(CORE.ST_RTP_REORDERED),
      ssrcChanges: status(CORE.ST_RTP_SSRC_CHANGES),
      restarts: status(CORE.ST_RTP_RESTARTS),
    },
    syncLocked: status(CORE.ST_SYNC_LOCKED) !== 0,
    tr101290: {
      syncLoss: status(CORE.ST_SYNC_LOSS),
      syncByteErrors: status(CORE.ST_SYNC_BYTE_ERRORS),
      patErrors: status(CORE.ST_PAT_ERRORS),
      ccErrors: status(CORE.ST_CC_ERRORS),
      pmtErrors: status(CORE.ST_PMT_ERRORS),
      pidErrors: status(CORE.ST_PID_ERRORS),
      transportErrors: status(CORE.ST_TRANSPORT_ERRORS),
      crcErrors: status(CORE.ST_CRC_ERRORS),
      pcrRepetitionErrors: status(CORE.ST_PCR_REPETITION_ERRORS),
      pcrDiscontinuityErrors: status(CORE.ST_PCR_DISCONTINUITY_ERRORS),
      ptsErrors: status(CORE.ST_PTS_ERRORS),
    },
    lastPcrMs: clock(memory, CORE.ST_LAST_PCR_MS),
    adaptationFieldErrors: status(CORE.ST_ADAPTATION_ERRORS),
    sectionErrors: status(CORE.ST_SECTION_ERRORS),
    scte35Sections: status(CORE.ST_SCTE35_SECTIONS),
    eventsDropped: status(CORE.ST_EV_DROPPED),
    pat: patVersion < 0 ? null : { version: patVersion, transportStreamId: signed(CORE.ST_TS_ID) },
  };
};

/** The programs of the program table, by number. */
export const readPrograms = (memory: CoreMemory): ProgramSnapshot[] => {
  const programs: ProgramSnapshot[] = [];
  for (let i = 0; i < CORE.MAX_PROGRAMS; i++) {
    const entry = CORE.PROGRAMS + i * CORE.PROGRAM_STRIDE;
    if (u32At(memory, entry + CORE.PG_IN_USE) === 0) continue;
    const version = i32At(memory, entry + CORE.PG_VERSION);
    programs.push({
      program: u32At(memory, entry + CORE.PG_NUMBER),
      pmtPid: u32At(memory, entry + CORE.PG_PMT_PID),
      pcrPid: version < 0 ? null : u32At(memory, entry + CORE.PG_PCR_PID),
      pmtVersion: version < 0 ? null : version,
    });
  }
  return programs.sort((a, b) => a.program - b.program);
};

/**
 * The PIDs of the PID table that carried packets or are listed. Only the PIDs the core marked as seen
 * (`nextSeenPid`) are read: the others' entries hold nothing, and reading them would make their pages
 * resident on kernels without a zero page.
 */
export const readPids = (memory: CoreMemory, nextSeenPid: (pid: number) => number): PidSnapshot[] => {
  const { F_REFERENCED, F_SCTE35, F_HAS_PCR } = CORE;
  const pids: PidSnapshot[] = [];
  for (let pid = nextSeenPid(0); pid < CORE.PID_COUNT; pid = nextSeenPid(pid + 1)) {
    const entry = CORE.PIDS + pid * CORE.PID_STRIDE;
    const field = (offset: number) => u32At(memory, entry + offset);
    const flags = field(CORE.PD_FLAGS);
    const times = CORE.TIMES + pid * CORE.TM_STRIDE;
    const packets = u64At(memory, entry + CORE.PD_PACKETS);
    if (packets === 0 && (flags & (F_REFERENCED | F_SCTE35)) === 0) continue;
    const streamType = (flags >> 8) & 0xff;
    pids.push({
      pid,
      streamType: (flags & (F_REFERENCED | F_SCTE35)) === 0 ? null : streamType,
      packets,
      bytes: packets * PACKET,
      payloadBytes: u64At(memory, entry + CORE.PD_PAYLOAD_BYTES),
      ccErrors: field(CORE.PD_CC_ERRORS),
      randomAccess: field(CORE.PD_RANDOM_ACCESS),
      discontinuities: field(CORE.PD_DISCONTINUITIES),
      adaptationFieldErrors: field(CORE.PD_ADAPTATION_ERRORS),
      scrambled: field(CORE.PD_SCRAMBLED),
      lastPcr: (flags & F_HAS_PCR) === 0 ? null : f64At(memory, entry + CORE.PD_LAST_PCR),
      scte35: (flags & F_SCTE35) !== 0,
      referenced: (flags & F_REFERENCED) !== 0,
      lastCc: ccOf(field(CORE.PD_CC_STATE)),
      lastSeenMs: clock(memory, entry + CORE.PD_LAST_SEEN_MS),
      lastPcrMs: clock(memory, times + CORE.TM_PCR_MS),
      lastPesMs: clock(memory, times + CORE.TM_PES_MS),
      lastPtsMs: clock(memory, times + CORE.TM_PTS_MS),
      lastPts: clock(memory, times + CORE.TM_PTS_MS) === null ? null : f64At(memory, times + CORE.TM_PTS),
      pcrRepetitionErrors: u32At(memory, times + CORE.TM_PCR_REPETITION),
      pcrDiscontinuityErrors: u32At(memory, times + CORE.TM_PCR_DISCONTINUITY),
      ptsErrors: u32At(memory, times + CORE.TM_PTS_ERRORS),
    });
  }
  return pids;
};

/** A time the core keeps as milliseconds plus one, zero for never. */
const clock = (memory: CoreMemory, address: number): number | null => {
  const ms = f64At(memory, address);
  return ms === 0 ? null : ms - 1;
};

/** PD_CC_STATE: bits 0–3 the last CC, bit 4 set once one was seen. */
const ccOf = (state: number): number | null => ((state & 0x10) === 0 ? null : state & 0x0f);
