/**
 * The decoded form of an SCTE 35 splice_info_section. Field names are the standard's own, so the JSON can be
 * read side by side with the specification. Times are 90 kHz ticks; 33-bit values fit a JS number exactly.
 * Byte strings that the standard leaves opaque are lowercase hex in fields ending `_hex`.
 *
 * Counts the standard carries on the wire (splice_count, component_count, audio_count, dtmf_count) and every
 * length field below the section header are implied by the arrays and strings here; `encodeSection` recomputes
 * them, so the `*_length` values it reads are only informational.
 */

import * as Data from "effect/Data";

type Scte35ErrorReason =
  | "truncated"
  | "bad_crc"
  | "bad_table_id"
  | "bad_encoding"
  | "invalid_length"
  | "invalid_upid"
  | "unknown_command";

/** Every way a cue can be rejected; `reason` is for programs, `message` says what was found and where. */
export class Scte35Error extends Data.TaggedError("Scte35Error")<{
  readonly reason: Scte35ErrorReason;
  readonly message: string;
}> {}

/** "CUEI": descriptors carrying this identifier are the ones SCTE 35 defines. */
export const CUEI_IDENTIFIER = 0x43554549;

/** splice_command_type values and their names as the standard spells them. */
export const SPLICE_COMMAND_NAMES: Readonly<Record<number, string>> = {
  0: "splice_null",
  4: "splice_schedule",
  5: "splice_insert",
  6: "time_signal",
  7: "bandwidth_reservation",
  255: "private_command",
};

export interface BreakDuration {
  readonly auto_return: boolean;
  readonly duration: number;
}

/** splice_time(): pts_time is present exactly when time_specified_flag is set. */
export interface SpliceTime {
  readonly time_specified_flag: boolean;
  readonly pts_time?: number;
}

export type SpliceNull = { readonly [key: string]: never };
export type BandwidthReservation = { readonly [key: string]: never };

export interface ScheduleComponent {
  readonly component_tag: number;
  readonly utc_splice_time: number;
}

/** A splice_schedule event or a splice_insert that cancels an earlier one: its id and nothing else. */
export interface CancelledEvent {
  readonly splice_event_id: number;
  readonly splice_event_cancel_indicator: true;
}

/** What a splice_schedule event and a splice_insert that is not cancelled both begin with. */
export interface SpliceEventHead {
  readonly splice_event_id: number;
  readonly splice_event_cancel_indicator: false;
  readonly out_of_network_indicator: boolean;
  readonly program_splice_flag: boolean;
  readonly duration_flag: boolean;
}

/** … and end with. */
interface SpliceEvent extends SpliceEventHead {
  /** Present when duration_flag is set. */
  readonly break_duration?: BreakDuration;
  readonly unique_program_id: number;
  readonly avail_num: number;
  readonly avails_expected: number;
}

export type SpliceScheduleEvent =
  | CancelledEvent
  | (SpliceEvent & {
      /** Present when program_splice_flag is set. */
      readonly utc_splice_time?: number;
      /** Present when program_splice_flag is clear. */
      readonly components?: ReadonlyArray<ScheduleComponent>;
    });

export interface SpliceSchedule {
  readonly events: ReadonlyArray<SpliceScheduleEvent>;
}

/** A component of a component-mode splice_insert; the time is absent when splice_immediate_flag is set. */
export interface InsertComponent {
  readonly component_tag: number;
  readonly time_specified_flag?: boolean;
  readonly pts_time?: number;
}

export type SpliceInsert =
  | CancelledEvent
  | (SpliceEvent & {
      readonly splice_immediate_flag: boolean;
      readonly event_id_compliance_flag: boolean;
      /** With pts_time, present for a program splice that is not immediate. */
      readonly time_specified_flag?: boolean;
      readonly pts_time?: number;
      /** Present when program_splice_flag is clear. */
      readonly components?: ReadonlyArray<InsertComponent>;
    });

