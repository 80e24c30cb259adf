/**
 * What the packet core tells its host, as events: the tables it read (PAT, PMT, SCTE-35 sections), continuity
 * and CRC errors, sync and input-kind changes, TR 101 290 indicators. The core queues each as a record in its
 * event ring; this is the record's layout read back into a CoreEvent. PacketCore.drainEvents walks the ring.
 */
import { CORE } from "./build/layout.ts";
import { type CoreMemory, f64At, u32At } from "./packet-core-memory.ts";
import { type Pat, type Pmt, readPat, readPmt } from "./ts/index.ts";

export type InputKind = "unknown" | "rtp" | "udp-ts";
/** The core's input-kind number (KIND_* in assembly/layout.ts) as the host names it. */
export const inputKindOf = (kind: number): InputKind => INPUT_KINDS[kind] ?? "unknown";
const INPUT_KINDS: ReadonlyArray<InputKind> = ["unknown", "rtp", "udp-ts"];

interface PatProgram {
  readonly program: number;
  readonly pmtPid: number;
}
export interface PmtStream {
  readonly streamType: number;
  readonly pid: number;
  readonly descriptors: Uint8Array;
}
/**
 * TR 101 290 indicators raised as events: first priority from the time-based and table checks, second from
 * the packet and timing checks. CRC_error (2.2) has its own event, crcError, which names the table.
 */
export type Tr101290Indicator =
  | "PAT_error"
  | "PMT_error"
  | "PID_error"
  | "Transport_error"
  | "PCR_repetition_error"
  | "PCR_discontinuity_indicator_error"
  | "PTS_error";

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

/**
 * The event record of `type` at `at` (assembly/events.ts): type, size and the push's clock in its 16-byte
 * header, then its words; a table's section follows its first two words, an SCTE-35 one the program's PCR.
 */
export const decodeEvent = (memory: CoreMemory, type: number, at: number): CoreEvent => {
  const clock = f64At(memory, at + 8);
  const atMs = clock < 0 ? null : clock;
  const a = u32At(memory, at + 16);
  const b = u32At(memory, at + 20);
  const c = u32At(memory, at + 24);
  switch (type) {
    case CORE.EV_PAT:
      return { type: "pat", atMs, ...parsePat(memory.bytes.subarray(at + 24, at + 24 + b)) };
    case CORE.EV_PMT:
      return { type: "pmt", atMs, pid: a, ...parsePmt(memory.bytes.slice(at + 24, at + 24 + b)) };
    case CORE.EV_SCTE35: {
      const pcr = f64At(memory, at + 24);
      return {
        type: "scte35",
        atMs,
        pid: a,
        pcr: pcr < 0 ? null : pcr,
        section: memory.bytes.slice(at + 32, at + 32 + b),
      };
    }
    case CORE.EV_CC_ERROR:
      return { type: "ccError", atMs, pid: a, expected: b, got: c };
    case CORE.EV_SYNC:
      return { type: "sync", atMs, locked: a !== 0 };
    case CORE.EV_INPUT_KIND:
      return { type: "inputKind", atMs, kind: inputKindOf(a) };
    case CORE.EV_RTP_PAYLOAD_TYPE:
      return { type: "rtpPayloadType", atMs, previous: a === 0xffffffff ? null : a, payloadType: b };
    case CORE.EV_TR101290:
      return { type: "tr101290", atMs, indicator: INDICATORS[a] ?? "PID_error", pid: b };
    case CORE.EV_CRC_ERROR:
      return { type: "crcError", atMs, pid: a, tableId: b };
    default:
      throw new Error(`packet core: unknown event type ${type} at ${at}`);
  }
};

const INDICATORS: Readonly<Record<number, Tr101290Indicator>> = {
  [CORE.IND_PAT_ERROR]: "PAT_error",
  [CORE.IND_PMT_ERROR]: "PMT_error",
  [CORE.IND_PID_ERROR]: "PID_error",
  [CORE.IND_TRANSPORT_ERROR]: "Transport_error",
  [CORE.IND_PCR_REPETITION_ERROR]: "PCR_repetition_error",
  [CORE.IND_PCR_DISCONTINUITY_ERROR]: "PCR_discontinuity_indicator_error",
  [CORE.IND_PTS_ERROR]: "PTS_error",
};

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
