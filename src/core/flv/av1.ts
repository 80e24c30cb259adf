/**
 * AV1 between Enhanced RTMP (FourCC `av01`) and MPEG-TS, as AOM's "Carriage of AV1 in MPEG-2 TS" (v1.0)
 * says: the stream is `stream_type` 0x06 in PES packets of `private_stream_1` (0xBD), registered `AV01` by a
 * registration descriptor that comes first in its PMT entry, then the AV1 video descriptor (tag 0x80: the
 * first four bytes of the AV1CodecConfigurationRecord, two of its reserved bits telling HDR and wide colour).
 * Each PES holds one temporal unit; each OBU in it goes behind a 00 00 01 start code, with emulation
 * prevention bytes (0x03) where two zero bytes would be followed by 0x00…0x03 (as in H.264).
 *
 *   readAv1C(record)                     // the sequence start's AV1CodecConfigurationRecord
 *   startCodeFormat(tu, keyframe, obus)  // an E-RTMP coded frame (low overhead format) → PES payload
 *   lowOverheadFormat(payload)           // and back (a PES payload → the temporal unit's OBUs)
 *
 * The OBUs are carried as they came, their `obu_size` fields kept (the specification recommends it for
 * conversion to MP4), so the way back gives the publisher's bytes. A temporal unit without a temporal
 * delimiter gets one (E-RTMP, like MP4, may leave it out; in TS it marks where a unit begins), and a keyframe
 * whose unit has no sequence header OBU gets the configuration record's.
 */

export const OBU = { sequenceHeader: 1, temporalDelimiter: 2, frameHeader: 3, frame: 6 } as const;

/** A temporal delimiter OBU with its (zero) size, as encoders write it. */
const TEMPORAL_DELIMITER = Uint8Array.of(0x12, 0x00);
const START_CODE = Uint8Array.of(0, 0, 1);

export interface Av1Config {
  /** The record's first four bytes: marker and version, profile, level, tier, bit depth, chroma. */
  readonly head: Uint8Array;
  /** Its configOBUs (a sequence header OBU, in the low overhead format), put before keyframes without one. */
  readonly configObus: Uint8Array;
}

/** An AV1CodecConfigurationRecord (marker 1, version 1): its head and configOBUs; null if it is not one. */
export const readAv1C = (record: Uint8Array): Av1Config | null => {
  if (record.length < 4 || record[0] !== 0x81) return null;
  return { head: record.subarray(0, 4), configObus: record.subarray(4) };
};

/**
 * The AV1 video descriptor (tag 0x80) read as a configuration record's head: what E-RTMP's
 * `MPEG2TSSequenceStart` carries for `av01`. Null if it is not one.
 */
export const av1ConfigFromDescriptor = (descriptor: Uint8Array): Av1Config | null => {
  if (descriptor.length < 6 || descriptor[0] !== 0x80 || descriptor[1] !== 4 || descriptor[2] !== 0x81)
    return null;
  const head = Uint8Array.of(0x81, descriptor[3] ?? 0, descriptor[4] ?? 0, (descriptor[5] ?? 0) & 0x1f);
  return { head, configObus: new Uint8Array(0) };
};

/**
 * The PMT entry's descriptors for AV1: the registration descriptor `AV01`, then the AV1 video descriptor made
 * from the configuration record's head. `hdrWcg`: 0 SDR, 1 wide colour, 2 HDR and wide colour, 3 not said.
 */
export const av1Descriptors = (config: Av1Config, hdrWcg = 3): Uint8Array => {
  const h = config.head;
  return Uint8Array.of(
    0x05,
    4,
    0x41, // A
    0x56, // V
    0x30, // 0
    0x31, // 1
    0x80,
    4,
    0x81, // marker, version 1
    h[1] ?? 0, // seq_profile, seq_level_idx_0
    h[2] ?? 0, // tier, high_bitdepth, twelve_bit, monochrome, subsampling x and y, chroma_sample_position
    ((hdrWcg & 3) << 6) | ((h[3] ?? 0) & 0x1f), // hdr_wcg_idc, reserved 0, initial_presentation_delay
  );
};

/** An OBU's extent in a low overhead stream; null when its size field runs past `end`. */
const obuEnd = (data: Uint8Array, at: number, end: number): number | null => {
  const header = data[at] ?? 0;
  if ((header & 0x80) !== 0) return null; // forbidden bit
  let next = at + 1 + ((header >> 2) & 1);
  if (((header >> 1) & 1) === 0) return end; // no size field: the OBU runs to the end
  let size = 0;
  for (let i = 0; ; i++) {
    if (next >= end || i === 8) return null;
    const byte = data[next++] ?? 0;
    size += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) break;
  }
  return next + size <= end ? next + size : null;
};

