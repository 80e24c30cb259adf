/**
 * The video format the slate's probe (probe.ts) reads from the channel's pictures: the SPS of H.264 or HEVC
 * (profile, level, size, bit depth, chroma; refused in words when the slate's encoder cannot make it), the
 * field order of interlaced H.264 (pic_timing SEI or the first field's slice header), and the frame rate from
 * the PTS of about a dozen pictures, snapped to the usual rates.
 */
import { readAvcSps } from "../flv/avc-sps.ts";
import { readHevcSps } from "../flv/hevc-sps.ts";
import { NalUnits, nalType } from "../flv/nal.ts";
import { BitReader, isUnusable } from "../flv/rbsp.ts";
import { PTS_WRAP, ptsAt, STREAM_TYPE_H264, STREAM_TYPE_H265 } from "../ts/index.ts";
import { pesPayload } from "./pes-reader.ts";
import type { Scan, VideoFormat } from "./types.ts";

/** Pictures whose PTS are kept for the frame rate: 13 give 12 differences (at least 8 must be usable). */
export const PICTURES = 13;
const MIN_DELTAS = 8;

/** The frame rates a slate is made at, as fractions. */
const USUAL_RATES: ReadonlyArray<{ readonly num: number; readonly den: number }> = [
  { num: 24000, den: 1001 },
  { num: 24, den: 1 },
  { num: 25, den: 1 },
  { num: 30000, den: 1001 },
  { num: 30, den: 1 },
  { num: 50, den: 1 },
  { num: 60000, den: 1001 },
  { num: 60, den: 1 },
];

const AVC_PROFILES: ReadonlyMap<number, string> = new Map([
  [66, "baseline"],
  [77, "main"],
  [100, "high"],
  [110, "high10"],
  [122, "high422"],
]);

const snapRate = (fps: number): { readonly num: number; readonly den: number } | null => {
  let best: { readonly num: number; readonly den: number } | null = null;
  let error = Number.POSITIVE_INFINITY;
  for (const rate of USUAL_RATES) {
    const e = Math.abs(fps / (rate.num / rate.den) - 1);
    if (e < error) {
      error = e;
      best = rate;
    }
  }
  return error < 0.02 ? best : null;
};
/** What the video's parameter sets and pictures have told so far. */
interface VideoState {
  /** The format but for the frame rate and scan, once a usable SPS is read. */
  sps: Omit<VideoFormat, "frameRate" | "scan"> | null;
  /** The SPS's answer, when it refuses. */
  refused: string | null;
  interlaced: boolean;
  /** H.264: for the pic_timing SEI and slice headers. */
  picStruct: { present: boolean; delays: boolean; cpb: number; dpb: number };
  log2MaxFrameNum: number;
  separateColourPlane: boolean;
  /** The frame rate as the VUI's timing says, or 0. */
  vuiFps: number;
  /** Field order, once something said it. */
  order: Scan | null;
  /** Whether pictures are fields coded one per PES (the PTS then step by fields). */
  fieldPerPes: boolean | null;
  pts: number[];
}

export const newVideoState = (): VideoState => ({
  sps: null,
  refused: null,
  interlaced: false,
  picStruct: { present: false, delays: false, cpb: 0, dpb: 0 },
  log2MaxFrameNum: 4,
  separateColourPlane: false,
  vuiFps: 0,
  order: null,
  fieldPerPes: null,
  pts: [],
});

