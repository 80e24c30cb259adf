/**
 * FLV tag bodies from MPEG-TS access units, and the FLV file framing around them. An RTMP message carries a
 * tag's body with the type and timestamp in its chunk header, so the bodies are what the remux makes once per
 * frame and every output shares; `flvTag` adds the 11-byte tag header and PreviousTagSize for a file.
 *
 *   avcSequenceHeader(sps, pps)                      // video tag: AVCDecoderConfigurationRecord
 *   videoFrame("h264", annexB, key, compositionMs)   // AUDs dropped, start codes → 4-byte lengths
 *   hevcSequenceHeader(vps, sps, pps)                // Enhanced RTMP, FourCC hvc1
 *   adts.reset(pes); while (adts.next()) aacFrame(pes, adts.start, adts.end)   // audio.ts
 *
 * Reading parameter sets: rbsp.ts (the bit reader, the checks in words), avc-sps.ts and hevc-sps.ts.
 *
 * Per frame: one search for its NAL units (`NalUnits`, shared with the keyframe test and the parameter sets),
 * one allocation of the exact size (or memory the remux uses again: frame-memory.ts), one copy.
 */
import { EcmaArray, encodeAmf0 } from "./amf0.ts";
import { type HevcSpsInfo, readHevcSps } from "./hevc-sps.ts";
import { forbidden, H264_NAL, HEVC_NAL, NalUnits, nalType, type VideoCodec } from "./nal.ts";
import { isUnusable } from "./rbsp.ts";

export const TAG_AUDIO = 8;
export const TAG_VIDEO = 9;
export const TAG_SCRIPT = 18;

/** The 9-byte FLV header and PreviousTagSize0: what a file starts with. */
export const flvFileHeader = (hasAudio: boolean, hasVideo: boolean): Uint8Array =>
  Uint8Array.of(0x46, 0x4c, 0x56, 1, (hasAudio ? 4 : 0) | (hasVideo ? 1 : 0), 0, 0, 0, 9, 0, 0, 0, 0);

/**
 * A whole FLV tag: header (type, 24-bit data size, 24-bit timestamp then its upper 8 bits as the extended
 * byte, stream id 0), the body, and the PreviousTagSize that follows every tag in a file.
 */
export const flvTag = (type: number, timestampMs: number, body: Uint8Array): Uint8Array => {
  const tag = new Uint8Array(11 + body.length + 4);
  const view = new DataView(tag.buffer);
  const ts = timestampMs >>> 0;
  view.setUint32(0, ((type & 0x1f) << 24) | body.length);
  view.setUint32(4, ((ts & 0xffffff) << 8) | (ts >>> 24));
  tag.set(body, 11);
  view.setUint32(11 + body.length, 11 + body.length);
  return tag;
};

/**
 * Copies `from[start, end)` into `to` at `at`. Buffer's copy takes any Uint8Array (in Node.js, Bun and Deno)
 * and, unlike `to.set(from.subarray(start, end), at)`, makes no view: this runs for every TS packet.
 */
export const copyBytes = (from: Uint8Array, start: number, end: number, to: Uint8Array, at: number): void => {
  Buffer.prototype.copy.call(from, to, at, start, end);
};

/** Every byte of a body is written: no zeroing first (and a small body comes from Buffer's pool). */
export const allocateBody = (size: number): Uint8Array => Buffer.allocUnsafe(size);

const isAud = (codec: VideoCodec, data: Uint8Array, start: number): boolean =>
  nalType(codec, data, start) === (codec === "h264" ? H264_NAL.aud : HEVC_NAL.aud);

const HVC1 = [0x68, 0x76, 0x63, 0x31] as const;
/** Enhanced RTMP: the IsExHeader bit and packet types of the video tag's first byte. */
const EX_HEADER = 0x80;
const EX_SEQUENCE_START = 0;
const EX_CODED_FRAMES = 1;
const EX_CODED_FRAMES_X = 3;

/**
 * A video frame's tag body: the codec's header (composition time as a signed 24-bit ms value), then each NAL
 * unit of the Annex B access unit but the delimiters, behind a 4-byte length. `nals`: its NAL units, when
 * the demuxer found them already.
 */
