/**
 * The key-frame watcher's copy of an H.264 stream, told that its pictures need no reordering.
 *
 * A decoder hands a picture out only once it holds as many later ones as the SPS says the stream reorders
 * (`max_num_reorder_frames`, two for B-frame pyramids). Decoding key frames only, those later pictures are the
 * next key frames: a black key frame reached blackdetect two GOPs after it arrived (4 s with a 2 s GOP, over a
 * 3 s `for_ms`). The key frames alone are never reordered, so the watcher's copy says 0: each SPS found whole
 * in the first TS packet of a video PES is rewritten in place, the same length (it can only get shorter: the
 * bytes it frees become trailing zero bytes, which Annex B allows between NAL units). The stream forwarded to
 * the outputs is never touched; the watcher is handed a copy (effects/ingest/input-health.ts). An SPS that
 * cannot be read, already says 0, has no bitstream restriction, or would grow is left as it is. While ffmpeg
 * probes the stream, the copy carries no B-picture (below).
 */
import { readAvcSps } from "../flv/avc-sps.ts";
import { BitReader, isUnusable } from "../flv/rbsp.ts";
import { ccAt, PACKET, payloadOffset, pidAt, SYNC, setCcAt, unitStartAt } from "../ts/index.ts";

const bitAt = (bytes: Uint8Array, bit: number): number => ((bytes[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1;

/** The RBSP with emulation prevention bytes put back (7.4.1). */
const withEmulationPrevention = (rbsp: Uint8Array): Uint8Array => {
  const out: number[] = [];
  let zeros = 0;
  for (const byte of rbsp) {
    if (zeros >= 2 && byte <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(byte);
    zeros = byte === 0 ? zeros + 1 : 0;
  }
  return Uint8Array.from(out);
};

/**
 * The SPS NAL unit (its header byte first, emulation prevention in) saying max_num_reorder_frames 0, or null
 * when it needs no change or cannot take one.
 */
export const spsWithoutReorder = (nal: Uint8Array): Uint8Array | null => {
  const sps = readAvcSps(nal);
  if (isUnusable(sps)) return null;
  const field = sps.vui?.reorderBits ?? null;
  // A one-bit ue(v) is 0 already.
  if (field === null || field.end - field.at === 1) return null;
  const rbsp = new BitReader(nal).rbsp;
  let stop = rbsp.length * 8 - 1;
  while (stop >= 0 && bitAt(rbsp, stop) === 0) stop--;
  if (stop < field.end) return null;
  const bits = [
    ...Array.from({ length: field.at }, (_, i) => bitAt(rbsp, i)),
    1,
    ...Array.from({ length: stop + 1 - field.end }, (_, i) => bitAt(rbsp, field.end + i)),
  ];
  const out = new Uint8Array(Math.ceil(bits.length / 8));
  bits.forEach((bit, i) => {
    if (bit === 1) out[i >> 3] = (out[i >> 3] ?? 0) | (0x80 >> (i & 7));
  });
  const escaped = withEmulationPrevention(out);
  return escaped.length <= nal.length ? escaped : null;
};

/** Where the NAL unit starting at `from` ends (the next start code or zero byte run), or -1 before `end`. */
const nalEnd = (bytes: Uint8Array, from: number, end: number): number => {
  for (let at = from; at + 2 < end; at++)
    if (bytes[at] === 0 && bytes[at + 1] === 0 && (bytes[at + 2] ?? 2) <= 1) return at;
  return -1;
};

/**
 * The first packet of an H.264 video PES at `at`: whether it carries an SPS (rewritten in place, as above)
 * and whether its picture is a B-picture (its first slice's slice_type, when that slice starts in this
 * packet); null when it is no video PES or its NAL units are not H.264's.
 */
const pesStart = (chunk: Uint8Array, at: number): { sps: boolean; b: boolean } | null => {
  const end = at + PACKET;
  const pes = at + payloadOffset(chunk, at);
  // A video PES: 00 00 01 E0–EF, then its header.
  if (pes + 9 > end || chunk[pes] !== 0 || chunk[pes + 1] !== 0 || chunk[pes + 2] !== 1) return null;
  if (((chunk[pes + 3] ?? 0) & 0xf0) !== 0xe0) return null;
  let sps = false;
  for (let i = pes + 9 + (chunk[pes + 8] ?? 0); i + 3 < end; i++) {
    if (chunk[i] !== 0 || chunk[i + 1] !== 0 || chunk[i + 2] !== 1) continue;
    const header = chunk[i + 3] ?? 0x80;
    if ((header & 0x80) !== 0) return null;
    const type = header & 0x1f;
    // A slice: the parameter sets come before it. first_mb_in_slice, then slice_type (B: 1 or 6).
    if (type === 1) {
      const slice = new BitReader(chunk.subarray(i + 4, Math.min(end, i + 16)));
      slice.ue();
      const sliceType = slice.ue();
      return { sps, b: !slice.broken && sliceType % 5 === 1 };
    }
    if (type === 5) break;
    if (type !== 7) continue;
    sps = true;
    const stop = nalEnd(chunk, i + 4, end);
    if (stop === -1) break;
    const nal = chunk.subarray(i + 3, stop);
    const shorter = spsWithoutReorder(nal);
    if (shorter !== null) {
      nal.fill(0);
      nal.set(shorter);
    }
  }
  return { sps, b: false };
};

interface VideoPid {
  /** Whether the PES being read is passed on. */
  keep: boolean;
  /** Packets with payload dropped so far: each later packet's continuity counter is moved back by as many. */
  dropped: number;
}

/**
 * The watcher's copy of a stream for key-frame decoding, one per ffmpeg run: `copy` rewrites each H.264
 * SPS (above) and, while `probing`, leaves out the B-pictures' PES of an H.264 video PID (the continuity
 * counters kept continuous). ffmpeg takes the decoder's delay from what its probe saw: one B-picture there,
 * and the decoder holds each picture until the next one it decodes, a GOP later in key-frame mode. After the
 * probe every packet goes through (the copy output's progress needs them); the decoder skips what is not a
 * key frame.
 */
export const makeKeyFrameCopy = () => {
  const video = new Map<number, VideoPid>();
  return {
    /** The chunk's whole TS packets as the watcher's ffmpeg gets them: in place, shorter when some drop. */
    copy: (chunk: Uint8Array, probing: boolean): Uint8Array => {
      let out = 0;
      for (let at = 0; at + PACKET <= chunk.length; at += PACKET) {
        let keep = true;
        if (chunk[at] === SYNC) {
          const pid = pidAt(chunk, at);
          if (unitStartAt(chunk, at)) {
            const start = pesStart(chunk, at);
            if (start !== null && (start.sps || video.has(pid))) {
              const entry = video.get(pid) ?? { keep: true, dropped: 0 };
              entry.keep = !probing || !start.b;
              video.set(pid, entry);
            }
          }
          const entry = video.get(pid);
          if (entry !== undefined) {
            const payload = payloadOffset(chunk, at) < PACKET;
            keep = entry.keep;
            if (!keep && payload) entry.dropped += 1;
            if (keep && entry.dropped % 16 !== 0) {
              setCcAt(chunk, at, ccAt(chunk, at) - (entry.dropped % 16));
            }
          }
        }
        if (!keep) continue;
        if (out !== at) chunk.copyWithin(out, at, at + PACKET);
        out += PACKET;
      }
      // Bytes after the last whole packet go on as they are.
      const whole = chunk.length - (chunk.length % PACKET);
      if (out !== whole) chunk.copyWithin(out, whole);
      out += chunk.length - whole;
      return out === chunk.length ? chunk : chunk.subarray(0, out);
    },
  };
};
