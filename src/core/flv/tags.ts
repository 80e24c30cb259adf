/**
 * FLV tag bodies from MPEG-TS access units, and the FLV file framing around them. An RTMP message carries a
 * tag's body with the type and timestamp in its chunk header, so the bodies are what the remux makes once per
 * frame and every output shares; `flvTag` adds the 11-byte tag header and PreviousTagSize for a file.
 *
 *   avcSequenceHeader(sps, pps)                      // video tag: AVCDecoderConfigurationRecord
 *   videoFrame("h264", annexB, key, compositionMs)   // AUDs dropped, start codes → 4-byte lengths
 *   hevcSequenceHeader(vps, sps, pps)                // Enhanced RTMP, FourCC hvc1
 *   adts.reset(pes); while (adts.next()) aacFrame(pes, adts.start, adts.end)
 *
 * Per frame: one search for its NAL units (`NalUnits`, shared with the keyframe test and the parameter sets),
 * one allocation of the exact size, one copy.
 */
import { EcmaArray, encodeAmf0 } from "./amf0.ts";
import { H264_NAL, HEVC_NAL, NalUnits, nalType, type VideoCodec } from "./nal.ts";

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
  // Every byte is written below: no zeroing first (and a small body comes from Buffer's pool).
  const body = Buffer.allocUnsafe(size);
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

/** The parameter sets of an Annex B access unit, as views into it (no copy). */
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

/** Why a parameter set cannot be used, in words: the keyframe carrying it is dropped, not built into a header. */
export interface Unusable {
  readonly unusable: string;
}

export const isUnusable = (value: object): value is Unusable => "unusable" in value;

/**
 * An RBSP reader: emulation prevention bytes removed, then bits and Exp-Golomb codes. Reading past the end or
 * an Exp-Golomb code with more than 31 leading zeros (no field of a parameter set is that large) sets
 * `broken` and reads 0 from then on, so a corrupt set is read to its end in bounded time and then refused.
 */
export class BitReader {
  private readonly bytes: Uint8Array;
  private bit = 0;
  broken = false;
  constructor(nal: Uint8Array) {
    const out = new Uint8Array(nal.length);
    let n = 0;
    let zeros = 0;
    for (const byte of nal) {
      if (zeros >= 2 && byte === 3) {
        zeros = 0;
        continue;
      }
      zeros = byte === 0 ? zeros + 1 : 0;
      out[n++] = byte;
    }
    this.bytes = out.subarray(0, n);
  }
  u(n: number): number {
    if (this.broken || this.bit + n > this.bytes.length * 8) {
      this.broken = true;
      return 0;
    }
    let value = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.bytes[this.bit >> 3] ?? 0;
      value = value * 2 + ((byte >> (7 - (this.bit & 7))) & 1);
      this.bit++;
    }
    return value;
  }
  ue(): number {
    let zeros = 0;
    while (this.u(1) === 0) {
      if (this.broken || ++zeros > 31) {
        this.broken = true;
        return 0;
      }
    }
    return 2 ** zeros - 1 + this.u(zeros);
  }
  /** A signed Exp-Golomb code: 1, −1, 2, −2, … */
  se(): number {
    const k = this.ue();
    return k % 2 === 1 ? (k + 1) / 2 : -k / 2;
  }
  slice(byteAt: number, length: number): Uint8Array {
    return this.bytes.subarray(byteAt, byteAt + length);
  }
  /**
   * Whether what is left is rbsp_trailing_bits: a 1, then 0s to the end (a set read to its last field ends
   * exactly there; a corrupt one seldom does).
   */
  trailing(): boolean {
    if (this.broken || this.u(1) !== 1) return false;
    for (let at = this.bit; at < this.bytes.length * 8; at++) {
      if ((((this.bytes[at >> 3] ?? 0) >> (7 - (at & 7))) & 1) !== 0) return false;
    }
    return true;
  }
}

/** The largest picture side a parameter set may declare: 16384 (beyond every level of H.264 and HEVC). */
/**
 * The start of vui_parameters, the same in H.264 (E.1.1) and HEVC (E.2.1), read past: aspect ratio, overscan,
 * video signal type, chroma sample location.
 */
export const skipVuiStart = (r: BitReader): void => {
  if (r.u(1) === 1 && r.u(8) === 255) r.u(32); // aspect_ratio_idc, Extended_SAR
  if (r.u(1) === 1) r.u(1); // overscan
  if (r.u(1) === 1) {
    r.u(4); // video_format, video_full_range_flag
    if (r.u(1) === 1) r.u(24); // colour description
  }
  if (r.u(1) === 1) {
    r.ue(); // chroma_sample_loc_type_top_field
    r.ue();
  }
};

