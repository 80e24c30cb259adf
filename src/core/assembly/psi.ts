// Section demux for the PIDs that carry tables: PAT on PID 0, each program's PMT, and SCTE-35 (stream_type
// 0x86). Tables are rare next to the packet rate, so this code favours plain loops over speed. PAT, PMT and
// SCTE-35 share one reassembly buffer per PID and one CRC path.

import { crc32Mpeg2 } from "./crc";
import { beginEvent, EVENT_HEADER, event2 } from "./events";
import {
  be16,
  be32,
  bump,
  EV_CRC_ERROR,
  EV_PAT,
  EV_PMT,
  EV_SCTE35,
  EV_TR101290,
  F_HAS_PCR,
  F_PMT,
  F_REFERENCED,
  F_SCTE35,
  F_SECTIONS,
  IND_PAT_ERROR,
  IND_PID_ERROR,
  IND_PMT_ERROR,
  MAX_PROGRAMS,
  MAX_REFERENCED,
  MAX_SLOTS,
  NO_PROGRAM,
  NO_SLOT,
  PD_LAST_PCR,
  PG_CRC,
  PG_IN_USE,
  PG_LAST_PMT_MS,
  PG_NUMBER,
  PG_PCR_PID,
  PG_PMT_PID,
  PG_VERSION,
  PID_COUNT,
  PID_TIMEOUT_MS,
  PSI_INTERVAL_MS,
  pidEntry,
  programAt,
  REFERENCED,
  SECTION_MAX,
  SL_BUFFER,
  SL_HAS_LAST,
  SL_HAVE,
  SL_LAST_PACKET,
  SL_NEED,
  ST_CRC_ERRORS,
  ST_NOW_MS,
  ST_PAT_CRC,
  ST_PAT_ERRORS,
  ST_PAT_VERSION,
  ST_PID_ERRORS,
  ST_PMT_ERRORS,
  ST_SCTE35_SECTIONS,
  ST_SECTION_ERRORS,
  ST_TS_ID,
  slotAt,
  TM_PID_TIMER,
  timesAt,
} from "./layout";
import {
  nextSeen,
  pidFlags,
  pidLastSeen,
  pidSlot,
  setPidFlags,
  setPidSlot,
  setSlotPid,
  slotPid,
} from "./pid-fields";

const PSI_SECTION_MAX: u32 = 1024;
const STREAM_TYPE_SCTE35: u32 = 0x86;

let lastPatMs: f64 = -1;
let referencedCount: u32 = 0;
// Slots are claimed lowest first; those at or above this index have never been written.
let slotsTouched: u32 = 0;

export function touchedSlots(): u32 {
  return slotsTouched;
}

export function resetPsi(): void {
  lastPatMs = -1;
  referencedCount = 0;
  slotsTouched = 0;
  for (let i: u32 = 0; i < MAX_PROGRAMS; i++) store<u32>(programAt(i), 0, PG_IN_USE);
  store<i32>(ST_PAT_VERSION, -1);
  store<i32>(ST_TS_ID, -1);
  claimSlot(0);
}

function claimSlot(pid: u32): void {
  const entry = pidEntry(pid);
  if (pidSlot(entry) != NO_SLOT) return;
  for (let i: u32 = 0; i < MAX_SLOTS; i++) {
    const slot = slotAt(i);
    if (slotPid(slot) != NO_SLOT) continue;
    setSlotPid(slot, pid);
    if (i >= slotsTouched) slotsTouched = i + 1;
    store<u32>(slot, 0, SL_HAVE);
    store<u32>(slot, 0, SL_NEED);
    store<u32>(slot, 0, SL_HAS_LAST);
    setPidSlot(entry, i);
    setPidFlags(entry, pidFlags(entry) | F_SECTIONS);
    return;
  }
}

function releaseSlot(pid: u32): void {
  const entry = pidEntry(pid);
  const index = pidSlot(entry);
  if (index == NO_SLOT) return;
  setSlotPid(slotAt(index), NO_SLOT);
  setPidSlot(entry, NO_SLOT);
  setPidFlags(entry, pidFlags(entry) & ~F_SECTIONS);
}

