// The packet core: one instance per input. The host writes a datagram at INPUT and calls push; everything
// else is read from the status struct, the PID table and the event ring (see layout.ts).

import { initCrcTable } from "./crc";
import { event1 } from "./events";
import {
  bump,
  DEFAULT_LOCK_SILENCE_MS,
  E_FOREIGN_SSRC,
  E_OTHER_KIND,
  E_OWN_OUTPUT,
  E_PAYLOAD_TYPE,
  E_RTP_DUPLICATE,
  E_SENDER,
  E_SYNC,
  E_TOO_LONG,
  E_TOO_SHORT,
  E_TS_LENGTH,
  E_UNKNOWN_FORMAT,
  EV_INPUT_KIND,
  EVENTS,
  INPUT,
  INPUT_CAPACITY,
  KIND_RTP,
  KIND_UDP_TS,
  KIND_UNKNOWN,
  MEMORY_END,
  MSG_TRUNC,
  PID_COUNT,
  PID_STRIDE,
  PROGRAMS,
  pidEntry,
  RTP_PAYLOAD_MP2T,
  RX_DATA,
  RX_HEADER_BYTES,
  RX_HEADERS,
  RX_MSG_FLAGS,
  RX_MSG_LEN,
  RX_NAME_BYTES,
  RX_NAMES,
  RX_OUT,
  RX_RESULTS,
  RX_SLOT_BYTES,
  SLOT_STRIDE,
  SLOTS,
  ST_DATAGRAMS,
  ST_INPUT_KIND,
  ST_LAST_STATUS,
  ST_MALFORMED,
  ST_NOW_MS,
  ST_PACKETS,
  ST_PAYLOAD_LENGTH,
  ST_PAYLOAD_OFFSET,
  ST_REJECT_OTHER_KIND,
  ST_REJECT_OWN_OUTPUT,
  ST_REJECT_PAYLOAD_TYPE,
  ST_REJECT_SENDER,
  ST_REJECT_SSRC,
  ST_RUN_ACCEPTED,
  ST_RUN_BYTES,
  ST_RUN_UNIFORM,
  ST_SENDER,
  STATUS,
  STATUS_SIZE,
  TICK_MS,
  TM_STRIDE,
  timesAt,
} from "./layout";
import { nextSeen } from "./pid-fields";
import { checkTimers, resetPsi, touchedSlots } from "./psi";
import {
  acceptRtp,
  foreignSsrc,
  resetRtp,
  rtpAt,
  rtpPayload,
  rtpPayloadType,
  rtpSequence,
  rtpSsrc,
} from "./rtp";
import { setPcrRepetitionMs } from "./timing";
import { resetSync, tsPacket, wholeTs } from "./ts-packet";

let lastTickMs: f64 = -1;
let lastAcceptedMs: f64 = -1;
let lockSilenceMs: f64 = DEFAULT_LOCK_SILENCE_MS;
let ssrcLock = true;
let probationKind: u32 = KIND_UNKNOWN;
let probationSsrc: u32 = 0;
let probationSequence: u32 = 0;

initCrcTable();
// Whether a datagram was pushed since the last reset. The PID table and the section slots hold their reset
// state as zeros (pid-fields.ts), so a new memory holds it already: writing it again at start would make their
// 800 KiB resident in every core, whatever its stream uses.
let dirty = false;

reset();

export function reset(): void {
  if (dirty) {
    // Only what was written: the seen PIDs' entries and the slots claimed; the bitmap goes with PROGRAMS.
    for (let pid = nextSeen(0); pid < PID_COUNT; pid = nextSeen(pid + 1)) {
      memory.fill(pidEntry(pid), 0, PID_STRIDE);
      // Most seen PIDs never had times written (tables, stuffing): their pages are left as they are.
      const times = timesAt(pid);
      let written: u64 = 0;
      for (let at: usize = 0; at < TM_STRIDE; at += 8) written |= load<u64>(times + at);
      if (written != 0) memory.fill(times, 0, TM_STRIDE);
    }
    memory.fill(SLOTS, 0, <usize>(touchedSlots() * SLOT_STRIDE));
  }
  dirty = false;
  memory.fill(STATUS, 0, STATUS_SIZE);
  memory.fill(PROGRAMS, 0, EVENTS - PROGRAMS);
  store<f64>(ST_NOW_MS, -1);
  resetSync();
  lastTickMs = -1;
  lastAcceptedMs = -1;
  probationKind = KIND_UNKNOWN;
  resetRtp();
  resetPsi();
}