export const MAX_PICTURE_SIDE = 16_384;

/** Why a parameter set's NAL unit is no parameter set at all (too short, forbidden bit set), or null. */
export const nalHeaderProblem = (nal: Uint8Array, minimum: number, what: string): string | null => {
  if (nal.length < minimum) return `a ${what} of ${nal.length} bytes, too short to be one`;
  if (((nal[0] ?? 0) & 0x80) !== 0) return `a ${what} whose forbidden_zero_bit is set`;
  return null;
};

/** Why an H.264 PPS (7.3.2.2) cannot be used, or null: its ids must be there and in range. */
export const avcPpsProblem = (pps: Uint8Array): string | null => {
  const header = nalHeaderProblem(pps, 2, "PPS");
  if (header !== null) return header;
  const r = new BitReader(pps);
  r.u(8);
  const id = r.ue();
  const spsId = r.ue();
  if (r.broken) return "a PPS that ends before its ids";
  if (id > 255 || spsId > 31)
    return `a PPS with ids out of range (pic_parameter_set_id ${id}, seq_parameter_set_id ${spsId})`;
  return null;
};

/** Why an HEVC VPS or PPS cannot be used, or null (HEVC's SPS is read by `readHevcSps`). */
export const hevcSetProblem = (nal: Uint8Array, type: "VPS" | "PPS"): string | null => {
  const header = nalHeaderProblem(nal, type === "VPS" ? 16 : 3, type);
  if (header !== null || type === "VPS") return header;
  const r = new BitReader(nal);
  r.u(16);
  const id = r.ue();
  const spsId = r.ue();
  if (r.broken) return "a PPS that ends before its ids";
  if (id > 63 || spsId > 15)
    return `a PPS with ids out of range (pps_pic_parameter_set_id ${id}, pps_seq_parameter_set_id ${spsId})`;
  return null;
};

/** What an HEVC SPS says that the decoder configuration record and onMetaData need. */
export interface HevcSpsInfo {
  /** general_profile_space … general_level_idc: the 12 bytes of the general profile_tier_level. */
  readonly generalProfile: Uint8Array;
  readonly maxSubLayers: number;
  readonly temporalIdNesting: boolean;
  readonly chromaFormat: number;
  readonly bitDepthLuma: number;
  readonly bitDepthChroma: number;
  readonly width: number;
  readonly height: number;
  /** The rest of the SPS, as far as the VUI's timing: null when the set ends or breaks before (not unusable). */
  readonly vui: HevcVui | null;
}

/** What an HEVC SPS's VUI (E.2.1) says about timing and fields; all null/false when the SPS has no VUI. */
export interface HevcVui {
  /** field_seq_flag: the pictures are fields (interlaced). */
  readonly fieldSeq: boolean;
  /** A picture lasts numUnitsInTick / timeScale seconds; null when absent. */
  readonly timing: { readonly numUnitsInTick: number; readonly timeScale: number } | null;
}

/** scaling_list_data (7.3.4), read past. */
const skipHevcScalingLists = (r: BitReader): void => {
  for (let sizeId = 0; sizeId < 4; sizeId++) {
    for (let matrixId = 0; matrixId < 6; matrixId += sizeId === 3 ? 3 : 1) {
      if (r.u(1) === 0) {
        r.ue(); // scaling_list_pred_matrix_id_delta
        continue;
      }
      if (sizeId > 1) r.se(); // scaling_list_dc_coef_minus8
      const coefficients = Math.min(64, 1 << (4 + (sizeId << 1)));
      for (let i = 0; i < coefficients && !r.broken; i++) r.se();
    }
  }
};

/**
 * The short-term reference picture sets of an SPS (7.3.7, derived by 7-61 … 7-62), read past: each set's
 * negative and positive delta POCs are kept, as a later set may be predicted from them. False when broken.
 */
