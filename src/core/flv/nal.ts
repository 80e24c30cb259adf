/**
 * Annex B video: NAL units behind 00 00 01 (or 00 00 00 01) start codes, as H.264 and HEVC come in MPEG-TS.
 * An access unit's units are found once (`NalUnits`), when the demuxer tells whether it holds a keyframe
 * (es.ts); the parameter sets and the tag body (tags.ts) read them again without searching.
 *
 *   const nals = new NalUnits().scan(accessUnit)
 *   for (let i = 0; i < nals.count; i++) nalType("h264", accessUnit, nals.start(i))
 */

export type VideoCodec = "h264" | "hevc";

const START_CODE = Uint8Array.of(0, 0, 1);

/**
 * Where the first start code at or after `from` begins, or -1. Buffer's indexOf searches natively (memchr for
 * the first byte): about four times as fast as a loop in JS over a frame of tens of kilobytes.
 */
export const startCodeAt = (data: Uint8Array, from: number): number =>
  Buffer.prototype.indexOf.call(data, START_CODE, from);

/**
 * The NAL units of one access unit: each ends before the next start code and the zeros leading it. Empty
 * ones (a start code right after another) are left out: nothing reads them. Reused frame after frame: the
 * bounds are valid until the next `scan`.
 */
export class NalUnits {
  count = 0;
  /** The start and end of each unit, in pairs. */
  private bounds = new Int32Array(64);

  scan(data: Uint8Array): this {
    this.count = 0;
    let code = startCodeAt(data, 0);
    while (code >= 0) {
      const start = code + 3;
      code = startCodeAt(data, start);
      let end = code < 0 ? data.length : code;
      while (end > start && data[end - 1] === 0) end--;
      if (end > start) this.add(start, end);
    }
    return this;
  }

  start(i: number): number {
    return this.bounds[2 * i] ?? 0;
  }

  end(i: number): number {
    return this.bounds[2 * i + 1] ?? 0;
  }

  private add(start: number, end: number): void {
    if (2 * this.count + 2 > this.bounds.length) {
      const grown = new Int32Array(this.bounds.length * 2);
      grown.set(this.bounds);
      this.bounds = grown;
    }
    this.bounds[2 * this.count] = start;
    this.bounds[2 * this.count + 1] = end;
    this.count++;
  }
}

/** The NAL unit at `start` has its forbidden_zero_bit set: a decoder skips it (a bit error, most likely). */
export const forbidden = (data: Uint8Array, start: number): boolean => ((data[start] ?? 0) & 0x80) !== 0;

export const nalType = (codec: VideoCodec, data: Uint8Array, start: number): number =>
  codec === "h264" ? (data[start] ?? 0) & 0x1f : ((data[start] ?? 0) >> 1) & 0x3f;

export const H264_NAL = { idr: 5, sps: 7, pps: 8, aud: 9 } as const;
export const HEVC_NAL = { vps: 32, sps: 33, pps: 34, aud: 35 } as const;
