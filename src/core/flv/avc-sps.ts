/**
 * What an H.264 SPS (ISO/IEC 14496-10 7.3.2.1.1) declares, for onMetaData and the slate's format probe, and
 * whether it can be used at all: read to its end (profile, level, chroma, bit depth, cropping, VUI timing), through the high profiles' chroma format and scaling lists, every value
 * checked against the range the standard gives it. A corrupt SPS (bit errors, a stranger's bytes) is
 * `Unusable` with the reason, read in bounded time: no loop runs longer than the standard's largest count.
 */
import { BitReader, MAX_PICTURE_SIDE, nalHeaderProblem, skipVuiStart, type Unusable } from "./rbsp.ts";

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);
const PROFILES = new Set([66, 77, 88, ...HIGH_PROFILES]);

const skipScalingList = (r: BitReader, size: number): void => {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) {
      const delta = r.se();
      next = (last + delta + 256) % 256;
    }
    last = next === 0 ? last : next;
  }
};

/** What the VUI (E.1.1) says that the slate's probe reads: the timing and what a pic_timing SEI holds. */
interface AvcVui {
  /** timing_info: a frame lasts 2 × numUnitsInTick / timeScale seconds; null when absent. */
  readonly timing: { readonly numUnitsInTick: number; readonly timeScale: number } | null;
  /** Whether a pic_timing SEI carries pic_struct. */
  readonly picStructPresent: boolean;
  /** Whether a pic_timing SEI starts with cpb_removal_delay and dpb_output_delay, and their lengths in bits. */
  readonly cpbDpbDelaysPresent: boolean;
  readonly cpbRemovalDelayLength: number;
  readonly dpbOutputDelayLength: number;
  /**
   * Where max_num_reorder_frames lies in the RBSP, in bits from its start (`end` excluded), when the VUI has
   * a bitstream restriction: the content watcher rewrites it for its key-frame decoder (content/key-frame-copy.ts).
   */
  readonly reorderBits: { readonly at: number; readonly end: number } | null;
}

/** hrd_parameters (E.1.2), read past: the lengths of the pic_timing SEI's delays, or null when broken. */
const skipHrd = (r: BitReader): { cpb: number; dpb: number } | null => {
  const count = r.ue() + 1; // cpb_cnt_minus1: at most 31
  if (count > 32) {
    r.broken = true;
    return null;
  }
  r.u(8); // bit_rate_scale, cpb_size_scale
  for (let i = 0; i < count; i++) {
    r.ue(); // bit_rate_value_minus1
    r.ue(); // cpb_size_value_minus1
    r.u(1); // cbr_flag
  }
  r.u(5); // initial_cpb_removal_delay_length_minus1
  const cpb = r.u(5) + 1; // cpb_removal_delay_length_minus1
  const dpb = r.u(5) + 1; // dpb_output_delay_length_minus1
  r.u(5); // time_offset_length
  return { cpb, dpb };
};

/** vui_parameters (E.1.1): what follows them must be the SPS's trailing bits. */
const readVui = (r: BitReader): AvcVui => {
  skipVuiStart(r);
  let timing: AvcVui["timing"] = null;
  if (r.u(1) === 1) {
    const numUnitsInTick = r.u(32);
    const timeScale = r.u(32);
    r.u(1); // fixed_frame_rate_flag
    if (numUnitsInTick > 0 && timeScale > 0) timing = { numUnitsInTick, timeScale };
  }
  const nalHrd = r.u(1) === 1 ? skipHrd(r) : null;
  const vclHrd = r.u(1) === 1 ? skipHrd(r) : null;
  const hrd = nalHrd ?? vclHrd;
  if (hrd !== null) r.u(1); // low_delay_hrd_flag
  const picStructPresent = r.u(1) === 1;
  let reorderBits: AvcVui["reorderBits"] = null;
  if (r.u(1) === 1) {
    r.u(1); // motion_vectors_over_pic_boundaries_flag
    for (let i = 0; i < 4; i++) r.ue(); // max bytes per picture, bits per MB, mv lengths
    const at = r.position;
    r.ue(); // max_num_reorder_frames
    reorderBits = { at, end: r.position };
    r.ue(); // max_dec_frame_buffering
  }
  return {
    reorderBits,
    timing,
    picStructPresent,
    cpbDpbDelaysPresent: hrd !== null,
    cpbRemovalDelayLength: hrd?.cpb ?? 0,
    dpbOutputDelayLength: hrd?.dpb ?? 0,
  };
};