const skipShortTermSets = (r: BitReader, count: number): boolean => {
  const negatives: number[][] = [];
  const positives: number[][] = [];
  for (let idx = 0; idx < count; idx++) {
    if (idx !== 0 && r.u(1) === 1) {
      const ref = idx - 1; // delta_idx_minus1 is only in slice headers
      const deltaRps = (1 - 2 * r.u(1)) * (r.ue() + 1);
      const s0 = negatives[ref] ?? [];
      const s1 = positives[ref] ?? [];
      const uses: boolean[] = [];
      for (let j = 0; j <= s0.length + s1.length; j++) {
        const used = r.u(1) === 1;
        uses.push(used || r.u(1) === 1);
      }
      const neg: number[] = [];
      const pos: number[] = [];
      for (let j = s1.length - 1; j >= 0; j--) {
        const d = (s1[j] ?? 0) + deltaRps;
        if (d < 0 && uses[s0.length + j]) neg.push(d);
      }
      if (deltaRps < 0 && uses[s0.length + s1.length]) neg.push(deltaRps);
      for (let j = 0; j < s0.length; j++) {
        const d = (s0[j] ?? 0) + deltaRps;
        if (d < 0 && uses[j]) neg.push(d);
      }
      for (let j = s0.length - 1; j >= 0; j--) {
        const d = (s0[j] ?? 0) + deltaRps;
        if (d > 0 && uses[j]) pos.push(d);
      }
      if (deltaRps > 0 && uses[s0.length + s1.length]) pos.push(deltaRps);
      for (let j = 0; j < s1.length; j++) {
        const d = (s1[j] ?? 0) + deltaRps;
        if (d > 0 && uses[s0.length + j]) pos.push(d);
      }
      if (neg.length > 16 || pos.length > 16) return false;
      negatives.push(neg);
      positives.push(pos);
    } else {
      const negativeCount = r.ue();
      const positiveCount = r.ue();
      if (negativeCount > 16 || positiveCount > 16) return false;
      const neg: number[] = [];
      const pos: number[] = [];
      let poc = 0;
      for (let i = 0; i < negativeCount; i++) {
        poc -= r.ue() + 1;
        r.u(1);
        neg.push(poc);
      }
      poc = 0;
      for (let i = 0; i < positiveCount; i++) {
        poc += r.ue() + 1;
        r.u(1);
        pos.push(poc);
      }
      negatives.push(neg);
      positives.push(pos);
    }
    if (r.broken) return false;
  }
  return true;
};

/** The SPS after the bit depths (7.3.2.2.1), as far as the VUI's timing info, or null when broken. */
const readHevcSpsTail = (r: BitReader, maxSubLayersMinus1: number): HevcVui | null => {
  const pocLsbBits = r.ue() + 4; // log2_max_pic_order_cnt_lsb_minus4
  if (pocLsbBits > 16) return null;
  const orderingInfo = r.u(1) === 1;
  for (let i = orderingInfo ? 0 : maxSubLayersMinus1; i <= maxSubLayersMinus1; i++) {
    r.ue();
    r.ue();
    r.ue();
  }
  for (let i = 0; i < 6; i++) r.ue(); // coding and transform block sizes, transform hierarchy depths
  if (r.u(1) === 1 && r.u(1) === 1) skipHevcScalingLists(r); // scaling_list_enabled, sps_scaling_list_data_present
  r.u(2); // amp_enabled_flag, sample_adaptive_offset_enabled_flag
  if (r.u(1) === 1) {
    r.u(8); // pcm sample bit depths
    r.ue();
    r.ue();
    r.u(1);
  }
  const shortTermSets = r.ue();
  if (shortTermSets > 64 || !skipShortTermSets(r, shortTermSets)) return null;
  if (r.u(1) === 1) {
    const longTerm = r.ue(); // num_long_term_ref_pics_sps
    if (longTerm > 32) return null;
    for (let i = 0; i < longTerm; i++) r.u(pocLsbBits + 1);
  }
  r.u(2); // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
  if (r.u(1) === 0) return r.broken ? null : { fieldSeq: false, timing: null }; // vui_parameters_present_flag
  skipVuiStart(r);
  r.u(1); // neutral_chroma_indication_flag
  const fieldSeq = r.u(1) === 1;
  r.u(1); // frame_field_info_present_flag
  if (r.u(1) === 1) for (let i = 0; i < 4; i++) r.ue(); // default display window
  let timing: HevcVui["timing"] = null;
  if (r.u(1) === 1) {
    const numUnitsInTick = r.u(32);
    const timeScale = r.u(32);
    if (numUnitsInTick > 0 && timeScale > 0) timing = { numUnitsInTick, timeScale };
  }
  return r.broken ? null : { fieldSeq, timing };
};

/**
 * Reads an HEVC SPS (H.265 7.3.2.2.1); unusable when a value is out of the standard's range (sub-layers, ids,
 * chroma format, picture size, bit depths) or the set ends before the bit depths. What follows them is read
 * as far as the VUI's timing info (`vui`), for the slate's format probe.
 */
