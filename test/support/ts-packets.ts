/**
 * A test's own reading of the 188-byte packets a receiver got: a packet's PID, its adaptation field's flags
 * (discontinuity, random access), whether it carries a payload, where a given packet is in a capture, and where
 * a capture's first long silence ended (a slate's first datagram).
 */

const PACKET = 188;

export const pidAt = (ts: Uint8Array, at: number) => (((ts[at + 1] ?? 0) & 0x1f) << 8) | (ts[at + 2] ?? 0);

/** Whether the packet at `at` has an adaptation field of at least one byte (its flags). */
export const adaptation = (ts: Uint8Array, at: number) =>
  (((ts[at + 3] ?? 0) >> 4) & 2) !== 0 && (ts[at + 4] ?? 0) > 0;

export const discontinuity = (ts: Uint8Array, at: number) =>
  adaptation(ts, at) && ((ts[at + 5] ?? 0) & 0x80) !== 0;

/** The random_access_indicator: a keyframe's first packet, as ffmpeg's muxer flags it. */
export const randomAccess = (ts: Uint8Array, at: number) =>
  adaptation(ts, at) && ((ts[at + 5] ?? 0) & 0x40) !== 0;

export const hasPayload = (ts: Uint8Array, at: number) => (((ts[at + 3] ?? 0) >> 4) & 1) !== 0;

/** Byte offset in `ts` of the first packet equal to `packet`. */
export const find = (ts: Buffer, packet: Uint8Array, from = 0) => {
  for (let at = from; at + PACKET <= ts.length; at += PACKET) {
    if (ts.subarray(at, at + PACKET).equals(packet)) return at;
  }
  return -1;
};

/** Where the first silence of over `overMs` (half a second unless told) ended: the index of the first slate datagram. */
export const slateStart = (arrivals: ReadonlyArray<number>, overMs = 500) =>
  arrivals.findIndex((at, i) => i > 0 && at - (arrivals[i - 1] ?? 0) > overMs);
