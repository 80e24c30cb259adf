import { crc32Mpeg2 } from "../ts/crc32.ts";
import { TWO_POW_32 } from "./reader.ts";
import type {
  BreakDuration,
  CancelledEvent,
  CueiDescriptor,
  SegmentationDescriptor,
  SegmentationUpid,
  SpliceCommandPart,
  SpliceDescriptor,
  SpliceInfoSection,
  SpliceInsert,
  SpliceScheduleEvent,
  SpliceTime,
} from "./types.ts";
import { isPrivateDescriptor } from "./types.ts";

/**
 * Appends big-endian fields. Every value is range-checked against its width: a value that does not fit is a
 * bug in the caller, and writing it modulo the width would emit a valid-looking but wrong cue.
 */
class Writer {
  private readonly out: Array<number> = [];

  get length(): number {
    return this.out.length;
  }

  uint(value: number, bytes: number, field: string): this {
    checkRange(value, bytes * 8, field);
    for (let i = bytes - 1; i >= 0; i--) this.out.push(Math.floor(value / 256 ** i) % 256);
    return this;
  }

  u8 = (value: number, field: string): this => this.uint(value, 1, field);
  u16 = (value: number, field: string): this => this.uint(value, 2, field);
  u32 = (value: number, field: string): this => this.uint(value, 4, field);

  /** A 33-bit value after flags: `lead` holds the flag bits of the first byte, whose low bit is bit 32. */
  u33After(lead: number, value: number, field: string): this {
    checkRange(value, 33, field);
    return this.u8(lead | Math.floor(value / TWO_POW_32), field).u32(value % TWO_POW_32, field);
  }

  bytes(bytes: Uint8Array | ReadonlyArray<number>): this {
    for (const b of bytes) this.out.push(b);
    return this;
  }

  /** A length-prefixed block; the length is measured after `fill` runs. */
  sized(lengthBytes: number, field: string, fill: (w: Writer) => void): this {
    const inner = new Writer();
    fill(inner);
    return this.uint(inner.length, lengthBytes, field).bytes(inner.out);
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

const checkRange = (value: number, bits: number, field: string): void => {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
    throw new RangeError(`${field} = ${value} does not fit in ${bits} bits`);
  }
};

const flag = (on: boolean | undefined, position: number): number => (on === true ? 1 << position : 0);

const hexBytes = (hex: string, field: string): Uint8Array => {
  if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw new RangeError(`${field} is not an even-length hex string`);
  return Uint8Array.from({ length: hex.length / 2 }, (_, i) =>
    Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16),
  );
};

/** Strings the standard defines as 8-bit characters (DTMF, ISO 639 codes). */
const latin1Bytes = (text: string, field: string): Array<number> =>
  Array.from(text, (c) => {
    const code = c.charCodeAt(0);
    checkRange(code, 8, `${field} character`);
    return code;
  });

const utf8 = new TextEncoder();

/** Reserved bits are written as 1s, as the standard asks. */
const spliceTime = (w: Writer, time: SpliceTime, field: string): void => {
  if (time.time_specified_flag) w.u33After(0xfe, time.pts_time ?? Number.NaN, `${field}.pts_time`);
  else w.u8(0x7f, `${field}.time_specified_flag`);
};

const breakDuration = (w: Writer, d: BreakDuration): void => {
  w.u33After(flag(d.auto_return, 7) | 0x7e, d.duration, "break_duration.duration");
};

/**
 * Writes the event id and the cancel flag a splice_schedule event and a splice_insert begin with; true when
 * the event is cancelled, which is all there is to write of it.
 */
const cancelled = (w: Writer, e: SpliceScheduleEvent | SpliceInsert): e is CancelledEvent => {
  w.u32(e.splice_event_id, "splice_event_id");
  w.u8(e.splice_event_cancel_indicator ? 0xff : 0x7f, "splice_event_cancel_indicator");
  return e.splice_event_cancel_indicator;
};

/** The break and the programme and avail numbers they end with. */
const eventEnd = (w: Writer, e: Exclude<SpliceScheduleEvent | SpliceInsert, CancelledEvent>): void => {
  if (e.duration_flag) breakDuration(w, e.break_duration ?? { auto_return: false, duration: Number.NaN });
  w.u16(e.unique_program_id, "unique_program_id")
    .u8(e.avail_num, "avail_num")
    .u8(e.avails_expected, "avails_expected");
};

const scheduleEvent = (w: Writer, e: SpliceScheduleEvent): void => {
  if (cancelled(w, e)) return;
  w.u8(
    flag(e.out_of_network_indicator, 7) | flag(e.program_splice_flag, 6) | flag(e.duration_flag, 5) | 0x1f,
    "splice_schedule flags",
  );
  if (e.program_splice_flag) w.u32(e.utc_splice_time ?? Number.NaN, "utc_splice_time");
  else {
    const components = e.components ?? [];
    w.u8(components.length, "component_count");
    for (const c of components)
      w.u8(c.component_tag, "component_tag").u32(c.utc_splice_time, "utc_splice_time");
  }
  eventEnd(w, e);
};

