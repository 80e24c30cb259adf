/**
 * An AV1 sequence header OBU read (AV1 bitstream specification §5.5) as far as carrying the stream needs: the
 * AV1CodecConfigurationRecord's fields (profile, level and tier of the first operating point, bit depth,
 * monochrome, chroma subsampling and sample position), the largest picture (onMetaData's size), and whether
 * its colour is HDR or wide gamut (the AV1 video descriptor's `hdr_wcg_idc` in MPEG-TS).
 *
 *   const info = readSequenceHeader(obu)   // an OBU in the low overhead format, header included
 *   if (typeof info !== "string") av1CodecConfiguration(info, obu)
 */

/** Bits of a byte string, most significant first; reading past the end sets `broken` and reads 0. */
class Bits {
  private readonly bytes: Uint8Array;
  private bit = 0;
  broken = false;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
  u(n: number): number {
    if (this.bit + n > this.bytes.length * 8) {
      this.broken = true;
      return 0;
    }
    let value = 0;
    for (let i = 0; i < n; i++, this.bit++)
      value = value * 2 + (((this.bytes[this.bit >> 3] ?? 0) >> (7 - (this.bit & 7))) & 1);
    return value;
  }
  /** uvlc(): leading zeros, then that many bits. */
  uvlc(): number {
    let zeros = 0;
    while (this.u(1) === 0) if (this.broken || ++zeros >= 32) return 0;
    return 2 ** zeros - 1 + this.u(zeros);
  }
}

export interface Av1SequenceInfo {
  readonly profile: number;
  readonly level: number;
  readonly tier: number;
  readonly highBitdepth: boolean;
  readonly twelveBit: boolean;
  readonly monochrome: boolean;
  readonly subsamplingX: boolean;
  readonly subsamplingY: boolean;
  readonly chromaSamplePosition: number;
  readonly width: number;
  readonly height: number;
  /** 0 SDR, 1 wide colour gamut, 2 HDR and wide colour gamut, 3 not said (as the AV1 video descriptor says). */
  readonly hdrWcg: number;
}

/** The payload of an OBU in the low overhead format (after its header and size), or null. */
const payloadOf = (obu: Uint8Array): Uint8Array | null => {
  const header = obu[0] ?? 0;
  let at = 1 + ((header >> 2) & 1);
  if (((header >> 1) & 1) === 0) return obu.subarray(at);
  let size = 0;
  for (let i = 0; i < 8; i++) {
    const byte = obu[at++];
    if (byte === undefined) return null;
    size += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return at + size <= obu.length ? obu.subarray(at, at + size) : null;
  }
  return null;
};

/** `hdr_wcg_idc` from the colour description: BT.2020 primaries are wide; PQ and HLG transfers are HDR. */
const hdrWcgOf = (described: boolean, primaries: number, transfer: number): number => {
  if (!described) return 3;
  const wide = primaries === 9;
  const hdr = transfer === 16 || transfer === 18;
  if (hdr) return wide ? 2 : 3;
  return wide ? 1 : 0;
};

