// The PID table's and the section slots' fields whose "none" is not zero, stored so that zero means "none":
// a fresh memory is then a reset table, and the module need not write its 512 KiB of PID entries (and 64
// slots) at start, which made every core's pages resident whether its stream used 3 PIDs or 300.

import {
  NO_PROGRAM,
  NO_SLOT,
  PD_FLAGS,
  PD_LAST_SEEN_MS,
  PD_SLOT,
  PID_COUNT,
  PID_SEEN,
  PIDS,
  SL_PID,
} from "./layout";

// Flags with the program slot's NO_PROGRAM (bits 16-23) flipped, so that no program reads as 0.
const FLAGS_FLIP: u32 = NO_PROGRAM << 16;

// The seen bitmap: a PID's entry is written only after its bit is set (its first packet in index.ts, or its
// first flags or slot here), so the unset PIDs' entries still hold their reset state.
export function markSeen(pid: u32): void {
  const at = PID_SEEN + <usize>(pid >> 3);
  store<u8>(at, load<u8>(at) | ((<u8>1) << (<u8>(pid & 7))));
}
function markEntry(entry: usize): void {
  markSeen(<u32>((entry - PIDS) >> 6));
}
// The PID of the next seen entry at or after `pid`, or PID_COUNT when none is left.
export function nextSeen(pid: u32): u32 {
  while (pid < PID_COUNT) {
    const bits = <u32>load<u8>(PID_SEEN + <usize>(pid >> 3)) >> (pid & 7);
    if (bits != 0) return pid + ctz(bits);
    pid = (pid | 7) + 1;
  }
  return PID_COUNT;
}

export function pidFlags(entry: usize): u32 {
  return load<u32>(entry, PD_FLAGS) ^ FLAGS_FLIP;
}
export function setPidFlags(entry: usize, flags: u32): void {
  markEntry(entry);
  store<u32>(entry, flags ^ FLAGS_FLIP, PD_FLAGS);
}
export function pidSlot(entry: usize): u32 {
  return load<u32>(entry, PD_SLOT) ^ NO_SLOT;
}
export function setPidSlot(entry: usize, slot: u32): void {
  markEntry(entry);
  store<u32>(entry, slot ^ NO_SLOT, PD_SLOT);
}
// Milliseconds, -1 for never, kept plus one.
export function pidLastSeen(entry: usize): f64 {
  return load<f64>(entry, PD_LAST_SEEN_MS) - 1;
}
export function setPidLastSeen(entry: usize, ms: f64): void {
  store<f64>(entry, ms + 1, PD_LAST_SEEN_MS);
}
export function slotPid(slot: usize): u32 {
  return load<u32>(slot, SL_PID) ^ NO_SLOT;
}
export function setSlotPid(slot: usize, pid: u32): void {
  store<u32>(slot, pid ^ NO_SLOT, SL_PID);
}