export const videoFrame = (
  codec: VideoCodec,
  accessUnit: Uint8Array,
  keyframe: boolean,
  compositionMs: number,
  nals: NalUnits = new NalUnits().scan(accessUnit),
  /** NAL units to leave out beside the delimiters (`leaveOut(start, end)`), if any. */
  leaveOut: ((start: number, end: number) => boolean) | null = null,
  /** Where the body's bytes come from: by default a buffer of its own (the remux may give memory it reuses). */
  allocate: (size: number) => Uint8Array = allocateBody,
): Uint8Array => {
  const frameType = keyframe ? 1 : 2;
  const hevcShort = codec === "hevc" && compositionMs === 0;
  const headerSize = codec === "h264" ? 5 : hevcShort ? 5 : 8;
  const skip = (i: number) =>
    isAud(codec, accessUnit, nals.start(i)) || leaveOut?.(nals.start(i), nals.end(i)) === true;
  let size = headerSize;
  for (let i = 0; i < nals.count; i++) {
    if (!skip(i)) size += 4 + nals.end(i) - nals.start(i);
  }
  const body = allocate(size);
  let at: number;
  if (codec === "h264") {
    body[0] = (frameType << 4) | 7;
    body[1] = 1;
    at = 2;
  } else {
    body[0] = EX_HEADER | (frameType << 4) | (hevcShort ? EX_CODED_FRAMES_X : EX_CODED_FRAMES);
    body.set(HVC1, 1);
    at = 5;
  }
  if (!hevcShort) {
    const ct = compositionMs & 0xffffff;
    body[at] = ct >> 16;
    body[at + 1] = (ct >> 8) & 0xff;
    body[at + 2] = ct & 0xff;
    at += 3;
  }
  for (let i = 0; i < nals.count; i++) {
    const s = nals.start(i);
    if (skip(i)) continue;
    const length = nals.end(i) - s;
    body[at] = length >>> 24;
    body[at + 1] = (length >> 16) & 0xff;
    body[at + 2] = (length >> 8) & 0xff;
    body[at + 3] = length & 0xff;
    copyBytes(accessUnit, s, s + length, body, at + 4);
    at += 4 + length;
  }
  return body;
};

/** A signed 24-bit composition time as a video tag carries it, read back (for tests and receivers). */
export const readCompositionMs = (body: Uint8Array, at: number): number => {
  const raw = ((body[at] ?? 0) << 16) | ((body[at + 1] ?? 0) << 8) | (body[at + 2] ?? 0);
  return raw & 0x800000 ? raw - 0x1000000 : raw;
};

/** The parameter sets of an Annex B access unit, as views into it (no copy); none whose forbidden bit is set. */
export interface ParameterSets {
  readonly vps: ReadonlyArray<Uint8Array>;
  readonly sps: ReadonlyArray<Uint8Array>;
  readonly pps: ReadonlyArray<Uint8Array>;
}

/** `nals`: the access unit's NAL units, when the demuxer found them already. */
export const parameterSets = (
  codec: VideoCodec,
  accessUnit: Uint8Array,
  nals: NalUnits = new NalUnits().scan(accessUnit),
): ParameterSets => {
  const vps: Uint8Array[] = [];
  const sps: Uint8Array[] = [];
  const pps: Uint8Array[] = [];
  const types = codec === "h264" ? { vps: -1, sps: H264_NAL.sps, pps: H264_NAL.pps } : HEVC_NAL;
  for (let i = 0; i < nals.count; i++) {
    const s = nals.start(i);
    if (forbidden(accessUnit, s)) continue; // a decoder skips it: no parameter set
    const type = nalType(codec, accessUnit, s);
    const list = type === types.vps ? vps : type === types.sps ? sps : type === types.pps ? pps : null;
    list?.push(accessUnit.subarray(s, nals.end(i)));
  }
  return { vps, sps, pps };
};

const listSize = (nals: ReadonlyArray<Uint8Array>): number => nals.reduce((n, nal) => n + 2 + nal.length, 0);

const putList = (body: Uint8Array, at: number, nals: ReadonlyArray<Uint8Array>): number => {
  for (const nal of nals) {
    body[at] = nal.length >> 8;
    body[at + 1] = nal.length & 0xff;
    body.set(nal, at + 2);
    at += 2 + nal.length;
  }
  return at;
};

/**
 * The H.264 sequence header tag body: AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) with 4-byte
 * NAL lengths, its profile and level copied from the first SPS.
 */
export const avcSequenceHeader = (
  sps: ReadonlyArray<Uint8Array>,
  pps: ReadonlyArray<Uint8Array>,
): Uint8Array => {
  const first = sps[0];
  if (first === undefined || first.length < 4) throw new RangeError("an AVC sequence header needs an SPS");
  const body = new Uint8Array(5 + 6 + listSize(sps) + 1 + listSize(pps));
  body.set([0x17, 0, 0, 0, 0], 0);
  body.set([1, first[1] ?? 0, first[2] ?? 0, first[3] ?? 0, 0xfc | 3, 0xe0 | sps.length], 5);
  let at = putList(body, 11, sps);
  body[at++] = pps.length;
  at = putList(body, at, pps);
  return body;
};