/** A sequence header OBU's fields, or why it cannot be read. */
export const readSequenceHeader = (obu: Uint8Array): Av1SequenceInfo | string => {
  if ((((obu[0] ?? 0) >> 3) & 0x0f) !== 1) return "not a sequence header OBU";
  const payload = payloadOf(obu);
  if (payload === null) return "a sequence header OBU whose size runs past its end";
  const b = new Bits(payload);
  const profile = b.u(3);
  b.u(1); // still_picture
  const reduced = b.u(1) === 1;
  let level = 0;
  let tier = 0;
  if (reduced) level = b.u(5);
  else {
    let decoderModel = false;
    let bufferDelayLength = 0;
    if (b.u(1) === 1) {
      // timing_info
      b.u(32);
      b.u(32);
      if (b.u(1) === 1) b.uvlc();
      decoderModel = b.u(1) === 1;
      if (decoderModel) {
        bufferDelayLength = b.u(5) + 1;
        b.u(32);
        b.u(10); // buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
      }
    }
    const initialDisplayDelay = b.u(1) === 1;
    const operatingPoints = b.u(5) + 1;
    for (let i = 0; i < operatingPoints; i++) {
      b.u(12); // operating_point_idc
      const pointLevel = b.u(5);
      const pointTier = pointLevel > 7 ? b.u(1) : 0;
      if (i === 0) {
        level = pointLevel;
        tier = pointTier;
      }
      if (decoderModel && b.u(1) === 1) b.u(2 * bufferDelayLength + 1);
      if (initialDisplayDelay && b.u(1) === 1) b.u(4);
    }
  }
  const widthBits = b.u(4) + 1;
  const heightBits = b.u(4) + 1;
  const width = b.u(widthBits) + 1;
  const height = b.u(heightBits) + 1;
  if (!reduced && b.u(1) === 1) b.u(7); // frame ids: delta_frame_id_length_minus_2, additional_…_minus_1
  b.u(3); // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
  if (!reduced) {
    b.u(4); // interintra, masked compound, warped motion, dual filter
    const orderHint = b.u(1) === 1;
    if (orderHint) b.u(2); // jnt_comp, ref_frame_mvs
    const forceScreenContent = b.u(1) === 1 ? 2 : b.u(1);
    if (forceScreenContent > 0 && b.u(1) === 0) b.u(1); // seq_choose_integer_mv, seq_force_integer_mv
    if (orderHint) b.u(3);
  }
  b.u(3); // superres, cdef, restoration
  // color_config
  const highBitdepth = b.u(1) === 1;
  const twelveBit = profile === 2 && highBitdepth ? b.u(1) === 1 : false;
  const bitDepth = twelveBit ? 12 : highBitdepth ? 10 : 8;
  const monochrome = profile === 1 ? false : b.u(1) === 1;
  const described = b.u(1) === 1;
  const primaries = described ? b.u(8) : 2;
  const transfer = described ? b.u(8) : 2;
  const matrix = described ? b.u(8) : 2;
  let subsamplingX = true;
  let subsamplingY = true;
  let chromaSamplePosition = 0;
  if (monochrome) b.u(1);
  else if (primaries === 1 && transfer === 13 && matrix === 0) {
    subsamplingX = false;
    subsamplingY = false;
  } else {
    b.u(1); // color_range
    if (profile === 1) subsamplingX = subsamplingY = false;
    else if (profile === 2) {
      if (bitDepth === 12) {
        subsamplingX = b.u(1) === 1;
        subsamplingY = subsamplingX ? b.u(1) === 1 : false;
      } else subsamplingY = false;
    }
    if (subsamplingX && subsamplingY) chromaSamplePosition = b.u(2);
  }
  if (b.broken) return "a sequence header OBU that ends before its colour configuration";
  return {
    profile,
    level,
    tier,
    highBitdepth,
    twelveBit,
    monochrome,
    subsamplingX,
    subsamplingY,
    chromaSamplePosition,
    width,
    height,
    hdrWcg: hdrWcgOf(described, primaries, transfer),
  };
};

/** The AV1CodecConfigurationRecord (AV1 in ISOBMFF §2.3.3) of `info`, its configOBUs the sequence header. */
export const av1CodecConfiguration = (info: Av1SequenceInfo, sequenceHeader: Uint8Array): Uint8Array => {
  const record = new Uint8Array(4 + sequenceHeader.length);
  record[0] = 0x81; // marker, version 1
  record[1] = (info.profile << 5) | info.level;
  record[2] =
    (info.tier << 7) |
    (info.highBitdepth ? 0x40 : 0) |
    (info.twelveBit ? 0x20 : 0) |
    (info.monochrome ? 0x10 : 0) |
    (info.subsamplingX ? 0x08 : 0) |
    (info.subsamplingY ? 0x04 : 0) |
    info.chromaSamplePosition;
  record[3] = 0; // no initial_presentation_delay
  record.set(sequenceHeader, 4);
  return record;
};
