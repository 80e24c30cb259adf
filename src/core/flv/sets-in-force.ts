/**
 * The video parameter sets a remux has in force (remux.ts), and what a keyframe's own sets change about them:
 * a new sequence header when they differ, why they cannot be used when one of them cannot, or nothing.
 */
import type { AccessUnit } from "./es.ts";
import type { VideoCodec } from "./nal.ts";
import { avcSequenceHeader, hevcSequenceHeader, type ParameterSets, parameterSets } from "./tags.ts";
import { complete, holdsAll, usableSets } from "./video-checks.ts";

export interface SetsInForce {
  readonly vps: Uint8Array[];
  readonly sps: Uint8Array[];
  readonly pps: Uint8Array[];
}

/** New sets in force: copies of the keyframe's usable sets, the picture's size and the sequence header. */
export interface NewSets {
  readonly sets: SetsInForce;
  readonly picture: { readonly width: number; readonly height: number };
  readonly header: Uint8Array;
}

/**
 * What `unit`'s parameter sets change, given `current`, the sets in force for the same codec (null when none
 * are, or they are another codec's): new sets, a problem in words (the keyframe is then dropped), or null.
 */
export const keyframeSets = (
  codec: VideoCodec,
  unit: AccessUnit,
  current: SetsInForce | null,
): NewSets | string | null => {
  const sets = parameterSets(codec, unit.data, unit.nals);
  // A keyframe without a whole set of its own is decoded with the sets in force.
  if (!complete(codec, sets)) return null;
  // The sets in force, all carried again: anything else beside them is a stray copy (a corrupt one, a
  // stranger's), left out of the frame (`strayParameterSets`), never made the sequence header.
  const inForce = (candidate: ParameterSets) =>
    current !== null &&
    holdsAll(candidate.sps, current.sps) &&
    holdsAll(candidate.pps, current.pps) &&
    holdsAll(candidate.vps, current.vps);
  if (inForce(sets)) return null;
  const usable = usableSets(codec, sets);
  if (!complete(codec, usable) || usable.first === null)
    return `parameter sets are unusable: ${usable.problems.join("; ")}`;
  if (inForce(usable)) return null;
  const copy = (nals: ReadonlyArray<Uint8Array>) => nals.map((nal) => nal.slice());
  const next = { vps: copy(usable.vps), sps: copy(usable.sps), pps: copy(usable.pps) };
  const header =
    codec === "h264"
      ? avcSequenceHeader(next.sps, next.pps)
      : hevcSequenceHeader(next.vps, next.sps, next.pps, usable.first.hevc);
  return { sets: next, picture: { width: usable.first.width, height: usable.first.height }, header };
};
