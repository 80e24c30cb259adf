// The splice descriptors of an SCTE 35 section (avail, DTMF, segmentation with its UPIDs, time, audio), each
// in the standard's order and with its field names.
import * as Either from "effect/Either";
import { encodeSegmentationUpid } from "./encode.ts";
import { bit, fail, hex8, latin1, Reader } from "./reader.ts";
import { bytesToHex } from "./text.ts";
import {
  type AudioComponent,
  CUEI_IDENTIFIER,
  type MidEntry,
  type Scte35Error,
  type SegmentationComponent,
  type SegmentationDescriptor,
  type SegmentationUpid,
  type SpliceDescriptor,
} from "./types.ts";

const DESCRIPTOR_NAMES: Readonly<Record<number, string>> = {
  0: "avail_descriptor",
  1: "DTMF_descriptor",
  2: "segmentation_descriptor",
  3: "time_descriptor",
  4: "audio_descriptor",
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

export const descriptorLoop = (r: Reader): Either.Either<ReadonlyArray<SpliceDescriptor>, Scte35Error> =>
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
