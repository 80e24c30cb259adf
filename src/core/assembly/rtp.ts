// RTP (RFC 3550) header parsing, the SSRC lock and sequence accounting.

import { event2 } from "./events";
import {
  be16,
  be32,
  bump,
  E_RTP_CSRC,
  E_RTP_EXTENSION,
  E_RTP_PADDING,
  E_TOO_SHORT,
  EV_RTP_PAYLOAD_TYPE,
  INPUT,
  RTP_WINDOW,
  RTP_WINDOW_BITS,
  ST_RTP_DUPLICATE,
  ST_RTP_LAST_SEQUENCE,
  ST_RTP_LOST,
  ST_RTP_PAYLOAD_TYPE,
  ST_RTP_REORDERED,
  ST_RTP_RESTARTS,
  ST_RTP_SSRC,
  ST_RTP_SSRC_CHANGES,
} from "./layout";

// RFC 3550 appendix A.1: a jump of MAX_DROPOUT or more ahead, or more than MAX_MISORDER behind, is not loss
// or reordering but a sender that restarted its sequence; it is believed once the next packet follows it
// (MIN_SEQUENTIAL = 2). Late packets are told apart within the receive window, so it is the misorder limit.
const MAX_DROPOUT: u32 = 3000;
const MAX_MISORDER: u32 = RTP_WINDOW_BITS;
const NO_SEQUENCE: u32 = 0x10000;

// Where the datagram being read starts: INPUT, or a read slot of a batch (pushMany).
let at: usize = INPUT;
export function rtpAt(address: usize): void {
  at = address;
}

let highestSequence: u32 = 0;
let started = false;
let ssrcLocked = false;
// The sequence number that would confirm a restart: the one after a large jump.
let probation: u32 = NO_SEQUENCE;

export function resetRtp(): void {
  started = false;
  ssrcLocked = false;
  highestSequence = 0;
  probation = NO_SEQUENCE;
  store<i32>(ST_RTP_PAYLOAD_TYPE, -1);
  store<i32>(ST_RTP_LAST_SEQUENCE, -1);
  memory.fill(RTP_WINDOW, 0, RTP_WINDOW_BITS >> 3);
}

// Parses the RTP header of the datagram at `at`, changing nothing. Returns the TS payload as
// (offset << 32 | length), or a negative status when the header does not fit the datagram.
export function rtpPayload(length: u32): i64 {
  if (length < 12) return E_TOO_SHORT;
  const first = <u32>load<u8>(at);
  let offset: u32 = 12 + ((first & 0x0f) << 2);
  if (offset > length) return E_RTP_CSRC;
  if ((first & 0x10) != 0) {
    if (offset + 4 > length) return E_RTP_EXTENSION;
    offset += 4 + (be16(at + <usize>offset + 2) << 2);
    if (offset > length) return E_RTP_EXTENSION;
  }
  let end = length;
  if ((first & 0x20) != 0) {
    const padding = <u32>load<u8>(at + <usize>length - 1);
    if (padding == 0 || offset + padding > length) return E_RTP_PADDING;
    end -= padding;
  }
  return ((<i64>offset) << 32) | <i64>(end - offset);
}

export function rtpPayloadType(): u32 {
  return <u32>(load<u8>(at, 1) & 0x7f);
}

export function rtpSsrc(): u32 {
  return be32(at + 8);
}

export function rtpSequence(): u32 {
  return be16(at + 2);
}

// Another source than the one the input is locked to (false before any is locked).
export function foreignSsrc(): bool {
  return ssrcLocked && be32(at + 8) != load<u32>(ST_RTP_SSRC);
}

// Takes the datagram at `at` into the stream: locks its SSRC — a new one (`lockSsrc`) restarts the sequence
// space — and accounts for its sequence number. Without `lockSsrc` the SSRC is noted, never compared.
// Returns false for a copy of a datagram the receive window already holds (counted as a duplicate): the
// caller drops it, so a stream that reaches the input twice (two paths converging, a mirror port) leaves once.
export function acceptRtp(lockSsrc: bool): bool {
  const payloadType = <i32>rtpPayloadType();
  const previousType = load<i32>(ST_RTP_PAYLOAD_TYPE);
  if (payloadType != previousType) {
    store<i32>(ST_RTP_PAYLOAD_TYPE, payloadType);
    event2(EV_RTP_PAYLOAD_TYPE, <u32>previousType, <u32>payloadType);
  }
  if (lockSsrc && foreignSsrc()) {
    bump(ST_RTP_SSRC_CHANGES);
    started = false;
  }
  ssrcLocked = true;
  store<u32>(ST_RTP_SSRC, be32(at + 8));
  return sequence(be16(at + 2));
}

function windowWord(sequence: u32): usize {
  return RTP_WINDOW + ((<usize>((sequence & (RTP_WINDOW_BITS - 1)) >> 5)) << 2);
}

function mark(sequence: u32): void {
  const word = windowWord(sequence);
  store<u32>(word, load<u32>(word) | (1 << (sequence & 31)));
}

function restart(seq: u32): void {
  started = true;
  highestSequence = seq;
  probation = NO_SEQUENCE;
  memory.fill(RTP_WINDOW, 0, RTP_WINDOW_BITS >> 3);
  mark(seq);
}

// Sequence numbers are compared modulo 2^16: a packet less than MAX_DROPOUT ahead of the highest seen
// advances it, counting the numbers skipped as lost; one less than MAX_MISORDER behind is late. A late packet
// whose bit is still set in the window is a duplicate; otherwise it fills a gap counted as lost, so it moves
// from lost to reordered. Any larger jump is a restart on probation: counted once, and only when confirmed.
// Returns false for a duplicate alone: the one check is the window's bit, which the accounting reads anyway.
function sequence(seq: u32): bool {
  store<i32>(ST_RTP_LAST_SEQUENCE, <i32>seq);
  if (!started) {
    restart(seq);
    return true;
  }
  const ahead = (seq - highestSequence) & 0xffff;
  if (ahead == 0) {
    bump(ST_RTP_DUPLICATE);
    return false;
  }
  if (ahead < MAX_DROPOUT) {
    probation = NO_SEQUENCE;
    if (ahead > 1) store<u32>(ST_RTP_LOST, load<u32>(ST_RTP_LOST) + ahead - 1);
    if (ahead >= RTP_WINDOW_BITS) {
      memory.fill(RTP_WINDOW, 0, RTP_WINDOW_BITS >> 3);
    } else {
      for (let skipped: u32 = 1; skipped < ahead; skipped++) {
        const s = highestSequence + skipped;
        const word = windowWord(s);
        store<u32>(word, load<u32>(word) & ~(1 << (s & 31)));
      }
    }
    highestSequence = seq;
    mark(seq);
    return true;
  }
  const behind: u32 = 0x10000 - ahead;
  if (behind >= MAX_MISORDER) {
    if (seq == probation) {
      // The packet before this one started the new sequence: the sender restarted.
      bump(ST_RTP_RESTARTS);
      restart(seq);
      mark((seq - 1) & 0xffff);
    } else {
      probation = (seq + 1) & 0xffff;
    }
    return true;
  }
  if ((load<u32>(windowWord(seq)) & (1 << (seq & 31))) != 0) {
    bump(ST_RTP_DUPLICATE);
    return false;
  }
  mark(seq);
  bump(ST_RTP_REORDERED);
  const lost = load<u32>(ST_RTP_LOST);
  if (lost > 0) store<u32>(ST_RTP_LOST, lost - 1);
  return true;
}