const readH264Sps = (nal: Uint8Array, pid: number, v: VideoState): void => {
  const info = readAvcSps(nal);
  if (isUnusable(info)) return;
  const profile = AVC_PROFILES.get(info.profileIdc);
  if (profile === undefined) {
    v.refused = `the slate's encoder makes H.264 baseline, main, high, high10 and high422; this channel's H.264 is of profile_idc ${info.profileIdc}`;
    return;
  }
  if (info.chromaFormat !== 1 && info.chromaFormat !== 2) {
    v.refused = `the slate is made in 4:2:0 or 4:2:2; this channel's H.264 has chroma_format_idc ${info.chromaFormat}`;
    return;
  }
  if (info.bitDepthLuma !== info.bitDepthChroma || (info.bitDepthLuma !== 8 && info.bitDepthLuma !== 10)) {
    v.refused = `the slate is made at 8 or 10 bits; this channel's H.264 is ${info.bitDepthLuma}-bit luma, ${info.bitDepthChroma}-bit chroma`;
    return;
  }
  v.sps = {
    pid,
    streamType: STREAM_TYPE_H264,
    codec: "h264",
    profile,
    level: info.levelIdc / 10,
    width: info.width,
    height: info.height,
    bitDepth: info.bitDepthLuma,
    chroma: info.chromaFormat === 1 ? "4:2:0" : "4:2:2",
  };
  v.interlaced = !info.frameMbsOnly;
  v.log2MaxFrameNum = info.log2MaxFrameNum;
  v.separateColourPlane = info.separateColourPlane;
  const vui = info.vui;
  if (vui !== null) {
    v.picStruct = {
      present: vui.picStructPresent,
      delays: vui.cpbDpbDelaysPresent,
      cpb: vui.cpbRemovalDelayLength,
      dpb: vui.dpbOutputDelayLength,
    };
    if (vui.timing !== null) v.vuiFps = vui.timing.timeScale / (2 * vui.timing.numUnitsInTick);
  }
};

const readH265Sps = (nal: Uint8Array, pid: number, v: VideoState): void => {
  const info = readHevcSps(nal);
  if (isUnusable(info)) return;
  const profileIdc = (info.generalProfile[0] ?? 0) & 0x1f;
  const compatible = (flag: number) =>
    (((info.generalProfile[1 + (flag >> 3)] ?? 0) >> (7 - (flag & 7))) & 1) === 1;
  const profile =
    profileIdc === 1 || (profileIdc === 0 && compatible(1)) ? "main" : profileIdc === 2 ? "main10" : null;
  if (profile === null) {
    v.refused = `the slate's encoder makes HEVC main and main10; this channel's HEVC is of general_profile_idc ${profileIdc}`;
    return;
  }
  if (info.chromaFormat !== 1 && info.chromaFormat !== 2) {
    v.refused = `the slate is made in 4:2:0 or 4:2:2; this channel's HEVC has chroma_format_idc ${info.chromaFormat}`;
    return;
  }
  if (info.bitDepthLuma !== info.bitDepthChroma || (info.bitDepthLuma !== 8 && info.bitDepthLuma !== 10)) {
    v.refused = `the slate is made at 8 or 10 bits; this channel's HEVC is ${info.bitDepthLuma}-bit luma, ${info.bitDepthChroma}-bit chroma`;
    return;
  }
  // general_progressive_source_flag, general_interlaced_source_flag: the first two bits after the 32 flags.
  const sourceFlags = (info.generalProfile[5] ?? 0) >> 6;
  if (info.vui?.fieldSeq === true || sourceFlags === 1) {
    v.refused = "the slate's encoder cannot make interlaced HEVC; this channel's HEVC is coded as fields";
    return;
  }
  v.sps = {
    pid,
    streamType: STREAM_TYPE_H265,
    codec: "hevc",
    profile,
    level: (info.generalProfile[11] ?? 0) / 30,
    width: info.width,
    height: info.height,
    bitDepth: info.bitDepthLuma,
    chroma: info.chromaFormat === 1 ? "4:2:0" : "4:2:2",
  };
  const timing = info.vui?.timing;
  if (timing != null) v.vuiFps = timing.timeScale / timing.numUnitsInTick;
};

/** The pic_timing SEI's pic_struct (D.1.3), when the VUI says it is there: the field order it gives, or null. */
const readPicTiming = (nal: Uint8Array, v: VideoState): Scan | null => {
  if (!v.picStruct.present) return null;
  const r = new BitReader(nal.subarray(0, 4096));
  r.u(8);
  while (!r.broken) {
    let type = 0;
    let byte = r.u(8);
    while (byte === 255 && !r.broken) {
      type += 255;
      byte = r.u(8);
    }
    type += byte;
    let size = 0;
    byte = r.u(8);
    while (byte === 255 && !r.broken) {
      size += 255;
      byte = r.u(8);
    }
    size += byte;
    if (r.broken || size === 0) return null;
    if (type === 1) {
      if (v.picStruct.delays) r.u(v.picStruct.cpb + v.picStruct.dpb);
      const picStruct = r.u(4);
      if (r.broken) return null;
      return picStruct === 3 || picStruct === 5 ? "tff" : picStruct === 4 || picStruct === 6 ? "bff" : null;
    }
    for (let i = 0; i < size && !r.broken; i++) r.u(8);
  }
  return null;
};

