/**
 * SCTE-35 on RTMP: FLV has no place for a splice_info_section but an AMF0 data message (type 18) on the media
 * stream, and receivers read one of three shapes, so the shape is the output's choice:
 * - `oncuepoint`: Elemental/MediaLive `onCuePoint` {name "scte35", time, type "event", parameters} with the
 *   decoded fields under their SCTE-35 names;
 * - `onadcue`: Adobe's `onAdCue` in SCTE-35 mode {cue (the section's exact bytes, base64), type, id, duration,
 *   time};
 * - `youtube`: YouTube's `onCuePoint` {type "com.youtube.cuepoint", …}, which only a splice_insert out of the
 *   network with a break duration can fill; other cues give no message.
 *
 *   const section = decodeSection(bytes)                         // the project's SCTE-35 decoder
 *   splicePts(section)                                           // 33-bit PTS to time the message, if any
 *   cueMessage("onadcue", bytes, section, { time, preRoll })     // the data message body, or undefined
 */
import {
  commandName,
  cueEventId,
  isPrivateDescriptor,
  type SegmentationUpid,
  type SpliceInfoSection,
} from "../scte35/index.ts";
import { PTS_WRAP } from "../ts/index.ts";
import { type Amf0Value, encodeAmf0 } from "./amf0.ts";

export type CueFormat = "oncuepoint" | "onadcue" | "youtube";

interface CueTiming {
  /** Seconds on the tags' timeline at which the splice takes effect (arrival, when immediate). */
  readonly time: number;
  /** Seconds from the message to the splice: 0 when immediate. */
  readonly preRoll: number;
}

const TICKS = 90_000;
const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** RFC 4648 base64 with padding, as onAdCue's `cue` carries the section. */
export const base64 = (bytes: Uint8Array): string => {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = ((bytes[i] ?? 0) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += BASE64[n >> 18] ?? "";
    out += BASE64[(n >> 12) & 63] ?? "";
    out += i + 1 < bytes.length ? (BASE64[(n >> 6) & 63] ?? "") : "=";
    out += i + 2 < bytes.length ? (BASE64[n & 63] ?? "") : "=";
  }
  return out;
};

/**
 * The PTS (33-bit, 90 kHz, pts_adjustment applied) at which the cue's splice takes effect, or undefined when it
 * is immediate, timeless, cancelled or encrypted: then the message is timed at its arrival.
 */
export const splicePts = (section: SpliceInfoSection): number | undefined => {
  if (section.encrypted_packet) return undefined;
  let pts: number | undefined;
  if (section.splice_command_type === 0x05) {
    const insert = section.splice_command;
    if (!insert.splice_event_cancel_indicator && !insert.splice_immediate_flag) pts = insert.pts_time;
  } else if (section.splice_command_type === 0x06) {
    pts = section.splice_command.pts_time;
  }
  return pts === undefined ? undefined : (pts + section.pts_adjustment) % PTS_WRAP;
};

/** The cue's break or segmentation duration in 90 kHz ticks, when it says one. */
const durationTicks = (section: SpliceInfoSection): number | undefined => {
  if (section.encrypted_packet) return undefined;
  if (section.splice_command_type === 0x05) {
    const insert = section.splice_command;
    if (!insert.splice_event_cancel_indicator && insert.break_duration) return insert.break_duration.duration;
  }
  for (const descriptor of section.descriptors) {
    if (isPrivateDescriptor(descriptor) || descriptor.splice_descriptor_tag !== 0x02) continue;
    if (!descriptor.segmentation_event_cancel_indicator && descriptor.segmentation_duration !== undefined) {
      return descriptor.segmentation_duration;
    }
  }
  return undefined;
};

/** A UPID as one string: text as it is, everything else as the hex of its bytes as the section has them. */
const upidText = (upid: SegmentationUpid): string => {
  switch (upid.format) {
    case "none":
      return "";
    case "text":
    case "hex":
      return upid.value;
    default:
      return JSON.stringify(upid);
  }
};

