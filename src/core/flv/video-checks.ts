/**
 * What the channel's TS → FLV remux (remux.ts) checks in a video access unit before it goes out: NAL units
 * present, those with their forbidden bit set (left out), a keyframe's parameter sets each usable (avc-sps.ts,
 * hevc-sps.ts, rbsp.ts) and whether they are the ones in force, and stray copies of a parameter set (a corrupt
 * one, a stranger's) to leave out of a frame.
 */

import { sameBytes } from "../ts/index.ts";
import { readAvcSps } from "./avc-sps.ts";
import type { AccessUnit } from "./es.ts";
import { type HevcSpsInfo, readHevcSps } from "./hevc-sps.ts";
import { forbidden, H264_NAL, HEVC_NAL, nalType, type VideoCodec } from "./nal.ts";
import { avcPpsProblem, hevcSetProblem, isUnusable } from "./rbsp.ts";
import type { ParameterSets } from "./tags.ts";

/**
 * How many of an access unit's NAL units have their forbidden_zero_bit set: a bit error, most likely. A decoder
 * skips each such unit and decodes the rest; the remux leaves them out of the frame in the same way.
 */
export const forbiddenUnits = (data: Uint8Array, nals: AccessUnit["nals"]): number => {
  let count = 0;
  for (let i = 0; i < nals.count; i++) if (forbidden(data, nals.start(i))) count++;
  return count;
};

/** Why an access unit cannot go out as a frame at all: no NAL unit, or none left but delimiters; else null. */
export const nothingToFrame = (
  codec: VideoCodec,
  data: Uint8Array,
  nals: AccessUnit["nals"],
): string | null => {
  if (nals.count === 0) return "an access unit with no NAL unit";
  const aud = codec === "h264" ? H264_NAL.aud : HEVC_NAL.aud;
  for (let i = 0; i < nals.count; i++) {
    const start = nals.start(i);
    if (!forbidden(data, start) && nalType(codec, data, start) !== aud) return null;
  }
  return "an access unit whose every NAL unit has its forbidden_zero_bit set";
};

interface UsableSets extends ParameterSets {
  /** What the first usable SPS declares; null when none is. */
  readonly first: { readonly width: number; readonly height: number; readonly hevc?: HevcSpsInfo } | null;
  /** Why each of the others could not be used, in words. */
  readonly problems: ReadonlyArray<string>;
}

/**
 * A keyframe's parameter sets that can be used, each checked (a corrupt one among good ones is left out, as a
 * decoder would), and what the first usable SPS declares.
 */
export const usableSets = (codec: VideoCodec, sets: ParameterSets): UsableSets => {
  const problems: string[] = [];
  const keep = (nals: ReadonlyArray<Uint8Array>, problem: (nal: Uint8Array) => string | null) =>
    nals.filter((nal) => {
      const why = problem(nal);
      if (why !== null) problems.push(why);
      return why === null;
    });
  const pps = keep(sets.pps, (nal) => (codec === "h264" ? avcPpsProblem(nal) : hevcSetProblem(nal, "PPS")));
  const vps = keep(sets.vps, (nal) => hevcSetProblem(nal, "VPS"));
  let first: UsableSets["first"] = null;
  const sps = keep(sets.sps, (nal) => {
    const info = codec === "h264" ? readAvcSps(nal) : readHevcSps(nal);
    if (isUnusable(info)) return info.unusable;
    first ??= codec === "h264" ? info : { width: info.width, height: info.height, hevc: info as HevcSpsInfo };
    return null;
  });
  return { vps, sps, pps, first, problems };
};

export const complete = (codec: VideoCodec, sets: ParameterSets): boolean =>
  sets.sps.length > 0 && sets.pps.length > 0 && (codec === "h264" || sets.vps.length > 0);

/** Whether `nals` holds each of `wanted`, byte for byte. */
export const holdsAll = (nals: ReadonlyArray<Uint8Array>, wanted: ReadonlyArray<Uint8Array>): boolean =>
  wanted.every((nal) => nals.some((candidate) => sameBytes(candidate, nal)));

/**
 * Whether the access unit carries a parameter set other than those in force (a corrupt copy, a stranger's):
 * then a test that leaves such units out of the frame, so no decoder reads them; null when it carries none.
 */
export const strayParameterSets = (
  codec: VideoCodec,
  unit: AccessUnit,
  sets: ParameterSets | null,
): ((start: number, end: number) => boolean) | null => {
  if (sets === null) return null;
  const listOf = (type: number) =>
    codec === "h264"
      ? type === H264_NAL.sps
        ? sets.sps
        : type === H264_NAL.pps
          ? sets.pps
          : null
      : type === HEVC_NAL.vps
        ? sets.vps
        : type === HEVC_NAL.sps
          ? sets.sps
          : type === HEVC_NAL.pps
            ? sets.pps
            : null;
  const stray = (start: number, end: number): boolean => {
    const list = listOf(nalType(codec, unit.data, start));
    if (list === null) return false;
    const nal = unit.data.subarray(start, end);
    return !list.some((candidate) => sameBytes(candidate, nal));
  };
  for (let i = 0; i < unit.nals.count; i++) if (stray(unit.nals.start(i), unit.nals.end(i))) return stray;
  return null;
};
