/**
 * FLV tags (as an RTMP publisher sends them) to MPEG-TS, without transcoding: what an RTMP input hands its
 * channel. One muxer belongs to one channel input and outlives its publishers, so that downstream sees one
 * stream across reconnects:
 * - the PMT is fixed: program 1 on PID 0x1000, video on 0x100 (the PCR PID), audio on 0x101 (the PCR PID when
 *   there is no video), SCTE-35 on 0x1F4 (CUEI registered). Its streams are what the first publisher sent; a
 *   later publisher with other codecs makes a new PMT version, one with the same makes no change at all;
 * - the timeline is continuous: each publisher's first tag is placed after the last one of the previous
 *   publisher by the wall-clock time between them (at least 500 ms), so the PCR keeps counting; continuity counters go on
 *   where they were, and each PID's first packet after a new publisher joins has discontinuity_indicator set;
 * - video: H.264 (FLV codec 7, or Enhanced RTMP `avc1`) and HEVC (Enhanced RTMP `hvc1`) from length-prefixed
 *   NAL units to Annex B with an access unit delimiter and, before a keyframe, the sequence header's
 *   parameter sets; audio: AAC (to ADTS) and MP3 (as it is);
 * - cues: `onAdCue` (the section's exact bytes in base64) and `onCuePoint` (Elemental's decoded fields, or
 *   YouTube's) become SCTE-35 sections on the SCTE-35 PID (cue-read.ts).
 *
 *   const mux = new FlvTsMux((datagram) => …)   // up to 7 TS packets at a time
 *   mux.join(Date.now()); mux.tag(9, timestampMs, body); …; mux.leave(Date.now())
 *
 * PES times are the tag's on the channel's timeline plus 500 ms; the PCR is its time as it arrives. Tags this
 * muxer cannot carry (another codec, a frame before its sequence header) are counted in `dropped`.
 */
import {
  crc32Mpeg2,
  PACKET,
  PTS_WRAP,
  patSection,
  pmtSection,
  SYNC,
  writePcr,
  writeTimestamp,
} from "../ts/index.ts";
import { type Amf0Value, decodeAmf0 } from "./amf0.ts";
import { AAC_SAMPLE_RATES } from "./audio.ts";
import { sectionFromCueMessage } from "./cue-read.ts";

export const RTMP_TS = {
  pmtPid: 0x1000,
  videoPid: 0x100,
  audioPid: 0x101,
  cuePid: 0x1f4,
  program: 1,
  transportStreamId: 1,
} as const;

/** What the muxer carries. `av1` is known by name only: it is counted as dropped. */
export type FlvVideoCodec = "h264" | "hevc";
export type FlvAudioCodec = "aac" | "mp3";

const STREAM_TYPE = { h264: 0x1b, hevc: 0x24, aac: 0x0f, mp3: 0x03 } as const;
const TAG_AUDIO = 8;
const TAG_VIDEO = 9;
const TAG_SCRIPT = 18;
/** PES times run this far ahead of the PCR: the decoder's buffer. */
const DELAY_MS = 500;
/**
 * A publisher's first tag is placed at least this long after the previous publisher's last: its other stream
 * may begin a little earlier than the tag that came first, and must still come after everything already sent.
 */
const JOIN_GAP_MS = 500;
/** PAT and PMT at least this often (and before every keyframe). */
const PSI_EVERY_MS = 100;
const DATAGRAM_PACKETS = 7;
const CUEI = Uint8Array.of(0x05, 0x04, 0x43, 0x55, 0x45, 0x49);

const fourCc = (body: Uint8Array, at: number) =>
  String.fromCharCode(body[at] ?? 0, body[at + 1] ?? 0, body[at + 2] ?? 0, body[at + 3] ?? 0);

interface VideoConfig {
  readonly codec: FlvVideoCodec;
  readonly lengthSize: number;
  /** Parameter sets in Annex B, put before every keyframe. */
  readonly sets: Uint8Array;
}

interface AacConfig {
  readonly profile: number;
  readonly rateIndex: number;
  readonly channels: number;
}

