/**
 * PSI sections (ISO/IEC 13818-1 §2.4.4): where one starts in a packet, its length, its CRC_32, the long-form
 * header, reassembly from packets, and writing one out as packets. PAT and PMT in particular are psi.ts.
 */
import { crc32Mpeg2 } from "./crc32.ts";
import { nextCc, PACKET, PAYLOAD, payloadOffset, SYNC, sameBytes } from "./packet.ts";

/** A section is at most 3 + 4095 bytes (12-bit section_length). */
export const MAX_SECTION = 3 + 0x0fff;
/** PAT and PMT sections: section_length at most 1021. */
export const MAX_PSI_SECTION_LENGTH = 1021;
/** A whole PAT or PMT section is at most this long. */
export const MAX_PSI_SECTION = 3 + MAX_PSI_SECTION_LENGTH;
/** An SCTE 35 splice_info_section: section_length at most 4093. */
export const MAX_SCTE35_SECTION = 3 + 4093;

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
 * that packet holds it: a view, for a first look (tests, tools). A reader of tables reassembles them with
 * `SectionReader`: a PAT or PMT may span packets.
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

/**
 * How many packets `section` takes: pointer_field 0 in the first, then 184 bytes a packet; with `discontinuity`
 * the first packet also carries a 2-byte adaptation field.
 */
export const sectionPacketCount = (section: Uint8Array, discontinuity = false): number =>
  Math.max(1, Math.ceil((section.length + 1 + (discontinuity ? 2 : 0)) / PAYLOAD));

/**
 * Writes `section` as packets on `pid` at `target[at]` (pointer_field 0, 0xff stuffing), each packet's
 * continuity counter from `nextCc`; answers the bytes written. With `discontinuity` the first packet carries
 * an adaptation field whose discontinuity_indicator is set (the PID's counters start again there).
 */
