/**
 * The PMT the cue inserter (inserter.ts) reads and, when the programme has no SCTE-35 PID, sends in its own
 * version: the PCR and elementary PIDs and the first SCTE-35 PID read from it, and the section again with an
 * SCTE-35 entry added (a CUEI registration in program_info if it has none, a new version and CRC).
 */
import { crc32Mpeg2, MAX_PSI_SECTION_LENGTH, readPmt, STREAM_TYPE_SCTE35, writeCrc } from "../ts/index.ts";

/** A whole section's bytes are `sec` (CRC included) and it is a current section_syntax section of length ok. */
export const crcOk = (sec: Uint8Array): boolean => sec.length >= 12 && crc32Mpeg2(sec) === 0;

const hasCueiRegistration = (sec: Uint8Array, from: number, to: number): boolean => {
  for (let at = from; at + 2 <= to; ) {
    const tag = sec[at] ?? 0;
    const length = sec[at + 1] ?? 0;
    if (
      tag === 0x05 &&
      length >= 4 &&
      at + 6 <= to &&
      sec[at + 2] === 0x43 &&
      sec[at + 3] === 0x55 &&
      sec[at + 4] === 0x45 &&
      sec[at + 5] === 0x49
    )
      return true;
    at += 2 + length;
  }
  return false;
};

/** The PMT's PCR PID and elementary PIDs and its first SCTE-35 PID (-1: none); null when its loop does not add up. */
export const pmtPids = (sec: Uint8Array): { infoEnd: number; scte35Pid: number; pids: number[] } | null => {
  const pmt = readPmt(sec);
  if (pmt === null || !pmt.whole) return null;
  const scte35 = pmt.streams.find((s) => s.streamType === STREAM_TYPE_SCTE35);
  return {
    infoEnd: pmt.infoEnd,
    scte35Pid: scte35?.pid ?? -1,
    pids: [pmt.pcrPid, ...pmt.streams.map((s) => s.pid)],
  };
};

/**
 * The PMT `sec` with an elementary stream entry for `pid` (stream_type 0x86), a CUEI registration at the start
 * of program_info if it has none, version XOR 0x10, and its CRC; null when it already has an 0x86 entry, does
 * not parse, or would grow beyond a PMT's size.
 */
export const rewritePmt = (sec: Uint8Array, pid: number): Uint8Array | null => {
  const pmt = pmtPids(sec);
  if (pmt === null || pmt.scte35Pid >= 0) return null;
  const loopEnd = sec.length - 4;
  const registration = hasCueiRegistration(sec, 12, pmt.infoEnd) ? 0 : 6;
  const out = new Uint8Array(sec.length + registration + 5);
  const sectionLength = out.length - 3;
  if (sectionLength > MAX_PSI_SECTION_LENGTH) return null;
  out.set(sec.subarray(0, 12));
  out[1] = ((sec[1] ?? 0) & 0xf0) | (sectionLength >> 8);
  out[2] = sectionLength & 0xff;
  const versionByte = sec[5] ?? 0;
  out[5] = (versionByte & 0xc1) | ((((versionByte >> 1) & 0x1f) ^ 0x10) << 1);
  const programInfoLength = pmt.infoEnd - 12 + registration;
  out[10] = ((sec[10] ?? 0) & 0xf0) | (programInfoLength >> 8);
  out[11] = programInfoLength & 0xff;
  let at = 12;
  if (registration > 0) {
    out.set([0x05, 0x04, 0x43, 0x55, 0x45, 0x49], at);
    at += registration;
  }
  out.set(sec.subarray(12, loopEnd), at);
  at += loopEnd - 12;
  out.set([STREAM_TYPE_SCTE35, 0xe0 | (pid >> 8), pid & 0xff, 0xf0, 0x00], at);
  writeCrc(out, at + 5);
  return out;
};
