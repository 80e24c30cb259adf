// SMPTE 2022-1 / Pro-MPEG CoP3 FEC decoder: one instance per input (build/fec.wasm). Media packets are kept
// by sequence number; each column (D=0) or row (D=1) FEC packet protects NA media packets spaced Offset
// apart from SNBase. When exactly one of them is missing, XOR of the FEC payload and the others rebuilds it:
// payload, length, payload type, timestamp, marker and the P/X/CC bits (carried XORed in the FEC packet's own
// RTP header, as RFC 2733 does). A recovery may complete another FEC packet's set, so recoveries cascade.
//
// The host writes a datagram at INPUT and calls media(length) or fec(length); both return how many packets
// were rebuilt, whose sequence numbers are listed at RECOVERED and whose bytes sit in their media slots.
//
// A rebuild counts as recovered only when it fills a gap the media path left. The host may read an FEC
// socket before the media socket's datagram of the same moment, so a packet rebuilt ahead of the media path
// may still come: it is held as EARLY and counted only once the media path moves past it without its copy.

import { bump, checkRtp, E_TOO_LONG, INPUT, SLOT_SIZE, STATUS, STATUS_SIZE } from "./slots";

export { inputAddress, inputCapacity, statusAddress } from "./slots";

const RECOVERED: usize = 0x10900;
const RECOVERED_MAX: u32 = 64;
// Media slot metadata: tag (sequence | VALID | PRESENT), length.
const MEDIA_META: usize = 0x11000;
const MEDIA_SLOTS: u32 = 1024;
// FEC slot metadata: active, SNBase, offset, NA, FEC header position, datagram length.
const FEC_META: usize = 0x13000;
const FEC_STRIDE: u32 = 32;
const FEC_SLOTS: u32 = 64;
const FEC_DATA: usize = 0x14000;
const MEDIA_DATA: usize = 0x40000;
const MEMORY_END: usize = MEDIA_DATA + <usize>(MEDIA_SLOTS * SLOT_SIZE);

const VALID: u32 = 0x10000;
const PRESENT: u32 = 0x20000;
// Rebuilt before the media path reached its sequence number: not yet known to fill a gap.
const EARLY: u32 = 0x40000;

const F_ACTIVE: usize = 0;
const F_BASE: usize = 4;
const F_OFFSET: usize = 8;
const F_COUNT: usize = 12;
const F_HEADER: usize = 16;
const F_LENGTH: usize = 20;

// A missing packet is judged unrecoverable this many sequence numbers after it, scaled to the largest FEC
// span seen so that a column FEC sent a matrix late still counts.
const HORIZON_MIN: u32 = 32;
const HORIZON_MAX: u32 = MEDIA_SLOTS / 2;

const ST_RECOVERED_NOW: usize = STATUS + 0;
const ST_MEDIA: usize = STATUS + 4;
const ST_COLUMN: usize = STATUS + 8;
const ST_ROW: usize = STATUS + 12;
const ST_RECOVERED: usize = STATUS + 16;
const ST_UNRECOVERABLE: usize = STATUS + 20;
const ST_MALFORMED_FEC: usize = STATUS + 24;
const ST_NOT_RTP: usize = STATUS + 28;
const ST_TOO_LONG: usize = STATUS + 32;
const ST_STALE_FEC: usize = STATUS + 36;
const ST_HIGHEST: usize = STATUS + 40;
const ST_STARTED: usize = STATUS + 44;
const ST_JUDGED: usize = STATUS + 48;
const ST_HORIZON: usize = STATUS + 52;
const ST_SSRC: usize = STATUS + 56;
const ST_PENDING_FEC: usize = STATUS + 60;
const ST_NEXT_FEC: usize = STATUS + 64;
// The highest sequence number from the media socket itself (ST_HIGHEST also follows rebuilds).
const ST_MEDIA_HIGHEST: usize = STATUS + 68;
// How many media slots are tagged EARLY.
const ST_EARLY: usize = STATUS + 72;

const E_MALFORMED_FEC: i32 = -3;

reset();

export function reset(): void {
  memory.fill(STATUS, 0, STATUS_SIZE);
  memory.fill(MEDIA_META, 0, <usize>(MEDIA_SLOTS * 8));
  memory.fill(FEC_META, 0, <usize>(FEC_SLOTS * FEC_STRIDE));
  store<u32>(ST_HORIZON, HORIZON_MIN);
}