export const writeSectionPackets = (
  target: Uint8Array,
  at: number,
  section: Uint8Array,
  pid: number,
  nextCc: () => number,
  discontinuity = false,
): number => {
  const count = sectionPacketCount(section, discontinuity);
  target.fill(0xff, at, at + count * PACKET);
  let from = 0;
  for (let i = 0; i < count; i++) {
    const p = at + i * PACKET;
    target[p] = SYNC;
    target[p + 1] = (i === 0 ? 0x40 : 0) | ((pid >> 8) & 0x1f);
    target[p + 2] = pid & 0xff;
    let offset = p + 4;
    if (i === 0 && discontinuity) {
      target[p + 3] = 0x30 | (nextCc() & 0x0f);
      target[offset++] = 1;
      target[offset++] = 0x80;
    } else target[p + 3] = 0x10 | (nextCc() & 0x0f);
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

/** What a `SectionReader` is told besides its sections. */
export interface SectionReaderOptions {
  /** The longest section it assembles (3 + section_length); a longer one is given up. MAX_SECTION by default. */
  readonly max?: number;
  /**
   * Hands over whole sections whose CRC_32 does not verify too (the callback's `intact` says which): a stage
   * that sends sections on as they came. By default only intact ones (at least 12 bytes, CRC right) are handed.
   */
  readonly keepBadCrc?: boolean;
  /**
   * Told of every byte that is neither a section nor stuffing: a section given up (too long, cut by a
   * continuity break or by a pointer_field that ends it early), a pointer past the packet, bytes before a
   * pointer_field's section or in a packet without one that are not 0xFF.
   */
  readonly onLoss?: () => void;
}

const stuffingOnly = (p: Uint8Array, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) if (p[i] !== 0xff) return false;
  return true;
};

/**
 * PSI sections reassembled on one PID (§2.4.4): the one framing rule of the host. A section starts where a
 * packet's pointer_field says, or right after the section before it in that packet, at any byte but 0xFF
 * (stuffing: the rest of the packet is); it goes on in the next packets of the PID, in continuity order. A
 * packet with a payload and the continuity counter of the one before is a duplicate and not read again; one
 * out of sequence ends the section in progress. Each whole section is handed over as a view, valid during
 * the call.
 */
export class SectionReader {
  private readonly buf: Uint8Array;
  private readonly onSection: (section: Uint8Array, intact: boolean) => void;
  private readonly keepBadCrc: boolean;
  private readonly onLoss: (() => void) | undefined;
  private length = 0;
  private collecting = false;
  private cc = -1;
  private packets = 0;
  private started = 0;
  /** The last packet read, to tell a true duplicate from a same-CC rewrite. */
  private readonly last = new Uint8Array(PACKET);
  constructor(
    onSection: (section: Uint8Array, intact: boolean) => void,
    options: SectionReaderOptions | number = {},
  ) {
    const o = typeof options === "number" ? { max: options } : options;
    this.onSection = onSection;
    this.buf = new Uint8Array(o.max ?? MAX_SECTION);
    this.keepBadCrc = o.keepBadCrc ?? false;
    this.onLoss = o.onLoss;
  }

  /** A section is in progress: its first bytes are read, the rest is to come in the next packets. */
  get inSection(): boolean {
    return this.collecting;
  }

  /** Which packet (counted from 0 by `read` and `packet`) the section in progress, or the one just handed, began in. */
  get sectionStart(): number {
    return this.started;
  }

  /** Packets read so far (with or without a payload). */
  get packetCount(): number {
    return this.packets;
  }

  /** Forgets the section in progress and the continuity counter: the next packet starts afresh. */
  reset(): void {
    this.drop();
    this.cc = -1;
  }

  /** Forgets the section in progress (told to no one). */
  drop(): void {
    this.length = 0;
    this.collecting = false;
  }

  /** The packet at `bytes[at]`, its header read here. */
  read(bytes: Uint8Array, at = 0): void {
    if (((bytes[at + 3] ?? 0) & 0x10) === 0) {
      this.packets++;
      return;
    }
    const start = payloadOffset(bytes, at);
    this.packet(
      at === 0 && bytes.length === PACKET ? bytes : bytes.subarray(at, at + PACKET),
      start,
      ((bytes[at + 1] ?? 0) & 0x40) !== 0,
      (bytes[at + 3] ?? 0) & 0x0f,
    );
  }

  /** The packet `p` (its view), whose payload starts at `at` (PACKET: none), with its unit start flag and CC. */
  packet(p: Uint8Array, at: number, pusi: boolean, cc: number): void {
    this.packets++;
    if (at >= p.length) {
      if (((p[3] ?? 0) & 0x10) !== 0) this.onLoss?.();
      return;
    }
    const whole = p.length === PACKET ? p : p.subarray(0, PACKET);
    if (this.cc >= 0) {
      // A true duplicate carries nothing new; a same-CC packet with other bytes is a rewrite (some injectors
      // insert a PMT this way) and is read like any other, as the packet core does.
      if (cc === this.cc) {
        if (sameBytes(whole, this.last)) return;
      } else if (cc !== nextCc(this.cc)) this.lose();
    }
    this.cc = cc;
    this.last.set(whole);
    if (!pusi) {
      if (this.collecting) this.append(p, at, p.length);
      else if (!stuffingOnly(p, at, p.length)) this.onLoss?.();
      return;
    }
    const first = at + 1 + (p[at] ?? 0); // pointer_field
    if (first > p.length) {
      this.lose();
      this.onLoss?.();
      return;
    }
    if (this.collecting) {
      const used = this.append(p, at + 1, first);
      if (this.collecting) this.lose();
      else if (!stuffingOnly(p, at + 1 + used, first)) this.onLoss?.();
    } else if (!stuffingOnly(p, at + 1, first)) this.onLoss?.();
    // Sections that start in this packet: until stuffing, or one that goes on in the next packet.
    let from = first;
    while (from < p.length && p[from] !== 0xff) {
      this.length = 0;
      this.collecting = true;
      this.started = this.packets - 1;
      const used = this.append(p, from, p.length);
      if (this.collecting || used === 0) return;
      from += used;
    }
  }

  /** Gives up the section in progress, if any. */
  private lose(): void {
    if (!this.collecting) return;
    this.drop();
    this.onLoss?.();
  }

  /** Appends bytes up to the section's end; hands a whole one over. Answers the bytes it took (0: given up). */
  private append(p: Uint8Array, from: number, to: number): number {
    let at = from;
    while (at < to) {
      const want = this.length < 3 ? 3 - this.length : 3 + sectionLength(this.buf) - this.length;
      const n = Math.min(want, to - at);
      this.buf.set(p.subarray(at, at + n), this.length);
      this.length += n;
      at += n;
      if (this.length < 3) continue;
      const total = 3 + sectionLength(this.buf);
      if (total > this.buf.length) {
        this.lose();
        return 0;
      }
      if (this.length < total) continue;
      this.collecting = false;
      this.length = 0;
      const section = this.buf.subarray(0, total);
      const intact = total >= 12 && crc32Mpeg2(section) === 0;
      if (intact || this.keepBadCrc) this.onSection(section, intact);
      break;
    }
    return at - from;
  }
}

/**
 * A PSI PID's sections, each with the packets that carried it (from the one it starts in to the one it ends
 * in, as they came): what a stage that sends a copy of the PAT and PMT ahead of a stream keeps. The packets
 * and the section are views, valid during the call.
 */
export class SectionPackets {
  private readonly reader: SectionReader;
  private readonly held: Uint8Array;
  private count = 0;
  /** The index (the reader's packet count) of the first packet held. */
  private first = 0;
  constructor(onSection: (section: Uint8Array, packets: Uint8Array) => void, max: number = MAX_SECTION) {
    this.held = new Uint8Array((Math.ceil(max / PAYLOAD) + 1) * PACKET);
    this.reader = new SectionReader((section) => {
      const from = (this.reader.sectionStart - this.first) * PACKET;
      onSection(section, this.held.subarray(from, this.count * PACKET));
    }, max);
  }

  reset(): void {
    this.reader.reset();
    this.count = 0;
  }

  /** The packet at `bytes[at]`. */
  read(bytes: Uint8Array, at = 0): void {
    const index = this.reader.packetCount;
    // Only the packets of the section in progress are needed, and this one.
    const keepFrom = this.reader.inSection ? this.reader.sectionStart : index;
    if (keepFrom > this.first) {
      this.held.copyWithin(0, (keepFrom - this.first) * PACKET, this.count * PACKET);
      this.count -= keepFrom - this.first;
      this.first = keepFrom;
    }
    if (this.count * PACKET === this.held.length) {
      // Longer than a section can be: given up.
      this.reader.drop();
      this.count = 0;
      this.first = index;
    }
    this.held.set(bytes.subarray(at, at + PACKET), this.count * PACKET);
    this.count++;
    this.reader.read(bytes, at);
  }
}