export interface FlvTsCounters {
  readonly videoFrames: number;
  readonly audioFrames: number;
  readonly cues: number;
  readonly dropped: number;
  /** Why the latest tag was dropped. */
  readonly dropReason: string | null;
}

const startCode = Uint8Array.of(0, 0, 0, 1);

/** Annex B of the NAL units `nals`, each behind a 4-byte start code. */
const annexB = (nals: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(nals.reduce((n, nal) => n + 4 + nal.length, 0));
  let at = 0;
  for (const nal of nals) {
    out.set(startCode, at);
    out.set(nal, at + 4);
    at += 4 + nal.length;
  }
  return out;
};

/** An AVCDecoderConfigurationRecord's NAL length size and SPS/PPS. */
const readAvcC = (record: Uint8Array): VideoConfig | null => {
  if (record.length < 7 || record[0] !== 1) return null;
  const nals: Uint8Array[] = [];
  let at = 5;
  for (const mask of [0x1f, 0xff]) {
    const count = (record[at] ?? 0) & mask;
    at++;
    for (let i = 0; i < count; i++) {
      const length = ((record[at] ?? 0) << 8) | (record[at + 1] ?? 0);
      if (at + 2 + length > record.length) return null;
      nals.push(record.subarray(at + 2, at + 2 + length));
      at += 2 + length;
    }
  }
  return { codec: "h264", lengthSize: ((record[4] ?? 0) & 3) + 1, sets: annexB(nals) };
};

/** An HEVCDecoderConfigurationRecord's NAL length size and VPS/SPS/PPS (and any SEI arrays). */
const readHvcC = (record: Uint8Array): VideoConfig | null => {
  if (record.length < 23) return null;
  const nals: Uint8Array[] = [];
  const arrays = record[22] ?? 0;
  let at = 23;
  for (let a = 0; a < arrays; a++) {
    if (at + 3 > record.length) return null;
    const count = ((record[at + 1] ?? 0) << 8) | (record[at + 2] ?? 0);
    at += 3;
    for (let i = 0; i < count; i++) {
      const length = ((record[at] ?? 0) << 8) | (record[at + 1] ?? 0);
      if (at + 2 + length > record.length) return null;
      nals.push(record.subarray(at + 2, at + 2 + length));
      at += 2 + length;
    }
  }
  return { codec: "hevc", lengthSize: ((record[21] ?? 0) & 3) + 1, sets: annexB(nals) };
};

const AUD = {
  h264: Uint8Array.of(0, 0, 0, 1, 0x09, 0xf0),
  hevc: Uint8Array.of(0, 0, 0, 1, 0x46, 0x01, 0x50),
};

export class FlvTsMux {
  private readonly onDatagram: (datagram: Uint8Array) => void;
  private readonly out = new Uint8Array(DATAGRAM_PACKETS * PACKET);
  private filled = 0;
  private readonly cc = new Map<number, number>();
  /** PIDs whose next packet says discontinuity_indicator (a publisher joined). */
  private readonly joining = new Set<number>();

  // The program, fixed by the first publisher.
  private videoCodec: FlvVideoCodec | null = null;
  private audioCodec: FlvAudioCodec | null = null;
  private programFixed = false;
  private pmtVersion = 0;
  private pmt: Uint8Array | null = null;
  private readonly pat = patSection(RTMP_TS.transportStreamId, 0, [
    { program: RTMP_TS.program, pid: RTMP_TS.pmtPid },
  ]);
  private lastPsiMs = Number.NEGATIVE_INFINITY;

  // This publisher's.
  private video: VideoConfig | null = null;
  private aac: AacConfig | null = null;
  private sessionVideo: FlvVideoCodec | null = null;
  private sessionAudio: FlvAudioCodec | null = null;
  private firstTagMs: number | null = null;
  private sessionBaseMs = 1000;
  private joinedWallMs = 0;

  // The timeline.
  private lastOutMs = 0;
  private lastWallMs: number | null = null;

  private lastVideoDts = Number.NEGATIVE_INFINITY;
  private lastAudioPts = Number.NEGATIVE_INFINITY;

