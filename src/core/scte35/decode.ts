// The SCTE 35 splice_info_section decoder: the section's header, every command of the standard in its order
// and with its field names, and its CRC; the descriptors are in descriptors.ts.
import * as Either from "effect/Either";
import { crc32Mpeg2 } from "../ts/crc32.ts";
import { descriptorLoop } from "./descriptors.ts";
import { bit, fail, hex8, hex32, Reader } from "./reader.ts";
import { bytesToHex, parseCueText } from "./text.ts";
import {
  type BreakDuration,
  type CancelledEvent,
  type InsertComponent,
  type ScheduleComponent,
  type Scte35Error,
  SPLICE_COMMAND_NAMES,
  type SpliceCommandPart,
  type SpliceEventHead,
  type SpliceInfoSection,
  type SpliceInsert,
  type SpliceScheduleEvent,
  type SpliceTime,
} from "./types.ts";

const LEGACY_COMMAND_LENGTH = 0xfff;

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