// Called for every packet with a payload on a PID flagged F_SECTIONS. `duplicate` is a packet that repeats
// the previous continuity counter; `broken` one that follows a continuity gap.
export function sectionPacket(
  entry: usize,
  pid: u32,
  packet: usize,
  payload: usize,
  pusi: bool,
  duplicate: bool,
  broken: bool,
): void {
  const slot = slotAt(pidSlot(entry));
  if (duplicate) {
    // A true duplicate carries nothing new. A same-CC packet with other bytes is a rewrite (some
    // injectors insert a PMT this way), so it is read like any other packet.
    if (load<u32>(slot, SL_HAS_LAST) != 0 && memory.compare(slot + SL_LAST_PACKET, packet, 188) == 0) return;
  }
  memory.copy(slot + SL_LAST_PACKET, packet, 188);
  store<u32>(slot, 1, SL_HAS_LAST);
  if (broken) dropPartial(slot);

  const end = packet + 188;
  let p = payload;
  if (!pusi) {
    if (load<u32>(slot, SL_HAVE) != 0) append(slot, pid, p, end);
    return;
  }
  if (p >= end) return;
  const pointer = <usize>load<u8>(p);
  p++;
  if (p + pointer > end) {
    bump(ST_SECTION_ERRORS);
    dropPartial(slot);
    return;
  }
  if (load<u32>(slot, SL_HAVE) != 0) {
    append(slot, pid, p, p + pointer);
    dropPartial(slot);
  }
  p += pointer;
  while (p < end && load<u8>(p) != 0xff) {
    p = append(slot, pid, p, end);
    if (load<u32>(slot, SL_HAVE) != 0) break;
  }
}

function dropPartial(slot: usize): void {
  if (load<u32>(slot, SL_HAVE) != 0) bump(ST_SECTION_ERRORS);
  store<u32>(slot, 0, SL_HAVE);
  store<u32>(slot, 0, SL_NEED);
}

// Appends bytes [p, end) to the section being assembled; returns where the next section may start.
function append(slot: usize, pid: u32, p: usize, end: usize): usize {
  const buffer = slot + SL_BUFFER;
  let have = load<u32>(slot, SL_HAVE);
  let need = load<u32>(slot, SL_NEED);
  if (need == 0) {
    const take = min<u32>(3 - have, <u32>(end - p));
    memory.copy(buffer + have, p, take);
    have += take;
    p += take;
    if (have < 3) {
      store<u32>(slot, have, SL_HAVE);
      return p;
    }
    need = (((<u32>load<u8>(buffer, 1) & 0x0f) << 8) | <u32>load<u8>(buffer, 2)) + 3;
    if (need > SECTION_MAX) {
      bump(ST_SECTION_ERRORS);
      store<u32>(slot, 0, SL_HAVE);
      store<u32>(slot, 0, SL_NEED);
      return end;
    }
  }
  const take = min<u32>(need - have, <u32>(end - p));
  memory.copy(buffer + have, p, take);
  have += take;
  p += take;
  if (have < need) {
    store<u32>(slot, have, SL_HAVE);
    store<u32>(slot, need, SL_NEED);
    return p;
  }
  store<u32>(slot, 0, SL_HAVE);
  store<u32>(slot, 0, SL_NEED);
  section(pid, buffer, need);
  return p;
}

function section(pid: u32, s: usize, length: u32): void {
  const tableId = <u32>load<u8>(s);
  const flags = pidFlags(pidEntry(pid));
  if (pid == 0) {
    if (tableId != 0) {
      patError();
      return;
    }
    if (!crcOk(pid, s, length)) return;
    lastPatMs = load<f64>(ST_NOW_MS);
    applyPat(s, length);
  } else if ((flags & F_SCTE35) != 0) {
    if (tableId == 0xfc && crcOk(pid, s, length)) scte35(pid, s, length);
  } else if ((flags & F_PMT) != 0) {
    if (tableId == 2 && crcOk(pid, s, length)) applyPmt(pid, s, length);
  }
}

function crcOk(pid: u32, s: usize, length: u32): bool {
  if (length >= 7 && crc32Mpeg2(s, length) == 0) return true;
  bump(ST_CRC_ERRORS);
  event2(EV_CRC_ERROR, pid, <u32>load<u8>(s));
  return false;
}

function copyOut(type: u32, head: u32, pid: u32, s: usize, length: u32): usize {
  const record = beginEvent(type, head + length);
  if (record == 0) return 0;
  store<u32>(record, pid, EVENT_HEADER);
  store<u32>(record, length, EVENT_HEADER + 4);
  memory.copy(record + EVENT_HEADER + head, s, length);
  return record;
}

function patError(): void {
  bump(ST_PAT_ERRORS);
  event2(EV_TR101290, IND_PAT_ERROR, 0);
}

function pmtError(pid: u32): void {
  bump(ST_PMT_ERRORS);
  event2(EV_TR101290, IND_PMT_ERROR, pid);
}

// Long-form section header checks shared by PAT and PMT: syntax indicator, size, and current_next.
function usableLongSection(s: usize, length: u32, minimum: u32): bool {
  if (length > PSI_SECTION_MAX || length < minimum || (load<u8>(s, 1) & 0x80) == 0) {
    bump(ST_SECTION_ERRORS);
    return false;
  }
  return (load<u8>(s, 5) & 1) != 0;
}