/**
 * The HEVC sequence header tag body in Enhanced RTMP (IsExHeader, SequenceStart, FourCC hvc1): an
 * HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1) with 4-byte NAL lengths and one array each of
 * VPS, SPS and PPS, complete.
 */
export const hevcSequenceHeader = (
  vps: ReadonlyArray<Uint8Array>,
  sps: ReadonlyArray<Uint8Array>,
  pps: ReadonlyArray<Uint8Array>,
  /** What the first SPS says, when the caller read it already. */
  read?: HevcSpsInfo,
): Uint8Array => {
  const first = sps[0];
  if (first === undefined) throw new RangeError("an HEVC sequence header needs an SPS");
  const info = read ?? readHevcSps(first);
  if (isUnusable(info)) throw new RangeError(`an HEVC sequence header needs a usable SPS: ${info.unusable}`);
  const arrays = [
    [HEVC_NAL.vps, vps],
    [HEVC_NAL.sps, sps],
    [HEVC_NAL.pps, pps],
  ] as const;
  let size = 5 + 23;
  for (const [, nals] of arrays) size += 3 + listSize(nals);
  const body = new Uint8Array(size);
  body[0] = EX_HEADER | (1 << 4) | EX_SEQUENCE_START;
  body.set(HVC1, 1);
  body[5] = 1; // configurationVersion
  body.set(info.generalProfile, 6);
  body.set(
    [
      0xf0, // reserved, min_spatial_segmentation_idc 0
      0x00,
      0xfc, // reserved, parallelismType 0 (unknown)
      0xfc | info.chromaFormat,
      0xf8 | (info.bitDepthLuma - 8),
      0xf8 | (info.bitDepthChroma - 8),
      0, // avgFrameRate 0: unspecified
      0,
      (info.maxSubLayers << 3) | (info.temporalIdNesting ? 4 : 0) | 3,
      arrays.length,
    ],
    18,
  );
  let at = 28;
  for (const [type, nals] of arrays) {
    body[at] = 0x80 | type; // array_completeness: every set of this type is here
    body[at + 1] = nals.length >> 8;
    body[at + 2] = nals.length & 0xff;
    at = putList(body, at + 3, nals);
  }
  return body;
};

/** FLV's codec ids, as onMetaData names them; HEVC's and AV1's are their FourCC's value, as Enhanced RTMP says. */
const VIDEO_CODEC_ID = { h264: 7, hevc: 0x68766331, av1: 0x61763031 } as const;
const AUDIO_CODEC_ID = { mp3: 2, aac: 10 } as const;

export interface StreamMetadata {
  readonly video?: {
    readonly codec: keyof typeof VIDEO_CODEC_ID;
    readonly width: number;
    readonly height: number;
    readonly frameRate: number;
    readonly kbps?: number;
  };
  readonly audio?: {
    readonly codec: keyof typeof AUDIO_CODEC_ID;
    readonly sampleRate: number;
    readonly channels: number;
    readonly kbps?: number;
  };
}

/**
 * The script data body of `onMetaData`; with `setDataFrame`, behind the `@setDataFrame` a publisher sends so
 * that the server keeps it for every viewer.
 */
export const metadataBody = (meta: StreamMetadata, setDataFrame = false): Uint8Array => {
  const entries: Record<string, number | boolean> = { duration: 0 };
  if (meta.video) {
    entries.width = meta.video.width;
    entries.height = meta.video.height;
    entries.framerate = meta.video.frameRate;
    entries.videocodecid = VIDEO_CODEC_ID[meta.video.codec];
    if (meta.video.kbps !== undefined) entries.videodatarate = meta.video.kbps;
  }
  if (meta.audio) {
    entries.audiocodecid = AUDIO_CODEC_ID[meta.audio.codec];
    entries.audiosamplerate = meta.audio.sampleRate;
    entries.audiosamplesize = 16;
    entries.stereo = meta.audio.channels >= 2;
    if (meta.audio.kbps !== undefined) entries.audiodatarate = meta.audio.kbps;
  }
  const array = new EcmaArray(entries);
  return setDataFrame ? encodeAmf0("@setDataFrame", "onMetaData", array) : encodeAmf0("onMetaData", array);
};
