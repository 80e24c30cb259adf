/**
 * Elementary streams out of MPEG-TS for the FLV remux: the PAT and PMT name the program's video (H.264, HEVC;
 * AV1: stream_type 0x06 registered `AV01`, its PES in the start code format: av1.ts) and audio (ADTS AAC, MPEG audio) PIDs, and each PID's PES packets are reassembled into access units with
 * their PTS and DTS (33-bit, 90 kHz, as the stream has them). An analyser, not a TS filter (ts-filter.ts).
 *
 *   const demux = new EsDemuxer((unit) => …)   // unit.data is a view, valid only during the call
 *   demux.push(chunk)                         // whole 188-byte packets
 *   demux.flush()                             // the PES still open at the end of a file
 *
 * A PES ends where the next one starts on its PID, or as soon as its PES_packet_length is reached (audio PES
 * usually carry one; a length too short to hold the PES's own header is a lie, and not waited for).
 *
 * What is damaged but can still be framed is handed on, as a decoder of the TS would read it: a PES with a
 * continuity gap goes with its hole; a header whose lengths lie or whose prefix is broken still gives its
 * payload (video: from its first start code; audio: after the timestamps, where the frame readers find their
 * sync); timestamps whose marker bits are wrong are not read (`pts` -1: the remux times the frame from the one
 * before). Only what has nothing to frame is dropped and told (`bad`): a video PES with no start code, an
 * audio PES whose header or timestamps cannot be read, more than MAX_PES_BYTES.
 * Each PID's buffer grows to its largest PES and is then reused, and packets are read where they lie in the
 * chunk (no view of each), so steady state allocates nothing per packet.
 */

import {
  ccAt,
  firstProgram,
  hasPayloadAt,
  nextCc,
  PACKET,
  payloadOffset,
  pidAt,
  readPat,
  readPmt,
  SectionReader,
  SYNC,
  sameBytes,
  unitStartAt,
} from "../ts/index.ts";
import { STREAM_TYPE_H264, STREAM_TYPE_H265 } from "../ts/stream-types.ts";
import { startCodeKeyFrame } from "./av1.ts";
import { forbidden, H264_NAL, NalUnits, nalType, startCodeAt, type VideoCodec } from "./nal.ts";
import { copyBytes } from "./tags.ts";

/** A PES larger than this lost its start or lies about its length: 16 MiB is over a second of 100 Mbit/s. */
const MAX_PES_BYTES = 16 * 1024 * 1024;

/** A PES that could not be read, on `pid`, and what was wrong with it. */
type BadPes = (pid: number, codec: EsCodec, detail: string) => void;

export type AudioCodec = "aac" | "mpeg-audio";
/** The video codecs the remux carries: those of NAL units (nal.ts), and AV1's OBUs. */
export type EsVideoCodec = VideoCodec | "av1";
type EsCodec = EsVideoCodec | AudioCodec;

/** The codec the remux can carry for a PMT stream_type, or undefined (AC-3, MPEG-2 video, data…). */
const esCodecOf = (streamType: number): EsCodec | undefined => {
  switch (streamType) {
    case STREAM_TYPE_H264:
      return "h264";
    case STREAM_TYPE_H265:
      return "hevc";
    case 0x0f:
      return "aac";
    case 0x03:
    case 0x04:
      return "mpeg-audio";
    default:
      return undefined;
  }
};

export const isVideoCodec = (codec: EsCodec): codec is VideoCodec => codec === "h264" || codec === "hevc";
const isVideo = (codec: EsCodec): codec is EsVideoCodec => codec !== "aac" && codec !== "mpeg-audio";

/** A PMT entry's descriptors (`section[from, to)`) hold the registration descriptor `AV01`. */
const registeredAv1 = (section: Uint8Array, from: number, to: number): boolean => {
  for (let at = from; at + 2 <= to; at += 2 + (section[at + 1] ?? 0)) {
    if (
      section[at] === 0x05 &&
      (section[at + 1] ?? 0) >= 4 &&
      sameBytes(section.subarray(at + 2, at + 6), AV01)
    )
      return true;
  }
  return false;
};
const AV01 = Uint8Array.of(0x41, 0x56, 0x30, 0x31);

export interface AccessUnit {
  readonly pid: number;
  readonly codec: EsCodec;
  /** 33-bit, 90 kHz; -1 when the PES carries none, or its marker bits say it cannot be trusted (video only). */
  readonly pts: number;
  /** The PTS when the PES carries no DTS. */
  readonly dts: number;
  /** For video: the access unit holds an IDR (H.264) or IRAP (HEVC) picture, or an AV1 key frame. Audio: true. */
  readonly keyframe: boolean;
  /** The PES payload: a view into a reused buffer, valid only until the callback returns. */
  readonly data: Uint8Array;
  /** H.264, HEVC: the NAL units of `data`, found once for `keyframe` and read again by the remux; else none. */
  readonly nals: NalUnits;
}

