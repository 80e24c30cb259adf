/**
 * PSI sections (ISO/IEC 13818-1 §2.4.4): where one starts in a packet, its length, its CRC_32, the long-form
 * header, reassembly from packets, and writing one out as packets. PAT and PMT in particular are psi.ts.
 */
import { crc32Mpeg2 } from "./crc32.ts";
import { nextCc, PACKET, PAYLOAD, payloadOffset, SYNC } from "./packet.ts";

/** A section is at most 3 + 4095 bytes (12-bit section_length). */
export const MAX_SECTION = 3 + 0x0fff;
/** PAT and PMT sections: section_length at most 1021. */
export const MAX_PSI_SECTION_LENGTH = 1021;

/** A 16-bit big-endian field at `at`. */
export const u16 = (bytes: Uint8Array, at: number): number => ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);

/** A 13-bit PID field at `at` (the 3 reserved bits above it masked off). */
export const pid13 = (bytes: Uint8Array, at: number): number => u16(bytes, at) & 0x1fff;

/** Writes a 13-bit PID at `at`, keeping the 3 reserved bits above it. */
export const writePid = (bytes: Uint8Array, at: number, pid: number): void => {
  bytes[at] = ((bytes[at] ?? 0xe0) & 0xe0) | (pid >> 8);
  bytes[at + 1] = pid & 0xff;
};

/** section_length: the bytes after it, CRC included. */
export const sectionLength = (section: Uint8Array) => (((section[1] ?? 0) & 0x0f) << 8) | (section[2] ?? 0);

/**
 * The section that starts in the payload of the packet at `bytes[at]` (after its pointer_field), as far as
 * that packet holds it: a view.
 */
export const sectionOf = (bytes: Uint8Array, at = 0): Uint8Array | null => {
  const start = payloadOffset(bytes, at);
  if (start >= PACKET) return null;
  const section = start + 1 + (bytes[at + start] ?? 0);
  return section < PACKET ? bytes.subarray(at + section, at + PACKET) : null;
};

/** A long-form section of `tableId`, single (section 0 of 0), whose length fields agree and whose CRC verifies. */
export const sectionOk = (section: Uint8Array, tableId: number): boolean =>
  section.length >= 12 &&
  section[0] === tableId &&
  ((section[1] ?? 0) & 0x80) !== 0 &&
  3 + sectionLength(section) === section.length &&
  section[6] === 0 &&
  section[7] === 0 &&
  crc32Mpeg2(section) === 0;

/** Sets section_length to the section's size. */
export const fitLength = (section: Uint8Array): Uint8Array => {
  const length = section.length - 3;
  section[1] = ((section[1] ?? 0xb0) & 0xf0) | (length >> 8);
  section[2] = length & 0xff;
  return section;
};

/** Writes the CRC_32 of `section[0, end)` at `end`. */
export const writeCrc = (section: Uint8Array, end: number = section.length - 4): void => {
  const crc = crc32Mpeg2(section, 0, end);
  section[end] = crc >>> 24;
  section[end + 1] = (crc >>> 16) & 0xff;
  section[end + 2] = (crc >>> 8) & 0xff;
  section[end + 3] = crc & 0xff;
};

/** Sets the version number, and the CRC_32 over the rest. */
export const sealSection = (section: Uint8Array, version: number): void => {
  section[5] = ((section[5] ?? 0xc1) & 0xc1) | ((version & 0x1f) << 1);
  writeCrc(section);
};

/** The hash a rewritten section's version number comes from: every byte but the version bits and the CRC. */
export const contentHash = (section: Uint8Array): number => {
  let hash = 0x811c9dc5;
  for (let i = 0; i < section.length - 4; i++) {
    const byte = i === 5 ? (section[i] ?? 0) & 0xc1 : (section[i] ?? 0);
    hash = Math.imul(hash ^ byte, 0x01000193);
  }
  return hash >>> 0;
};

/** Whether two sections differ in more than their version bits and CRC. */
export const sameContent = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length - 4; i++) {
    if (i === 5 ? ((a[i] ?? 0) & 0xc1) !== ((b[i] ?? 0) & 0xc1) : a[i] !== b[i]) return false;
  }
  return true;
};

/**
 * A long-form section, current, section 0 of 0: the header, `body`, the CRC; `extension` (table_id_extension)
 * is the transport_stream_id or the programme.
 */
