/**
 * The operator's cue ("insert a break now") as a splice_info_section: a splice_insert, or a time_signal with
 * one segmentation_descriptor, immediate or at a PTS, with the duration asked for. The channel puts it on the
 * input's SCTE-35 PID through its inserter (inserter.ts).
 */
import { type CueInsertBody, DEFAULT_SEGMENTATION_TYPE } from "../../domain/channel/cue-insert.ts";
import { encodeSection } from "../scte35/encode.ts";
import { CLEAR_SECTION_HEADER, CUEI_IDENTIFIER } from "../scte35/types.ts";
import { PTS_HZ } from "../ts/index.ts";

const header = CLEAR_SECTION_HEADER;

/** Encodes the operator's cue: a splice_info_section (CRC included). */
export const encodeOperatorCue = (body: CueInsertBody, eventId: number): Uint8Array => {
  const duration = body.duration_s === undefined ? undefined : Math.round(body.duration_s * PTS_HZ);
  const at = body.at_pts;
  if (body.command === "splice_insert") {
    return encodeSection({
      ...header,
      encrypted_packet: false,
      splice_command_type: 0x05,
      splice_command: {
        splice_event_id: eventId,
        splice_event_cancel_indicator: false,
        out_of_network_indicator: body.out ?? true,
        program_splice_flag: true,
        duration_flag: duration !== undefined,
        splice_immediate_flag: at === undefined,
        event_id_compliance_flag: true,
        ...(at === undefined ? {} : { time_specified_flag: true, pts_time: at }),
        ...(duration === undefined ? {} : { break_duration: { auto_return: true, duration } }),
        unique_program_id: 0,
        avail_num: 0,
        avails_expected: 0,
      },
      descriptor_loop_length: 0,
      descriptors: [],
    });
  }
  return encodeSection({
    ...header,
    encrypted_packet: false,
    splice_command_type: 0x06,
    splice_command:
      at === undefined ? { time_specified_flag: false } : { time_specified_flag: true, pts_time: at },
    descriptor_loop_length: 0,
    descriptors: [
      {
        splice_descriptor_tag: 0x02,
        descriptor_length: 0,
        identifier: CUEI_IDENTIFIER,
        segmentation_event_id: eventId,
        segmentation_event_id_compliance_indicator: true,
        segmentation_event_cancel_indicator: false,
        program_segmentation_flag: true,
        segmentation_duration_flag: duration !== undefined,
        delivery_not_restricted_flag: true,
        ...(duration === undefined ? {} : { segmentation_duration: duration }),
        segmentation_upid_type: 0,
        segmentation_upid_length: 0,
        segmentation_upid: { format: "none" },
        segmentation_type_id: body.segmentation_type ?? DEFAULT_SEGMENTATION_TYPE,
        segment_num: 0,
        segments_expected: 0,
      },
    ],
  });
};
