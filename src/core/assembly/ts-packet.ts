// One TS packet of an accepted datagram, as the packet core counts it: the TR 101 290 sync checks (sync byte,
// lock after 5 good packets, loss after 2 bad), the PID's packet and payload counts, its adaptation field
// (random access, discontinuity, PCR), its continuity counter, and the hand-off of a table's packets to the
// section demux (psi.ts), and of PCRs and PES starts to the timing checks (timing.ts). index.ts decides which datagrams are taken and calls these for each packet.

import { event1, event2, event3 } from "./events";
import {
  bump,
  EV_CC_ERROR,
  EV_SYNC,
  EV_TR101290,
  F_HAS_PCR,
  F_PMT,
  F_SECTIONS,
  IND_TRANSPORT_ERROR,
  PD_ADAPTATION_ERRORS,
  PD_CC_ERRORS,
  PD_CC_STATE,
  PD_DISCONTINUITIES,
  PD_LAST_PCR,
  PD_PACKETS,
  PD_PAYLOAD_BYTES,
  PD_RANDOM_ACCESS,
  PD_SCRAMBLED,
  pidEntry,
  ST_ADAPTATION_ERRORS,
  ST_CC_ERRORS,
  ST_SYNC_BYTE_ERRORS,
  ST_SYNC_LOCKED,
  ST_SYNC_LOSS,
  ST_TRANSPORT_ERRORS,
} from "./layout";
import { markSeen, pidFlags, setPidFlags, setPidLastSeen } from "./pid-fields";
import { scrambledTable, sectionPacket } from "./psi";
import { pcrArrived, unitStarted } from "./timing";

const CC_SEEN: u32 = 0x10;
const SYNC_LOCK_AFTER: u32 = 5;
const SYNC_LOSE_AFTER: u32 = 2;

let goodSyncRun: u32 = 0;
let badSyncRun: u32 = 0;

export function resetSync(): void {
  goodSyncRun = 0;
  badSyncRun = 0;
}

// Every packet of the datagram starts with the sync byte. When one does not and the datagram is of the
// stream the input is locked to (`counted`), each packet goes through the TR 101 290 sync checks.
export function wholeTs(start: usize, count: u32, counted: bool): bool {
  let i: u32 = 0;
  while (i < count && load<u8>(start + <usize>(i * 188)) == 0x47) i++;
  if (i == count) return true;
  if (counted) {
    for (let k: u32 = 0; k < count; k++) {
      if (load<u8>(start + <usize>(k * 188)) != 0x47) badSync();
      else if (badSyncRun != 0 || goodSyncRun < SYNC_LOCK_AFTER) goodSync();
    }
  }
  return false;
}