const spliceInsert = (w: Writer, c: SpliceInsert): void => {
  if (cancelled(w, c)) return;
  w.u8(
    flag(c.out_of_network_indicator, 7) |
      flag(c.program_splice_flag, 6) |
      flag(c.duration_flag, 5) |
      flag(c.splice_immediate_flag, 4) |
      flag(c.event_id_compliance_flag, 3) |
      0x07,
    "splice_insert flags",
  );
  if (!c.program_splice_flag) {
    const components = c.components ?? [];
    w.u8(components.length, "component_count");
    for (const component of components) {
      w.u8(component.component_tag, "component_tag");
      if (!c.splice_immediate_flag) {
        const time = {
          time_specified_flag: component.time_specified_flag === true,
          pts_time: component.pts_time,
        };
        spliceTime(w, time, "component");
      }
    }
  } else if (!c.splice_immediate_flag) {
    spliceTime(
      w,
      { time_specified_flag: c.time_specified_flag === true, pts_time: c.pts_time },
      "splice_insert",
    );
  }
  eventEnd(w, c);
};

const spliceCommand = (w: Writer, part: SpliceCommandPart): void => {
  switch (part.splice_command_type) {
    case 0x00:
    case 0x07:
      return;
    case 0x04:
      w.u8(part.splice_command.events.length, "splice_count");
      for (const e of part.splice_command.events) scheduleEvent(w, e);
      return;
    case 0x05:
      spliceInsert(w, part.splice_command);
      return;
    case 0x06:
      spliceTime(w, part.splice_command, "time_signal");
      return;
    case 0xff:
      w.u32(part.splice_command.identifier, "private_command.identifier");
      w.bytes(hexBytes(part.splice_command.private_bytes_hex, "private_command.private_bytes_hex"));
      return;
  }
};

const writeUpid = (w: Writer, upid: SegmentationUpid): void => {
  switch (upid.format) {
    case "none":
      return;
    case "text":
      w.bytes(utf8.encode(upid.value));
      return;
    case "hex":
      w.bytes(hexBytes(upid.value, "segmentation_upid.value"));
      return;
    case "atsc_content_identifier":
      w.u16(upid.tsid, "tsid");
      checkRange(upid.end_of_day, 5, "end_of_day");
      checkRange(upid.unique_for, 9, "unique_for");
      w.u16(0xc000 | (upid.end_of_day << 9) | upid.unique_for, "end_of_day/unique_for");
      w.bytes(utf8.encode(upid.content_id));
      return;
    case "mpu":
      w.u32(upid.format_identifier, "format_identifier").bytes(
        hexBytes(upid.private_data_hex, "private_data_hex"),
      );
      return;
    case "mid":
      for (const entry of upid.value) {
        w.u8(entry.segmentation_upid_type, "segmentation_upid_type");
        w.sized(1, "segmentation_upid_length", (inner) => writeUpid(inner, entry.segmentation_upid));
      }
      return;
  }
};

/** The bytes of a segmentation_upid() as they go on the wire, without type and length. */
export const encodeSegmentationUpid = (upid: SegmentationUpid): Uint8Array => {
  const w = new Writer();
  writeUpid(w, upid);
  return w.finish();
};

const segmentationDescriptor = (w: Writer, d: SegmentationDescriptor): void => {
  w.u32(d.segmentation_event_id, "segmentation_event_id");
  const compliance = flag(d.segmentation_event_id_compliance_indicator, 6);
  if (d.segmentation_event_cancel_indicator) {
    w.u8(0x80 | compliance | 0x3f, "segmentation_event_cancel_indicator");
    return;
  }
  w.u8(compliance | 0x3f, "segmentation_event_cancel_indicator");
  const restrictionsGiven =
    d.web_delivery_allowed_flag !== undefined ||
    d.no_regional_blackout_flag !== undefined ||
    d.archive_allowed_flag !== undefined ||
    d.device_restrictions !== undefined;
  const restrictions =
    d.delivery_not_restricted_flag && !restrictionsGiven
      ? 0x1f
      : flag(d.web_delivery_allowed_flag, 4) |
        flag(d.no_regional_blackout_flag, 3) |
        flag(d.archive_allowed_flag, 2) |
        (d.device_restrictions ?? 0);
  checkRange(d.device_restrictions ?? 0, 2, "device_restrictions");
  w.u8(
    flag(d.program_segmentation_flag, 7) |
      flag(d.segmentation_duration_flag, 6) |
      flag(d.delivery_not_restricted_flag, 5) |
      restrictions,
    "segmentation flags",
  );
  if (!d.program_segmentation_flag) {
    const components = d.components ?? [];
    w.u8(components.length, "component_count");
    for (const c of components)
      w.u8(c.component_tag, "component_tag").u33After(0xfe, c.pts_offset, "pts_offset");
  }
  if (d.segmentation_duration_flag) w.uint(d.segmentation_duration ?? Number.NaN, 5, "segmentation_duration");
  w.u8(d.segmentation_upid_type, "segmentation_upid_type");
  w.sized(1, "segmentation_upid_length", (inner) => writeUpid(inner, d.segmentation_upid));
  w.u8(d.segmentation_type_id, "segmentation_type_id").u8(d.segment_num, "segment_num");
  w.u8(d.segments_expected, "segments_expected");
  if (d.sub_segment_num !== undefined || d.sub_segments_expected !== undefined) {
    w.u8(d.sub_segment_num ?? 0, "sub_segment_num").u8(d.sub_segments_expected ?? 0, "sub_segments_expected");
  }
};