const obuType = (data: Uint8Array, at: number): number => ((data[at] ?? 0) >> 3) & 0x0f;

/** The OBUs of a temporal unit in the low overhead format, as [start, end) pairs; null if they do not parse. */
export const obuBounds = (tu: Uint8Array): number[] | null => {
  const bounds: number[] = [];
  for (let at = 0; at < tu.length; ) {
    const end = obuEnd(tu, at, tu.length);
    if (end === null) return null;
    bounds.push(at, end);
    at = end;
  }
  return bounds;
};

/** The first sequence header OBU of `obus` (low overhead format), or null. */
export const sequenceHeaderObu = (obus: Uint8Array): Uint8Array | null => {
  const bounds = obuBounds(obus);
  if (bounds === null) return null;
  for (let i = 0; i < bounds.length; i += 2) {
    const start = bounds[i] as number;
    if (obuType(obus, start) === OBU.sequenceHeader) return obus.subarray(start, bounds[i + 1]);
  }
  return null;
};

/** `obu`'s bytes with emulation prevention, after a start code, written at `out[at]`; the end. */
const putEscaped = (out: Uint8Array, at: number, obu: Uint8Array): number => {
  out.set(START_CODE, at);
  at += 3;
  let zeros = 0;
  for (const byte of obu) {
    if (zeros >= 2 && byte <= 3) {
      out[at++] = 3;
      zeros = 0;
    }
    out[at++] = byte;
    zeros = byte === 0 ? zeros + 1 : 0;
  }
  return at;
};

/**
 * A temporal unit (an E-RTMP `av01` coded frame: OBUs in the low overhead format) as a PES payload: each OBU
 * behind a start code, escaped; a temporal delimiter first when it has none, and `configObus`' sequence header
 * after it on a keyframe that lacks one. Null when the OBUs cannot be read.
 */
export const startCodeFormat = (
  tu: Uint8Array,
  keyframe: boolean,
  configObus: Uint8Array,
): Uint8Array | null => {
  const bounds = obuBounds(tu);
  if (bounds === null || bounds.length === 0) return null;
  const obus: Uint8Array[] = [];
  for (let i = 0; i < bounds.length; i += 2) obus.push(tu.subarray(bounds[i], bounds[i + 1]));
  const types = obus.map((obu) => obuType(obu, 0));
  if (keyframe && !types.includes(OBU.sequenceHeader)) {
    const header = sequenceHeaderObu(configObus);
    if (header !== null) obus.splice(types[0] === OBU.temporalDelimiter ? 1 : 0, 0, header);
  }
  if (types[0] !== OBU.temporalDelimiter) obus.unshift(TEMPORAL_DELIMITER);
  // At worst one prevention byte for every two bytes.
  const out = new Uint8Array(obus.reduce((n, obu) => n + 3 + obu.length + Math.ceil(obu.length / 2), 0));
  let at = 0;
  for (const obu of obus) at = putEscaped(out, at, obu);
  return out.subarray(0, at);
};

/**
 * A PES payload in the start code format back in the low overhead format: each OBU runs from after its
 * 00 00 01 to the next one (zero bytes before a start code stay the OBU's: a temporal delimiter ends in its
 * zero size), its prevention bytes taken out. An OBU without an `obu_size` field (MPEG-TS allows it; the low
 * overhead format does not) gets one. Bytes before the first start code are left out.
 */
export const lowOverheadFormat = (payload: Uint8Array): Uint8Array => {
  // An OBU loses its 3-byte start code and gains at most a 4-byte size: one more byte per 4 at most.
  let out = new Uint8Array(payload.length + (payload.length >> 2) + 8);
  let length = 0;
  let at = Buffer.prototype.indexOf.call(payload, START_CODE, 0);
  while (at >= 0) {
    const start = at + 3;
    const next = Buffer.prototype.indexOf.call(payload, START_CODE, start);
    const end = next < 0 ? payload.length : next;
    const obuStart = length;
    let zeros = 0;
    for (let i = start; i < end; i++) {
      const byte = payload[i] ?? 0;
      if (zeros >= 2 && byte === 3) {
        zeros = 0;
        continue;
      }
      out[length++] = byte;
      zeros = byte === 0 ? zeros + 1 : 0;
    }
    const header = out[obuStart] ?? 0;
    const headerLength = 1 + ((header >> 2) & 1);
    if (length > obuStart && ((header >> 1) & 1) === 0 && length - obuStart >= headerLength) {
      const size = leb128(length - obuStart - headerLength);
      if (length + size.length > out.length) {
        const grown = new Uint8Array(out.length + size.length + 8);
        grown.set(out.subarray(0, length));
        out = grown;
      }
      out.copyWithin(obuStart + headerLength + size.length, obuStart + headerLength, length);
      out.set(size, obuStart + headerLength);
      out[obuStart] = header | 2;
      length += size.length;
    }
    at = next;
  }
  return out.subarray(0, length);
};