// Addresses and sizes of the shared regions, so the host can check them against its own constants.
export function inputAddress(): usize {
  return INPUT;
}
export function inputCapacity(): u32 {
  return INPUT_CAPACITY;
}
export function statusAddress(): usize {
  return STATUS;
}
export function memoryEnd(): usize {
  return MEMORY_END;
}

// The next PID at or after `pid` whose entry holds anything (PID_COUNT when none): for the host's snapshot.
export function nextSeenPid(pid: u32): u32 {
  return nextSeen(pid);
}

// An empty call, for the benchmark to measure what crossing into WebAssembly costs.
export function ping(): i32 {
  return 0;
}

// The host cannot write a datagram larger than the input region; it reports it here so it is counted.
export function rejectOversize(): i32 {
  store<u64>(ST_DATAGRAMS, load<u64>(ST_DATAGRAMS) + 1);
  return malformed(E_TOO_LONG);
}

// The host drops a datagram from a sender outside the input's allow-list before it is copied in; it is
// counted here with the others.
export function rejectSender(): i32 {
  store<u64>(ST_DATAGRAMS, load<u64>(ST_DATAGRAMS) + 1);
  return reject(ST_REJECT_SENDER, E_SENDER);
}

// The host drops a datagram that one of the service's own outputs sent (an output aimed at an input, a loop)
// before it is copied in; it is counted here with the others.
export function rejectOwnOutput(): i32 {
  store<u64>(ST_DATAGRAMS, load<u64>(ST_DATAGRAMS) + 1);
  return reject(ST_REJECT_OWN_OUTPUT, E_OWN_OUTPUT);
}

// How long the locked input kind (RTP or plain TS) and RTP source must be silent before another is taken:
// the channel's failover time. Without `lockSsrc` (a merged stream, made of two inputs' packets) the SSRC is
// not compared. Kept across reset.
export function configure(silenceMs: f64, lockSsrc: i32): void {
  lockSilenceMs = silenceMs;
  ssrcLock = lockSsrc != 0;
}

// The PCR_repetition_error limit (TR 101 290 2.3a): 100 ms unless set, DVB's is 40. Kept across reset.
export function pcrRepetitionLimit(ms: f64): void {
  setPcrRepetitionMs(ms);
}

function reject(counter: usize, status: i32): i32 {
  bump(counter);
  store<u32>(ST_PAYLOAD_OFFSET, 0);
  store<u32>(ST_PAYLOAD_LENGTH, 0);
  store<i32>(ST_LAST_STATUS, status);
  return status;
}

function malformed(status: i32): i32 {
  return reject(ST_MALFORMED, status);
}

function setKind(kind: u32): void {
  if (load<u32>(ST_INPUT_KIND) == kind) return;
  store<u32>(ST_INPUT_KIND, kind);
  event1(EV_INPUT_KIND, kind);
}

// What the input is locked to has sent nothing for the configured time. Never without a clock.
function lockExpired(nowMs: f64): bool {
  return nowMs >= 0 && lastAcceptedMs >= 0 && nowMs - lastAcceptedMs >= lockSilenceMs;
}

// A stream that would replace the locked one once that was silent is believed on its second datagram in a
// row (RTP: of the same SSRC, next in sequence), as a new source in RFC 3550 A.1 (MIN_SEQUENTIAL = 2): one
// stranger's datagram can never take the input, even when a stalled host finds it first in a backlog.
// The first is dropped and counted under the reason it would have had.
function confirmed(kind: u32): bool {
  const rtp = kind == KIND_RTP;
  const ssrc = rtp ? rtpSsrc() : 0;
  const sequence = rtp ? rtpSequence() : 0;
  if (probationKind == kind && probationSsrc == ssrc && probationSequence == sequence) {
    probationKind = KIND_UNKNOWN;
    return true;
  }
  probationKind = kind;
  probationSsrc = ssrc;
  probationSequence = rtp ? (sequence + 1) & 0xffff : 0;
  return false;
}