const cueiDescriptorBody = (w: Writer, d: CueiDescriptor): void => {
  switch (d.splice_descriptor_tag) {
    case 0x00:
      w.u32(d.provider_avail_id, "provider_avail_id");
      return;
    case 0x01: {
      const chars = latin1Bytes(d.dtmf_chars, "dtmf_chars");
      checkRange(chars.length, 3, "dtmf_count");
      w.u8(d.preroll, "preroll")
        .u8((chars.length << 5) | 0x1f, "dtmf_count")
        .bytes(chars);
      return;
    }
    case 0x02:
      segmentationDescriptor(w, d);
      return;
    case 0x03:
      w.uint(d.tai_seconds, 6, "tai_seconds").u32(d.tai_ns, "tai_ns").u16(d.utc_offset, "utc_offset");
      return;
    case 0x04:
      checkRange(d.audio.length, 4, "audio_count");
      w.u8((d.audio.length << 4) | 0x0f, "audio_count");
      for (const a of d.audio) {
        const iso = latin1Bytes(a.iso_code, "iso_code");
        if (iso.length !== 3)
          throw new RangeError(`iso_code ${JSON.stringify(a.iso_code)} is not 3 characters`);
        checkRange(a.bit_stream_mode, 3, "bit_stream_mode");
        checkRange(a.num_channels, 4, "num_channels");
        w.u8(a.component_tag, "component_tag").bytes(iso);
        w.u8((a.bit_stream_mode << 5) | (a.num_channels << 1) | flag(a.full_srvc_audio, 0), "audio flags");
      }
      return;
  }
};

const descriptor = (w: Writer, d: SpliceDescriptor): void => {
  w.u8(d.splice_descriptor_tag, "splice_descriptor_tag");
  w.sized(1, "descriptor_length", (inner) => {
    inner.u32(d.identifier, "identifier");
    if (isPrivateDescriptor(d)) inner.bytes(hexBytes(d.private_bytes_hex, "private_bytes_hex"));
    else cueiDescriptorBody(inner, d);
  });
};

/**
 * Encodes a section. section_length, splice_command_length, descriptor_loop_length, every descriptor_length and
 * segmentation_upid_length, and CRC_32 are computed here; the values in `section` are ignored. So a legacy
 * splice_command_length of 0xFFF comes back as the real length.
 *
 * Throws RangeError when a field does not fit its width: that is a bug in whoever built the section, and
 * never happens for a section `decodeSection` produced.
 */
export const encodeSection = (section: SpliceInfoSection): Uint8Array => {
  const afterLength = new Writer();
  afterLength.u8(section.protocol_version, "protocol_version");
  checkRange(section.encryption_algorithm, 6, "encryption_algorithm");
  afterLength.u33After(
    flag(section.encrypted_packet, 7) | (section.encryption_algorithm << 1),
    section.pts_adjustment,
    "pts_adjustment",
  );
  afterLength.u8(section.cw_index, "cw_index");
  checkRange(section.tier, 12, "tier");
  if (section.encrypted_packet) {
    const encrypted = hexBytes(section.encrypted_bytes_hex, "encrypted_bytes_hex");
    // The command length is kept as given: it counts bytes that cannot be parsed here.
    checkRange(section.splice_command_length, 12, "splice_command_length");
    afterLength.uint(section.tier * 4096 + section.splice_command_length, 3, "tier/splice_command_length");
    afterLength.bytes(encrypted);
  } else {
    const command = new Writer();
    spliceCommand(command, section);
    checkRange(command.length, 12, "splice_command_length");
    afterLength.uint(section.tier * 4096 + command.length, 3, "tier/splice_command_length");
    afterLength.u8(section.splice_command_type, "splice_command_type").bytes(command.finish());
    afterLength.sized(2, "descriptor_loop_length", (loop) => {
      for (const d of section.descriptors) descriptor(loop, d);
    });
    afterLength.bytes(hexBytes(section.alignment_stuffing_hex ?? "", "alignment_stuffing_hex"));
  }
  const sectionLength = afterLength.length + 4;
  checkRange(sectionLength, 12, "section_length");
  checkRange(section.sap_type, 2, "sap_type");
  const out = new Writer()
    .u8(section.table_id, "table_id")
    .u16(
      flag(section.section_syntax_indicator, 15) |
        flag(section.private_indicator, 14) |
        (section.sap_type << 12) |
        sectionLength,
      "section_length",
    )
    .bytes(afterLength.finish())
    .finish();
  const withCrc = new Uint8Array(out.length + 4);
  withCrc.set(out);
  new DataView(withCrc.buffer).setUint32(out.length, crc32Mpeg2(out));
  return withCrc;
};