export function recoveredAddress(): usize {
  return RECOVERED;
}
export function memoryEnd(): usize {
  return MEMORY_END;
}
// Where the bytes of the media packet with this sequence number are kept.
export function mediaAddress(sequence: u32): usize {
  return MEDIA_DATA + <usize>((sequence & (MEDIA_SLOTS - 1)) * SLOT_SIZE);
}
export function mediaLength(sequence: u32): u32 {
  return load<u32>(mediaMeta(sequence), 4);
}

function be16(p: usize): u32 {
  return <u32>bswap<u16>(load<u16>(p));
}

function be32(p: usize): u32 {
  return bswap<u32>(load<u32>(p));
}

function mediaMeta(sequence: u32): usize {
  return MEDIA_META + <usize>((sequence & (MEDIA_SLOTS - 1)) << 3);
}

function fecMeta(slot: u32): usize {
  return FEC_META + <usize>(slot * FEC_STRIDE);
}

function fecData(slot: u32): usize {
  return FEC_DATA + <usize>(slot * SLOT_SIZE);
}

function isAhead(sequence: u32, reference: u32): bool {
  const ahead = (sequence - reference) & 0xffff;
  return ahead != 0 && ahead < 0x8000;
}

// A media datagram from the wire.
export function media(length: i32): i32 {
  store<u32>(ST_RECOVERED_NOW, 0);
  const error = checkRtp(length, ST_TOO_LONG, ST_NOT_RTP);
  if (error != 0) return error;
  bump(ST_MEDIA);
  const sequence = be16(INPUT + 2);
  store<u32>(ST_SSRC, be32(INPUT + 8));
  if (load<u32>(ST_STARTED) == 0) {
    store<u32>(ST_STARTED, 1);
    store<u32>(ST_HIGHEST, (sequence - 1) & 0xffff);
    store<u32>(ST_MEDIA_HIGHEST, (sequence - 1) & 0xffff);
    store<u32>(ST_JUDGED, sequence);
  }
  const mediaAhead = (sequence - load<u32>(ST_MEDIA_HIGHEST)) & 0xffff;
  if (mediaAhead != 0 && mediaAhead < 0x8000) {
    if (load<u32>(ST_EARLY) != 0) passEarly(sequence, mediaAhead);
    store<u32>(ST_MEDIA_HIGHEST, sequence);
  }
  const slot = mediaMeta(sequence);
  const tag = load<u32>(slot);
  if (isAhead(sequence, load<u32>(ST_HIGHEST))) {
    advanceTo(sequence);
  } else if (tag != (sequence | VALID)) {
    // Behind: either already here (a duplicate) or too old to matter.
    return 0;
  }
  memory.copy(mediaAddress(sequence), INPUT, <usize>length);
  store<u32>(slot, sequence | VALID | PRESENT);
  store<u32>(slot, <u32>length, 4);
  if (load<u32>(ST_PENDING_FEC) != 0) {
    tryCovering(sequence);
    cascade(0);
  }
  return <i32>load<u32>(ST_RECOVERED_NOW);
}

// The media path reached `sequence`, `ahead` past where it was: an EARLY rebuild of `sequence` was not needed
// (its copy came), and those of the sequence numbers it skipped filled real gaps.
function passEarly(sequence: u32, ahead: u32): void {
  const early = sequence | VALID | PRESENT | EARLY;
  const slot = mediaMeta(sequence);
  if (load<u32>(slot) == early) {
    store<u32>(slot, early & ~EARLY);
    store<u32>(ST_EARLY, load<u32>(ST_EARLY) - 1);
  }
  if (ahead > MEDIA_SLOTS) ahead = MEDIA_SLOTS;
  for (let k: u32 = 1; k < ahead && load<u32>(ST_EARLY) != 0; k++) settleEarly((sequence - k) & 0xffff);
}

// Counts an EARLY rebuild of `sequence` as recovered, if its slot holds one.
function settleEarly(sequence: u32): void {
  const slot = mediaMeta(sequence);
  const early = sequence | VALID | PRESENT | EARLY;
  if (load<u32>(slot) != early) return;
  store<u32>(slot, early & ~EARLY);
  store<u32>(ST_EARLY, load<u32>(ST_EARLY) - 1);
  bump(ST_RECOVERED);
}

