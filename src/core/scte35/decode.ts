// The SCTE 35 splice_info_section decoder: every command and descriptor of the standard, in its order and
// with its field names. One file, over 450 lines, because it follows the standard's structure: each structure
// is a few lines, and keeping them together keeps the decoder readable beside the standard's tables.
import { Either } from "effect";
import { crc32Mpeg2 } from "../ts/crc32.ts";
import { encodeSegmentationUpid } from "./encode.ts";
import { bytesToHex, parseCueText } from "./text.ts";
import {
  type AudioComponent,
  type BreakDuration,
  type CancelledEvent,
  CUEI_IDENTIFIER,
  type InsertComponent,
  type MidEntry,
  type ScheduleComponent,
  Scte35Error,
  type SegmentationComponent,
  type SegmentationDescriptor,
  type SegmentationUpid,
  SPLICE_COMMAND_NAMES,
  type SpliceCommandPart,
  type SpliceDescriptor,
  type SpliceEventHead,
  type SpliceInfoSection,
  type SpliceInsert,
  type SpliceScheduleEvent,
  type SpliceTime,
} from "./types.ts";

const LEGACY_COMMAND_LENGTH = 0xfff;
const TWO_POW_32 = 2 ** 32;

/**
 * A cursor over `bytes[pos, end)` that never reads past `end`. A read that would is answered with zeros and
 * leaves `overrun` set, so a parser reads a whole structure straight through and checks once at the end.
 */
class Reader {
  readonly bytes: Uint8Array;
  readonly end: number;
  pos: number;
  overrun = false;