// Processes the datagram of `length` bytes at INPUT. `nowMs` is the arrival time in milliseconds on any
// monotonic clock, or negative when the host has none (the time-based TR 101 290 checks are then off, and
// the input keeps the kind and SSRC it locked to first).
// Returns the number of TS packets found, or a negative status for a datagram rejected whole: one that is not
// whole TS (any packet without its sync byte, a length that is not a multiple of 188, a broken RTP header),
// the other kind than the input is locked to, RTP with another payload type than 33 or from another SSRC
// than the locked one, RTP whose sequence number the receive window already holds (a duplicate). The kind and SSRC change only once the locked ones were silent for the configured time,
// and the new stream sent two datagrams in a row.
export function push(length: i32, nowMs: f64): i32 {
  return pushAt(INPUT, length, nowMs);
}

// push, for the datagram at `at`.
function pushAt(at: usize, length: i32, nowMs: f64): i32 {
  dirty = true;
  store<f64>(ST_NOW_MS, nowMs);
  store<u64>(ST_DATAGRAMS, load<u64>(ST_DATAGRAMS) + 1);
  if (<u32>length > INPUT_CAPACITY) return malformed(E_TOO_LONG);
  if (length < 1) return malformed(E_TOO_SHORT);
  rtpAt(at);
  const len = <u32>length;
  const first = <u32>load<u8>(at);
  const kind = load<u32>(ST_INPUT_KIND);
  // RTP version 2 and a TS sync byte differ in the first two bits: no datagram can be taken for both.
  let candidate: u32;
  if ((first & 0xc0) == 0x80) candidate = KIND_RTP;
  else if (first == 0x47 || (kind == KIND_UDP_TS && len % 188 == 0)) candidate = KIND_UDP_TS;
  else return malformed(len < 12 ? E_TOO_SHORT : E_UNKNOWN_FORMAT);
  const relock = candidate != kind;
  // Taking the place of a locked stream: the other kind, or (below) another SSRC.
  let replacing: usize = 0;
  let replacingStatus: i32 = 0;
  if (relock && kind != KIND_UNKNOWN) {
    if (!lockExpired(nowMs)) return reject(ST_REJECT_OTHER_KIND, E_OTHER_KIND);
    replacing = ST_REJECT_OTHER_KIND;
    replacingStatus = E_OTHER_KIND;
  }

  let offset: u32 = 0;
  let payloadLength = len;
  if (candidate == KIND_RTP) {
    const packed = rtpPayload(len);
    if (packed < 0) return malformed(<i32>packed);
    offset = <u32>(packed >> 32);
    payloadLength = <u32>packed;
    if (rtpPayloadType() != RTP_PAYLOAD_MP2T) return reject(ST_REJECT_PAYLOAD_TYPE, E_PAYLOAD_TYPE);
    if (ssrcLock && !relock && foreignSsrc()) {
      if (!lockExpired(nowMs)) return reject(ST_REJECT_SSRC, E_FOREIGN_SSRC);
      replacing = ST_REJECT_SSRC;
      replacingStatus = E_FOREIGN_SSRC;
    }
  }
  if (payloadLength == 0 || payloadLength % 188 != 0) return malformed(E_TS_LENGTH);
  const count = payloadLength / 188;
  const start = at + <usize>offset;
  if (!wholeTs(start, count, !relock && replacing == 0)) return malformed(E_SYNC);
  if (replacing != 0) {
    if (!confirmed(candidate)) return reject(replacing, replacingStatus);
  } else {
    probationKind = KIND_UNKNOWN;
  }

  if (relock) {
    // Plain TS has no RTP state; RTP after plain TS starts afresh.
    resetRtp();
    setKind(candidate);
  }
  if (candidate == KIND_RTP && !acceptRtp(ssrcLock)) {
    // A copy of a datagram already taken: counted by acceptRtp (rtp.duplicate), its packets never counted twice.
    store<u32>(ST_PAYLOAD_OFFSET, 0);
    store<u32>(ST_PAYLOAD_LENGTH, 0);
    store<i32>(ST_LAST_STATUS, E_RTP_DUPLICATE);
    return E_RTP_DUPLICATE;
  }
  lastAcceptedMs = nowMs;
  for (let i: u32 = 0; i < count; i++) tsPacket(start + <usize>(i * 188), nowMs);
  store<u64>(ST_PACKETS, load<u64>(ST_PACKETS) + <u64>count);
  store<u32>(ST_PAYLOAD_OFFSET, offset);
  store<u32>(ST_PAYLOAD_LENGTH, payloadLength);
  store<i32>(ST_LAST_STATUS, <i32>count);
  if (nowMs >= 0 && (lastTickMs < 0 || nowMs - lastTickMs >= TICK_MS || nowMs < lastTickMs)) {
    lastTickMs = nowMs;
    checkTimers(nowMs);
  }
  return <i32>count;
}

