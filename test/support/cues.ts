import {
  CLEAR_SECTION_HEADER,
  type SpliceDescriptor,
  type SpliceInfoSection,
  type SpliceInsert,
} from "../../src/core/scte35/index.ts";

/**
 * A clear splice_info_section carrying `command` as a splice_insert, for encodeSection: the lengths and the
 * CRC here are placeholders the encoder recomputes.
 */
export const spliceInsertSection = (
  command: SpliceInsert,
  descriptors: ReadonlyArray<SpliceDescriptor> = [],
): SpliceInfoSection => ({
  ...CLEAR_SECTION_HEADER,
  encrypted_packet: false,
  splice_command_type: 0x05,
  splice_command: command,
  descriptor_loop_length: 0,
  descriptors,
});

/** An immediate splice_insert out of the network (a break starts now), with event id `eventId`. */
export const immediateSpliceOut = (eventId: number): SpliceInfoSection =>
  spliceInsertSection({
    splice_event_id: eventId,
    splice_event_cancel_indicator: false,
    out_of_network_indicator: true,
    program_splice_flag: true,
    duration_flag: false,
    splice_immediate_flag: true,
    event_id_compliance_flag: true,
    unique_program_id: 1,
    avail_num: 0,
    avails_expected: 0,
  });