  constructor(bytes: Uint8Array, start: number, end: number) {
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private take(n: number): number {
    const at = this.pos;
    if (n > this.remaining) {
      this.overrun = true;
      this.pos = this.end;
      return -1;
    }
    this.pos += n;
    return at;
  }

  uint(n: number): number {
    const at = this.take(n);
    if (at < 0) return 0;
    let value = 0;
    for (let i = 0; i < n; i++) value = value * 256 + (this.bytes[at + i] ?? 0);
    return value;
  }

  u8 = (): number => this.uint(1);
  u16 = (): number => this.uint(2);
  u32 = (): number => this.uint(4);

  /** A 33-bit value whose top bit is the low bit of `lead`, the byte that carries the flags before it. */
  u33After(lead: number): number {
    return (lead & 1) * TWO_POW_32 + this.u32();
  }

  slice(n: number): Uint8Array {
    const at = this.take(n);
    return at < 0 ? new Uint8Array(0) : this.bytes.subarray(at, at + n);
  }

  /** A reader over the next `n` bytes; this one moves past them. */
  sub(n: number): Reader {
    const at = this.take(n);
    return at < 0 ? new Reader(this.bytes, this.end, this.end) : new Reader(this.bytes, at, at + n);
  }

  rest(): Uint8Array {
    return this.slice(this.remaining);
  }
}

const fail = (reason: Scte35Error["reason"], message: string) =>
  Either.left(new Scte35Error({ reason, message }));

const hex8 = (n: number): string => `0x${n.toString(16).padStart(2, "0")}`;
const hex32 = (n: number): string => `0x${n.toString(16).padStart(8, "0")}`;
const bit = (byte: number, position: number): boolean => ((byte >> position) & 1) === 1;
const latin1 = (bytes: Uint8Array): string => String.fromCharCode(...bytes);

const DESCRIPTOR_NAMES: Readonly<Record<number, string>> = {
  0: "avail_descriptor",
  1: "DTMF_descriptor",
  2: "segmentation_descriptor",
  3: "time_descriptor",
  4: "audio_descriptor",
};

const spliceTime = (r: Reader): SpliceTime => {
  const lead = r.u8();
  return bit(lead, 7)
    ? { time_specified_flag: true, pts_time: r.u33After(lead) }
    : { time_specified_flag: false };
};

const breakDuration = (r: Reader): BreakDuration => {
  const lead = r.u8();
  return { auto_return: bit(lead, 7), duration: r.u33After(lead) };
};

/** The break and the programme and avail numbers a splice_schedule event and a splice_insert end with. */
const eventEnd = (r: Reader, durationFlag: boolean) => ({
  ...(durationFlag ? { break_duration: breakDuration(r) } : {}),
  unique_program_id: r.u16(),
  avail_num: r.u8(),
  avails_expected: r.u8(),
});

/**
 * What a splice_schedule event and a splice_insert begin with: the event id and, unless the event is cancelled
 * (then nothing follows), the flags they share; `flags` is the whole byte, for the insert's own two.
 */
const eventStart = (
  r: Reader,
): CancelledEvent | { readonly head: SpliceEventHead; readonly flags: number } => {
  const splice_event_id = r.u32();
  if (bit(r.u8(), 7)) return { splice_event_id, splice_event_cancel_indicator: true };
  const flags = r.u8();
  const head = {
    splice_event_id,
    splice_event_cancel_indicator: false,
    out_of_network_indicator: bit(flags, 7),
    program_splice_flag: bit(flags, 6),
    duration_flag: bit(flags, 5),
  } as const;
  return { head, flags };
};

const scheduleEvent = (r: Reader): SpliceScheduleEvent => {
  const start = eventStart(r);
  if (!("head" in start)) return start;
  const { head } = start;
  const timing: { utc_splice_time: number } | { components: ReadonlyArray<ScheduleComponent> } =
    head.program_splice_flag
      ? { utc_splice_time: r.u32() }
      : {
          components: Array.from({ length: r.u8() }, () => ({
            component_tag: r.u8(),
            utc_splice_time: r.u32(),
          })),
        };
  return { ...head, ...timing, ...eventEnd(r, head.duration_flag) };
};

const spliceInsert = (r: Reader): SpliceInsert => {
  const start = eventStart(r);
  if (!("head" in start)) return start;
  const { head, flags } = start;
  const splice_immediate_flag = bit(flags, 4);
  let timing: Partial<SpliceTime> | { components: ReadonlyArray<InsertComponent> } = {};
  if (!head.program_splice_flag) {
    timing = {
      components: Array.from({ length: r.u8() }, () => {
        const component_tag = r.u8();
        return splice_immediate_flag ? { component_tag } : { component_tag, ...spliceTime(r) };
      }),
    };
  } else if (!splice_immediate_flag) {
    timing = spliceTime(r);
  }
  return {
    ...head,
    splice_immediate_flag,
    event_id_compliance_flag: bit(flags, 3),
    ...timing,
    ...eventEnd(r, head.duration_flag),
  };
};

/**
 * Reads the command. `legacy` is set for splice_command_length 0xFFF, where the command's own syntax is the
 * only way to find its end.
 */
const spliceCommand = (
  type: number,
  r: Reader,
  legacy: boolean,
): Either.Either<SpliceCommandPart, Scte35Error> => {
  switch (type) {
    case 0x00:
      return Either.right({ splice_command_type: 0x00, splice_command: {} });
    case 0x04:
      return Either.right({
        splice_command_type: 0x04,
        splice_command: { events: Array.from({ length: r.u8() }, () => scheduleEvent(r)) },
      });
    case 0x05:
      return Either.right({ splice_command_type: 0x05, splice_command: spliceInsert(r) });
    case 0x06:
      return Either.right({ splice_command_type: 0x06, splice_command: spliceTime(r) });
    case 0x07:
      return Either.right({ splice_command_type: 0x07, splice_command: {} });
    case 0xff:
      if (legacy) {
        return fail(
          "invalid_length",
          "private_command has no length of its own, so splice_command_length cannot be the legacy 0xFFF",
        );
      }
      return Either.right({
        splice_command_type: 0xff,
        splice_command: { identifier: r.u32(), private_bytes_hex: bytesToHex(r.rest()) },
      });
    default:
      return fail(
        "unknown_command",
        `splice_command_type ${hex8(type)} is not a command SCTE 35 defines (0x00, 0x04-0x07, 0xff)`,
      );
  }
};

/** UPID types whose value is a fixed-size binary structure; any other length cannot be read as that type. */
const FIXED_UPID_LENGTHS: Readonly<Record<number, readonly [string, number]>> = {
  4: ["UMID", 32],
  5: ["ISAN", 8],
  6: ["V-ISAN", 12],
  8: ["TI", 8],
  10: ["EIDR", 12],
  16: ["UUID", 16],
};

/** Character-string UPIDs: ISCI, Ad-ID, TID, ADI, ADS, URI, SCR. */
const TEXT_UPID_TYPES: ReadonlySet<number> = new Set([0x02, 0x03, 0x07, 0x09, 0x0e, 0x0f, 0x11]);

const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

const midEntries = (bytes: Uint8Array): Either.Either<ReadonlyArray<MidEntry>, Scte35Error> =>
  Either.gen(function* () {
    const r = new Reader(bytes, 0, bytes.length);
    const entries: Array<MidEntry> = [];
    while (r.remaining > 0) {
      const segmentation_upid_type = r.u8();
      const segmentation_upid_length = r.u8();
      const value = r.slice(segmentation_upid_length);
      if (r.overrun) {
        return yield* fail(
          "invalid_upid",
          `MID UPID entry ${entries.length} (type ${hex8(segmentation_upid_type)}) runs past the end of the MID`,
        );
      }
      const segmentation_upid = yield* segmentationUpid(segmentation_upid_type, value);
      entries.push({ segmentation_upid_type, segmentation_upid_length, segmentation_upid });
    }
    return entries;
  });

/**
 * The structured form of a UPID when the bytes fit one exactly, else `hex`: a candidate is kept only if it
 * encodes back to the same bytes, which is what makes decode-then-encode lossless.
 */
const segmentationUpid = (type: number, bytes: Uint8Array): Either.Either<SegmentationUpid, Scte35Error> =>
  Either.gen(function* () {
    const fixed = FIXED_UPID_LENGTHS[type];
    if (fixed !== undefined && bytes.length !== fixed[1]) {
      return yield* fail(
        "invalid_upid",
        `segmentation_upid_type ${hex8(type)} (${fixed[0]}) is ${fixed[1]} bytes, but segmentation_upid_length is ${bytes.length}`,
      );
    }
    const hex: SegmentationUpid = { format: "hex", value: bytesToHex(bytes) };
    let candidate: SegmentationUpid = hex;
    if (type === 0x00 && bytes.length === 0) candidate = { format: "none" };
    else if (TEXT_UPID_TYPES.has(type)) candidate = { format: "text", value: utf8.decode(bytes) };
    else if (type === 0x0b && bytes.length >= 4) {
      const packed = ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0);
      candidate = {
        format: "atsc_content_identifier",
        tsid: ((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0),
        end_of_day: (packed >> 9) & 0x1f,
        unique_for: packed & 0x1ff,
        content_id: utf8.decode(bytes.subarray(4)),
      };
    } else if (type === 0x0c && bytes.length >= 4) {
      const r = new Reader(bytes, 0, bytes.length);
      candidate = { format: "mpu", format_identifier: r.u32(), private_data_hex: bytesToHex(r.rest()) };
    } else if (type === 0x0d) {
      candidate = { format: "mid", value: yield* midEntries(bytes) };
    }
    return sameBytes(encodeSegmentationUpid(candidate), bytes) ? candidate : hex;
  });

const segmentationDescriptor = (
  r: Reader,
  descriptor_length: number,
): Either.Either<SegmentationDescriptor, Scte35Error> =>
  Either.gen(function* () {
    const segmentation_event_id = r.u32();
    const cancelFlags = r.u8();
    const head = {
      splice_descriptor_tag: 0x02,
      descriptor_length,
      identifier: CUEI_IDENTIFIER,
      segmentation_event_id,
    } as const;
    const segmentation_event_id_compliance_indicator = bit(cancelFlags, 6);
    if (bit(cancelFlags, 7)) {
      return {
        ...head,
        segmentation_event_cancel_indicator: true,
        segmentation_event_id_compliance_indicator,
      };
    }
    const flags = r.u8();
    const program_segmentation_flag = bit(flags, 7);
    const segmentation_duration_flag = bit(flags, 6);
    const delivery_not_restricted_flag = bit(flags, 5);
    // With delivery_not_restricted_flag set these five bits are reserved, to be sent as 1s; some encoders fill
    // them in regardless, and reporting what they sent is what lets the section re-encode exactly.
    const restrictions =
      delivery_not_restricted_flag && (flags & 0x1f) === 0x1f
        ? {}
        : {
            web_delivery_allowed_flag: bit(flags, 4),
            no_regional_blackout_flag: bit(flags, 3),
            archive_allowed_flag: bit(flags, 2),
            device_restrictions: flags & 0x03,
          };
    const components: ReadonlyArray<SegmentationComponent> | undefined = program_segmentation_flag
      ? undefined
      : Array.from({ length: r.u8() }, () => ({ component_tag: r.u8(), pts_offset: r.u33After(r.u8()) }));
    const segmentation_duration = segmentation_duration_flag ? r.uint(5) : undefined;
    const segmentation_upid_type = r.u8();
    const segmentation_upid_length = r.u8();
    const upidBytes = r.slice(segmentation_upid_length);
    if (r.overrun) {
      return yield* fail(
        "truncated",
        `segmentation_descriptor: descriptor_length ${descriptor_length} ends inside the segmentation_upid (segmentation_upid_length ${segmentation_upid_length})`,
      );
    }
    const segmentation_upid = yield* segmentationUpid(segmentation_upid_type, upidBytes);
    const segmentation_type_id = r.u8();
    const segment_num = r.u8();
    const segments_expected = r.u8();
    // The standard lists which segmentation types carry sub-segment fields, and that list has grown between
    // editions; what decides is whether the descriptor has room for them.
    const subSegments =
      r.remaining >= 2 ? { sub_segment_num: r.u8(), sub_segments_expected: r.u8() } : ({} as const);
    return {
      ...head,
      segmentation_event_cancel_indicator: false,
      segmentation_event_id_compliance_indicator,
      program_segmentation_flag,
      segmentation_duration_flag,
      delivery_not_restricted_flag,
      ...restrictions,
      ...(components === undefined ? {} : { components }),
      ...(segmentation_duration === undefined ? {} : { segmentation_duration }),
      segmentation_upid_type,
      segmentation_upid_length,
      segmentation_upid,
      segmentation_type_id,
      segment_num,
      segments_expected,
      ...subSegments,
    };
  });

const cueiDescriptor = (
  tag: number,
  r: Reader,
  descriptor_length: number,
): Either.Either<SpliceDescriptor, Scte35Error> => {
  const head = { descriptor_length, identifier: CUEI_IDENTIFIER } as const;
  switch (tag) {
    case 0x00:
      return Either.right({ splice_descriptor_tag: 0x00, ...head, provider_avail_id: r.u32() });
    case 0x01: {
      const preroll = r.u8();
      const count = r.u8() >> 5;
      return Either.right({
        splice_descriptor_tag: 0x01,
        ...head,
        preroll,
        dtmf_chars: latin1(r.slice(count)),
      });
    }
    case 0x02:
      return segmentationDescriptor(r, descriptor_length);
    case 0x03:
      return Either.right({
        splice_descriptor_tag: 0x03,
        ...head,
        tai_seconds: r.uint(6),
        tai_ns: r.u32(),
        utc_offset: r.u16(),
      });
    default: {
      const count = r.u8() >> 4;
      const audio = Array.from({ length: count }, (): AudioComponent => {
        const component_tag = r.u8();
        const iso_code = latin1(r.slice(3));
        const packed = r.u8();
        return {
          component_tag,
          iso_code,
          bit_stream_mode: packed >> 5,
          num_channels: (packed >> 1) & 0x0f,
          full_srvc_audio: bit(packed, 0),
        };
      });
      return Either.right({ splice_descriptor_tag: 0x04, ...head, audio });
    }
  }
};

const descriptorLoop = (r: Reader): Either.Either<ReadonlyArray<SpliceDescriptor>, Scte35Error> =>
  Either.gen(function* () {
    const descriptors: Array<SpliceDescriptor> = [];
    while (r.remaining > 0) {
      const index = descriptors.length;
      if (r.remaining < 2) {
        return yield* fail(
          "invalid_length",
          `descriptor ${index}: 1 byte left in the loop, too few for a tag and length`,
        );
      }
      const tag = r.u8();
      const descriptor_length = r.u8();
      if (descriptor_length > r.remaining) {
        return yield* fail(
          "invalid_length",
          `descriptor ${index} (tag ${hex8(tag)}): descriptor_length ${descriptor_length} runs past the descriptor loop, which has ${r.remaining} bytes left`,
        );
      }
      const body = r.sub(descriptor_length);
      const identifier = body.u32();
      if (body.overrun) {
        return yield* fail(
          "invalid_length",
          `descriptor ${index} (tag ${hex8(tag)}): descriptor_length ${descriptor_length} leaves no room for the 4-byte identifier`,
        );
      }
      const name = DESCRIPTOR_NAMES[tag];
      if (identifier !== CUEI_IDENTIFIER || name === undefined) {
        descriptors.push({
          splice_descriptor_tag: tag,
          descriptor_length,
          identifier,
          private_bytes_hex: bytesToHex(body.rest()),
        });
        continue;
      }
      const descriptor = yield* cueiDescriptor(tag, body, descriptor_length);
      if (body.overrun) {
        return yield* fail(
          "truncated",
          `descriptor ${index} (${name}): descriptor_length ${descriptor_length} is shorter than its fields`,
        );
      }
      if (body.remaining > 0) {
        return yield* fail(
          "invalid_length",
          `descriptor ${index} (${name}): descriptor_length ${descriptor_length} leaves ${body.remaining} bytes after its last field`,
        );
      }
      descriptors.push(descriptor);
    }
    return descriptors;
  });

export interface DecodeOptions {
  /**
   * Check CRC_32 (default true). Turning it off is for inspecting sections known to carry a wrong CRC, such as
   * ones from equipment that never computes it; a live path should keep it on.
   */
  readonly verifyCrc?: boolean;
}

/** Fixed part of a section: table_id up to and including splice_command_length. */
const HEADER_BYTES = 13;
const CRC_BYTES = 4;

/**
 * Decodes one splice_info_section starting at `bytes[0]` (no pointer_field). Bytes after the section's end
 * (such as 0xFF stuffing in a TS packet) are ignored. Never throws.
 */
export const decodeSection = (
  bytes: Uint8Array,
  options: DecodeOptions = {},
): Either.Either<SpliceInfoSection, Scte35Error> =>
  Either.gen(function* () {
    if (bytes.length < 3) {
      return yield* fail(
        "truncated",
        `section truncated: ${bytes.length} bytes, the section header alone is 3`,
      );
    }
    const head = new Reader(bytes, 0, bytes.length);
    const table_id = head.u8();
    if (table_id !== 0xfc) {
      return yield* fail("bad_table_id", `table_id is ${hex8(table_id)}; an SCTE 35 section has 0xfc`);
    }
    const lengthField = head.u16();
    const section_length = lengthField & 0x0fff;
    const total = section_length + 3;
    if (bytes.length < total) {
      return yield* fail(
        "truncated",
        `section truncated: section_length says ${section_length} bytes, ${bytes.length - 3} present`,
      );
    }
    if (total < HEADER_BYTES + CRC_BYTES) {
      return yield* fail(
        "invalid_length",
        `section_length ${section_length} is too short: the fixed header and CRC_32 need ${HEADER_BYTES + CRC_BYTES - 3}`,
      );
    }
    const crcAt = total - CRC_BYTES;
    const storedCrc = new Reader(bytes, crcAt, total).u32();
    if (options.verifyCrc !== false) {
      const computed = crc32Mpeg2(bytes, 0, crcAt);
      if (computed !== storedCrc) {
        return yield* fail(
          "bad_crc",
          `CRC_32 mismatch: the section carries ${hex32(storedCrc)}, its bytes give ${hex32(computed)}`,
        );
      }
    }
    const protocol_version = head.u8();
    const cryptoByte = head.u8();
    const encrypted_packet = bit(cryptoByte, 7);
    const pts_adjustment = head.u33After(cryptoByte);
    const cw_index = head.u8();
    const tierAndLength = head.uint(3);
    const splice_command_length = tierAndLength & 0xfff;
    const header = {
      table_id: 0xfc,
      section_syntax_indicator: bit(lengthField, 15),
      private_indicator: bit(lengthField, 14),
      sap_type: (lengthField >> 12) & 0x03,
      section_length,
      protocol_version,
      encryption_algorithm: (cryptoByte >> 1) & 0x3f,
      pts_adjustment,
      cw_index,
      tier: tierAndLength >> 12,
      splice_command_length,
      crc32: hex32(storedCrc),
    } as const;
    if (encrypted_packet) {
      return {
        ...header,
        encrypted_packet: true,
        encrypted_bytes_hex: bytesToHex(bytes.subarray(HEADER_BYTES, crcAt)),
      };
    }

    const body = new Reader(bytes, HEADER_BYTES, crcAt);
    const type = body.u8();
    const name = SPLICE_COMMAND_NAMES[type] ?? `splice_command_type ${hex8(type)}`;
    const legacy = splice_command_length === LEGACY_COMMAND_LENGTH;
    if (type === 0xff && !legacy && splice_command_length > body.remaining) {
      return yield* fail(
        "invalid_length",
        `splice_command_length ${splice_command_length} runs past the section: ${body.remaining} bytes before CRC_32`,
      );
    }
    // Every command but private_command has syntax that ends by itself, so it is read up to the end of the
    // section and splice_command_length is checked afterwards.
    const commandReader = type === 0xff && !legacy ? body.sub(splice_command_length) : body;
    const commandStart = commandReader.pos;
    const command = yield* spliceCommand(type, commandReader, legacy);
    if (commandReader.overrun) return yield* fail("truncated", `${name} runs past the end of the section`);
    const parsedLength = commandReader.pos - commandStart;
    if (!legacy && type !== 0xff && parsedLength !== splice_command_length) {
      // Some encoders get splice_command_length wrong (one counts splice_command_type in it). Like the legacy
      // 0xFFF, it then gives way to the command's syntax, but only when the descriptor loop found there fits.
      const loopFits = body.remaining >= 2 && new Reader(bytes, body.pos, crcAt).u16() + 2 <= body.remaining;
      if (!loopFits) {
        return yield* fail(
          "invalid_length",
          `${name} is ${parsedLength} bytes, but splice_command_length says ${splice_command_length}`,
        );
      }
    }

    const descriptor_loop_length = body.u16();
    if (body.overrun) {
      return yield* fail("truncated", "section ends before descriptor_loop_length");
    }
    if (descriptor_loop_length > body.remaining) {
      return yield* fail(
        "invalid_length",
        `descriptor_loop_length ${descriptor_loop_length} runs past the section: ${body.remaining} bytes before CRC_32`,
      );
    }
    const descriptors = yield* descriptorLoop(body.sub(descriptor_loop_length));
    const stuffing = body.rest();
    return {
      ...header,
      encrypted_packet: false,
      ...command,
      descriptor_loop_length,
      descriptors,
      ...(stuffing.length > 0 ? { alignment_stuffing_hex: bytesToHex(stuffing) } : {}),
    };
  });

/** `parseCueText` then `decodeSection`. */
export const decodeCueText = (
  text: string,
  options: DecodeOptions = {},
): Either.Either<SpliceInfoSection, Scte35Error> =>
  Either.flatMap(parseCueText(text), (bytes) => decodeSection(bytes, options));