export const longSection = (tableId: number, extension: number, version: number, body: Uint8Array) => {
  const out = new Uint8Array(3 + 5 + body.length + 4);
  out[0] = tableId;
  out[1] = 0xb0;
  out[3] = (extension >> 8) & 0xff;
  out[4] = extension & 0xff;
  out[5] = 0xc1;
  out.set(body, 8);
  fitLength(out);
  sealSection(out, version);
  return out;
};

/** How many packets `section` takes: pointer_field 0 in the first, then 184 bytes a packet. */
export const sectionPacketCount = (section: Uint8Array): number =>
  Math.max(1, Math.ceil((section.length + 1) / PAYLOAD));

/**
 * Writes `section` as packets on `pid` at `target[at]` (pointer_field 0, 0xff stuffing), each packet's
 * continuity counter from `nextCc`; answers the bytes written.
 */
export const writeSectionPackets = (
  target: Uint8Array,
  at: number,
  section: Uint8Array,
  pid: number,
  nextCc: () => number,
): number => {
  const count = sectionPacketCount(section);
  target.fill(0xff, at, at + count * PACKET);
  let from = 0;
  for (let i = 0; i < count; i++) {
    const p = at + i * PACKET;
    target[p] = SYNC;
    target[p + 1] = (i === 0 ? 0x40 : 0) | ((pid >> 8) & 0x1f);
    target[p + 2] = pid & 0xff;
    target[p + 3] = 0x10 | (nextCc() & 0x0f);
    let offset = p + 4;
    if (i === 0) target[offset++] = 0;
    const part = section.subarray(from, from + (p + PACKET - offset));
    target.set(part, offset);
    from += part.length;
  }
  return count * PACKET;
};

/** `section` as packets on `pid` in one run, their continuity counters counting from `firstCc`. */
export const sectionPackets = (section: Uint8Array, pid: number, firstCc = 0): Uint8Array => {
  const run = new Uint8Array(sectionPacketCount(section) * PACKET);
  let cc = firstCc;
  writeSectionPackets(run, 0, section, pid, () => cc++);
  return run;
};

/**
 * PSI sections reassembled on one PID (§2.4.4), each handed over whole with its CRC right; at most `max`
 * bytes a section (a longer one, or one shorter than a long-form header, is skipped). Fed packet by packet
 * with where each one's payload starts.
 */
export class SectionReader {
  private readonly buf: Uint8Array;
  private readonly onSection: (section: Uint8Array) => void;
  private length = 0;
  private collecting = false;
  private cc = -1;
  constructor(onSection: (section: Uint8Array) => void, max: number = MAX_SECTION) {
    this.onSection = onSection;
    this.buf = new Uint8Array(max);
  }

  reset(): void {
    this.length = 0;
    this.collecting = false;
    this.cc = -1;
  }

  /** The packet `p` (its view), whose payload starts at `at`, with its unit start flag and CC. */
  packet(p: Uint8Array, at: number, pusi: boolean, cc: number): void {
    // A packet out of sequence ends the section being collected. (One with the same CC is read again, not
    // dropped as a duplicate: a true duplicate only hands over the same section again.)
    if (this.cc >= 0 && cc !== nextCc(this.cc)) this.collecting = false;
    this.cc = cc;
    if (at >= p.length) return;
    if (!pusi) {
      if (this.collecting) this.append(p, at, p.length);
      return;
    }
    let from = Math.min(p.length, at + 1 + (p[at] ?? 0)); // pointer_field
    if (this.collecting) this.append(p, at + 1, from);
    // Sections that start in this packet: until stuffing, or one that goes on in the next packet.
    while (from + 3 <= p.length && p[from] !== 0xff) {
      this.length = 0;
      this.collecting = true;
      const used = this.append(p, from, p.length);
      if (this.collecting || used === 0) return;
      from += used;
    }
    this.collecting = false;
  }

  /** Appends bytes up to the section's end; hands a whole one over. Answers the bytes it took. */
  private append(p: Uint8Array, from: number, to: number): number {
    const before = this.length;
    const n = Math.min(this.buf.length - this.length, to - from);
    if (n <= 0) {
      this.collecting = false;
      return 0;
    }
    this.buf.set(p.subarray(from, from + n), this.length);
    this.length += n;
    if (this.length < 3) return n;
    const total = 3 + sectionLength(this.buf);
    if (total > this.buf.length || total < 12) {
      this.collecting = false;
      return 0;
    }
    if (this.length < total) return n;
    this.collecting = false;
    const section = this.buf.subarray(0, total);
    if (crc32Mpeg2(section) === 0) this.onSection(section);
    return total - before;
  }
}