  private counts = { videoFrames: 0, audioFrames: 0, cues: 0, dropped: 0 };
  private dropReason: string | null = null;

  constructor(onDatagram: (datagram: Uint8Array) => void) {
    this.onDatagram = onDatagram;
  }

  counters(): FlvTsCounters {
    return { ...this.counts, dropReason: this.dropReason };
  }

  /** The PMT section this muxer sends now (null before the first publisher's streams are known). */
  pmtSection(): Uint8Array | null {
    return this.pmt;
  }

  /** A publisher begins, at wall-clock `nowMs`. */
  join(nowMs: number) {
    this.video = null;
    this.aac = null;
    this.sessionVideo = null;
    this.sessionAudio = null;
    this.firstTagMs = null;
    this.joinedWallMs = nowMs;
    if (this.lastWallMs !== null) {
      for (const pid of [RTMP_TS.videoPid, RTMP_TS.audioPid, RTMP_TS.cuePid]) this.joining.add(pid);
    }
  }

  /** The publisher went, at wall-clock `nowMs`. */
  leave(nowMs: number) {
    this.flush();
    if (this.lastWallMs === null) return;
    this.lastWallMs = Math.max(this.lastWallMs, nowMs);
  }

  /** One FLV tag: type 8 (audio), 9 (video) or 18 (script data), its timestamp in ms and its body. */
  tag(type: number, timestampMs: number, body: Uint8Array, nowMs: number) {
    if (type === TAG_VIDEO) this.videoTag(timestampMs, body, nowMs);
    else if (type === TAG_AUDIO) this.audioTag(timestampMs, body, nowMs);
    else if (type === TAG_SCRIPT) this.scriptTag(timestampMs, body, nowMs);
    this.flush();
  }

  private drop(reason: string) {
    this.counts.dropped++;
    this.dropReason = reason;
  }

  /** The tag's time on the channel's timeline, in ms. */
  private outMs(timestampMs: number, nowMs: number): number {
    if (this.firstTagMs === null) {
      this.firstTagMs = timestampMs;
      this.sessionBaseMs =
        this.lastWallMs === null
          ? this.sessionBaseMs
          : this.lastOutMs + Math.max(JOIN_GAP_MS, Math.min(nowMs, this.joinedWallMs) - this.lastWallMs);
    }
    const out = this.sessionBaseMs + (timestampMs - this.firstTagMs);
    if (out > this.lastOutMs) this.lastOutMs = out;
    this.lastWallMs = nowMs;
    return out;
  }