// One packet of an accepted datagram: its sync byte is known to be there.
export function tsPacket(p: usize, nowMs: f64): void {
  if (badSyncRun != 0 || goodSyncRun < SYNC_LOCK_AFTER) goodSync();

  const header = bswap<u32>(load<u32>(p));
  if ((header & 0x800000) != 0) {
    // The PID of a packet flagged with a transport error cannot be trusted: count it and go no further.
    bump(ST_TRANSPORT_ERRORS);
    event2(EV_TR101290, IND_TRANSPORT_ERROR, (header >> 8) & 0x1fff);
    return;
  }
  const pid = (header >> 8) & 0x1fff;
  const entry = pidEntry(pid);
  const packets = load<u64>(entry, PD_PACKETS);
  if (packets == 0) markSeen(pid);
  store<u64>(entry, packets + 1, PD_PACKETS);
  setPidLastSeen(entry, nowMs);

  const control = (header >> 4) & 3;
  let payload: usize = p + 4;
  let discontinuity = false;
  if ((control & 2) != 0) {
    const afLength = <u32>load<u8>(p, 4);
    if (control == 3 ? afLength > 182 : afLength != 183) {
      adaptationError(entry);
      return;
    }
    if (afLength != 0) {
      const afFlags = <u32>load<u8>(p, 5);
      discontinuity = (afFlags & 0x80) != 0;
      if ((afFlags & 0x40) != 0) bump(entry + PD_RANDOM_ACCESS);
      if ((afFlags & 0x10) != 0 && afLength >= 7) pcr(entry, pid, p, discontinuity, nowMs);
    }
    payload += 1 + <usize>afLength;
  } else if (control == 0) {
    adaptationError(entry);
    return;
  }
  const hasPayload = (control & 1) != 0;
  if (hasPayload) {
    store<u64>(entry, load<u64>(entry, PD_PAYLOAD_BYTES) + <u64>(p + 188 - payload), PD_PAYLOAD_BYTES);
  }
  if (pid == 0x1fff) return;

  // Continuity (TR 101 290 1.4): +1 per packet with payload, unchanged without; one repeat is a legal
  // duplicate, a second is an error; the discontinuity indicator restarts the count.
  const cc = header & 0xf;
  const state = load<u32>(entry, PD_CC_STATE);
  const last = state & 0xf;
  let duplicate = false;
  let broken = false;
  if ((state & CC_SEEN) == 0) {
    store<u32>(entry, cc | CC_SEEN, PD_CC_STATE);
  } else if (discontinuity) {
    bump(entry + PD_DISCONTINUITIES);
    store<u32>(entry, cc | CC_SEEN, PD_CC_STATE);
  } else if (!hasPayload) {
    if (cc != last) ccError(entry, pid, last, cc);
  } else if (cc == ((last + 1) & 0xf)) {
    store<u32>(entry, cc | CC_SEEN, PD_CC_STATE);
  } else if (cc == last) {
    if (state >> 8 == 0) {
      duplicate = true;
      store<u32>(entry, state | 0x100, PD_CC_STATE);
    } else {
      broken = true;
      ccError(entry, pid, (last + 1) & 0xf, cc);
      store<u32>(entry, state, PD_CC_STATE);
    }
  } else {
    broken = true;
    ccError(entry, pid, (last + 1) & 0xf, cc);
  }

  const flags = pidFlags(entry);
  if ((flags & F_SECTIONS) == 0) {
    if ((header & 0x4000c0) == 0x400000 && hasPayload) unitStarted(pid, payload, p + 188, nowMs);
    return;
  }
  if ((header & 0xc0) != 0) {
    bump(entry + PD_SCRAMBLED);
    if (pid == 0 || (flags & F_PMT) != 0) scrambledTable(pid);
    return;
  }
  if (hasPayload) sectionPacket(entry, pid, p, payload, (header & 0x400000) != 0, duplicate, broken);
}

function badSync(): void {
  bump(ST_SYNC_BYTE_ERRORS);
  goodSyncRun = 0;
  badSyncRun++;
  if (badSyncRun == SYNC_LOSE_AFTER && load<u32>(ST_SYNC_LOCKED) != 0) {
    store<u32>(ST_SYNC_LOCKED, 0);
    bump(ST_SYNC_LOSS);
    event1(EV_SYNC, 0);
  }
}

function goodSync(): void {
  badSyncRun = 0;
  goodSyncRun++;
  if (goodSyncRun == SYNC_LOCK_AFTER && load<u32>(ST_SYNC_LOCKED) == 0) {
    store<u32>(ST_SYNC_LOCKED, 1);
    event1(EV_SYNC, 1);
  }
}

function adaptationError(entry: usize): void {
  bump(ST_ADAPTATION_ERRORS);
  bump(entry + PD_ADAPTATION_ERRORS);
}

function ccError(entry: usize, pid: u32, expected: u32, got: u32): void {
  bump(ST_CC_ERRORS);
  bump(entry + PD_CC_ERRORS);
  store<u32>(entry, got | CC_SEEN, PD_CC_STATE);
  event3(EV_CC_ERROR, pid, expected, got);
}

// program_clock_reference: 33-bit base at 90 kHz, 6 reserved bits, 9-bit extension; kept as 27 MHz ticks.
function pcr(entry: usize, pid: u32, p: usize, flagged: bool, nowMs: f64): void {
  const high = bswap<u32>(load<u32>(p, 6));
  const low = <u32>load<u8>(p, 10);
  const base = ((<u64>high) << 1) | <u64>(low >> 7);
  const extension = ((low & 1) << 8) | <u32>load<u8>(p, 11);
  const value = <f64>(base * 300 + <u64>extension);
  const flags = pidFlags(entry);
  pcrArrived(pid, value, (flags & F_HAS_PCR) != 0 ? load<f64>(entry, PD_LAST_PCR) : -1, flagged, nowMs);
  store<f64>(entry, value, PD_LAST_PCR);
  setPidFlags(entry, flags | F_HAS_PCR);
}