const EMPTY = new Uint8Array(0);

/** One PID's PES being collected, and the access unit handed out for it (reused). */
class PesStream implements AccessUnit {
  readonly pid: number;
  readonly codec: EsCodec;
  pts = -1;
  dts = -1;
  keyframe = false;
  data: Uint8Array = EMPTY;
  readonly nals = new NalUnits();
  private buffer = new Uint8Array(64 * 1024);
  private length = 0;
  /** Bytes the PES header says it holds after its length field, or 0 when unbounded. */
  private expected = 0;
  private collecting = false;
  private continuity = -1;
  /** Where the payload of the PES being handed on starts in `buffer`. */
  private payload = 0;
  /** Video: where in the PES being collected packets were lost (null for audio, whose readers resync). */
  private readonly gaps: number[] | null;

  constructor(pid: number, codec: EsCodec) {
    this.pid = pid;
    this.codec = codec;
    this.gaps = isVideo(codec) ? [] : null;
  }

  /**
   * Adds the packet at `chunk[at]` whose payload begins `start` bytes into it; a PES it completes goes to
   * `emit`.
   */
  take(
    chunk: Uint8Array,
    at: number,
    start: number,
    unitStart: boolean,
    emit: (unit: AccessUnit) => void,
    bad: BadPes,
  ): void {
    const cc = ccAt(chunk, at);
    const hasPayload = hasPayloadAt(chunk, at);
    if (hasPayload && this.continuity >= 0 && !unitStart) {
      if (cc === this.continuity) return; // a duplicate packet, which the standard allows once
      // A packet lost: the PES goes on with a hole, which a decoder conceals as it does reading the TS.
      if (cc !== nextCc(this.continuity) && this.collecting && this.gaps !== null)
        this.gaps.push(this.length);
    }
    if (hasPayload) this.continuity = cc;
    if (start >= PACKET) return;
    if (unitStart) {
      if (this.collecting) this.finish(emit, bad);
      this.length = 0;
      if (this.gaps !== null) this.gaps.length = 0;
      this.collecting = true;
    }
    if (!this.collecting) return;
    if (this.length + PACKET - start > MAX_PES_BYTES) {
      this.collecting = false;
      this.expected = 0;
      bad(
        this.pid,
        this.codec,
        `a PES of more than ${MAX_PES_BYTES / 1024 / 1024} MiB (its start was lost, or its header lies)`,
      );
      return;
    }
    this.append(chunk, at + start, at + PACKET);
    if (this.expected === 0 && this.length >= 9) {
      const expected = ((this.buffer[4] ?? 0) << 8) | (this.buffer[5] ?? 0);
      // A length that cannot even hold the PES's header lies: the PES ends where the next one starts.
      this.expected = expected >= 3 + (this.buffer[8] ?? 0) ? expected : 0;
    }
    if (this.expected > 0 && this.length >= 6 + this.expected) this.finish(emit, bad);
  }

  /** Hands on the PES collected so far, if anything of it can be framed; else tells why not. */
  finish(emit: (unit: AccessUnit) => void, bad: BadPes): void {
    if (!this.collecting) return;
    const length = this.expected > 0 ? Math.min(this.length, 6 + this.expected) : this.length;
    this.collecting = false;
    this.expected = 0;
    const problem = this.readHeader(length);
    if (problem !== null) {
      if (this.gaps !== null) this.gaps.length = 0;
      bad(this.pid, this.codec, problem);
      return;
    }
    this.data = this.buffer.subarray(this.payload, this.gaps?.length ? this.cutAtGaps(length) : length);
    this.keyframe = isVideoCodec(this.codec)
      ? holdsKeyPicture(this.codec, this.data, this.nals.scan(this.data))
      : this.codec === "av1"
        ? startCodeKeyFrame(this.data)
        : true;
    emit(this);
    this.data = EMPTY;
  }

  /**
   * Where packets of a video PES were lost, the bytes from the hole to the next start code are no use to a
   * decoder (the rest of a NAL unit cut in two, or the tail of the next PES when its first packet was lost):
   * they are cut out, so the frame goes on from its next NAL unit. The PES's new length.
   */
  private cutAtGaps(length: number): number {
    const gaps = this.gaps as number[];
    const b = this.buffer;
    let end = length;
    for (let i = gaps.length - 1; i >= 0; i--) {
      const at = gaps[i] as number;
      if (at < this.payload || at >= end) continue;
      let code = startCodeAt(b.subarray(0, end), at);
      if (code < 0) {
        end = at;
        continue;
      }
      if (code > at && b[code - 1] === 0) code--;
      b.copyWithin(at, code, end);
      end -= code - at;
    }
    gaps.length = 0;
    return end;
  }

