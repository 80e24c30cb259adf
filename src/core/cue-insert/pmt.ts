/**
 * The PMT the cue inserter (inserter.ts) reads and, when the programme has no SCTE-35 PID, sends in its own
 * version: the PCR and elementary PIDs and the first SCTE-35 PID read from it, and the section again with an
 * SCTE-35 entry added (a CUEI registration in program_info if it has none, a new version and CRC), written by
 * the toolkit's one PMT rewriter.
 */
import {
  hasRegistration,
  MAX_PSI_SECTION,
  readPmt,
  registrationDescriptor,
  rewritePmt,
  STREAM_TYPE_SCTE35,
  sealSection,
} from "../ts/index.ts";

const CUEI = "CUEI";

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
export const withScte35Entry = (sec: Uint8Array, pid: number): Uint8Array | null => {
  const pmt = readPmt(sec);
  if (pmt === null || !pmt.whole || pmt.streams.some((s) => s.streamType === STREAM_TYPE_SCTE35)) return null;
  const registered = hasRegistration(sec.subarray(12, pmt.infoEnd), CUEI);
  const out = rewritePmt(sec, pmt, {
    ...(registered ? {} : { infoFirst: registrationDescriptor(CUEI) }),
    added: [{ streamType: STREAM_TYPE_SCTE35, pid, descriptors: new Uint8Array(0) }],
  });
  if (out.length > MAX_PSI_SECTION) return null;
  sealSection(out, (((sec[5] ?? 0) >> 1) & 0x1f) ^ 0x10);
  return out;
};
