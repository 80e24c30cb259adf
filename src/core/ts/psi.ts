/**
 * PAT and PMT (ISO/IEC 13818-1 §2.4.4.3, §2.4.4.8): read, written, and written again with entries left out or
 * PIDs changed. The one host-side place these tables are parsed; the AssemblyScript core has its own
 * (src/core/assembly/psi.ts), and test/core/ts-toolkit.test.ts holds the two to the same answers.
 *
 * The readers take a section from its table_id on, whole or as far as one packet holds it: they read the
 * entries that lie inside both the bytes given and section_length, and say whether the PMT's entries fill its
 * loop exactly (`whole`). Checking the CRC and the section's framing (`sectionOk`) is the caller's: some read
 * the first packet of a table before its CRC has arrived.
 */
import { NULL_PID } from "./packet.ts";
import { fitLength, pid13, sealSection, sectionLength, sectionOk, u16, writePid } from "./section.ts";

const TABLE_PAT = 0x00;
const TABLE_PMT = 0x02;

export interface PatEntry {
  readonly program: number;
  /** The programme's PMT PID (for program 0, the NIT's PID). */
  readonly pid: number;
}

export interface Pat {
  readonly transportStreamId: number;
  readonly version: number;
  /** In the section's order; program 0 is the NIT's entry. */
  readonly programs: ReadonlyArray<PatEntry>;
}

export interface PmtStream {
  readonly streamType: number;
  readonly pid: number;
  /** The entry's bytes in the section, its descriptors included: [start, end) (`end` may lie past the loop). */
  readonly start: number;
  readonly end: number;
}

export interface Pmt {
  readonly program: number;
  readonly version: number;
  /** 0x1fff when the programme has no PCR. */
  readonly pcrPid: number;
  /** Where program_info ends (entries start). */
  readonly infoEnd: number;
  readonly streams: ReadonlyArray<PmtStream>;
  /** The entries fill the stream loop exactly, up to the CRC. */
  readonly whole: boolean;
}

/** Where the entries of `section` end: the CRC, or the end of the bytes given. */
const loopEnd = (section: Uint8Array): number => Math.min(section.length, 3 + sectionLength(section) - 4);

const versionOf = (section: Uint8Array): number => ((section[5] ?? 0) >> 1) & 0x1f;

/** A PAT's entries; null when `section` is not a PAT. */
export const readPat = (section: Uint8Array): Pat | null => {
  if (section[0] !== TABLE_PAT) return null;
  const end = loopEnd(section);
  const programs: PatEntry[] = [];
  for (let at = 8; at + 4 <= end; at += 4)
    programs.push({ program: u16(section, at), pid: pid13(section, at + 2) });
  return { transportStreamId: u16(section, 3), version: versionOf(section), programs };
};

/** The first programme (not the NIT's entry 0) a PAT lists. */
export const firstProgram = (pat: Pat | null): PatEntry | undefined =>
  pat?.programs.find((e) => e.program !== 0);

/** A PMT's streams; null when `section` is not a PMT. */
export const readPmt = (section: Uint8Array): Pmt | null => {
  if (section[0] !== TABLE_PMT) return null;
  const end = loopEnd(section);
  const infoEnd = 12 + (u16(section, 10) & 0x0fff);
  const streams: PmtStream[] = [];
  let at = infoEnd;
  while (at + 5 <= end) {
    const next = at + 5 + (u16(section, at + 3) & 0x0fff);
    streams.push({ streamType: section[at] ?? 0, pid: pid13(section, at + 1), start: at, end: next });
    at = next;
  }
  return {
    program: u16(section, 3),
    version: versionOf(section),
    pcrPid: pid13(section, 8),
    infoEnd,
    streams,
    whole: at === end,
  };
};

/** The PAT `pat` says, as a section (version and CRC set). */
export const patSection = (
  transportStreamId: number,
  version: number,
  programs: ReadonlyArray<PatEntry>,
): Uint8Array => {
  const out = new Uint8Array(12 + programs.length * 4);
  out.set([TABLE_PAT, 0xb0, 0, transportStreamId >> 8, transportStreamId & 0xff, 0xc1, 0, 0]);
  writePatEntries(out, programs);
  fitLength(out);
  sealSection(out, version);
  return out;
};

export interface PmtEntry {
  readonly streamType: number;
  readonly pid: number;
  readonly descriptors: Uint8Array;
}

/** A PMT as a section (version and CRC set): its PCR PID, program_info and streams with their descriptors. */
export const pmtSection = (
  program: number,
  version: number,
  pcrPid: number,
  programInfo: Uint8Array,
  streams: ReadonlyArray<PmtEntry>,
): Uint8Array => {
  const out = new Uint8Array(12 + programInfo.length + entriesLength(streams) + 4);
  out.set([TABLE_PMT, 0xb0, 0, program >> 8, program & 0xff, 0xc1, 0, 0, 0xe0, 0, 0xf0, 0]);
  writePid(out, 8, pcrPid);
  out[10] = 0xf0 | (programInfo.length >> 8);
  out[11] = programInfo.length & 0xff;
  out.set(programInfo, 12);
  writePmtEntries(out, 12 + programInfo.length, streams);
  fitLength(out);
  sealSection(out, version);
  return out;
};

const writePatEntries = (out: Uint8Array, entries: ReadonlyArray<PatEntry>): void => {
  let at = 8;
  for (const { program, pid } of entries) {
    out[at] = program >> 8;
    out[at + 1] = program & 0xff;
    out[at + 2] = 0xe0;
    writePid(out, at + 2, pid);
    at += 4;
  }
};