  /**
   * Reads the header of the PES of `length` bytes collected: its times (-1 when it carries none or they cannot
   * be read) and where its payload starts. Why nothing of it can be framed, in words; null when something can.
   */
  private readHeader(length: number): string | null {
    const b = this.buffer;
    const headed = length >= 9 && b[0] === 0 && b[1] === 0 && b[2] === 1 && ((b[6] ?? 0) & 0xc0) === 0x80;
    const flags = headed ? (b[7] ?? 0) >> 6 : 0;
    const fields = flags === 3 ? 10 : flags === 2 ? 5 : 0;
    const timed =
      fields > 0 && 9 + fields <= length && timestampMarked(b, 9) && (flags === 2 || timestampMarked(b, 14));
    this.pts = timed ? readTimestamp(b, 9) : -1;
    this.dts = timed && flags === 3 ? readTimestamp(b, 14) : this.pts;
    const stated = 9 + (b[8] ?? 0);
    if (isVideo(this.codec)) {
      // An access unit starts with a start code: where the header says, or else at the first one after it.
      if (headed && stated + 3 <= length && startsWithStartCode(b, stated)) {
        this.payload = stated;
        return null;
      }
      const from = headed ? 9 + fields : Math.min(9, length);
      const code = from < length ? startCodeAt(b.subarray(0, length), from) : -1;
      if (code < 0)
        return headed
          ? "a video PES whose header lies, with no start code after it"
          : "a PES that does not start with a PES header, with no start code in it";
      // A 4-byte start code is found at its last three bytes.
      this.payload = code > from && b[code - 1] === 0 ? code - 1 : code;
      return null;
    }
    // Audio: the ADTS and MPEG audio readers find their own sync, but a frame needs its time.
    if (!headed)
      return length < 9 || b[0] !== 0 || b[1] !== 0 || b[2] !== 1
        ? "a PES that does not start with a PES header"
        : "a PES header whose marker bits are wrong";
    if (flags === 1) return "a PES header with a DTS and no PTS";
    if (9 + fields > length) return `a PES header of ${9 + fields} bytes in a PES of ${length}`;
    if (fields > 0 && !timestampMarked(b, 9)) return "a PES header whose PTS has no markers";
    if (flags === 3 && !timed) return "a PES header whose DTS has no markers";
    this.payload = stated <= length ? stated : 9 + fields;
    return null;
  }

  /** Forgets the PES being collected. */
  drop(): void {
    this.collecting = false;
    this.expected = 0;
    this.data = EMPTY;
  }

  private append(chunk: Uint8Array, from: number, to: number): void {
    const size = to - from;
    if (this.length + size > this.buffer.length) {
      const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + size));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    copyBytes(chunk, from, to, this.buffer, this.length);
    this.length += size;
  }
}

/** A PTS or DTS field's marker bits (the last bit of its 1st, 3rd and 5th bytes) are all set. */
const timestampMarked = (b: Uint8Array, at: number): boolean =>
  ((b[at] ?? 0) & (b[at + 2] ?? 0) & (b[at + 4] ?? 0) & 1) === 1;

/** An Annex B start code (00 00 01, or 00 00 00 01) at `at`. */
const startsWithStartCode = (b: Uint8Array, at: number): boolean =>
  b[at] === 0 && b[at + 1] === 0 && (b[at + 2] === 1 || (b[at + 2] === 0 && b[at + 3] === 1));

/** A PTS or DTS field: 33 bits spread over 5 bytes with marker bits. */
const readTimestamp = (b: Uint8Array, at: number): number =>
  (((b[at] ?? 0) >> 1) & 0x07) * 2 ** 30 +
  (b[at + 1] ?? 0) * 2 ** 22 +
  ((b[at + 2] ?? 0) >> 1) * 2 ** 15 +
  (b[at + 3] ?? 0) * 2 ** 7 +
  ((b[at + 4] ?? 0) >> 1);

/** Whether an IDR (H.264) or IRAP (HEVC) picture is among the NAL units (one whose forbidden bit is set is none). */
const holdsKeyPicture = (codec: VideoCodec, data: Uint8Array, nals: NalUnits): boolean => {
  for (let i = 0; i < nals.count; i++) {
    if (forbidden(data, nals.start(i))) continue;
    const type = nalType(codec, data, nals.start(i));
    if (codec === "h264" ? type === H264_NAL.idr : type >= 16 && type <= 23) return true;
  }
  return false;
};

