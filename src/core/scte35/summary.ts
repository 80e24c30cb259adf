import { isPrivateDescriptor, SPLICE_COMMAND_NAMES, type SpliceInfoSection } from "./types.ts";

/** The name of a splice_command_type, as the standard spells it; metrics label cues with it. */
export const commandName = (type: number): string =>
  SPLICE_COMMAND_NAMES[type] ?? `command_0x${type.toString(16).padStart(2, "0")}`;

const seconds = (ticks: number) => `${(ticks / 90_000).toFixed(3)} s`;

/** One line an operator can read: the command, its time and duration, and any segmentation types. */
export const summarizeCue = (section: SpliceInfoSection): string => {
  if (section.encrypted_packet) return `encrypted cue (algorithm ${section.encryption_algorithm})`;
  const parts = [commandName(section.splice_command_type)];
  if (section.splice_command_type === 0x05) {
    const insert = section.splice_command;
    parts.push(`event ${insert.splice_event_id}`);
    if (insert.splice_event_cancel_indicator) parts.push("cancel");
    else {
      parts.push(insert.out_of_network_indicator ? "out" : "in");
      if (insert.splice_immediate_flag) parts.push("immediate");
      if (insert.pts_time !== undefined) parts.push(`pts ${insert.pts_time}`);
      if (insert.break_duration) parts.push(`duration ${seconds(insert.break_duration.duration)}`);
    }
  }
  if (section.splice_command_type === 0x06 && section.splice_command.pts_time !== undefined) {
    parts.push(`pts ${section.splice_command.pts_time}`);
  }
  for (const descriptor of section.descriptors) {
    if (isPrivateDescriptor(descriptor) || descriptor.splice_descriptor_tag !== 0x02) continue;
    if (descriptor.segmentation_event_cancel_indicator) {
      parts.push(`segmentation ${descriptor.segmentation_event_id} cancel`);
      continue;
    }
    const type = `0x${descriptor.segmentation_type_id.toString(16).padStart(2, "0")}`;
    const duration =
      descriptor.segmentation_duration === undefined ? "" : ` ${seconds(descriptor.segmentation_duration)}`;
    parts.push(`segmentation ${descriptor.segmentation_event_id} type ${type}${duration}`);
  }
  return parts.join(", ");
};

/** The cue's event id: splice_insert's splice_event_id, else the first segmentation descriptor's. */
export const cueEventId = (section: SpliceInfoSection): number | null => {
  if (section.encrypted_packet) return null;
  if (section.splice_command_type === 0x05) return section.splice_command.splice_event_id;
  for (const descriptor of section.descriptors) {
    if (!isPrivateDescriptor(descriptor) && descriptor.splice_descriptor_tag === 0x02)
      return descriptor.segmentation_event_id;
  }
  return null;
};

/** segmentation_type_id of every (not cancelled) segmentation descriptor, in order. */
export const segmentationTypes = (section: SpliceInfoSection): ReadonlyArray<number> => {
  if (section.encrypted_packet) return [];
  const types: number[] = [];
  for (const descriptor of section.descriptors) {
    if (isPrivateDescriptor(descriptor) || descriptor.splice_descriptor_tag !== 0x02) continue;
    if (!descriptor.segmentation_event_cancel_indicator) types.push(descriptor.segmentation_type_id);
  }
  return types;
};