  private videoTag(timestampMs: number, body: Uint8Array, nowMs: number) {
    const first = body[0] ?? 0;
    const frameType = (first >> 4) & 0x07;
    let codec: FlvVideoCodec;
    let packetType: number;
    let cts = 0;
    let data: number;
    if ((first & 0x80) !== 0) {
      // Enhanced RTMP: packet type in the low bits, then the FourCC.
      packetType = first & 0x0f;
      const fourcc = fourCc(body, 1);
      if (fourcc === "avc1") codec = "h264";
      else if (fourcc === "hvc1") codec = "hevc";
      else return this.drop(`video ${fourcc} is not carried (H.264 and HEVC are)`);
      data = 5;
      if (packetType === 1) {
        cts = ((((body[5] ?? 0) << 16) | ((body[6] ?? 0) << 8) | (body[7] ?? 0)) << 8) >> 8;
        data = 8;
      } else if (packetType === 3) packetType = 1;
    } else {
      const codecId = first & 0x0f;
      if (codecId === 7) codec = "h264";
      else if (codecId === 12) codec = "hevc";
      else return this.drop(`FLV video codec ${codecId} is not carried (H.264 and HEVC are)`);
      packetType = body[1] ?? 0;
      cts = ((((body[2] ?? 0) << 16) | ((body[3] ?? 0) << 8) | (body[4] ?? 0)) << 8) >> 8;
      data = 5;
    }
    if (frameType === 5) return; // video info / command frame
    if (packetType === 0) {
      const record = body.subarray(data);
      const config = codec === "h264" ? readAvcC(record) : readHvcC(record);
      if (config === null) return this.drop(`a ${codec} sequence header that cannot be read`);
      this.video = config;
      this.sessionVideo = codec;
      return;
    }
    if (packetType !== 1) return;
    const config = this.video;
    if (config === null || config.codec !== codec)
      return this.drop("a video frame before its sequence header");
    this.fixProgram();
    const keyframe = frameType === 1;
    const nals: Uint8Array[] = [];
    let hasSets = false;
    for (let at = data; at + config.lengthSize <= body.length; ) {
      let length = 0;
      for (let i = 0; i < config.lengthSize; i++) length = length * 256 + (body[at + i] ?? 0);
      at += config.lengthSize;
      if (length === 0 || at + length > body.length) break;
      const nal = body.subarray(at, at + length);
      at += length;
      const type = codec === "h264" ? (nal[0] ?? 0) & 0x1f : ((nal[0] ?? 0) >> 1) & 0x3f;
      if (codec === "h264" ? type === 9 : type === 35) continue;
      if (codec === "h264" ? type === 7 : type === 32 || type === 33) hasSets = true;
      nals.push(nal);
    }
    const au = AUD[codec];
    const sets = keyframe && !hasSets ? config.sets : new Uint8Array(0);
    const payload = new Uint8Array(au.length + sets.length + nals.reduce((n, nal) => n + 4 + nal.length, 0));
    payload.set(au);
    payload.set(sets, au.length);
    payload.set(annexB(nals), au.length + sets.length);
    const out = this.outMs(timestampMs, nowMs);
    if (keyframe || out - this.lastPsiMs >= PSI_EVERY_MS) this.psi(out);
    // A decode time never repeats nor goes back (a publisher's stamps in whole ms may).
    const dts = Math.max((out + DELAY_MS) * 90, this.lastVideoDts + 90);
    this.lastVideoDts = dts;
    const pts = Math.max((out + DELAY_MS + cts) * 90, dts);
    this.pes(RTMP_TS.videoPid, 0xe0, pts, dts, payload, keyframe, out);
    this.counts.videoFrames++;
  }

  private audioTag(timestampMs: number, body: Uint8Array, nowMs: number) {
    const format = (body[0] ?? 0) >> 4;
    let payload: Uint8Array;
    if (format === 10) {
      if (body[1] === 0) {
        const asc = body.subarray(2);
        // ffmpeg sends an empty one first when it copies AAC whose configuration it learns later.
        if (asc.length < 2) return;
        const objectType = (asc[0] ?? 0) >> 3;
        this.aac = {
          profile: Math.max(0, Math.min(3, objectType - 1)),
          rateIndex: (((asc[0] ?? 0) & 7) << 1) | ((asc[1] ?? 0) >> 7),
          channels: ((asc[1] ?? 0) >> 3) & 0x0f,
        };
        this.sessionAudio = "aac";
        return;
      }
      const config = this.aac;
      if (config === null) return this.drop("an AAC frame before its sequence header");
      const raw = body.subarray(2);
      const length = raw.length + 7;
      payload = new Uint8Array(length);
      payload[0] = 0xff;
      payload[1] = 0xf1;
      payload[2] = (config.profile << 6) | (config.rateIndex << 2) | (config.channels >> 2);
      payload[3] = ((config.channels & 3) << 6) | (length >> 11);
      payload[4] = (length >> 3) & 0xff;
      payload[5] = ((length & 7) << 5) | 0x1f;
      payload[6] = 0xfc;
      payload.set(raw, 7);
    } else if (format === 2 || format === 14) {
      this.sessionAudio = "mp3";
      payload = body.subarray(1);
    } else return this.drop(`FLV sound format ${format} is not carried (AAC and MP3 are)`);
    this.fixProgram();
    if (this.audioCodec === null) return this.drop("audio the channel's program has no place for");
    const out = this.outMs(timestampMs, nowMs);
    if (this.videoCodec === null && out - this.lastPsiMs >= PSI_EVERY_MS) this.psi(out);
    // Two frames stamped alike (GStreamer's first two AAC frames are) go one frame apart.
    const frameTicks =
      format === 10 && this.aac !== null
        ? Math.round((1024 * 90_000) / (AAC_SAMPLE_RATES[this.aac.rateIndex] ?? 48_000))
        : 2351;
    const pts = Math.max((out + DELAY_MS) * 90, this.lastAudioPts + frameTicks);
    this.lastAudioPts = pts;
    this.pes(RTMP_TS.audioPid, 0xc0, pts, null, payload, false, out);
    this.counts.audioFrames++;
  }