// Marks the sequence numbers skipped on the way to `sequence` as missing, then judges the oldest ones.
function advanceTo(sequence: u32): void {
  const ahead = (sequence - load<u32>(ST_HIGHEST)) & 0xffff;
  store<u32>(mediaMeta(sequence), sequence | VALID);
  store<u32>(ST_HIGHEST, sequence);
  if (ahead >= MEDIA_SLOTS) {
    // A jump past the whole buffer is the sender restarting, not loss; what was rebuilt ahead of the media
    // path will not come now.
    store<u32>(ST_JUDGED, sequence);
    for (let s: u32 = 0; s < MEDIA_SLOTS && load<u32>(ST_EARLY) != 0; s++) {
      const tag = load<u32>(MEDIA_META + <usize>(s << 3));
      if ((tag & EARLY) != 0) settleEarly(tag & 0xffff);
    }
    store<u32>(ST_EARLY, 0);
    return;
  }
  for (let k: u32 = 1; k < ahead; k++) {
    const skipped = (sequence - k) & 0xffff;
    store<u32>(mediaMeta(skipped), skipped | VALID);
  }
  const horizon = load<u32>(ST_HORIZON);
  let judged = load<u32>(ST_JUDGED);
  while (((sequence - judged) & 0xffff) > horizon) {
    const tag = load<u32>(mediaMeta(judged));
    if (tag == (judged | VALID)) bump(ST_UNRECOVERABLE);
    else if ((tag & EARLY) != 0) settleEarly(judged);
    judged = (judged + 1) & 0xffff;
  }
  store<u32>(ST_JUDGED, judged);
}

// An FEC datagram from the column or row stream.
export function fec(length: i32): i32 {
  store<u32>(ST_RECOVERED_NOW, 0);
  if (<u32>length > SLOT_SIZE) {
    bump(ST_TOO_LONG);
    return E_TOO_LONG;
  }
  const first = <u32>load<u8>(INPUT);
  if (length < 12 || (first & 0xc0) != 0x80) return malformedFec();
  let header: u32 = 12 + ((first & 0x0f) << 2);
  if ((first & 0x10) != 0) {
    if (header + 4 > <u32>length) return malformedFec();
    header += 4 + (be16(INPUT + <usize>header + 2) << 2);
  }
  if (header + 16 > <u32>length) return malformedFec();
  const h = INPUT + <usize>header;
  const fields = <u32>load<u8>(h, 12);
  const row = (fields & 0x40) != 0;
  const type = (fields >> 3) & 7;
  const offset = <u32>load<u8>(h, 13);
  const count = <u32>load<u8>(h, 14);
  // Only the XOR code (type 0) exists in 2022-1; its sets are at most 20 wide and 20 deep.
  if (type != 0 || offset == 0 || count == 0 || offset * (count - 1) >= HORIZON_MAX) return malformedFec();
  if (row && offset != 1) return malformedFec();
  if (<u32>length - header - 16 > SLOT_SIZE - 12) return malformedFec();
  bump(row ? ST_ROW : ST_COLUMN);

  const span = offset * (count - 1) + 1;
  let horizon = span * 3;
  if (horizon < HORIZON_MIN) horizon = HORIZON_MIN;
  if (horizon > HORIZON_MAX) horizon = HORIZON_MAX;
  if (horizon > load<u32>(ST_HORIZON)) store<u32>(ST_HORIZON, horizon);

  const slot = load<u32>(ST_NEXT_FEC);
  store<u32>(ST_NEXT_FEC, (slot + 1) & (FEC_SLOTS - 1));
  const m = fecMeta(slot);
  if (load<u32>(m, F_ACTIVE) != 0) {
    bump(ST_STALE_FEC);
    store<u32>(ST_PENDING_FEC, load<u32>(ST_PENDING_FEC) - 1);
  }
  memory.copy(fecData(slot), INPUT, <usize>length);
  store<u32>(m, 1, F_ACTIVE);
  store<u32>(m, be16(h), F_BASE);
  store<u32>(m, offset, F_OFFSET);
  store<u32>(m, count, F_COUNT);
  store<u32>(m, header, F_HEADER);
  store<u32>(m, <u32>length, F_LENGTH);
  bump(ST_PENDING_FEC);
  if (load<u32>(ST_STARTED) != 0) {
    attempt(slot);
    cascade(0);
  }
  return <i32>load<u32>(ST_RECOVERED_NOW);
}

function malformedFec(): i32 {
  bump(ST_MALFORMED_FEC);
  return E_MALFORMED_FEC;
}

// Each rebuilt packet may be the last one missing from another FEC packet's set.
function cascade(from: u32): void {
  for (let i = from; i < load<u32>(ST_RECOVERED_NOW); i++) {
    tryCovering(load<u32>(RECOVERED + <usize>(i << 2)));
  }
}

function tryCovering(sequence: u32): void {
  for (let slot: u32 = 0; slot < FEC_SLOTS; slot++) {
    const m = fecMeta(slot);
    if (load<u32>(m, F_ACTIVE) == 0) continue;
    const offset = load<u32>(m, F_OFFSET);
    const distance = (sequence - load<u32>(m, F_BASE)) & 0xffff;
    if (distance % offset == 0 && distance / offset < load<u32>(m, F_COUNT)) attempt(slot);
  }
}

