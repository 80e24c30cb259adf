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
    if (jump < 0 || jump > PCR_JUMP_MS * PCR_TICKS_PER_MS) {
      bump(ST_PCR_DISCONTINUITY_ERRORS);
      bump(times + TM_PCR_DISCONTINUITY);
      event2(EV_TR101290, IND_PCR_DISCONTINUITY_ERROR, pid);
    }
  }
  if (nowMs < 0) return;
  const last = load<f64>(times, TM_PCR_MS) - 1;
  if (last >= 0 && nowMs - last > pcrRepetitionMs) {
    bump(ST_PCR_REPETITION_ERRORS);
    bump(times + TM_PCR_REPETITION);
    event2(EV_TR101290, IND_PCR_REPETITION_ERROR, pid);
  }
  store<f64>(times, nowMs + 1, TM_PCR_MS);
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
  const last = load<f64>(times, TM_PTS_MS) - 1;
  if (last >= 0 && nowMs - last > PTS_INTERVAL_MS) {
    bump(ST_PTS_ERRORS);
    bump(times + TM_PTS_ERRORS);
    event2(EV_TR101290, IND_PTS_ERROR, pid);
  }
  store<f64>(times, nowMs + 1, TM_PTS_MS);
  store<f64>(times, pts(payload + 9), TM_PTS);
}

// A 33-bit timestamp in the PES header's 5-byte form.
function pts(p: usize): f64 {
  const high = (<u64>load<u8>(p) >> 1) & 7;
  const middle = <u64>(bswap<u16>(load<u16>(p, 1)) >> 1);
  const low = <u64>(bswap<u16>(load<u16>(p, 3)) >> 1);
  return <f64>((high << 30) | (middle << 15) | low);
}