// The datagrams recvmmsg(2) wrote to the read slots (RX), from slot `from` up to `count`: each is checked as
// push checks one, and each accepted TS payload is copied after the one before it into RX_OUT, its place
// written to its slot's result (RX_RESULTS). A datagram from another sender than the trusted one (ST_SENDER)
// stops the run: the host decides about that sender, then calls again from that slot. `from` 0 starts a new
// run (ST_RUN_*). Returns the slot it stopped at: `count` when it went through them all.
export function pushMany(from: i32, count: i32, nowMs: f64): i32 {
  if (from == 0) {
    store<u32>(ST_RUN_ACCEPTED, 0);
    store<u32>(ST_RUN_BYTES, 0);
    store<u32>(ST_RUN_UNIFORM, 1);
  }
  for (let slot = from; slot < count; slot++) {
    const header = RX_HEADERS + <usize>(<u32>slot * RX_HEADER_BYTES);
    // The kernel wrote the name's length back: the next read needs the room again.
    store<u32>(header, RX_NAME_BYTES, 8);
    if (!trusted(RX_NAMES + <usize>(<u32>slot * RX_NAME_BYTES))) return slot;
    const result = RX_RESULTS + ((<usize>slot) << 4);
    const at = RX_DATA + <usize>(<u32>slot * RX_SLOT_BYTES);
    // A datagram cut to its slot is too long to be TS over UDP, and never taken for a whole one.
    const length =
      (load<u32>(header, RX_MSG_FLAGS) & MSG_TRUNC) != 0
        ? <i32>INPUT_CAPACITY + 1
        : <i32>load<u32>(header, RX_MSG_LEN);
    const status = pushAt(at, length, nowMs);
    store<i32>(result, status);
    if (status <= 0) {
      store<u32>(result, 0, 8);
      continue;
    }
    const bytes = load<u32>(ST_PAYLOAD_LENGTH);
    const out = load<u32>(ST_RUN_BYTES);
    memory.copy(RX_OUT + <usize>out, at + <usize>load<u32>(ST_PAYLOAD_OFFSET), bytes);
    store<u32>(result, out, 4);
    store<u32>(result, bytes, 8);
    store<u32>(ST_RUN_BYTES, out + bytes);
    store<u32>(ST_RUN_ACCEPTED, load<u32>(ST_RUN_ACCEPTED) + 1);
    if (bytes % RUN_SEGMENT != 0) store<u32>(ST_RUN_UNIFORM, 0);
  }
  return count;
}

// A run's payloads leave as datagrams of 7 TS packets.
const RUN_SEGMENT: u32 = 7 * 188;

// The datagram in a slot whose sender the host let in: its sockaddr's first 24 bytes are the trusted ones.
// An IPv4 name is family, port and address (8 bytes); an IPv6 one adds the flow label and the rest of the
// address (24 bytes), its scope id aside.
function trusted(name: usize): bool {
  if (load<u64>(name) != load<u64>(ST_SENDER)) return false;
  if (load<u16>(name) != AF_INET6) return true;
  return load<u64>(name, 8) == load<u64>(ST_SENDER, 8) && load<u64>(name, 16) == load<u64>(ST_SENDER, 16);
}
const AF_INET6: u16 = 10;

// The host let the sender of `slot` in: its datagrams go through pushMany from now on.
export function trustSender(slot: i32): void {
  const name = RX_NAMES + <usize>(<u32>slot * RX_NAME_BYTES);
  store<u64>(ST_SENDER, load<u64>(name));
  store<u64>(ST_SENDER, load<u64>(name, 8), 8);
  store<u64>(ST_SENDER, load<u64>(name, 16), 16);
}

// The allow-list changed: every sender is asked about again.
export function distrustSender(): void {
  memory.fill(ST_SENDER, 0, 24);
}

// The host refused the sender of `slot` (reason: E_SENDER or E_OWN_OUTPUT): counted, and the run goes on past it.
export function rejectSlot(slot: i32, reason: i32): void {
  const result = RX_RESULTS + ((<usize>slot) << 4);
  store<i32>(result, reason == E_OWN_OUTPUT ? rejectOwnOutput() : rejectSender());
  store<u32>(result, 0, 8);
}