/** What an H.264 SPS declares: the picture size, and what the slate's probe and a slice header's reader need. */
interface AvcSpsInfo {
  /** Width and height in pixels after cropping (the whole frame, both fields). */
  readonly width: number;
  readonly height: number;
  readonly profileIdc: number;
  readonly levelIdc: number;
  readonly chromaFormat: number;
  readonly separateColourPlane: boolean;
  readonly bitDepthLuma: number;
  readonly bitDepthChroma: number;
  /** log2_max_frame_num: the width of a slice header's frame_num. */
  readonly log2MaxFrameNum: number;
  /** frame_mbs_only_flag: false when pictures may be coded as fields or as MBAFF frames (interlaced). */
  readonly frameMbsOnly: boolean;
  /** The VUI's fields, or null when the SPS has none. */
  readonly vui: AvcVui | null;
}

/** What the SPS declares (width and height in pixels after cropping, …), or why it cannot be used. */
export const readAvcSps = (sps: Uint8Array): AvcSpsInfo | Unusable => {
  const header = nalHeaderProblem(sps, 4, "SPS");
  if (header !== null) return { unusable: header };
  const r = new BitReader(sps);
  r.u(8); // NAL header
  const profile = r.u(8);
  r.u(8); // constraint flags
  const levelIdc = r.u(8);
  if (!PROFILES.has(profile))
    return { unusable: `an SPS of profile_idc ${profile}, which is no H.264 profile` };
  const id = r.ue(); // seq_parameter_set_id
  let chromaFormat = 1;
  let separateColourPlane = false;
  let depths = [0, 0];
  if (HIGH_PROFILES.has(profile)) {
    chromaFormat = r.ue();
    if (chromaFormat > 3) return { unusable: `an SPS with chroma_format_idc ${chromaFormat}` };
    if (chromaFormat === 3) separateColourPlane = r.u(1) === 1;
    depths = [r.ue(), r.ue()]; // bit_depth_luma_minus8, bit_depth_chroma_minus8
    if (depths.some((depth) => depth > 6)) return { unusable: "an SPS with a bit depth over 14" };
    r.u(1); // qpprime_y_zero_transform_bypass_flag
    if (r.u(1) === 1) {
      for (let i = 0; i < (chromaFormat === 3 ? 12 : 8); i++) {
        if (r.u(1) === 1) skipScalingList(r, i < 6 ? 16 : 64);
      }
    }
  }
  const frameNumBits = r.ue(); // log2_max_frame_num_minus4
  const pocType = r.ue();
  if (id > 31 || frameNumBits > 12 || pocType > 2)
    return {
      unusable: `an SPS with seq_parameter_set_id ${id}, log2_max_frame_num_minus4 ${frameNumBits}, pic_order_cnt_type ${pocType}`,
    };
  if (pocType === 0) {
    if (r.ue() > 12) return { unusable: "an SPS with log2_max_pic_order_cnt_lsb_minus4 over 12" };
  } else if (pocType === 1) {
    r.u(1);
    r.se();
    r.se();
    const cycle = r.ue();
    if (cycle > 255)
      return { unusable: `an SPS whose pic_order_cnt cycle has ${cycle} frames (at most 255)` };
    for (let i = 0; i < cycle; i++) r.se();
  }
  const refFrames = r.ue(); // max_num_ref_frames
  if (refFrames > 16) return { unusable: `an SPS of ${refFrames} reference frames (at most 16)` };
  r.u(1); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ue() + 1;
  const heightMapUnits = r.ue() + 1;
  const frameMbsOnly = r.u(1);
  if (frameMbsOnly === 0) r.u(1);
  r.u(1); // direct_8x8_inference_flag
  let width = widthMbs * 16;
  let height = (2 - frameMbsOnly) * heightMapUnits * 16;
  if (r.u(1) === 1) {
    const cropX = chromaFormat === 0 || chromaFormat === 3 ? 1 : 2;
    const cropY = (chromaFormat === 1 ? 2 : 1) * (2 - frameMbsOnly);
    const left = r.ue();
    const right = r.ue();
    const top = r.ue();
    const bottom = r.ue();
    width -= cropX * (left + right);
    height -= cropY * (top + bottom);
  }
  const vui = r.u(1) === 1 ? readVui(r) : null; // vui_parameters_present_flag
  if (r.broken) return { unusable: "an SPS that ends before its fields do" };
  if (!r.trailing())
    return { unusable: "an SPS with bytes after its last field (no rbsp_trailing_bits there)" };
  if (width <= 0 || height <= 0 || width > MAX_PICTURE_SIDE || height > MAX_PICTURE_SIDE)
    return { unusable: `an SPS for a ${width}×${height} picture` };
  return {
    width,
    height,
    profileIdc: profile,
    levelIdc,
    chromaFormat,
    separateColourPlane,
    bitDepthLuma: (depths[0] ?? 0) + 8,
    bitDepthChroma: (depths[1] ?? 0) + 8,
    log2MaxFrameNum: frameNumBits + 4,
    frameMbsOnly: frameMbsOnly === 1,
    vui,
  };
};