export const readHevcSps = (sps: Uint8Array): HevcSpsInfo | Unusable => {
  const header = nalHeaderProblem(sps, 15, "SPS");
  if (header !== null) return { unusable: header };
  const r = new BitReader(sps);
  r.u(16); // nal_unit_header
  r.u(4); // sps_video_parameter_set_id
  const maxSubLayersMinus1 = r.u(3);
  const temporalIdNesting = r.u(1) === 1;
  if (maxSubLayersMinus1 > 6)
    return { unusable: `an SPS of ${maxSubLayersMinus1 + 1} sub-layers (at most 7)` };
  const generalProfile = r.slice(3, 12).slice();
  r.u(96);
  const profilePresent: boolean[] = [];
  const levelPresent: boolean[] = [];
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    profilePresent.push(r.u(1) === 1);
    levelPresent.push(r.u(1) === 1);
  }
  if (maxSubLayersMinus1 > 0) for (let i = maxSubLayersMinus1; i < 8; i++) r.u(2);
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    if (profilePresent[i]) r.u(88);
    if (levelPresent[i]) r.u(8);
  }
  const id = r.ue(); // sps_seq_parameter_set_id
  const chromaFormat = r.ue();
  if (chromaFormat === 3) r.u(1); // separate_colour_plane_flag
  let width = r.ue();
  let height = r.ue();
  if (r.u(1) === 1) {
    // Conformance window offsets are in chroma sample units.
    const subWidth = chromaFormat === 1 || chromaFormat === 2 ? 2 : 1;
    const subHeight = chromaFormat === 1 ? 2 : 1;
    width -= subWidth * (r.ue() + r.ue());
    height -= subHeight * (r.ue() + r.ue());
  }
  const bitDepthLuma = r.ue() + 8;
  const bitDepthChroma = r.ue() + 8;
  if (r.broken) return { unusable: "an SPS that ends before its picture size and bit depths" };
  if (id > 15 || chromaFormat > 3)
    return { unusable: `an SPS with sps_seq_parameter_set_id ${id} and chroma_format_idc ${chromaFormat}` };
  if (width <= 0 || height <= 0 || width > MAX_PICTURE_SIDE || height > MAX_PICTURE_SIDE)
    return { unusable: `an SPS for a ${width}×${height} picture` };
  if (bitDepthLuma > 16 || bitDepthChroma > 16)
    return { unusable: `an SPS of ${bitDepthLuma}-bit luma and ${bitDepthChroma}-bit chroma` };
  return {
    generalProfile,
    maxSubLayers: maxSubLayersMinus1 + 1,
    temporalIdNesting,
    chromaFormat,
    bitDepthLuma,
    bitDepthChroma,
    width,
    height,
    vui: readHevcSpsTail(r, maxSubLayersMinus1),
  };
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

// Audio.

/** sampling_frequency_index → Hz (ISO/IEC 14496-3 1.6.3.4). */
export const AAC_SAMPLE_RATES = [
  96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
] as const;

/** SoundFormat 10 (AAC), 44 kHz, 16-bit, stereo: what FLV requires in the first byte of every AAC tag. */
const AAC_FLAGS = 0xaf;

/**
 * Walks the ADTS frames of one PES payload. After `next()` answers true, `start`…`end` is the raw AAC frame
 * (header and CRC skipped) and the header's fields describe it. Bytes that are no frame — a lost sync, a
 * header whose length is impossible or runs past the PES, a sampling frequency index past the table — are
 * skipped to the next sync word that starts a frame ending where another starts (or the PES ends), and
 * counted: `lost` stretches in this PES, the latest described in `problem`.
 */
export class AdtsReader {
  private data: Uint8Array = new Uint8Array(0);
  private pos = 0;
  start = 0;
  end = 0;
  objectType = 0;
  sampleRateIndex = 0;
  channels = 0;
  /** Frames in this PES so far, so the caller can time the n-th one 1024 samples after the one before. */
  index = -1;
  /** Stretches of this PES that were no ADTS frame, and what the latest was. */
  lost = 0;
  problem = "";
  private resyncing = false;

  reset(payload: Uint8Array): void {
    this.data = payload;
    this.pos = 0;
    this.index = -1;
    this.lost = 0;
    this.resyncing = false;
  }

  next(): boolean {
    const d = this.data;
    while (this.pos < d.length) {
      const at = this.pos;
      const problem = this.frameAt(d, at);
      if (problem === null) {
        this.resyncing = false;
        this.index++;
        return true;
      }
      if (!this.resyncing) {
        this.resyncing = true;
        this.lost++;
        this.problem = problem;
      }
      const sync = d.indexOf(0xff, at + 1);
      this.pos = sync < 0 ? d.length : sync;
    }
    return false;
  }