export type TimeSignal = SpliceTime;

export interface PrivateCommand {
  readonly identifier: number;
  readonly private_bytes_hex: string;
}

/** The command, discriminated by the section's splice_command_type. */
export type SpliceCommandPart =
  | { readonly splice_command_type: 0x00; readonly splice_command: SpliceNull }
  | { readonly splice_command_type: 0x04; readonly splice_command: SpliceSchedule }
  | { readonly splice_command_type: 0x05; readonly splice_command: SpliceInsert }
  | { readonly splice_command_type: 0x06; readonly splice_command: TimeSignal }
  | { readonly splice_command_type: 0x07; readonly splice_command: BandwidthReservation }
  | { readonly splice_command_type: 0xff; readonly splice_command: PrivateCommand };

/**
 * A segmentation_upid(). Each type has one representation, chosen so that encoding it gives back the bytes it
 * was decoded from; bytes that do not fit a type's structured form (wrong length, not UTF-8, reserved bits
 * not set) are kept as `hex`, so nothing is lost.
 * - `none`: type 0x00 with no bytes
 * - `text`: ISCI, Ad-ID, TID, ADI, ADS, URI, SCR (UTF-8)
 * - `hex`: user defined, UMID, ISAN, V-ISAN, TI, EIDR, UUID, reserved types, and any fallback
 * - `atsc_content_identifier`: ATSC A/57B content identifier; content_id is UTF-8
 * - `mpu`: format_identifier plus private data
 * - `mid`: the nested list of UPIDs
 */
export type SegmentationUpid =
  | { readonly format: "none" }
  | { readonly format: "text"; readonly value: string }
  | { readonly format: "hex"; readonly value: string }
  | {
      readonly format: "atsc_content_identifier";
      readonly tsid: number;
      readonly end_of_day: number;
      readonly unique_for: number;
      readonly content_id: string;
    }
  | { readonly format: "mpu"; readonly format_identifier: number; readonly private_data_hex: string }
  | { readonly format: "mid"; readonly value: ReadonlyArray<MidEntry> };

export interface MidEntry {
  readonly segmentation_upid_type: number;
  readonly segmentation_upid_length: number;
  readonly segmentation_upid: SegmentationUpid;
}

export interface SegmentationComponent {
  readonly component_tag: number;
  readonly pts_offset: number;
}

interface DescriptorHeader {
  /** Informational on encode: recomputed from the content. */
  readonly descriptor_length: number;
  readonly identifier: typeof CUEI_IDENTIFIER;
}

interface AvailDescriptor extends DescriptorHeader {
  readonly splice_descriptor_tag: 0x00;
  readonly provider_avail_id: number;
}

interface DtmfDescriptor extends DescriptorHeader {
  readonly splice_descriptor_tag: 0x01;
  readonly preroll: number;
  readonly dtmf_chars: string;
}

export type SegmentationDescriptor = DescriptorHeader & {
  readonly splice_descriptor_tag: 0x02;
  readonly segmentation_event_id: number;
  readonly segmentation_event_id_compliance_indicator: boolean;
} & (
    | { readonly segmentation_event_cancel_indicator: true }
    | {
        readonly segmentation_event_cancel_indicator: false;
        readonly program_segmentation_flag: boolean;
        readonly segmentation_duration_flag: boolean;
        readonly delivery_not_restricted_flag: boolean;
        /**
         * These four are present when delivery_not_restricted_flag is clear, and also when it is set but the
         * encoder sent these (then reserved) bits as something other than all 1s.
         */
        readonly web_delivery_allowed_flag?: boolean;
        readonly no_regional_blackout_flag?: boolean;
        readonly archive_allowed_flag?: boolean;
        readonly device_restrictions?: number;
        /** Present when program_segmentation_flag is clear. */
        readonly components?: ReadonlyArray<SegmentationComponent>;
        /** Present when segmentation_duration_flag is set. */
        readonly segmentation_duration?: number;
        readonly segmentation_upid_type: number;
        /** Informational on encode: recomputed from segmentation_upid. */
        readonly segmentation_upid_length: number;
        readonly segmentation_upid: SegmentationUpid;
        readonly segmentation_type_id: number;
        readonly segment_num: number;
        readonly segments_expected: number;
        /** Present when the descriptor carries them (the standard makes them optional). */
        readonly sub_segment_num?: number;
        readonly sub_segments_expected?: number;
      }
  );