/** A PAT like `section` naming only `entries` (PMT PIDs as they go out); version and CRC are sealSection's. */
export const rewritePat = (section: Uint8Array, entries: ReadonlyArray<PatEntry>): Uint8Array => {
  const out = new Uint8Array(12 + entries.length * 4);
  out.set(section.subarray(0, 8));
  writePatEntries(out, entries);
  return fitLength(out);
};

const entriesLength = (streams: ReadonlyArray<PmtEntry>): number =>
  streams.reduce((n, s) => n + 5 + s.descriptors.length, 0);

/** Writes PMT entries at `out[at]`; answers where they end. */
const writePmtEntries = (out: Uint8Array, at: number, streams: ReadonlyArray<PmtEntry>): number => {
  let to = at;
  for (const stream of streams) {
    out.set([stream.streamType, 0xe0 | (stream.pid >> 8), stream.pid & 0xff], to);
    out[to + 3] = 0xf0 | (stream.descriptors.length >> 8);
    out[to + 4] = stream.descriptors.length & 0xff;
    out.set(stream.descriptors, to + 5);
    to += 5 + stream.descriptors.length;
  }
  return to;
};

/** What a rewritten PMT changes: by default nothing. */
export interface PmtEdit {
  /** Which streams stay (all by default). */
  readonly keep?: (stream: PmtStream) => boolean;
  /** The PID each stream, and the PCR, goes out on (its own by default). */
  readonly pidOut?: (pid: number) => number;
  /** Descriptors put at the head of program_info. */
  readonly infoFirst?: Uint8Array;
  /** Streams added after those kept. */
  readonly added?: ReadonlyArray<PmtEntry>;
}

/**
 * A PMT like `section` edited: only the streams `keep` says yes to, each with the PID `pidOut` gives (the
 * PCR_PID too), `infoFirst` ahead of program_info, `added` after the streams; program_info and the streams'
 * descriptors byte for byte. The one host-side PMT rewriter. Version and CRC are sealSection's.
 */
export const rewritePmt = (section: Uint8Array, pmt: Pmt, edit: PmtEdit = {}): Uint8Array => {
  const kept = edit.keep === undefined ? pmt.streams : pmt.streams.filter(edit.keep);
  const pidOut = edit.pidOut;
  const first = edit.infoFirst ?? new Uint8Array(0);
  const added = edit.added ?? [];
  const out = new Uint8Array(
    pmt.infoEnd + first.length + kept.reduce((n, s) => n + s.end - s.start, 0) + entriesLength(added) + 4,
  );
  out.set(section.subarray(0, 12));
  out.set(first, 12);
  out.set(section.subarray(12, pmt.infoEnd), 12 + first.length);
  if (first.length > 0) {
    const infoLength = pmt.infoEnd - 12 + first.length;
    out[10] = ((section[10] ?? 0xf0) & 0xf0) | (infoLength >> 8);
    out[11] = infoLength & 0xff;
  }
  if (pidOut !== undefined && pmt.pcrPid !== NULL_PID) writePid(out, 8, pidOut(pmt.pcrPid));
  let at = pmt.infoEnd + first.length;
  for (const stream of kept) {
    out.set(section.subarray(stream.start, stream.end), at);
    if (pidOut !== undefined) writePid(out, at + 1, pidOut(stream.pid));
    at += stream.end - stream.start;
  }
  writePmtEntries(out, at, added);
  return fitLength(out);
};

/** The tags of a PMT stream entry's descriptors (its ES_info), as far as the stream loop goes. */
export const descriptorTags = (section: Uint8Array, stream: PmtStream): number[] => {
  const end = Math.min(loopEnd(section), stream.end);
  const tags: number[] = [];
  for (let d = stream.start + 5; d + 2 <= end; d += 2 + (section[d + 1] ?? 0)) tags.push(section[d] ?? 0);
  return tags;
};

/** Whether `descriptors` holds a registration_descriptor (tag 5) whose format_identifier is `id` (4 ASCII letters). */
export const hasRegistration = (descriptors: Uint8Array, id: string): boolean => {
  for (let at = 0; at + 2 <= descriptors.length; ) {
    const length = descriptors[at + 1] ?? 0;
    if (descriptors[at] === 0x05 && length >= 4 && at + 6 <= descriptors.length) {
      let same = true;
      for (let k = 0; k < 4; k++) if (descriptors[at + 2 + k] !== id.charCodeAt(k)) same = false;
      if (same) return true;
    }
    at += 2 + length;
  }
  return false;
};

/** A registration_descriptor (tag 5) of the format_identifier `id` (4 ASCII letters). */
export const registrationDescriptor = (id: string): Uint8Array =>
  Uint8Array.from([0x05, 0x04, ...[0, 1, 2, 3].map((k) => id.charCodeAt(k))]);

/** A whole, intact PAT (`sectionOk`, nothing after its entries); null otherwise. */
export const parsePat = (section: Uint8Array): Pat | null =>
  sectionOk(section, TABLE_PAT) && (section.length - 12) % 4 === 0 ? readPat(section) : null;

/** A whole, intact PMT (`sectionOk`) whose entries fill its loop exactly; null otherwise. */
export const parsePmt = (section: Uint8Array): Pmt | null => {
  if (!sectionOk(section, TABLE_PMT) || section.length < 16) return null;
  const pmt = readPmt(section);
  return pmt?.whole ? pmt : null;
};
