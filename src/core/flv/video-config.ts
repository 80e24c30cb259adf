/**
 * FLV video sequence headers read for the FLV → TS muxer (ts-mux.ts): an AVCDecoderConfigurationRecord or
 * HEVCDecoderConfigurationRecord's NAL length size and parameter sets in Annex B, and the access unit
 * delimiters put before each frame.
 */

/** What the muxer carries. `av1` is known by name only: it is counted as dropped. */
export type FlvVideoCodec = "h264" | "hevc";

export interface VideoConfig {
  readonly codec: FlvVideoCodec;
  readonly lengthSize: number;
  /** Parameter sets in Annex B, put before every keyframe. */
  readonly sets: Uint8Array;
}

const startCode = Uint8Array.of(0, 0, 0, 1);

/** Annex B of the NAL units `nals`, each behind a 4-byte start code. */
export const annexB = (nals: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(nals.reduce((n, nal) => n + 4 + nal.length, 0));
  let at = 0;
  for (const nal of nals) {
    out.set(startCode, at);
    out.set(nal, at + 4);
    at += 4 + nal.length;
  }
  return out;
};

/** An AVCDecoderConfigurationRecord's NAL length size and SPS/PPS. */
export const readAvcC = (record: Uint8Array): VideoConfig | null => {
  if (record.length < 7 || record[0] !== 1) return null;
  const nals: Uint8Array[] = [];
  let at = 5;
  for (const mask of [0x1f, 0xff]) {
    const count = (record[at] ?? 0) & mask;
    at++;
    for (let i = 0; i < count; i++) {
      const length = ((record[at] ?? 0) << 8) | (record[at + 1] ?? 0);
      if (at + 2 + length > record.length) return null;
      nals.push(record.subarray(at + 2, at + 2 + length));
      at += 2 + length;
    }
  }
  return { codec: "h264", lengthSize: ((record[4] ?? 0) & 3) + 1, sets: annexB(nals) };
};

/** An HEVCDecoderConfigurationRecord's NAL length size and VPS/SPS/PPS (and any SEI arrays). */
export const readHvcC = (record: Uint8Array): VideoConfig | null => {
  if (record.length < 23) return null;
  const nals: Uint8Array[] = [];
  const arrays = record[22] ?? 0;
  let at = 23;
  for (let a = 0; a < arrays; a++) {
    if (at + 3 > record.length) return null;
    const count = ((record[at + 1] ?? 0) << 8) | (record[at + 2] ?? 0);
    at += 3;
    for (let i = 0; i < count; i++) {
      const length = ((record[at] ?? 0) << 8) | (record[at + 1] ?? 0);
      if (at + 2 + length > record.length) return null;
      nals.push(record.subarray(at + 2, at + 2 + length));
      at += 2 + length;
    }
  }
  return { codec: "hevc", lengthSize: ((record[21] ?? 0) & 3) + 1, sets: annexB(nals) };
};

/** The access unit delimiter that starts each frame, in Annex B. */
export const AUD = {
  h264: Uint8Array.of(0, 0, 0, 1, 0x09, 0xf0),
  hevc: Uint8Array.of(0, 0, 0, 1, 0x46, 0x01, 0x50),
};