const MESSAGE_TYPES: Readonly<Record<number, string>> = {
  0: "SpliceNull",
  4: "SpliceSchedule",
  5: "SpliceInsert",
  6: "TimeSignal",
  7: "BandwidthReservation",
  255: "PrivateCommand",
};

/** The decoded fields of the Elemental/MediaLive `parameters` object; absent fields are left out. */
const cuePointParameters = (section: SpliceInfoSection, preRoll: number): Record<string, Amf0Value> => {
  if (section.encrypted_packet) return { messageType: "Encrypted", encrypted_packet: true };
  const type = section.splice_command_type;
  const parameters: Record<string, Amf0Value> = {
    messageType: MESSAGE_TYPES[type] ?? commandName(type),
    splice_command_type: type,
  };
  if (type === 0x05) {
    const insert = section.splice_command;
    parameters.splice_event_id = insert.splice_event_id;
    parameters.splice_event_cancel_indicator = insert.splice_event_cancel_indicator;
    if (!insert.splice_event_cancel_indicator) {
      parameters.out_of_network_indicator = insert.out_of_network_indicator;
      parameters.splice_immediate = insert.splice_immediate_flag;
      parameters.pre_roll_time = preRoll;
      if (insert.break_duration) {
        parameters.break_duration = insert.break_duration.duration / TICKS;
        parameters.auto_return = insert.break_duration.auto_return;
      }
      parameters.unique_program_id = insert.unique_program_id;
      parameters.avail_num = insert.avail_num;
      parameters.avail_expected = insert.avails_expected;
    }
  } else if (type === 0x06) {
    parameters.pre_roll_time = preRoll;
  }
  for (const descriptor of section.descriptors) {
    if (isPrivateDescriptor(descriptor) || descriptor.splice_descriptor_tag !== 0x02) continue;
    // The first segmentation descriptor, as the flat shape has room for one.
    parameters.segmentation_event_id = descriptor.segmentation_event_id;
    parameters.segmentation_event_cancel_indicator = descriptor.segmentation_event_cancel_indicator;
    if (!descriptor.segmentation_event_cancel_indicator) {
      parameters.segmentation_type_id = descriptor.segmentation_type_id;
      parameters.segmentation_upid_type = descriptor.segmentation_upid_type;
      parameters.segmentation_upid = upidText(descriptor.segmentation_upid);
      if (descriptor.segmentation_duration !== undefined) {
        parameters.segmentation_duration = descriptor.segmentation_duration / TICKS;
      }
      parameters.segment_num = descriptor.segment_num;
      parameters.segments_expected = descriptor.segments_expected;
    }
    break;
  }
  return parameters;
};

/**
 * The AMF0 body of the data message carrying one splice_info_section (`bytes`, CRC included, as decoded into
 * `section`) in `format`, or undefined when the format has nothing to say about this cue.
 */
export const cueMessage = (
  format: CueFormat,
  bytes: Uint8Array,
  section: SpliceInfoSection,
  timing: CueTiming,
): Uint8Array | undefined => {
  const duration = durationTicks(section);
  switch (format) {
    case "oncuepoint":
      return encodeAmf0("onCuePoint", {
        name: "scte35",
        time: timing.time,
        type: "event",
        parameters: cuePointParameters(section, timing.preRoll),
      });
    case "onadcue": {
      const id = cueEventId(section);
      return encodeAmf0("onAdCue", {
        cue: base64(bytes),
        type: "scte35",
        id: id === null ? "" : String(id),
        duration: duration === undefined ? 0 : duration / TICKS,
        time: timing.time,
      });
    }
    case "youtube": {
      if (section.encrypted_packet || section.splice_command_type !== 0x05) return undefined;
      const insert = section.splice_command;
      if (insert.splice_event_cancel_indicator || !insert.out_of_network_indicator) return undefined;
      if (!insert.break_duration) return undefined;
      return encodeAmf0("onCuePoint", {
        type: "com.youtube.cuepoint",
        version: "0.1",
        pre_roll_time_sec: timing.preRoll,
        cue_point_start: true,
        break_duration_sec: insert.break_duration.duration / TICKS,
        splice_event_id: insert.splice_event_id,
      });
    }
  }
};