interface TimeDescriptor extends DescriptorHeader {
  readonly splice_descriptor_tag: 0x03;
  readonly tai_seconds: number;
  readonly tai_ns: number;
  readonly utc_offset: number;
}

export interface AudioComponent {
  readonly component_tag: number;
  readonly iso_code: string;
  readonly bit_stream_mode: number;
  readonly num_channels: number;
  readonly full_srvc_audio: boolean;
}

interface AudioDescriptor extends DescriptorHeader {
  readonly splice_descriptor_tag: 0x04;
  readonly audio: ReadonlyArray<AudioComponent>;
}

/**
 * A descriptor this decoder does not interpret: any tag under a non-CUEI identifier, or a CUEI tag the standard
 * does not define. `private_bytes_hex` is everything after the identifier. Told apart from the others by
 * `isPrivateDescriptor`, since its tag may collide with a CUEI tag.
 */
interface PrivateDescriptor {
  readonly splice_descriptor_tag: number;
  readonly descriptor_length: number;
  readonly identifier: number;
  readonly private_bytes_hex: string;
}

export type CueiDescriptor =
  | AvailDescriptor
  | DtmfDescriptor
  | SegmentationDescriptor
  | TimeDescriptor
  | AudioDescriptor;

export type SpliceDescriptor = CueiDescriptor | PrivateDescriptor;

export const isPrivateDescriptor = (descriptor: SpliceDescriptor): descriptor is PrivateDescriptor =>
  "private_bytes_hex" in descriptor;

export interface SectionHeader {
  readonly table_id: 0xfc;
  readonly section_syntax_indicator: boolean;
  readonly private_indicator: boolean;
  readonly sap_type: number;
  /** Informational on encode: recomputed. */
  readonly section_length: number;
  readonly protocol_version: number;
  readonly encryption_algorithm: number;
  readonly pts_adjustment: number;
  readonly cw_index: number;
  readonly tier: number;
  /** As on the wire, so 0xFFF for the legacy "unknown length"; recomputed on encode. */
  readonly splice_command_length: number;
  /** "0x%08x"; recomputed on encode. */
  readonly crc32: string;
}

/** A section header a made cue starts from: no encryption, no pts_adjustment; lengths and CRC recomputed. */
export const CLEAR_SECTION_HEADER = {
  table_id: 0xfc,
  section_syntax_indicator: false,
  private_indicator: false,
  sap_type: 3,
  section_length: 0,
  protocol_version: 0,
  encryption_algorithm: 0,
  pts_adjustment: 0,
  cw_index: 0,
  tier: 0xfff,
  splice_command_length: 0,
  crc32: "0x00000000",
} as const satisfies SectionHeader;

type ClearSection = SectionHeader &
  SpliceCommandPart & {
    readonly encrypted_packet: false;
    /** Informational on encode: recomputed. */
    readonly descriptor_loop_length: number;
    readonly descriptors: ReadonlyArray<SpliceDescriptor>;
    /** Bytes between the descriptor loop and CRC_32, kept so that re-encoding is exact. */
    readonly alignment_stuffing_hex?: string;
  };

/**
 * Everything from splice_command_type up to and including E_CRC_32 is encrypted, so it is kept as it came
 * rather than guessed at.
 */
type EncryptedSection = SectionHeader & {
  readonly encrypted_packet: true;
  readonly encrypted_bytes_hex: string;
};

export type SpliceInfoSection = ClearSection | EncryptedSection;
