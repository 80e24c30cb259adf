/**
 * PAT and PMT sections (ISO/IEC 13818-1 §2.4.4) as the policy rewriter needs them: read, and written again with
 * entries left out or PIDs changed. Sections here are whole, from table_id to CRC_32, no pointer_field.
 */
import { crc32Mpeg2 } from "../ts/crc32.ts";

export interface PatEntry {
  readonly program: number;
  readonly pid: number;
}

export interface Pat {
  readonly transportStreamId: number;
  /** Program 0 is the NIT's entry. */
  readonly programs: ReadonlyArray<PatEntry>;
}

export interface PmtStream {
  readonly streamType: number;
  readonly pid: number;
  /** The entry's bytes in the section, its descriptors included: [start, end). */
  readonly start: number;
  readonly end: number;
}

export interface Pmt {
  readonly program: number;
  readonly pcrPid: number;
  /** Where program_info ends (entries start). */
  readonly infoEnd: number;
  readonly streams: ReadonlyArray<PmtStream>;
}

/** A long-form section of `tableId`, single (section 0 of 0), whose length fields agree and whose CRC verifies. */
export const sectionOk = (section: Uint8Array, tableId: number): boolean =>
  section.length >= 12 &&
  section[0] === tableId &&
  ((section[1] ?? 0) & 0x80) !== 0 &&
  3 + ((((section[1] ?? 0) & 0x0f) << 8) | (section[2] ?? 0)) === section.length &&
  section[6] === 0 &&
  section[7] === 0 &&
  crc32Mpeg2(section) === 0;

const u16 = (bytes: Uint8Array, at: number): number => ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
const pidAt = (bytes: Uint8Array, at: number): number => u16(bytes, at) & 0x1fff;

export const parsePat = (section: Uint8Array): Pat | null => {
  if (!sectionOk(section, 0x00) || (section.length - 12) % 4 !== 0) return null;
  const programs: PatEntry[] = [];
  for (let at = 8; at + 4 <= section.length - 4; at += 4)
    programs.push({ program: u16(section, at), pid: pidAt(section, at + 2) });
  return { transportStreamId: u16(section, 3), programs };
};

export const parsePmt = (section: Uint8Array): Pmt | null => {
  if (!sectionOk(section, 0x02) || section.length < 16) return null;
  const stop = section.length - 4;
  const infoEnd = 12 + (u16(section, 10) & 0x0fff);
  if (infoEnd > stop) return null;
  const streams: PmtStream[] = [];
  let at = infoEnd;
  while (at < stop) {
    if (at + 5 > stop) return null;
    const end = at + 5 + (u16(section, at + 3) & 0x0fff);
    if (end > stop) return null;
    streams.push({ streamType: section[at] ?? 0, pid: pidAt(section, at + 1), start: at, end });
    at = end;
  }
  return { program: u16(section, 3), pcrPid: pidAt(section, 8), infoEnd, streams };
};

/** Writes a 13-bit PID at `at`, keeping the 3 reserved bits above it. */
export const writePid = (bytes: Uint8Array, at: number, pid: number): void => {
  bytes[at] = ((bytes[at] ?? 0xe0) & 0xe0) | (pid >> 8);
  bytes[at + 1] = pid & 0xff;
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

/** Sets section_length to the section's size. */
const fitLength = (section: Uint8Array): Uint8Array => {
  const sectionLength = section.length - 3;
  section[1] = ((section[1] ?? 0xb0) & 0xf0) | (sectionLength >> 8);
  section[2] = sectionLength & 0xff;
  return section;
};

/** Sets the version number, and the CRC_32 over the rest. */
export const sealSection = (section: Uint8Array, version: number): void => {
  section[5] = ((section[5] ?? 0xc1) & 0xc1) | ((version & 0x1f) << 1);
  const crc = crc32Mpeg2(section, 0, section.length - 4);
  const at = section.length - 4;
  section[at] = crc >>> 24;
  section[at + 1] = (crc >>> 16) & 0xff;
  section[at + 2] = (crc >>> 8) & 0xff;
  section[at + 3] = crc & 0xff;
};

/** A PAT like `section` naming only `entries` (PMT PIDs as they go out); version and CRC are sealSection's. */
export const rewritePat = (section: Uint8Array, entries: ReadonlyArray<PatEntry>): Uint8Array => {
  const out = new Uint8Array(12 + entries.length * 4);
  out.set(section.subarray(0, 8));
  let at = 8;
  for (const { program, pid } of entries) {
    out[at] = program >> 8;
    out[at + 1] = program & 0xff;
    out[at + 2] = 0xe0;
    writePid(out, at + 2, pid);
    at += 4;
  }
  return fitLength(out);
};

/**
 * A PMT like `section` with only the streams `keep` says yes to, each with the PID `pidOut` gives (the PCR_PID
 * too); program_info and the streams' descriptors byte for byte.
 */
export const rewritePmt = (
  section: Uint8Array,
  pmt: Pmt,
  keep: (stream: PmtStream) => boolean,
  pidOut: (pid: number) => number,
): Uint8Array => {
  const kept = pmt.streams.filter(keep);
  const out = new Uint8Array(pmt.infoEnd + kept.reduce((n, s) => n + s.end - s.start, 0) + 4);
  out.set(section.subarray(0, pmt.infoEnd));
  if (pmt.pcrPid !== 0x1fff) writePid(out, 8, pidOut(pmt.pcrPid));
  let at = pmt.infoEnd;
  for (const stream of kept) {
    out.set(section.subarray(stream.start, stream.end), at);
    writePid(out, at + 1, pidOut(stream.pid));
    at += stream.end - stream.start;
  }
  return fitLength(out);
};