  private scriptTag(timestampMs: number, body: Uint8Array, nowMs: number) {
    const decoded = decodeAmf0(body);
    if (decoded._tag === "Left") return;
    let values: ReadonlyArray<Amf0Value> = decoded.right;
    if (values[0] === "@setDataFrame") values = values.slice(1);
    if (values[0] === "onMetaData") return this.metadata(values[1]);
    const out = this.outMs(timestampMs, nowMs);
    const section = sectionFromCueMessage(
      values,
      (seconds) => Math.round((out + seconds * 1000 - timestampMs + DELAY_MS) * 90) % PTS_WRAP,
      timestampMs / 1000,
    );
    if (section === null) return;
    this.fixProgram();
    this.section(RTMP_TS.cuePid, section);
    this.lastOutMs = Math.max(this.lastOutMs, out);
    this.counts.cues++;
  }

  /** onMetaData's codec ids name the streams before their sequence headers come. */
  private metadata(value: Amf0Value) {
    if (typeof value !== "object" || value === null) return;
    const entries = ("entries" in value ? value.entries : value) as Record<string, Amf0Value>;
    const video = entries.videocodecid;
    const audio = entries.audiocodecid;
    if (this.sessionVideo === null) {
      if (video === 7 || video === "avc1") this.sessionVideo = "h264";
      else if (video === 12 || video === 0x68766331 || video === "hvc1") this.sessionVideo = "hevc";
    }
    if (this.sessionAudio === null) {
      if (audio === 10 || audio === "mp4a") this.sessionAudio = "aac";
      else if (audio === 2 || audio === ".mp3") this.sessionAudio = "mp3";
    }
  }

  /** The program as the first publisher's streams make it; a later one changes it only if its codecs differ. */
  private fixProgram() {
    const video = this.sessionVideo ?? (this.programFixed ? this.videoCodec : null);
    const audio = this.sessionAudio ?? (this.programFixed ? this.audioCodec : null);
    if (this.programFixed && video === this.videoCodec && audio === this.audioCodec) return;
    if (this.programFixed) this.pmtVersion = (this.pmtVersion + 1) & 0x1f;
    this.programFixed = true;
    this.videoCodec = video;
    this.audioCodec = audio;
    const streams = [
      ...(video === null
        ? []
        : [{ streamType: STREAM_TYPE[video], pid: RTMP_TS.videoPid, descriptors: new Uint8Array(0) }]),
      ...(audio === null
        ? []
        : [{ streamType: STREAM_TYPE[audio], pid: RTMP_TS.audioPid, descriptors: new Uint8Array(0) }]),
      { streamType: 0x86, pid: RTMP_TS.cuePid, descriptors: new Uint8Array(0) },
    ];
    this.pmt = pmtSection(RTMP_TS.program, this.pmtVersion, this.pcrPid(), CUEI, streams);
    this.lastPsiMs = Number.NEGATIVE_INFINITY;
  }

  private pcrPid(): number {
    return this.videoCodec === null && this.audioCodec !== null ? RTMP_TS.audioPid : RTMP_TS.videoPid;
  }

  private psi(outMs: number) {
    if (this.pmt === null) return;
    this.lastPsiMs = outMs;
    this.section(0, this.pat);
    this.section(RTMP_TS.pmtPid, this.pmt);
  }

  private nextCc(pid: number): number {
    const cc = ((this.cc.get(pid) ?? 15) + 1) & 0x0f;
    this.cc.set(pid, cc);
    return cc;
  }

  private packet(): number {
    if (this.filled === DATAGRAM_PACKETS) this.flush();
    const at = this.filled * PACKET;
    this.filled++;
    return at;
  }