/** A slice header's field_pic_flag and bottom_field_flag (7.3.3), or null when it starts no picture. */
const readSliceField = (nal: Uint8Array, v: VideoState): { field: boolean; bottom: boolean } | null => {
  const r = new BitReader(nal.subarray(0, 48));
  r.u(8);
  if (r.ue() !== 0) return null; // first_mb_in_slice: only a picture's first slice
  r.ue(); // slice_type
  r.ue(); // pic_parameter_set_id
  if (v.separateColourPlane) r.u(2);
  r.u(v.log2MaxFrameNum);
  const field = r.u(1) === 1;
  const bottom = field && r.u(1) === 1;
  return r.broken ? null : { field, bottom };
};

const nals = new NalUnits();

/** Reads one video PES: its PTS, and while the format is not known, its NAL units. */
export const readVideoPes = (pes: Uint8Array, codec: "h264" | "hevc", pid: number, v: VideoState): void => {
  const at = pesPayload(pes);
  if (at < 0) return;
  const pts = ptsAt(pes, 0);
  const needSps = v.sps === null;
  const needOrder =
    codec === "h264" && (v.sps === null || (v.interlaced && (v.order === null || v.fieldPerPes === null)));
  if (needSps || needOrder) {
    const payload = pes.subarray(at);
    nals.scan(payload);
    let pictures = 0;
    let field = false;
    for (let i = 0; i < nals.count; i++) {
      const start = nals.start(i);
      const nal = payload.subarray(start, nals.end(i));
      const type = nalType(codec, payload, start);
      if (codec === "h264") {
        if (type === 7 && v.sps === null) readH264Sps(nal, pid, v);
        else if (v.sps !== null && v.interlaced && type === 6 && v.order === null)
          v.order = readPicTiming(nal, v);
        else if (v.sps !== null && v.interlaced && (type === 1 || type === 5)) {
          const slice = readSliceField(nal, v);
          if (slice === null) continue;
          pictures++;
          field ||= slice.field;
          if (slice.field && pictures === 1 && v.order === null && v.pts.length === 0)
            v.order = slice.bottom ? "bff" : "tff";
        }
      } else if (type === 33 && v.sps === null) readH265Sps(nal, pid, v);
    }
    if (pictures > 0) v.fieldPerPes = field && pictures === 1;
  }
  if (v.sps !== null && pts >= 0 && v.pts.length < PICTURES) v.pts.push(pts);
};

/** The frame rate from the PTS kept (median of the sorted differences), or why not. */
export const frameRate = (v: VideoState): VideoFormat["frameRate"] | string | null => {
  if (v.pts.length < PICTURES) return null;
  const first = v.pts[0] ?? 0;
  const unwrapped = v.pts
    .map((pts) => (pts - first < -PTS_WRAP / 2 ? pts + PTS_WRAP : pts))
    .sort((a, b) => a - b);
  const deltas: number[] = [];
  for (let i = 1; i < unwrapped.length; i++) {
    const d = (unwrapped[i] ?? 0) - (unwrapped[i - 1] ?? 0);
    if (d > 0 && d < 90000) deltas.push(d);
  }
  if (deltas.length < MIN_DELTAS)
    return "the video's timestamps do not step evenly enough to give a frame rate";
  deltas.sort((a, b) => a - b);
  let fps = 90000 / (deltas[deltas.length >> 1] ?? 1);
  const fields =
    v.interlaced && (v.fieldPerPes === true || (v.vuiFps > 0 && Math.abs(fps / (2 * v.vuiFps) - 1) < 0.02));
  if (fields) fps /= 2;
  return (
    snapRate(fps) ??
    `the slate is made at 23.976, 24, 25, 29.97, 30, 50, 59.94 or 60 frames per second; this channel's video runs at ${Math.round(fps * 1000) / 1000}`
  );
};
