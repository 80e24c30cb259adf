/**
 * Whether an output's SCTE-35 policy keeps one splice_info_section. Every rule of a filter applies: a cue is
 * withheld as soon as one rule withholds it, and the verdict names that rule.
 */
import * as Either from "effect/Either";
import type { OutputPolicy } from "../../domain/channel/output-policy-schema.ts";
import {
  decodeSection,
  isPrivateDescriptor,
  SPLICE_COMMAND_NAMES,
  type SpliceInfoSection,
} from "../scte35/index.ts";

export interface CueVerdict {
  readonly kept: boolean;
  /** Why withheld, in words; null when kept. */
  readonly rule: string | null;
}

const KEPT: CueVerdict = { kept: true, rule: null };
const withheld = (rule: string): CueVerdict => ({ kept: false, rule });
const hex2 = (n: number) => `0x${n.toString(16).padStart(2, "0")}`;

/** The section's segmentation descriptors (CUEI tag 0x02) that are not cancellations, and whether any is a cancel. */
const segmentations = (section: SpliceInfoSection) => {
  if (section.encrypted_packet) return { active: [], cancels: 0 };
  let cancels = 0;
  const active = section.descriptors.flatMap((d) => {
    if (isPrivateDescriptor(d) || d.splice_descriptor_tag !== 0x02) return [];
    if (d.segmentation_event_cancel_indicator) {
      cancels++;
      return [];
    }
    return [d];
  });
  return { active, cancels };
};

/**
 * Whether `scte35` keeps `section` (a whole splice_info_section, no pointer_field). Undecodable sections: kept
 * under "pass", withheld under "strip" and under any filter (rule "undecodable").
 */
export const cueVerdict = (scte35: OutputPolicy["scte35"], section: Uint8Array): CueVerdict => {
  if (scte35 === undefined || scte35 === "pass") return KEPT;
  if (scte35 === "strip") return withheld("strip");
  const decoded = decodeSection(section);
  if (Either.isLeft(decoded)) return withheld("undecodable");
  const cue = decoded.right;
  if (scte35.drop_commands !== undefined && scte35.drop_commands.length > 0) {
    if (cue.encrypted_packet) return withheld("undecodable");
    const name = SPLICE_COMMAND_NAMES[cue.splice_command_type] ?? "";
    if ((scte35.drop_commands as ReadonlyArray<string>).includes(name))
      return withheld(`drop_commands: ${name}`);
  }
  const { active, cancels } = segmentations(cue);
  const types = scte35.segmentation_types;
  if (types !== undefined && !active.some((d) => types.includes(d.segmentation_type_id))) {
    const seen = active.map((d) => hex2(d.segmentation_type_id));
    return withheld(
      seen.length > 0
        ? `segmentation type ${seen.join(", ")} is not in segmentation_types`
        : cancels > 0
          ? "a segmentation cancel has no type: not in segmentation_types"
          : "no segmentation descriptor: segmentation_types keeps only cues with one",
    );
  }
  if (
    scte35.drop_web_delivery_restricted === true &&
    active.some((d) => !d.delivery_not_restricted_flag && d.web_delivery_allowed_flag === false)
  )
    return withheld("web delivery not allowed");
  if (
    scte35.drop_regional_blackout === true &&
    active.some((d) => !d.delivery_not_restricted_flag && d.no_regional_blackout_flag === false)
  )
    return withheld("regional blackout");
  return KEPT;
};