  private flush() {
    if (this.filled === 0) return;
    this.onDatagram(Buffer.from(this.out.subarray(0, this.filled * PACKET)));
    this.filled = 0;
  }

  /** A PSI section (or SCTE-35 section) on `pid`: pointer_field 0, 0xff stuffing. */
  private section(pid: number, section: Uint8Array) {
    let from = 0;
    let first = true;
    while (first || from < section.length) {
      const at = this.packet();
      const p = this.out;
      p.fill(0xff, at, at + PACKET);
      p[at] = SYNC;
      p[at + 1] = (first ? 0x40 : 0) | ((pid >> 8) & 0x1f);
      p[at + 2] = pid & 0xff;
      let offset = at + 4;
      const disc = this.joining.delete(pid);
      if (disc) {
        p[at + 3] = 0x30 | this.nextCc(pid);
        p[offset] = 1;
        p[offset + 1] = 0x80;
        offset += 2;
      } else p[at + 3] = 0x10 | this.nextCc(pid);
      if (first) p[offset++] = 0;
      const part = section.subarray(from, from + (at + PACKET - offset));
      p.set(part, offset);
      from += part.length;
      first = false;
    }
  }

  /** One PES on `pid`; its first packet carries the PCR (on the PCR PID) and the random access flag. */
  private pes(
    pid: number,
    streamId: number,
    pts: number,
    dts: number | null,
    payload: Uint8Array,
    randomAccess: boolean,
    outMs: number,
  ): void {
    const withDts = dts !== null && dts !== pts;
    const headerLength = withDts ? 10 : 5;
    const header = new Uint8Array(9 + headerLength);
    header.set([0, 0, 1, streamId]);
    const length = 3 + headerLength + payload.length;
    const pesLength = streamId === 0xe0 && length > 0xffff ? 0 : length;
    header[4] = pesLength >> 8;
    header[5] = pesLength & 0xff;
    header[6] = 0x84;
    header[7] = withDts ? 0xc0 : 0x80;
    header[8] = headerLength;
    header[9] = withDts ? 0x30 : 0x20;
    writeTimestamp(header, 9, pts % PTS_WRAP);
    if (withDts) {
      header[14] = 0x10;
      writeTimestamp(header, 14, (dts as number) % PTS_WRAP);
    }
    const pcr = pid === this.pcrPid() ? ((outMs * 90) % PTS_WRAP) * 300 : -1;
    const whole = new Uint8Array(header.length + payload.length);
    whole.set(header);
    whole.set(payload, header.length);
    const total = whole.length;
    let written = 0;
    let first = true;
    const p = this.out;
    while (written < total) {
      const at = this.packet();
      const disc = first && this.joining.delete(pid);
      const flags = first ? (disc ? 0x80 : 0) | (randomAccess ? 0x40 : 0) | (pcr >= 0 ? 0x10 : 0) : 0;
      let adaptation = flags === 0 ? 0 : 2 + (pcr >= 0 && first ? 6 : 0);
      const room = PACKET - 4 - adaptation;
      const left = total - written;
      if (left < room) adaptation = adaptation === 0 ? PACKET - 4 - left : adaptation + (room - left);
      p[at] = SYNC;
      p[at + 1] = (first ? 0x40 : 0) | ((pid >> 8) & 0x1f);
      p[at + 2] = pid & 0xff;
      p[at + 3] = (adaptation > 0 ? 0x30 : 0x10) | this.nextCc(pid);
      let offset = at + 4;
      if (adaptation > 0) {
        p[offset] = adaptation - 1;
        if (adaptation > 1) {
          p[offset + 1] = flags;
          let fill = offset + 2;
          if (first && pcr >= 0) {
            writePcr(p, fill, pcr);
            fill += 6;
          }
          p.fill(0xff, fill, offset + adaptation);
        }
        offset += adaptation;
      }
      const take = at + PACKET - offset;
      p.set(whole.subarray(written, written + take), offset);
      written += take;
      first = false;
    }
  }
}

/** The CRC of `section` holds (what a section read back from a cue message must pass). */
export const sectionCrcOk = (section: Uint8Array): boolean => crc32Mpeg2(section) === 0;
