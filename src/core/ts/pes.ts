import { payloadOffset } from "./packet.ts";

/**
 * PES headers (ISO/IEC 13818-1 §2.4.3.6) as far as the host reads and writes them: the 33-bit PTS/DTS fields
 * (90 kHz), and the PTS of a PES header.
 */

/** PTS and DTS tick at 90 kHz. */
export const PTS_HZ = 90_000;

/** PTS and DTS values wrap at 2^33 (90 kHz). */
export const PTS_WRAP = 2 ** 33;

/** A 33-bit PTS/DTS field at `at` (marker bits not checked). */
export const readTimestamp = (bytes: Uint8Array, at: number): number =>
  (((bytes[at] ?? 0) >> 1) & 0x07) * 2 ** 30 +
  ((bytes[at + 1] ?? 0) << 22) +
  (((bytes[at + 2] ?? 0) >> 1) << 15) +
  ((bytes[at + 3] ?? 0) << 7) +
  ((bytes[at + 4] ?? 0) >> 1);

/** Writes a PTS/DTS field at `at`, keeping its 4-bit prefix and setting the marker bits. */
export const writeTimestamp = (out: Uint8Array, at: number, value: number): void => {
  const high = Math.floor(value / 2 ** 30);
  const low = value - high * 2 ** 30;
  out[at] = ((out[at] ?? 0) & 0xf0) | ((high & 0x07) << 1) | 1;
  out[at + 1] = (low >>> 22) & 0xff;
  out[at + 2] = ((low >>> 14) & 0xfe) | 1;
  out[at + 3] = (low >>> 7) & 0xff;
  out[at + 4] = ((low << 1) & 0xfe) | 1;
};

/** The PTS of the PES that `packet` starts (its payload's first bytes), or -1. */
export const packetPts = (packet: Uint8Array): number => ptsAt(packet, payloadOffset(packet));

/**
 * The PTS of the PES header at `bytes[at]`, or -1: no start code prefix, no PTS, or the header does not fit
 * in `bytes` (a PES header that starts in a packet must hold its PTS there).
 */
export const ptsAt = (bytes: Uint8Array, at: number): number => {
  if (at + 14 > bytes.length || bytes[at] !== 0 || bytes[at + 1] !== 0 || bytes[at + 2] !== 1) return -1;
  if (((bytes[at + 7] ?? 0) & 0x80) === 0) return -1;
  return readTimestamp(bytes, at + 9);
};