interface ProgramStreams {
  readonly video?: { readonly pid: number; readonly codec: EsVideoCodec; readonly streamType: number };
  readonly audio?: { readonly pid: number; readonly codec: AudioCodec; readonly streamType: number };
  /** Stream types of the program that the remux cannot carry, for a state that names them. */
  readonly unsupported: ReadonlyArray<number>;
}

/** The first video and first audio stream the remux can carry in a PMT section. */
export const programStreams = (section: Uint8Array): ProgramStreams | undefined => {
  const pmt = readPmt(section);
  if (pmt === null) return undefined;
  let video: ProgramStreams["video"];
  let audio: ProgramStreams["audio"];
  const unsupported: number[] = [];
  for (const { streamType, pid, start, end } of pmt.streams) {
    const codec =
      streamType === 0x06 && registeredAv1(section, start + 5, Math.min(end, section.length))
        ? "av1"
        : esCodecOf(streamType);
    if (codec === undefined) {
      if (streamType !== 0x86 && streamType !== 0x05 && streamType !== 0x06 && streamType !== 0x15) {
        unsupported.push(streamType);
      }
    } else if (isVideo(codec)) {
      video ??= { pid, codec, streamType };
    } else {
      audio ??= { pid, codec, streamType };
    }
  }
  return { ...(video ? { video } : {}), ...(audio ? { audio } : {}), unsupported };
};

export class EsDemuxer {
  private readonly emit: (unit: AccessUnit) => void;
  private readonly bad: BadPes;
  private pmtPid = -1;
  /** The PAT and PMT as last read. */
  private lastPat: Uint8Array = EMPTY;
  private lastPmt: Uint8Array = EMPTY;
  // The tables repeat ten times a second, mostly byte for byte: only a change is read.
  private readonly patReader = new SectionReader((section) => {
    if (sameBytes(section, this.lastPat)) return;
    this.lastPat = section.slice();
    this.readPat(section);
  });
  private readonly pmtReader = new SectionReader((section) => {
    if (sameBytes(section, this.lastPmt)) return;
    this.lastPmt = section.slice();
    this.readPmt(section);
  });
  private video: PesStream | undefined;
  private audio: PesStream | undefined;
  /** The program's streams as the latest PMT named them. */
  program: ProgramStreams | undefined;

  constructor(emit: (unit: AccessUnit) => void, bad: BadPes = () => {}) {
    this.emit = emit;
    this.bad = bad;
  }

  /** Forgets the PES each stream was collecting: after a fault, the next PES starts afresh. */
  resync(): void {
    this.video?.drop();
    this.audio?.drop();
    this.patReader.drop();
    this.pmtReader.drop();
  }

  push(chunk: Uint8Array): void {
    for (let at = 0; at + PACKET <= chunk.length; at += PACKET) this.packet(chunk, at);
  }

  /** Hands on the PES each stream still holds: the end of a file, or of an input. */
  flush(): void {
    this.video?.finish(this.emit, this.bad);
    this.audio?.finish(this.emit, this.bad);
  }

  /** The packet at `chunk[at]`. */
  private packet(chunk: Uint8Array, at: number): void {
    if (chunk[at] !== SYNC) return;
    const pid = pidAt(chunk, at);
    const unitStart = unitStartAt(chunk, at);
    const start = payloadOffset(chunk, at);
    if (this.video?.pid === pid) this.video.take(chunk, at, start, unitStart, this.emit, this.bad);
    else if (this.audio?.pid === pid) this.audio.take(chunk, at, start, unitStart, this.emit, this.bad);
    else if (pid === 0) this.patReader.read(chunk, at);
    else if (pid === this.pmtPid) this.pmtReader.read(chunk, at);
  }

  private readPat(section: Uint8Array): void {
    const program = firstProgram(readPat(section));
    if (program === undefined) return;
    if (program.pid !== this.pmtPid) this.pmtReader.reset();
    this.pmtPid = program.pid;
  }

  private readPmt(section: Uint8Array): void {
    const program = programStreams(section);
    if (program === undefined) return;
    this.program = program;
    const { video, audio } = program;
    if (video && (this.video?.pid !== video.pid || this.video.codec !== video.codec)) {
      this.video = new PesStream(video.pid, video.codec);
    }
    if (audio && (this.audio?.pid !== audio.pid || this.audio.codec !== audio.codec)) {
      this.audio = new PesStream(audio.pid, audio.codec);
    }
  }
}
