// RTP (RFC 3550) header parsing and sequence accounting.

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
  ST_RTP_SSRC,
  ST_RTP_SSRC_CHANGES,
} from "./layout";

let highestSequence: u32 = 0;
let started = false;

export function resetRtp(): void {
  started = false;
  highestSequence = 0;
  store<i32>(ST_RTP_PAYLOAD_TYPE, -1);
  store<i32>(ST_RTP_LAST_SEQUENCE, -1);
  memory.fill(RTP_WINDOW, 0, RTP_WINDOW_BITS >> 3);
}

// Parses the RTP header of the datagram at INPUT. Returns the TS payload as (offset << 32 | length), or a
// negative status when the header does not fit the datagram.
export function rtpPayload(length: u32): i64 {
  if (length < 12) return E_TOO_SHORT;
  const first = <u32>load<u8>(INPUT);
  let offset: u32 = 12 + ((first & 0x0f) << 2);
  if (offset > length) return E_RTP_CSRC;
  if ((first & 0x10) != 0) {
    if (offset + 4 > length) return E_RTP_EXTENSION;
    offset += 4 + (be16(INPUT + <usize>offset + 2) << 2);
    if (offset > length) return E_RTP_EXTENSION;
  }
  let end = length;
  if ((first & 0x20) != 0) {
    const padding = <u32>load<u8>(INPUT + <usize>length - 1);
    if (padding == 0 || offset + padding > length) return E_RTP_PADDING;
    end -= padding;
  }

  const payloadType = <i32>(load<u8>(INPUT, 1) & 0x7f);
  const previousType = load<i32>(ST_RTP_PAYLOAD_TYPE);
  if (payloadType != previousType) {
    store<i32>(ST_RTP_PAYLOAD_TYPE, payloadType);
    event2(EV_RTP_PAYLOAD_TYPE, <u32>previousType, <u32>payloadType);
  }
  const ssrc = be32(INPUT + 8);
  if (started && ssrc != load<u32>(ST_RTP_SSRC)) {
    // A new source restarts the sequence space.
    bump(ST_RTP_SSRC_CHANGES);
    started = false;
  }
  store<u32>(ST_RTP_SSRC, ssrc);
  sequence(be16(INPUT + 2));
  return ((<i64>offset) << 32) | <i64>(end - offset);
}

function windowWord(sequence: u32): usize {
  return RTP_WINDOW + ((<usize>((sequence & (RTP_WINDOW_BITS - 1)) >> 5)) << 2);
}

function mark(sequence: u32): void {
  const word = windowWord(sequence);
  store<u32>(word, load<u32>(word) | (1 << (sequence & 31)));
}

// Sequence numbers are compared modulo 2^16: a packet up to 32767 ahead of the highest seen advances it,
// counting the numbers skipped as lost; anything behind is late. A late packet whose bit is still set in
// the window is a duplicate; otherwise it fills a gap counted as lost, so it moves from lost to reordered.
function sequence(seq: u32): void {
  store<i32>(ST_RTP_LAST_SEQUENCE, <i32>seq);
  if (!started) {
    started = true;
    highestSequence = seq;
    memory.fill(RTP_WINDOW, 0, RTP_WINDOW_BITS >> 3);
    mark(seq);
    return;
  }
  const ahead = (seq - highestSequence) & 0xffff;
  if (ahead == 0) {
    bump(ST_RTP_DUPLICATE);
    return;
  }
  if (ahead < 0x8000) {
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
    return;
  }
  const behind: u32 = 0x10000 - ahead;
  if (behind >= RTP_WINDOW_BITS) {
    // Older than the window: whether it was lost before cannot be told any more.
    bump(ST_RTP_REORDERED);
    return;
  }
  if ((load<u32>(windowWord(seq)) & (1 << (seq & 31))) != 0) {
    bump(ST_RTP_DUPLICATE);
    return;
  }
  mark(seq);
  bump(ST_RTP_REORDERED);
  const lost = load<u32>(ST_RTP_LOST);
  if (lost > 0) store<u32>(ST_RTP_LOST, lost - 1);
}