  /** Takes the frame at `at` (null), or says why there is none. */
  private frameAt(d: Uint8Array, at: number): string | null {
    if (at + 7 > d.length || d[at] !== 0xff || ((d[at + 1] ?? 0) & 0xf6) !== 0xf0) return "no ADTS sync word";
    const b1 = d[at + 1] ?? 0;
    const b2 = d[at + 2] ?? 0;
    const b3 = d[at + 3] ?? 0;
    const frameLength = ((b3 & 0x03) << 11) | ((d[at + 4] ?? 0) << 3) | ((d[at + 5] ?? 0) >> 5);
    const headerLength = (b1 & 1) === 1 ? 7 : 9;
    if (frameLength <= headerLength || at + frameLength > d.length)
      return `an ADTS header whose frame_length ${frameLength} is impossible here`;
    const sampleRateIndex = (b2 >> 2) & 0x0f;
    if (sampleRateIndex >= AAC_SAMPLE_RATES.length)
      return `an ADTS header with sampling_frequency_index ${sampleRateIndex}`;
    // After a lost stretch a sync word may be a frame's own bytes: one is taken only where the next starts.
    const after = at + frameLength;
    if (this.resyncing && after < d.length && (d[after] !== 0xff || ((d[after + 1] ?? 0) & 0xf6) !== 0xf0))
      return "no ADTS sync word";
    this.objectType = (b2 >> 6) + 1;
    this.sampleRateIndex = sampleRateIndex;
    this.channels = ((b2 & 1) << 2) | (b3 >> 6);
    this.start = at + headerLength;
    this.end = after;
    this.pos = after;
    return null;
  }

  get sampleRate(): number {
    return AAC_SAMPLE_RATES[this.sampleRateIndex] ?? 0;
  }

  /** The 2-byte AudioSpecificConfig of the current frame's header. */
  audioSpecificConfig(): Uint8Array {
    return Uint8Array.of(this.configByte(0), this.configByte(1));
  }

  /** Whether `config` is the current frame's AudioSpecificConfig: asked every frame, so it makes none. */
  hasConfig(config: Uint8Array): boolean {
    return config.length === 2 && config[0] === this.configByte(0) && config[1] === this.configByte(1);
  }

  private configByte(i: 0 | 1): number {
    return i === 0
      ? (this.objectType << 3) | (this.sampleRateIndex >> 1)
      : ((this.sampleRateIndex & 1) << 7) | (this.channels << 3);
  }
}

/** The AAC sequence header tag body: 0xAF 0x00 and the AudioSpecificConfig. */
export const aacSequenceHeader = (audioSpecificConfig: Uint8Array): Uint8Array => {
  const body = new Uint8Array(2 + audioSpecificConfig.length);
  body[0] = AAC_FLAGS;
  body.set(audioSpecificConfig, 2);
  return body;
};

/** An AAC frame's tag body: 0xAF 0x01 and the raw frame `payload[start, end)`, its ADTS header gone. */
export const aacFrame = (payload: Uint8Array, start: number, end: number): Uint8Array => {
  // Every byte is written below; an AAC frame's few hundred bytes come from Buffer's pool.
  const body = Buffer.allocUnsafe(2 + end - start);
  body[0] = AAC_FLAGS;
  body[1] = 1;
  copyBytes(payload, start, end, body, 2);
  return body;
};

/**
 * An MP3 tag body (SoundFormat 2): the flags from the first frame header, then the frames as they came. FLV's
 * rate field has no 48 or 32 kHz; as other muxers do, those say 44 kHz and decoders read the frame header.
 */
export const mp3Frame = (frames: Uint8Array): Uint8Array => {
  const version = ((frames[1] ?? 0) >> 3) & 3; // 3 MPEG-1, 2 MPEG-2, 0 MPEG-2.5
  const rateIndex = ((frames[2] ?? 0) >> 2) & 3;
  const mono = (frames[3] ?? 0) >> 6 === 3;
  const base = [44100, 48000, 32000][rateIndex] ?? 44100;
  const rate = version === 3 ? base : version === 2 ? base / 2 : base / 4;
  const rateCode = rate <= 8000 ? 0 : rate <= 12000 ? 1 : rate <= 24000 ? 2 : 3;
  const body = new Uint8Array(1 + frames.length);
  body[0] = (2 << 4) | (rateCode << 2) | 2 | (mono ? 0 : 1);
  body.set(frames, 1);
  return body;
};

/** FLV's codec ids, as onMetaData names them; HEVC's is its FourCC's value, as Enhanced RTMP says. */
export const VIDEO_CODEC_ID = { h264: 7, hevc: 0x68766331 } as const;
export const AUDIO_CODEC_ID = { mp3: 2, aac: 10 } as const;

export interface StreamMetadata {
  readonly video?: {
    readonly codec: VideoCodec;
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
