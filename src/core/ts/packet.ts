/**
 * The MPEG-TS packet (ISO/IEC 13818-1 §2.4.3): its size, its 4-byte header and its adaptation field, read and
 * written where the packet lies (`bytes[at]`), so that per-packet loops make no view of each packet. Every
 * host-side module reads packets through these; the AssemblyScript core (src/core/assembly/) has its own.
 */

export const PACKET = 188;
export const SYNC = 0x47;
/** Payload bytes of a packet without an adaptation field. */
export const PAYLOAD = PACKET - 4;
/** Seven packets: what one UDP datagram carries. */
export const DATAGRAM = 7 * PACKET;
export const NULL_PID = 0x1fff;
/** PIDs are 13 bits: per-PID tables have this many entries. */
export const PID_COUNT = 8192;

/** The PID of the packet at `bytes[at]`. */
export const pidAt = (bytes: Uint8Array, at = 0): number =>
  (((bytes[at + 1] ?? 0) & 0x1f) << 8) | (bytes[at + 2] ?? 0);

/** payload_unit_start_indicator: a PES or a section starts in this packet. */
export const unitStartAt = (bytes: Uint8Array, at = 0): boolean => ((bytes[at + 1] ?? 0) & 0x40) !== 0;

/** The continuity counter of the packet at `bytes[at]`. */
export const ccAt = (bytes: Uint8Array, at = 0): number => (bytes[at + 3] ?? 0) & 0x0f;

/** Sets the continuity counter of the packet at `bytes[at]`. */
export const setCcAt = (bytes: Uint8Array, at: number, cc: number): void => {
  bytes[at + 3] = ((bytes[at + 3] ?? 0) & 0xf0) | (cc & 0x0f);
};

/** adaptation_field_control says the packet at `bytes[at]` carries a payload. */
export const hasPayloadAt = (bytes: Uint8Array, at = 0): boolean => ((bytes[at + 3] ?? 0) & 0x10) !== 0;

/** adaptation_field_control says the packet at `bytes[at]` has an adaptation field. */
export const hasAdaptationAt = (bytes: Uint8Array, at = 0): boolean => ((bytes[at + 3] ?? 0) & 0x20) !== 0;

/** transport_error_indicator: the packet at `bytes[at]` is known to be damaged. */
export const transportErrorAt = (bytes: Uint8Array, at = 0): boolean => ((bytes[at + 1] ?? 0) & 0x80) !== 0;

/** The continuity counter that follows `cc` on its PID: the next packet with a payload carries it. */
export const nextCc = (cc: number): number => (cc + 1) & 0x0f;

/** The continuity counter before `cc`: the last one sent when `cc` is the next, as a packet without payload repeats it. */
export const previousCc = (cc: number): number => (cc + 15) & 0x0f;

/**
 * Where the payload starts in the packet at `bytes[at]`, counted from the packet's first byte (after the header
 * and any adaptation field); PACKET when it has none.
 */
export const payloadOffset = (bytes: Uint8Array, at = 0): number => {
  const control = ((bytes[at + 3] ?? 0) >> 4) & 0x3;
  if ((control & 0x1) === 0) return PACKET;
  return control === 0x3 ? 5 + (bytes[at + 4] ?? 0) : 4;
};

/** Whether the packet's adaptation field sets random_access_indicator. */
export const randomAccessIndicator = (packet: Uint8Array): boolean =>
  ((packet[3] ?? 0) & 0x20) !== 0 && (packet[4] ?? 0) > 0 && ((packet[5] ?? 0) & 0x40) !== 0;

/** Whether the packet's adaptation field sets discontinuity_indicator. */
export const signalsDiscontinuity = (packet: Uint8Array): boolean =>
  ((packet[3] ?? 0) & 0x20) !== 0 && (packet[4] ?? 0) > 0 && ((packet[5] ?? 0) & 0x80) !== 0;

/** PCR values wrap at 2^33 × 300 (27 MHz). */
export const PCR_WRAP = 2 ** 33 * 300;

/** The PCR the adaptation field of the packet at `packet[at]` carries (27 MHz), or -1. */
export const pcrOf = (packet: Uint8Array, at = 0): number => {
  const control = ((packet[at + 3] ?? 0) >> 4) & 0x3;
  if ((control & 0x2) === 0 || (packet[at + 4] ?? 0) < 7 || ((packet[at + 5] ?? 0) & 0x10) === 0) return -1;
  const extension = (((packet[at + 10] ?? 0) & 0x01) << 8) | (packet[at + 11] ?? 0);
  return pcrBaseAt(packet, at + 6) * 300 + extension;
};

/** The 33-bit PCR base (90 kHz) of the PCR field at `bytes[at]`. */
export const pcrBaseAt = (bytes: Uint8Array, at: number): number =>
  (bytes[at] ?? 0) * 2 ** 25 +
  ((bytes[at + 1] ?? 0) << 17) +
  ((bytes[at + 2] ?? 0) << 9) +
  ((bytes[at + 3] ?? 0) << 1) +
  ((bytes[at + 4] ?? 0) >> 7);

/** The 6-byte PCR field (base, 6 reserved bits set, extension) at `at`. */
export const writePcr = (out: Uint8Array, at: number, pcr: number): void => {
  const base = Math.floor(pcr / 300);
  const extension = pcr - base * 300;
  const high = Math.floor(base / 2 ** 25);
  const low = base - high * 2 ** 25;
  out[at] = high & 0xff;
  out[at + 1] = (low >>> 17) & 0xff;
  out[at + 2] = (low >>> 9) & 0xff;
  out[at + 3] = (low >>> 1) & 0xff;
  out[at + 4] = ((low & 1) << 7) | 0x7e | ((extension >> 8) & 0x01);
  out[at + 5] = extension & 0xff;
};

/** Writes an adaptation-only packet at `out[at]`: discontinuity_indicator as asked, a PCR if `pcr` ≥ 0. */
export const writeAdaptationOnly = (
  out: Uint8Array,
  at: number,
  pid: number,
  cc: number,
  discontinuity: boolean,
  pcr: number,
): void => {
  out.fill(0xff, at, at + PACKET);
  out[at] = SYNC;
  out[at + 1] = (pid >> 8) & 0x1f;
  out[at + 2] = pid & 0xff;
  out[at + 3] = 0x20 | (cc & 0x0f);
  out[at + 4] = PACKET - 5;
  out[at + 5] = (discontinuity ? 0x80 : 0) | (pcr >= 0 ? 0x10 : 0);
  if (pcr >= 0) writePcr(out, at + 6, pcr);
};

/** Whether `a` and `b` hold the same bytes. */
export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};