function applyPat(s: usize, length: u32): void {
  if (!usableLongSection(s, length, 12) || (length - 12) % 4 != 0) return;
  const crc = be32(s + length - 4);
  if (load<i32>(ST_PAT_VERSION) >= 0 && crc == load<u32>(ST_PAT_CRC)) return;
  store<u32>(ST_PAT_CRC, crc);
  store<i32>(ST_PAT_VERSION, (<i32>load<u8>(s, 5) >> 1) & 0x1f);
  store<i32>(ST_TS_ID, <i32>be16(s + 3));

  const now = load<f64>(ST_NOW_MS);
  for (let i: u32 = 0; i < MAX_PROGRAMS; i++) {
    const program = programAt(i);
    if (load<u32>(program, PG_IN_USE) == 0) continue;
    if (!patLists(s, length, load<u32>(program, PG_NUMBER), load<u32>(program, PG_PMT_PID))) {
      store<u32>(program, 0, PG_IN_USE);
      forgetPmtPid(load<u32>(program, PG_PMT_PID));
    }
  }
  for (let p = s + 8; p < s + length - 4; p += 4) {
    const number = be16(p);
    const pmtPid = be16(p + 2) & 0x1fff;
    if (number == 0 || findProgram(number, pmtPid) != 0) continue;
    for (let i: u32 = 0; i < MAX_PROGRAMS; i++) {
      const program = programAt(i);
      if (load<u32>(program, PG_IN_USE) != 0) continue;
      store<u32>(program, 1, PG_IN_USE);
      store<u32>(program, number, PG_NUMBER);
      store<u32>(program, pmtPid, PG_PMT_PID);
      store<u32>(program, 0x1fff, PG_PCR_PID);
      store<i32>(program, -1, PG_VERSION);
      store<u32>(program, 0, PG_CRC);
      store<f64>(program, now, PG_LAST_PMT_MS);
      const entry = pidEntry(pmtPid);
      setPidFlags(entry, pidFlags(entry) | F_PMT);
      claimSlot(pmtPid);
      break;
    }
  }
  copyOut(EV_PAT, 8, 0, s, length);
}

function patLists(s: usize, length: u32, number: u32, pmtPid: u32): bool {
  for (let p = s + 8; p < s + length - 4; p += 4) {
    if (be16(p) == number && (be16(p + 2) & 0x1fff) == pmtPid) return true;
  }
  return false;
}

function findProgram(number: u32, pmtPid: u32): usize {
  for (let i: u32 = 0; i < MAX_PROGRAMS; i++) {
    const program = programAt(i);
    if (
      load<u32>(program, PG_IN_USE) != 0 &&
      load<u32>(program, PG_NUMBER) == number &&
      load<u32>(program, PG_PMT_PID) == pmtPid
    )
      return program;
  }
  return 0;
}

function forgetPmtPid(pmtPid: u32): void {
  for (let i: u32 = 0; i < MAX_PROGRAMS; i++) {
    const program = programAt(i);
    if (load<u32>(program, PG_IN_USE) != 0 && load<u32>(program, PG_PMT_PID) == pmtPid) return;
  }
  const entry = pidEntry(pmtPid);
  setPidFlags(entry, pidFlags(entry) & ~F_PMT);
  if (pmtPid != 0) releaseSlot(pmtPid);
}

function applyPmt(pid: u32, s: usize, length: u32): void {
  if (!usableLongSection(s, length, 16)) return;
  const program = findProgram(be16(s + 3), pid);
  if (program == 0) return;
  const now = load<f64>(ST_NOW_MS);
  store<f64>(program, now, PG_LAST_PMT_MS);
  const crc = be32(s + length - 4);
  // The CRC, not the version, decides: some injectors rewrite a PMT and keep its version number.
  if (load<i32>(program, PG_VERSION) >= 0 && crc == load<u32>(program, PG_CRC)) return;

  const body = s + length - 4;
  const programInfoEnd = s + 12 + <usize>(be16(s + 10) & 0x0fff);
  if (programInfoEnd > body) {
    bump(ST_SECTION_ERRORS);
    return;
  }
  for (let p = programInfoEnd; p < body; ) {
    p += 5 + <usize>(be16(p + 3) & 0x0fff);
    if (p > body) {
      bump(ST_SECTION_ERRORS);
      return;
    }
  }

  const index = <u32>((program - programAt(0)) / 32);
  store<u32>(program, crc, PG_CRC);
  store<i32>(program, (<i32>load<u8>(s, 5) >> 1) & 0x1f, PG_VERSION);
  store<u32>(program, be16(s + 8) & 0x1fff, PG_PCR_PID);

  for (let esPid = nextSeen(0); esPid < PID_COUNT; esPid = nextSeen(esPid + 1)) {
    const entry = pidEntry(esPid);
    const flags = pidFlags(entry);
    if (((flags >> 16) & 0xff) != index || (flags & F_REFERENCED) == 0) continue;
    // A SCTE-35 PID keeps its role when a later PMT leaves it out: cues are rare and precious, and the
    // same-version rewrites seen in the wild alternate between PMTs with and without it.
    const kept = (flags & F_SCTE35) != 0 ? flags : (flags & 0xff) | (NO_PROGRAM << 16);
    setPidFlags(entry, kept & ~F_REFERENCED);
  }
  for (let p = programInfoEnd; p < body; p += 5 + <usize>(be16(p + 3) & 0x0fff)) {
    const streamType = <u32>load<u8>(p);
    const esPid = be16(p + 1) & 0x1fff;
    const entry = pidEntry(esPid);
    const old = pidFlags(entry);
    let flags = (old & 0xff & ~F_SCTE35) | F_REFERENCED | (streamType << 8) | (index << 16);
    if (streamType == STREAM_TYPE_SCTE35) flags |= F_SCTE35;
    setPidFlags(entry, flags);
    if (streamType != STREAM_TYPE_SCTE35) store<f64>(timesAt(esPid), now + 1, TM_PID_TIMER);
    if (streamType == STREAM_TYPE_SCTE35) claimSlot(esPid);
    else if ((old & F_SCTE35) != 0 && (old & F_PMT) == 0) releaseSlot(esPid);
  }
  rebuildReferenced();
  copyOut(EV_PMT, 8, pid, s, length);
}

