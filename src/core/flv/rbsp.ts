/**
 * Reading parameter sets: an RBSP bit reader (emulation prevention removed, Exp-Golomb codes), the start of a
 * VUI, and the checks that tell, in words, why a parameter set cannot be used.
 */
/** Why a parameter set cannot be used, in words: the keyframe carrying it is dropped, not built into a header. */
export interface Unusable {
  readonly unusable: string;
}

export const isUnusable = (value: object): value is Unusable => "unusable" in value;

/**
 * An RBSP reader: emulation prevention bytes removed, then bits and Exp-Golomb codes. Reading past the end or
 * an Exp-Golomb code with more than 31 leading zeros (no field of a parameter set is that large) sets
 * `broken` and reads 0 from then on, so a corrupt set is read to its end in bounded time and then refused.
 */
export class BitReader {
  private readonly bytes: Uint8Array;
  private bit = 0;
  broken = false;
  constructor(nal: Uint8Array) {
    const out = new Uint8Array(nal.length);
    let n = 0;
    let zeros = 0;
    for (const byte of nal) {
      if (zeros >= 2 && byte === 3) {
        zeros = 0;
        continue;
      }
      zeros = byte === 0 ? zeros + 1 : 0;
      out[n++] = byte;
    }
    this.bytes = out.subarray(0, n);
  }
  u(n: number): number {
    if (this.broken || this.bit + n > this.bytes.length * 8) {
      this.broken = true;
      return 0;
    }
    let value = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.bytes[this.bit >> 3] ?? 0;
      value = value * 2 + ((byte >> (7 - (this.bit & 7))) & 1);
      this.bit++;
    }
    return value;
  }
  ue(): number {
    let zeros = 0;
    while (this.u(1) === 0) {
      if (this.broken || ++zeros > 31) {
        this.broken = true;
        return 0;
      }
    }
    return 2 ** zeros - 1 + this.u(zeros);
  }
  /** A signed Exp-Golomb code: 1, −1, 2, −2, … */
  se(): number {
    const k = this.ue();
    return k % 2 === 1 ? (k + 1) / 2 : -k / 2;
  }
  /** How many bits of the RBSP have been read. */
  get position(): number {
    return this.bit;
  }
  /** The RBSP itself: the NAL unit without its emulation prevention bytes. */
  get rbsp(): Uint8Array {
    return this.bytes;
  }
  slice(byteAt: number, length: number): Uint8Array {
    return this.bytes.subarray(byteAt, byteAt + length);
  }
  /**
   * Whether what is left is rbsp_trailing_bits: a 1, then 0s to the end (a set read to its last field ends
   * exactly there; a corrupt one seldom does).
   */
  trailing(): boolean {
    if (this.broken || this.u(1) !== 1) return false;
    for (let at = this.bit; at < this.bytes.length * 8; at++) {
      if ((((this.bytes[at >> 3] ?? 0) >> (7 - (at & 7))) & 1) !== 0) return false;
    }
    return true;
  }
}

/** The largest picture side a parameter set may declare: 16384 (beyond every level of H.264 and HEVC). */
/**
 * The start of vui_parameters, the same in H.264 (E.1.1) and HEVC (E.2.1), read past: aspect ratio, overscan,
 * video signal type, chroma sample location.
 */
export const skipVuiStart = (r: BitReader): void => {
  if (r.u(1) === 1 && r.u(8) === 255) r.u(32); // aspect_ratio_idc, Extended_SAR
  if (r.u(1) === 1) r.u(1); // overscan
  if (r.u(1) === 1) {
    r.u(4); // video_format, video_full_range_flag
    if (r.u(1) === 1) r.u(24); // colour description
  }
  if (r.u(1) === 1) {
    r.ue(); // chroma_sample_loc_type_top_field
    r.ue();
  }
};

export const MAX_PICTURE_SIDE = 16_384;

/** Why a parameter set's NAL unit is no parameter set at all (too short, forbidden bit set), or null. */
export const nalHeaderProblem = (nal: Uint8Array, minimum: number, what: string): string | null => {
  if (nal.length < minimum) return `a ${what} of ${nal.length} bytes, too short to be one`;
  if (((nal[0] ?? 0) & 0x80) !== 0) return `a ${what} whose forbidden_zero_bit is set`;
  return null;
};

/** Why an H.264 PPS (7.3.2.2) cannot be used, or null: its ids must be there and in range. */
export const avcPpsProblem = (pps: Uint8Array): string | null => {
  const header = nalHeaderProblem(pps, 2, "PPS");
  if (header !== null) return header;
  const r = new BitReader(pps);
  r.u(8);
  const id = r.ue();
  const spsId = r.ue();
  if (r.broken) return "a PPS that ends before its ids";
  if (id > 255 || spsId > 31)
    return `a PPS with ids out of range (pic_parameter_set_id ${id}, seq_parameter_set_id ${spsId})`;
  return null;
};

/** Why an HEVC VPS or PPS cannot be used, or null (HEVC's SPS is read by `readHevcSps`). */
export const hevcSetProblem = (nal: Uint8Array, type: "VPS" | "PPS"): string | null => {
  const header = nalHeaderProblem(nal, type === "VPS" ? 16 : 3, type);
  if (header !== null || type === "VPS") return header;
  const r = new BitReader(nal);
  r.u(16);
  const id = r.ue();
  const spsId = r.ue();
  if (r.broken) return "a PPS that ends before its ids";
  if (id > 63 || spsId > 15)
    return `a PPS with ids out of range (pps_pic_parameter_set_id ${id}, pps_seq_parameter_set_id ${spsId})`;
  return null;
};
