/**
 * FLV video sequence headers read for the FLV → TS muxer (ts-mux.ts): an AVCDecoderConfigurationRecord or
 * HEVCDecoderConfigurationRecord's NAL length size and parameter sets in Annex B, and the access unit
 * delimiters put before each frame; an AV1CodecConfigurationRecord (av1.ts) as its PMT descriptors and its
 * sequence header OBU.
 */
import {
  type Av1Config,
  av1ConfigFromDescriptor,
  av1Descriptors,
  readAv1C,
  sequenceHeaderObu,
} from "./av1.ts";
import { readSequenceHeader } from "./av1-sequence.ts";

/** What the muxer carries. */
export type FlvVideoCodec = "h264" | "hevc" | "av1";

export interface VideoConfig {
  readonly codec: FlvVideoCodec;
  readonly lengthSize: number;
  /** Parameter sets in Annex B (AV1: the record's configOBUs), put before every keyframe that lacks them. */
  readonly sets: Uint8Array;
  /** The descriptors of the stream's PMT entry (AV1's registration and video descriptors; else none). */
  readonly descriptors: Uint8Array;
}

const NONE = new Uint8Array(0);

/**
 * AV1's sequence start (an AV1CodecConfigurationRecord) or MPEG-2 TS sequence start (its video descriptor);
 * the descriptor's HDR and wide colour gamut said as the record's sequence header says (else: not said).
 */
export const readAv1Start = (body: Uint8Array, mpeg2Ts: boolean): VideoConfig | null => {
  const config: Av1Config | null = mpeg2Ts ? av1ConfigFromDescriptor(body) : readAv1C(body);
  if (config === null) return null;
  if (mpeg2Ts)
    return {
      codec: "av1",
      lengthSize: 0,
      sets: NONE,
      descriptors: av1Descriptors(config, (body[5] ?? 0xc0) >> 6),
    };
  const header = sequenceHeaderObu(config.configObus);
  const info = header === null ? null : readSequenceHeader(header);
  const hdrWcg = info === null || typeof info === "string" ? 3 : info.hdrWcg;
  return {
    codec: "av1",
    lengthSize: 0,
    sets: config.configObus,
    descriptors: av1Descriptors(config, hdrWcg),
  };
};

const startCode = Uint8Array.of(0, 0, 0, 1);

/** Annex B of the NAL units `nals`, each behind a 4-byte start code. */
export const annexB = (nals: ReadonlyArray<Uint8Array>): Uint8Array => {
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
export const readAvcC = (record: Uint8Array): VideoConfig | null => {
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
  return { codec: "h264", lengthSize: ((record[4] ?? 0) & 3) + 1, sets: annexB(nals), descriptors: NONE };
};

/** An HEVCDecoderConfigurationRecord's NAL length size and VPS/SPS/PPS (and any SEI arrays). */
export const readHvcC = (record: Uint8Array): VideoConfig | null => {
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
  return { codec: "hevc", lengthSize: ((record[21] ?? 0) & 3) + 1, sets: annexB(nals), descriptors: NONE };
};

/** The access unit delimiter that starts each frame, in Annex B. */
export const AUD = {
  h264: Uint8Array.of(0, 0, 0, 1, 0x09, 0xf0),
  hevc: Uint8Array.of(0, 0, 0, 1, 0x46, 0x01, 0x50),
};

/**
 * An H.264 or HEVC frame's length-prefixed NAL units (`frame`) in Annex B: an access unit delimiter first (the
 * frame's own are left out) and, on a keyframe that carries none, `config`'s parameter sets.
 */
export const annexBFrame = (
  codec: "h264" | "hevc",
  config: VideoConfig,
  frame: Uint8Array,
  keyframe: boolean,
): Uint8Array => {
  const nals: Uint8Array[] = [];
  let hasSets = false;
  for (let at = 0; at + config.lengthSize <= frame.length; ) {
    let length = 0;
    for (let i = 0; i < config.lengthSize; i++) length = length * 256 + (frame[at + i] ?? 0);
    at += config.lengthSize;
    if (length === 0 || at + length > frame.length) break;
    const nal = frame.subarray(at, at + length);
    at += length;
    const type = codec === "h264" ? (nal[0] ?? 0) & 0x1f : ((nal[0] ?? 0) >> 1) & 0x3f;
    if (codec === "h264" ? type === 9 : type === 35) continue;
    if (codec === "h264" ? type === 7 : type === 32 || type === 33) hasSets = true;
    nals.push(nal);
  }
  const au = AUD[codec];
  const sets = keyframe && !hasSets ? config.sets : NONE;
  const payload = new Uint8Array(au.length + sets.length + nals.reduce((n, nal) => n + 4 + nal.length, 0));
  payload.set(au);
  payload.set(sets, au.length);
  payload.set(annexB(nals), au.length + sets.length);
  return payload;
};
