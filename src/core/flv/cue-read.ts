/**
 * SCTE-35 back out of RTMP's AMF0 cue messages, in the three shapes cues.ts writes (and encoders send):
 * - `onAdCue` {cue: base64 of the section}: the section's exact bytes, taken when its table_id and CRC hold;
 * - `onCuePoint` {name "scte35", time, parameters} (Elemental/MediaLive): a splice_insert or time_signal made
 *   again from the decoded fields, its splice time the message's `time` (the splice's, as cues.ts writes it) on
 *   the channel's timeline (`ptsAt`), immediate when the message says so;
 * - `onCuePoint` {type "com.youtube.cuepoint"}: a splice_insert out of the network with its break duration,
 *   `pre_roll_time_sec` after the message.
 * Anything else (other data messages, a broken cue) gives null.
 */
import {
  base64ToBytes,
  CLEAR_SECTION_HEADER,
  encodeSection,
  type SpliceInfoSection,
} from "../scte35/index.ts";
import { crc32Mpeg2 } from "../ts/index.ts";
import type { Amf0Value } from "./amf0.ts";

type Fields = Readonly<Record<string, Amf0Value>>;
const TICKS = 90_000;

const objectOf = (value: Amf0Value): Fields | null => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  return ("entries" in value && typeof value.entries === "object" ? value.entries : value) as Fields;
};
const num = (value: Amf0Value, fallback = 0): number =>
  typeof value === "number" && Number.isFinite(value) ? value : fallback;
const bool = (value: Amf0Value): boolean => value === true;

const header = {
  ...CLEAR_SECTION_HEADER,
  encrypted_packet: false,
  descriptor_loop_length: 0,
  descriptors: [],
} as const;

const encoded = (section: SpliceInfoSection): Uint8Array | null => {
  try {
    return encodeSection(section);
  } catch {
    return null;
  }
};

/** A splice_insert: out or back, immediate or at `pts`, with a break duration in seconds when given. */
const spliceInsert = (fields: {
  eventId: number;
  cancel: boolean;
  out: boolean;
  pts: number | null;
  durationS: number | null;
  autoReturn: boolean;
  programId: number;
  availNum: number;
  availsExpected: number;
}): Uint8Array | null =>
  encoded({
    ...header,
    splice_command_type: 0x05,
    splice_command: fields.cancel
      ? { splice_event_id: fields.eventId >>> 0, splice_event_cancel_indicator: true }
      : {
          splice_event_id: fields.eventId >>> 0,
          splice_event_cancel_indicator: false,
          out_of_network_indicator: fields.out,
          program_splice_flag: true,
          duration_flag: fields.durationS !== null,
          ...(fields.durationS === null
            ? {}
            : {
                break_duration: {
                  auto_return: fields.autoReturn,
                  duration: Math.round(fields.durationS * TICKS),
                },
              }),
          splice_immediate_flag: fields.pts === null,
          event_id_compliance_flag: true,
          ...(fields.pts === null ? {} : { time_specified_flag: true, pts_time: fields.pts }),
          unique_program_id: fields.programId & 0xffff,
          avail_num: fields.availNum & 0xff,
          avails_expected: fields.availsExpected & 0xff,
        },
  } as SpliceInfoSection);

/**
 * The splice_info_section a cue message carries, or null. `ptsAt(seconds)`: the 90 kHz time on the channel's
 * timeline of a time on the message's.
 */
export const sectionFromCueMessage = (
  values: ReadonlyArray<Amf0Value>,
  ptsAt: (seconds: number) => number = (seconds) => Math.round(seconds * TICKS),
  /** The message's own time (its tag's timestamp), in seconds. */
  messageSeconds = 0,
): Uint8Array | null => {
  const [name, value] = values;
  const fields = objectOf(value ?? null);
  if (fields === null) return null;
  if (name === "onAdCue") {
    if (typeof fields.cue !== "string") return null;
    const bytes = base64ToBytes(fields.cue);
    if (bytes._tag === "Left") return null;
    const section = bytes.right;
    return section[0] === 0xfc && section.length >= 15 && crc32Mpeg2(section) === 0 ? section : null;
  }
  if (name !== "onCuePoint") return null;
  if (fields.type === "com.youtube.cuepoint") {
    const preRoll = num(fields.pre_roll_time_sec);
    return spliceInsert({
      eventId: num(fields.splice_event_id),
      cancel: false,
      out: true,
      pts: preRoll > 0 ? ptsAt(messageSeconds + preRoll) : null,
      durationS: num(fields.break_duration_sec),
      autoReturn: true,
      programId: 1,
      availNum: 0,
      availsExpected: 0,
    });
  }
  if (fields.name !== "scte35") return null;
  const parameters = objectOf(fields.parameters ?? null);
  if (parameters === null) return null;
  const type = num(parameters.splice_command_type, -1);
  const at = ptsAt(num(fields.time, messageSeconds));
  if (type === 0x05) {
    const immediate = bool(parameters.splice_immediate);
    return spliceInsert({
      eventId: num(parameters.splice_event_id),
      cancel: bool(parameters.splice_event_cancel_indicator),
      out: bool(parameters.out_of_network_indicator),
      pts: immediate ? null : at,
      durationS: typeof parameters.break_duration === "number" ? parameters.break_duration : null,
      autoReturn: bool(parameters.auto_return),
      programId: num(parameters.unique_program_id),
      availNum: num(parameters.avail_num),
      availsExpected: num(parameters.avail_expected),
    });
  }
  if (type === 0x06) {
    return encoded({
      ...header,
      splice_command_type: 0x06,
      splice_command: {
        time_specified_flag: true,
        pts_time: at,
      },
    } as SpliceInfoSection);
  }
  return null;
};