function retire(m: usize): void {
  store<u32>(m, 0, F_ACTIVE);
  store<u32>(ST_PENDING_FEC, load<u32>(ST_PENDING_FEC) - 1);
}

function attempt(slot: u32): void {
  const m = fecMeta(slot);
  const base = load<u32>(m, F_BASE);
  const offset = load<u32>(m, F_OFFSET);
  const count = load<u32>(m, F_COUNT);
  const highest = load<u32>(ST_HIGHEST);
  let missing: u32 = 0;
  let lost: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const sequence = (base + i * offset) & 0xffff;
    const tag = load<u32>(mediaMeta(sequence));
    if ((tag & ~EARLY) == (sequence | VALID | PRESENT)) continue;
    if (tag != (sequence | VALID) && !isAhead(sequence, highest)) {
      // Its slot has moved on to a newer packet: this FEC packet came too late to help.
      bump(ST_STALE_FEC);
      retire(m);
      return;
    }
    lost = sequence;
    if (++missing > 1) return;
  }
  if (missing == 0) {
    retire(m);
    return;
  }
  if (load<u32>(ST_RECOVERED_NOW) == RECOVERED_MAX) return;
  if (!rebuild(slot, lost)) {
    bump(ST_MALFORMED_FEC);
    retire(m);
    return;
  }
  retire(m);
  if (isAhead(lost, highest)) advanceTo(lost);
  if (isAhead(lost, load<u32>(ST_MEDIA_HIGHEST))) {
    store<u32>(mediaMeta(lost), lost | VALID | PRESENT | EARLY);
    bump(ST_EARLY);
  } else {
    store<u32>(mediaMeta(lost), lost | VALID | PRESENT);
    bump(ST_RECOVERED);
  }
  const now = load<u32>(ST_RECOVERED_NOW);
  store<u32>(RECOVERED + <usize>(now << 2), lost);
  store<u32>(ST_RECOVERED_NOW, now + 1);
}

function xorInto(out: usize, from: usize, length: u32): void {
  let i: u32 = 0;
  for (; i + 8 <= length; i += 8) {
    store<u64>(out + <usize>i, load<u64>(out + <usize>i) ^ load<u64>(from + <usize>i));
  }
  for (; i < length; i++) store<u8>(out + <usize>i, load<u8>(out + <usize>i) ^ load<u8>(from + <usize>i));
}

// Writes the packet `lost` into its media slot; false when the FEC packet does not fit the media it protects.
function rebuild(slot: u32, lost: u32): bool {
  const m = fecMeta(slot);
  const packet = fecData(slot);
  const header = packet + <usize>load<u32>(m, F_HEADER);
  const protectedLength = load<u32>(m, F_LENGTH) - load<u32>(m, F_HEADER) - 16;
  const base = load<u32>(m, F_BASE);
  const offset = load<u32>(m, F_OFFSET);
  const count = load<u32>(m, F_COUNT);

  let lengthRecovery = be16(header + 2);
  let typeRecovery = <u32>load<u8>(header, 4) & 0x7f;
  let timestampRecovery = be32(header + 8);
  let bits = <u32>load<u8>(packet) & 0x3f;
  let marker = <u32>load<u8>(packet, 1) & 0x80;
  const out = mediaAddress(lost);
  memory.copy(out + 12, header + 16, <usize>protectedLength);
  for (let i: u32 = 0; i < count; i++) {
    const sequence = (base + i * offset) & 0xffff;
    if (sequence == lost) continue;
    const media = mediaAddress(sequence);
    const mediaLength = load<u32>(mediaMeta(sequence), 4) - 12;
    if (mediaLength > protectedLength) return false;
    lengthRecovery ^= mediaLength;
    typeRecovery ^= <u32>load<u8>(media, 1) & 0x7f;
    timestampRecovery ^= be32(media + 4);
    bits ^= <u32>load<u8>(media) & 0x3f;
    marker ^= <u32>load<u8>(media, 1) & 0x80;
    xorInto(out + 12, media + 12, mediaLength);
  }
  if (lengthRecovery > protectedLength) return false;
  store<u8>(out, <u8>(0x80 | bits));
  store<u8>(out, <u8>(marker | typeRecovery), 1);
  store<u16>(out, bswap<u16>(<u16>lost), 2);
  store<u32>(out, bswap<u32>(timestampRecovery), 4);
  store<u32>(out, bswap<u32>(load<u32>(ST_SSRC)), 8);
  store<u32>(mediaMeta(lost), 12 + lengthRecovery, 4);
  return true;
}