function rebuildReferenced(): void {
  referencedCount = 0;
  for (let pid = nextSeen(0); pid < PID_COUNT && referencedCount < MAX_REFERENCED; pid = nextSeen(pid + 1)) {
    const flags = pidFlags(pidEntry(pid));
    // SCTE-35 PIDs may stay silent for hours between cues; their absence is no PID error.
    if ((flags & F_REFERENCED) != 0 && (flags & F_SCTE35) == 0) {
      store<u16>(REFERENCED + ((<usize>referencedCount) << 1), <u16>pid);
      referencedCount++;
    }
  }
}

function scte35(pid: u32, s: usize, length: u32): void {
  bump(ST_SCTE35_SECTIONS);
  const record = copyOut(EV_SCTE35, 16, pid, s, length);
  if (record == 0) return;
  let pcr: f64 = -1;
  const program = (pidFlags(pidEntry(pid)) >> 16) & 0xff;
  if (program != NO_PROGRAM) {
    const pcrEntry = pidEntry(load<u32>(programAt(program), PG_PCR_PID));
    if ((pidFlags(pcrEntry) & F_HAS_PCR) != 0) pcr = load<f64>(pcrEntry, PD_LAST_PCR);
  }
  store<f64>(record, pcr, EVENT_HEADER + 8);
}

// Time-based TR 101 290 checks, run a few times a second from push: PAT and PMT at least every 500 ms
// (1.3, 1.5), and every PID a PMT lists present within PID_TIMEOUT_MS (1.6). Each error restarts its
// timer, so a table or PID that stays absent is counted once per period.
export function checkTimers(now: f64): void {
  if (lastPatMs < 0) lastPatMs = now;
  if (now - lastPatMs > PSI_INTERVAL_MS) {
    lastPatMs = now;
    patError();
  }
  for (let i: u32 = 0; i < MAX_PROGRAMS; i++) {
    const program = programAt(i);
    if (load<u32>(program, PG_IN_USE) == 0) continue;
    if (load<f64>(program, PG_LAST_PMT_MS) < 0) store<f64>(program, now, PG_LAST_PMT_MS);
    if (now - load<f64>(program, PG_LAST_PMT_MS) > PSI_INTERVAL_MS) {
      store<f64>(program, now, PG_LAST_PMT_MS);
      pmtError(load<u32>(program, PG_PMT_PID));
    }
  }
  for (let i: u32 = 0; i < referencedCount; i++) {
    const pid = <u32>load<u16>(REFERENCED + ((<usize>i) << 1));
    const entry = pidEntry(pid);
    // Timed from its last packet, or since it was listed or last counted missing when that is later.
    const timer = timesAt(pid) + TM_PID_TIMER;
    const since = max(pidLastSeen(entry), load<f64>(timer) - 1);
    if (since < 0) store<f64>(timer, now + 1);
    else if (now - since > PID_TIMEOUT_MS) {
      store<f64>(timer, now + 1);
      bump(ST_PID_ERRORS);
      event2(EV_TR101290, IND_PID_ERROR, pid);
    }
  }
}

// Scrambling on PID 0 or a PMT PID is a PAT or PMT error (TR 101 290 1.3, 1.5).
export function scrambledTable(pid: u32): void {
  if (pid == 0) patError();
  else pmtError(pid);
}
