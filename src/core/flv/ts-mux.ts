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
 *   parameter sets (video-config.ts); AV1 (Enhanced RTMP `av01`) as AOM's "Carriage of AV1 in MPEG-2 TS"
 *   says (av1.ts: stream_type 0x06 registered `AV01`, the AV1 video descriptor, a temporal unit per PES of
 *   stream_id 0xBD in the start code format); audio: AAC (to ADTS) and MP3 (as it is);
 * - cues: `onAdCue` (the section's exact bytes in base64) and `onCuePoint` (Elemental's decoded fields, or
 *   YouTube's) become SCTE-35 sections on the SCTE-35 PID (cue-read.ts).
 *
 *   const mux = new FlvTsMux((datagram) => …)   // up to 7 TS packets at a time (ts-packets.ts)
 *   mux.join(Date.now()); mux.tag(9, timestampMs, body); …; mux.leave(Date.now())
 *
 * PES times are the tag's on the channel's timeline plus 500 ms; the PCR is its time as it arrives. Tags this
 * muxer cannot carry (another codec, a frame before its sequence header) are counted in `dropped`.
 */
import {
  crc32Mpeg2,
  PTS_WRAP,
  patSection,
  pmtSection,
  STREAM_TYPE_H264,
  STREAM_TYPE_H265,
  sameBytes,
} from "../ts/index.ts";
import { type Amf0Value, decodeAmf0 } from "./amf0.ts";
import { AAC_SAMPLE_RATES } from "./audio.ts";
import { startCodeFormat } from "./av1.ts";
import { sectionFromCueMessage } from "./cue-read.ts";
import { TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO } from "./tags.ts";
import { TsPacketWriter } from "./ts-packets.ts";
import {
  annexBFrame,
  type FlvVideoCodec,
  readAv1Start,
  readAvcC,
  readHvcC,
  type VideoConfig,
} from "./video-config.ts";

export const RTMP_TS = {
  pmtPid: 0x1000,
  videoPid: 0x100,
  audioPid: 0x101,
  cuePid: 0x1f4,
  program: 1,
  transportStreamId: 1,
} as const;

/** What the muxer carries (video: video-config.ts). */
export type FlvAudioCodec = "aac" | "mp3";

const STREAM_TYPE = {
  h264: STREAM_TYPE_H264,
  hevc: STREAM_TYPE_H265,
  av1: 0x06,
  aac: 0x0f,
  mp3: 0x03,
} as const;
/** AV1's PES are private_stream_1, as the AV1 carriage says; H.264's and HEVC's a video stream's. */
const VIDEO_STREAM_ID = { h264: 0xe0, hevc: 0xe0, av1: 0xbd } as const;
const NONE = new Uint8Array(0);
/** PES times run this far ahead of the PCR: the decoder's buffer. */
const DELAY_MS = 500;
/**
 * A publisher's first tag is placed at least this long after the previous publisher's last: its other stream
 * may begin a little earlier than the tag that came first, and must still come after everything already sent.
 */
const JOIN_GAP_MS = 500;
/** PAT and PMT at least this often (and before every keyframe). */
const PSI_EVERY_MS = 100;
const CUEI = Uint8Array.of(0x05, 0x04, 0x43, 0x55, 0x45, 0x49);

const fourCc = (body: Uint8Array, at: number) =>
  String.fromCharCode(body[at] ?? 0, body[at + 1] ?? 0, body[at + 2] ?? 0, body[at + 3] ?? 0);

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

export class FlvTsMux {
  private readonly packets: TsPacketWriter;

  // The program, fixed by the first publisher.
  private videoCodec: FlvVideoCodec | null = null;
  /** The video's PMT descriptors (AV1's), part of the program as its codecs are. */
  private videoDescriptors: Uint8Array = NONE;
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
    this.packets = new TsPacketWriter(onDatagram);
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
    if (this.lastWallMs !== null)
      this.packets.discontinuity([RTMP_TS.videoPid, RTMP_TS.audioPid, RTMP_TS.cuePid]);
  }

  /** The publisher went, at wall-clock `nowMs`. */
  leave(nowMs: number) {
    this.packets.flush();
    if (this.lastWallMs === null) return;
    this.lastWallMs = Math.max(this.lastWallMs, nowMs);
  }

  /** One FLV tag: type 8 (audio), 9 (video) or 18 (script data), its timestamp in ms and its body. */
  tag(type: number, timestampMs: number, body: Uint8Array, nowMs: number) {
    if (type === TAG_VIDEO) this.videoTag(timestampMs, body, nowMs);
    else if (type === TAG_AUDIO) this.audioTag(timestampMs, body, nowMs);
    else if (type === TAG_SCRIPT) this.scriptTag(timestampMs, body, nowMs);
    this.packets.flush();
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
      else if (fourcc === "av01") codec = "av1";
      else return this.drop(`video ${fourcc} is not carried (H.264, HEVC and AV1 are)`);
      data = 5;
      // AV1's coded frames carry no composition time: a temporal unit is shown when it is decoded.
      if (packetType === 1 && codec !== "av1") {
        cts = ((((body[5] ?? 0) << 16) | ((body[6] ?? 0) << 8) | (body[7] ?? 0)) << 8) >> 8;
        data = 8;
      } else if (packetType === 3) packetType = 1;
    } else {
      const codecId = first & 0x0f;
      if (codecId === 7) codec = "h264";
      else if (codecId === 12) codec = "hevc";
      else return this.drop(`FLV video codec ${codecId} is not carried (H.264, HEVC and AV1 are)`);
      packetType = body[1] ?? 0;
      cts = ((((body[2] ?? 0) << 16) | ((body[3] ?? 0) << 8) | (body[4] ?? 0)) << 8) >> 8;
      data = 5;
    }
    if (frameType === 5) return; // video info / command frame
    // AV1 may also come with its MPEG-2 TS sequence start (5): the AV1 video descriptor.
    if (packetType === 0 || (codec === "av1" && packetType === 5)) {
      const record = body.subarray(data);
      const config =
        codec === "h264"
          ? readAvcC(record)
          : codec === "hevc"
            ? readHvcC(record)
            : readAv1Start(record, packetType === 5);
      if (config === null) return this.drop(`a ${codec} sequence header that cannot be read`);
      this.video = config;
      this.sessionVideo = codec;
      return;
    }
    if (packetType !== 1) return;
    const config = this.video;
    if (config === null || config.codec !== codec)
      return this.drop("a video frame before its sequence header");
    const keyframe = frameType === 1;
    const payload =
      codec === "av1"
        ? startCodeFormat(body.subarray(data), keyframe, config.sets)
        : annexBFrame(codec, config, body.subarray(data), keyframe);
    if (payload === null) return this.drop("an AV1 temporal unit whose OBUs cannot be read");
    this.fixProgram();
    const out = this.outMs(timestampMs, nowMs);
    if (keyframe || out - this.lastPsiMs >= PSI_EVERY_MS) this.psi(out);
    // A decode time never repeats nor goes back (a publisher's stamps in whole ms may).
    const dts = Math.max((out + DELAY_MS) * 90, this.lastVideoDts + 90);
    this.lastVideoDts = dts;
    const pts = Math.max((out + DELAY_MS + cts) * 90, dts);
    const pcr = this.pcr(RTMP_TS.videoPid, out);
    const priority = keyframe && codec === "av1";
    this.packets.pes(RTMP_TS.videoPid, VIDEO_STREAM_ID[codec], pts, dts, payload, keyframe, pcr, priority);
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
    this.packets.pes(RTMP_TS.audioPid, 0xc0, pts, null, payload, false, this.pcr(RTMP_TS.audioPid, out));
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
    this.packets.section(RTMP_TS.cuePid, section);
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
      else if (video === 0x61763031 || video === "av01") this.sessionVideo = "av1";
    }
    if (this.sessionAudio === null) {
      if (audio === 10 || audio === "mp4a") this.sessionAudio = "aac";
      else if (audio === 2 || audio === ".mp3") this.sessionAudio = "mp3";
    }
  }

  /**
   * The program as the first publisher's streams make it; a later one changes it only if its codecs differ
   * (or AV1's descriptors: another profile, level or chroma format). Before its sequence header, a video of
   * the program's codec keeps the program's descriptors.
   */
  private fixProgram() {
    const video = this.sessionVideo ?? (this.programFixed ? this.videoCodec : null);
    const audio = this.sessionAudio ?? (this.programFixed ? this.audioCodec : null);
    const descriptors =
      this.video !== null && this.video.codec === video
        ? this.video.descriptors
        : video === this.videoCodec
          ? this.videoDescriptors
          : NONE;
    if (
      this.programFixed &&
      video === this.videoCodec &&
      audio === this.audioCodec &&
      sameBytes(descriptors, this.videoDescriptors)
    )
      return;
    if (this.programFixed) this.pmtVersion = (this.pmtVersion + 1) & 0x1f;
    this.programFixed = true;
    this.videoCodec = video;
    this.audioCodec = audio;
    this.videoDescriptors = descriptors;
    const streams = [
      ...(video === null ? [] : [{ streamType: STREAM_TYPE[video], pid: RTMP_TS.videoPid, descriptors }]),
      ...(audio === null
        ? []
        : [{ streamType: STREAM_TYPE[audio], pid: RTMP_TS.audioPid, descriptors: NONE }]),
      { streamType: 0x86, pid: RTMP_TS.cuePid, descriptors: NONE },
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
    this.packets.section(0, this.pat);
    this.packets.section(RTMP_TS.pmtPid, this.pmt);
  }

  /** The PCR (27 MHz) at `outMs` when `pid` is the PCR PID; -1 otherwise. */
  private pcr(pid: number, outMs: number): number {
    return pid === this.pcrPid() ? ((outMs * 90) % PTS_WRAP) * 300 : -1;
  }
}

/** The CRC of `section` holds (what a section read back from a cue message must pass). */
export const sectionCrcOk = (section: Uint8Array): boolean => crc32Mpeg2(section) === 0;
