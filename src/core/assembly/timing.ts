// TR 101 290 second-priority checks that need a clock or a previous value, and the arrival times the
// channel's health rules read: PCR repetition (2.3a: over 100 ms between a PID's PCRs, or 40 ms once the
// host asks for DVB's limit), unflagged PCR jumps (2.3b: over 100 ms or backwards without the
// discontinuity_indicator), and the PTS interval of a PES PID (2.5: over 700 ms). Each error is counted when
// the late PCR or PTS arrives, so a gap counts once; a PID that stops altogether is PID_error's (psi.ts).
// ts-packet.ts calls in only for packets with a PCR or a PES start, so the other packets cost nothing here.

import { event2 } from "./events";
import {
  bump,
  EV_TR101290,
  IND_PCR_DISCONTINUITY_ERROR,
  IND_PCR_REPETITION_ERROR,
  IND_PTS_ERROR,
  PCR_JUMP_MS,
  PCR_REPETITION_MS,
  PTS_INTERVAL_MS,
  ST_LAST_PCR_MS,
  ST_PCR_DISCONTINUITY_ERRORS,
  ST_PCR_REPETITION_ERRORS,
  ST_PTS_ERRORS,
  TM_PCR_DISCONTINUITY,
  TM_PCR_MS,
  TM_PCR_REPETITION,
  TM_PES_MS,
  TM_PTS,
  TM_PTS_ERRORS,
  TM_PTS_MS,
  timesAt,
} from "./layout";

// The PCR wraps at 2^33 × 300 ticks of 27 MHz; a jump is read modulo that, so the wrap itself is no jump.
const PCR_WRAP: f64 = 8589934592.0 * 300;
const PCR_TICKS_PER_MS: f64 = 27000;

let pcrRepetitionMs: f64 = PCR_REPETITION_MS;

// The PCR_repetition_error limit in milliseconds (100 by default, 40 for DVB). Kept across reset.
export function setPcrRepetitionMs(limit: f64): void {
  pcrRepetitionMs = limit;
}

// A PCR of `value` ticks on `pid` arrived at `nowMs`; `previous` is the PID's last PCR (negative for none),
// `flagged` whether its packet set the discontinuity_indicator.
export function pcrArrived(pid: u32, value: f64, previous: f64, flagged: bool, nowMs: f64): void {
  const times = timesAt(pid);
  if (previous >= 0 && !flagged) {
    let jump = value - previous;
    if (jump < -PCR_WRAP / 2) jump += PCR_WRAP;
    if (jump < 0 || jump > PCR_JUMP_MS * PCR_TICKS_PER_MS)
      raise(pid, ST_PCR_DISCONTINUITY_ERRORS, times + TM_PCR_DISCONTINUITY, IND_PCR_DISCONTINUITY_ERROR);
  }
  if (nowMs < 0) return;
  interval(
    times + TM_PCR_MS,
    nowMs,
    pcrRepetitionMs,
    pid,
    ST_PCR_REPETITION_ERRORS,
    times + TM_PCR_REPETITION,
    IND_PCR_REPETITION_ERROR,
  );
  store<f64>(ST_LAST_PCR_MS, nowMs + 1);
}

// A packet of `pid` starts a unit at `payload` (up to `end`): when it is a PES with a PTS, the PTS interval is
// checked. Sections (a table's PID) never start with the PES start code.
export function unitStarted(pid: u32, payload: usize, end: usize, nowMs: f64): void {
  if (nowMs < 0 || payload + 14 > end) return;
  if (bswap<u32>(load<u32>(payload)) >> 8 != 1) return;
  const times = timesAt(pid);
  store<f64>(times, nowMs + 1, TM_PES_MS);
  // PTS_DTS_flags '10' or '11', in a PES with the optional header (not padding, private_stream_2 and the like).
  if ((<u32>load<u8>(payload, 7) & 0x80) == 0 || (<u32>load<u8>(payload, 6) & 0xc0) != 0x80) return;
  interval(
    times + TM_PTS_MS,
    nowMs,
    PTS_INTERVAL_MS,
    pid,
    ST_PTS_ERRORS,
    times + TM_PTS_ERRORS,
    IND_PTS_ERROR,
  );
  store<f64>(times, pts(payload + 9), TM_PTS);
}

// The arrival kept at `last` (milliseconds plus one) becomes `nowMs`; when over `limitMs` before it, `indicator`
// is raised on `pid`.
function interval(
  last: usize,
  nowMs: f64,
  limitMs: f64,
  pid: u32,
  total: usize,
  perPid: usize,
  indicator: u32,
): void {
  const previous = load<f64>(last) - 1;
  if (previous >= 0 && nowMs - previous > limitMs) raise(pid, total, perPid, indicator);
  store<f64>(last, nowMs + 1);
}

// An indicator on `pid`: counted in the status struct (`total`) and the PID's times (`perPid`), and an event.
function raise(pid: u32, total: usize, perPid: usize, indicator: u32): void {
  bump(total);
  bump(perPid);
  event2(EV_TR101290, indicator, pid);
}

// A 33-bit timestamp in the PES header's 5-byte form.
function pts(p: usize): f64 {
  const high = (<u64>load<u8>(p) >> 1) & 7;
  const middle = <u64>(bswap<u16>(load<u16>(p, 1)) >> 1);
  const low = <u64>(bswap<u16>(load<u16>(p, 3)) >> 1);
  return <f64>((high << 30) | (middle << 15) | low);
}
