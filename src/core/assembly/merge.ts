// Sequence merge buffer: SMPTE ST 2022-7 hitless merge of two RTP paths, and the reorder buffer that puts
// FEC-recovered packets back in place on a single path. Its own module and memory (build/merge.wasm): one
// instance per merge, apart from the per-input packet core.
//
// The host writes an RTP datagram at INPUT and calls insert(length, path, nowMs); the first copy of each
// sequence number is kept in its slot, later copies are counted and dropped. release(nowMs, windowMs) then
// hands datagrams back strictly in sequence order; a sequence number that no path delivered is given up once
// the packet after it has waited windowMs. The clock is the host's: the core keeps no time of its own.

import { bump, checkRtp, INPUT, SLOT_SIZE, STATUS, STATUS_SIZE } from "./slots";

export { inputAddress, inputCapacity, statusAddress } from "./slots";

// Per slot: state (0 while empty, STORED, RELEASED), sequence number, length, arrival time (f64).
const META: usize = 0x11000;
const META_STRIDE: u32 = 32;
const SLOTS: u32 = 2048;
const DATA: usize = 0x30000;
const MEMORY_END: usize = DATA + <usize>(SLOTS * SLOT_SIZE);
const MAX_PATHS: u32 = 4;

const M_STATE: usize = 0;
const M_SEQUENCE: usize = 4;
const M_LENGTH: usize = 8;
const M_ARRIVED: usize = 16;
const STORED: u32 = 1;
const RELEASED: u32 = 2;

// Status words (byte offsets); the host mirrors them in redundancy-core.ts.
const ST_OUT_ADDRESS: usize = STATUS + 0;
const ST_STARTED: usize = STATUS + 4;
const ST_NEXT: usize = STATUS + 8;
const ST_HIGHEST: usize = STATUS + 12;
const ST_PENDING: usize = STATUS + 16;
const ST_RELEASED: usize = STATUS + 20;
const ST_SKIPPED: usize = STATUS + 24;
const ST_DUPLICATES: usize = STATUS + 28;
const ST_LATE: usize = STATUS + 32;
const ST_NOT_RTP: usize = STATUS + 36;
const ST_TOO_LONG: usize = STATUS + 40;
const ST_RESYNCS: usize = STATUS + 44;
const ST_RECEIVED: usize = STATUS + 64; // u32 per path
const ST_FIRST_COPIES: usize = STATUS + 80; // u32 per path
const ST_GAP_ARRIVED: usize = STATUS + 96; // f64: when the packet after the gap that holds the rest came

const INSERT_STORED: i32 = 1;
const INSERT_DUPLICATE: i32 = 0;
const E_LATE: i32 = -3;
// So far ahead that it does not fit beside the packets still waiting: the host releases with a negative
// window (no waiting) and inserts again.
const E_AHEAD: i32 = -4;

reset();

export function reset(): void {
  memory.fill(STATUS, 0, STATUS_SIZE);
  memory.fill(META, 0, <usize>(SLOTS * META_STRIDE));
}

export function memoryEnd(): usize {
  return MEMORY_END;
}

function meta(sequence: u32): usize {
  return META + <usize>((sequence & (SLOTS - 1)) * META_STRIDE);
}

function data(sequence: u32): usize {
  return DATA + <usize>((sequence & (SLOTS - 1)) * SLOT_SIZE);
}

export function insert(length: i32, path: i32, nowMs: f64): i32 {
  const error = checkRtp(length, ST_TOO_LONG, ST_NOT_RTP);
  if (error != 0) return error;
  const lane = <u32>path & (MAX_PATHS - 1);
  bump(ST_RECEIVED + <usize>(lane << 2));
  const sequence = <u32>bswap<u16>(load<u16>(INPUT + 2));
  if (load<u32>(ST_STARTED) == 0) {
    store<u32>(ST_STARTED, 1);
    resync(sequence);
  }
  const next = load<u32>(ST_NEXT);
  const ahead = (sequence - next) & 0xffff;
  if (ahead >= SLOTS) {
    if (ahead >= 0x10000 - SLOTS) return behind(sequence);
    if (load<u32>(ST_PENDING) != 0) return E_AHEAD;
    // Nothing waits and the sequence jumped far: the sender restarted, so follow it.
    bump(ST_RESYNCS);
    resync(sequence);
  }
  const slot = meta(sequence);
  if (load<u32>(slot, M_STATE) == STORED && load<u32>(slot, M_SEQUENCE) == sequence) {
    bump(ST_DUPLICATES);
    return INSERT_DUPLICATE;
  }
  memory.copy(data(sequence), INPUT, <usize>length);
  store<u32>(slot, STORED, M_STATE);
  store<u32>(slot, sequence, M_SEQUENCE);
  store<u32>(slot, <u32>length, M_LENGTH);
  store<f64>(slot, nowMs, M_ARRIVED);
  bump(ST_PENDING);
  bump(ST_FIRST_COPIES + <usize>(lane << 2));
  const highest = load<u32>(ST_HIGHEST);
  const past = (sequence - highest) & 0xffff;
  if (past != 0 && past < 0x8000) store<u32>(ST_HIGHEST, sequence);
  return INSERT_STORED;
}

function resync(sequence: u32): void {
  store<u32>(ST_NEXT, sequence);
  store<u32>(ST_HIGHEST, (sequence - 1) & 0xffff);
}

// Behind the release point: a copy of a packet already sent is a duplicate; one that was given up is late.
function behind(sequence: u32): i32 {
  const slot = meta(sequence);
  if (load<u32>(slot, M_STATE) == RELEASED && load<u32>(slot, M_SEQUENCE) == sequence) {
    bump(ST_DUPLICATES);
    return INSERT_DUPLICATE;
  }
  bump(ST_LATE);
  return E_LATE;
}

// Returns the length of the next datagram in sequence, placed at the address in ST_OUT_ADDRESS, or 0 when the
// next one is missing and the packet after the gap has waited less than windowMs (negative: do not wait).
export function release(nowMs: f64, windowMs: f64): i32 {
  while (load<u32>(ST_PENDING) != 0) {
    const next = load<u32>(ST_NEXT);
    const slot = meta(next);
    if (load<u32>(slot, M_STATE) == STORED && load<u32>(slot, M_SEQUENCE) == next) {
      store<u32>(slot, RELEASED, M_STATE);
      store<u32>(ST_PENDING, load<u32>(ST_PENDING) - 1);
      bump(ST_RELEASED);
      store<u32>(ST_NEXT, (next + 1) & 0xffff);
      store<u32>(ST_OUT_ADDRESS, <u32>data(next));
      return <i32>load<u32>(slot, M_LENGTH);
    }
    // Pending packets all lie within SLOTS after `next`, so this finds one.
    let gap: u32 = 1;
    while (gap < SLOTS) {
      const candidate = meta(next + gap);
      if (
        load<u32>(candidate, M_STATE) == STORED &&
        load<u32>(candidate, M_SEQUENCE) == ((next + gap) & 0xffff)
      )
        break;
      gap++;
    }
    if (gap == SLOTS) {
      // Unreachable while the invariant holds; recover rather than spin.
      store<u32>(ST_PENDING, 0);
      return 0;
    }
    const arrived = load<f64>(meta(next + gap), M_ARRIVED);
    if (windowMs >= 0 && nowMs - arrived < windowMs) {
      store<f64>(ST_GAP_ARRIVED, arrived);
      return 0;
    }
    store<u32>(ST_SKIPPED, load<u32>(ST_SKIPPED) + gap);
    store<u32>(ST_NEXT, (next + gap) & 0xffff);
  }
  return 0;
}