/** `value` as leb128, in as few bytes as it takes. */
const leb128 = (value: number): Uint8Array => {
  const bytes: number[] = [];
  do {
    const low = value % 128;
    value = Math.floor(value / 128);
    bytes.push(value > 0 ? low | 0x80 : low);
  } while (value > 0);
  return Uint8Array.from(bytes);
};

/**
 * Whether a temporal unit (low overhead format) starts a key frame: its first frame header (or frame) OBU is a
 * KEY_FRAME that is not a shown existing frame. A stream with a reduced still picture header is not read.
 */
export const startsKeyFrame = (tu: Uint8Array): boolean => {
  const bounds = obuBounds(tu);
  if (bounds === null) return false;
  for (let i = 0; i < bounds.length; i += 2) {
    const start = bounds[i] as number;
    const type = obuType(tu, start);
    if (type !== OBU.frameHeader && type !== OBU.frame) continue;
    const header = tu[start] ?? 0;
    let at = start + 1 + ((header >> 2) & 1);
    if (((header >> 1) & 1) === 1) while (((tu[at++] ?? 0) & 0x80) !== 0);
    const first = tu[at] ?? 0xff;
    return (first & 0x80) === 0 && ((first >> 5) & 3) === 0;
  }
  return false;
};

/**
 * Whether a PES payload in the start code format starts a key frame (as `startsKeyFrame`), reading only the
 * first bytes of its first frame header or frame OBU.
 */
export const startCodeKeyFrame = (payload: Uint8Array): boolean => {
  for (let at = Buffer.prototype.indexOf.call(payload, START_CODE, 0); at >= 0; ) {
    const next = Buffer.prototype.indexOf.call(payload, START_CODE, at + 3);
    const type = obuType(payload, at + 3);
    if (type === OBU.frameHeader || type === OBU.frame) {
      // The header, its extension, a size of up to 8 bytes and the frame header's first: escaped, 24 at most.
      const head = lowOverheadFormat(
        payload.subarray(at, Math.min(next < 0 ? payload.length : next, at + 27)),
      );
      const header = head[0] ?? 0;
      let i = 1 + ((header >> 2) & 1);
      if (((header >> 1) & 1) === 1) while (i < head.length && ((head[i++] ?? 0) & 0x80) !== 0);
      const first = head[i] ?? 0xff;
      return (first & 0x80) === 0 && ((first >> 5) & 3) === 0;
    }
    at = next;
  }
  return false;
};

const AV01 = [0x61, 0x76, 0x30, 0x31] as const;
/** Enhanced RTMP: IsExHeader, then the frame type and packet type (0 SequenceStart, 1 CodedFrames). */
const exHeader = (keyframe: boolean, packetType: number) => 0x80 | ((keyframe ? 1 : 2) << 4) | packetType;

/** The Enhanced RTMP `av01` sequence start tag body: an AV1CodecConfigurationRecord. */
export const av1SequenceStart = (record: Uint8Array): Uint8Array => {
  const body = new Uint8Array(5 + record.length);
  body.set([exHeader(true, 0), ...AV01]);
  body.set(record, 5);
  return body;
};

/**
 * The Enhanced RTMP `av01` coded frame tag body of a temporal unit (low overhead format): its OBUs but the
 * temporal delimiters, which MP4 samples and E-RTMP frames leave out. Null when the OBUs cannot be read.
 */
export const av1CodedFrame = (tu: Uint8Array, keyframe: boolean): Uint8Array | null => {
  const bounds = obuBounds(tu);
  if (bounds === null) return null;
  let size = 5;
  for (let i = 0; i < bounds.length; i += 2)
    if (obuType(tu, bounds[i] as number) !== OBU.temporalDelimiter)
      size += (bounds[i + 1] as number) - (bounds[i] as number);
  const body = new Uint8Array(size);
  body.set([exHeader(keyframe, 1), ...AV01]);
  let at = 5;
  for (let i = 0; i < bounds.length; i += 2) {
    const start = bounds[i] as number;
    if (obuType(tu, start) === OBU.temporalDelimiter) continue;
    body.set(tu.subarray(start, bounds[i + 1]), at);
    at += (bounds[i + 1] as number) - start;
  }
  return body;
};
