/** What an HEVC SPS says (ITU-T H.265 7.3.2.2) that the decoder configuration record and onMetaData need. */
import { BitReader, MAX_PICTURE_SIDE, nalHeaderProblem, skipVuiStart, type Unusable } from "./rbsp.ts";

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
interface HevcVui {
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
