/**
 * Input datagrams read in batches. node:dgram reads one datagram per system call and hands each to
 * JavaScript in a new buffer with a new sender object, and a steady stream wakes the thread once per datagram:
 * a profile of one channel × 4 UDP outputs at 7 Mbit/s spent more of its CPU in that machinery than in
 * forwarding. Here a bound node:dgram socket keeps its address, options and memberships, but Node stops
 * reading it; its descriptor is read with recvmmsg(2) into memory that is reused, up to 64 datagrams a call
 * (16 when they land in the input's packet core, `ReadInto`: the vector path).
 *
 * A quiet socket is watched for readability on the event loop (costing nothing while it stays quiet); its first
 * datagram is read at once. While datagrams keep coming, the thread's sockets are read together every
 * `DISTRIBUTARY_BATCH_MS` milliseconds instead (default 3): the datagrams that came meanwhile are handled in
 * one turn, so the outputs send them in one system call each (segmented.ts) and their receivers wake once for
 * all of them. That is the whole trade: at most that many milliseconds of added latency, for a thread that
 * wakes once per interval instead of once per datagram. 0 reads every datagram as it comes. A socket that
 * stays empty for 50 ms goes back to being watched.
 *
 * The interval is each channel's to say (its `ReadPace`, changed live): 3 ms while one of its outputs sends TS
 * packets as they come (UDP, RTP, SRT), `DISTRIBUTARY_BATCH_MS_REMUXED` (40 ms) while all of them send whole
 * frames or segments (RTMP, RTSP, HLS, files), which no destination sees; a fifth of its failover time at most,
 * so that a flowing input's reads stay well inside it. The thread reads at the shortest interval any of its
 * flowing sockets asks for.
 *
 * On a fleet node a channel's pace carries its fence (`Fence`): its send gate checked against the turn's one
 * reading of the clock before each of its sockets is read, and what queued in a socket while the thread
 * stalled dropped rather than sent late.
 *
 * Node.js only (its socket internals and koffi's libuv poll); Bun and Deno, or a socket whose descriptor cannot
 * be had, keep node:dgram's "message" events (and their channels the gate's timer alone).
 */
import type { RemoteInfo, Socket } from "node:dgram";
import type { ReadSlots } from "../../../core/packet-core.ts";
import {
  BATCH_MS_DEFAULT,
  BATCH_MS_REMUXED_DEFAULT,
  batchMsRemuxed as batchMsRemuxedSetting,
  batchMs as batchMsSetting,
  batchRead,
  settingNow,
} from "../../config/settings.ts";
import {
  descriptorOf,
  handleOf,
  type Libc,
  loadLibc,
  MMSGHDR_BYTES,
  MSG_DONTWAIT,
  MSG_TRUNC,
  type Readiness,
  watchReadable,
} from "../ffi/libc.ts";
import { runtimeName } from "../process/runtime.ts";
import { asOneTurn } from "../timers/end-of-turn.ts";
import {
  type Landing,
  landingIn,
  NAME_BYTES,
  SLOTS,
  senderOf,
  sharedLanding,
  viewOf,
} from "./recv-memory.ts";
import { inReadTurn, monotonicMs } from "./send-gates.ts";

/** Calls per socket and turn at most, so that one flooded input cannot hold the thread. */
const MAX_CALLS = 16;
/**
 * Calls at most when a socket's whole backlog is read at once (dropped as stale by a `Fence`, or read before
 * the socket closes): a receive buffer of a few MB, with room for a flood that keeps coming meanwhile.
 */
const MAX_STALE_CALLS = 1024;
const QUIET_MS = 50;

/**
 * How long a flowing input's datagrams may wait to be read together (ms); 0 reads each as it comes. Read at
 * load, in each thread that reads inputs: the turns' timer is the thread's, set before any Effect asks.
 */
export const batchMs = settingNow(batchMsSetting, BATCH_MS_DEFAULT);
/** Whether inputs are read in batches at all, read at load as `batchMs` is. */
const batchReadOn = settingNow(batchRead, true);
/** The interval for a channel whose outputs all remux or store, never below `batchMs`. */
const remuxedMs = Math.max(batchMs, settingNow(batchMsRemuxedSetting, BATCH_MS_REMUXED_DEFAULT));

/** How long one channel's flowing inputs may wait to be read (ms): the channel changes it as its outputs do. */
export interface ReadPace {
  ms: number;
  /** On a fleet node, the channel's fence: asked before each read of its sockets. */
  readonly fence?: Fence;
}

/**
 * What a fleet node's channel says of a read before it happens (channel.ts): its send gate is checked there,
 * once per socket and turn, against the turn's instant. `stale` true: what waits in the socket is too old to
 * send (the thread stalled, or the lease lapsed), so the reader reads all of it at once, the channel sending
 * none of it, and then tells `dropped` how many datagrams that was.
 */
export interface Fence {
  /** `at`: the turn's instant (send-gates.ts `monotonicMs`); `stalledMs`: since the socket's last turn. */
  readonly stale: (at: number, stalledMs: number) => boolean;
  readonly dropped: (datagrams: number, stalledMs: number) => void;
}

/**
 * The wait a channel's outputs allow: `batchMs` when one of them sends TS packets as they come, else the longer
 * one, but at most a fifth of the failover time.
 */
export const readPaceMs = (asTheyCome: boolean, failoverAfterMs: number): number =>
  asTheyCome ? batchMs : Math.max(batchMs, Math.min(remuxedMs, Math.floor(failoverAfterMs / 5)));

const defaultPace: ReadPace = { ms: batchMs };

/**
 * Where a socket's datagrams land instead of the thread's own memory: a packet core's read slots
 * (core/packet-core.ts `readSlots`), and what checks them there. `run` takes the `count` datagrams of one read
 * as a whole (one call into the core for all of them) and returns true, or returns false when the channel
 * needs them one by one now; `deliver` then gets each, as views into those slots.
 */
export interface ReadInto {
  readonly slots: ReadSlots;
  readonly run: (count: number, senderAt: (slot: number) => RemoteInfo | null) => boolean;
}

interface Reading {
  readonly fd: number;
  readonly deliver: (datagram: Buffer, sender: RemoteInfo) => void;
  readonly landing: Landing;
  readonly run: ReadInto["run"] | null;
  /** `senderOf` for this socket's slots, made once. */
  readonly senderAt: (slot: number) => RemoteInfo | null;
  readonly pace: ReadPace;
  readiness: Readiness | null;
  closed: boolean;
  quietTurns: number;
  /** When a turn last read it (monotonicMs): how long a thread stalled shows in the next turn. */
  readAt: number;
  /** Each slot's last view (`viewOf`). */
  readonly views: Array<Buffer | null>;
  /** The last sender, reused while datagrams keep coming from it (its sockaddr's words as the key). */
  sender: RemoteInfo | null;
  key: [number, number, number, number, number, number];
}

let libc: Libc | null = null;
const flowing = new Set<Reading>();
let timer: ReturnType<typeof setInterval> | null = null;
/** The interval `timer` runs at: the shortest any flowing socket asks for. */
let timerMs = 0;
/** When the turn before ran (performance.now()), for how late the next one is. */
let lastTurnAt = 0;
/** How late each turn ran beyond its interval (ms) since the last `turnLateness` call, MAX_LATENESS at most. */
let lateness: number[] = [];
const MAX_LATENESS = 10_000;

const prepare = (): Landing => {
  libc ??= loadLibc();
  return sharedLanding();
};

/** Set while a batch is being handed on: the memory holds it, so nothing may read into it meanwhile. */
let draining = false;

/**
 * Reads what waits on one socket and hands each datagram on; returns how many there were. `at` is the turn's
 * instant, and `stalledMs` how long since the turn that read the socket before (0 for a socket the event loop
 * just found readable: it was empty until then); `calls`, the most it reads.
 */
const drain = (reading: Reading, at: number, stalledMs: number, calls = MAX_CALLS): number => {
  if (draining) return 0;
  draining = true;
  try {
    reading.readAt = at;
    const fence = reading.pace.fence;
    if (fence === undefined || !fence.stale(at, stalledMs)) return drainNow(reading, calls);
    let dropped = 0;
    try {
      dropped = drainNow(reading, MAX_STALE_CALLS);
    } finally {
      // Whatever happened in the read, the channel's outputs get the reads after it.
      fence.dropped(dropped, stalledMs);
    }
    return dropped;
  } finally {
    draining = false;
  }
};
const drainNow = (reading: Reading, calls: number): number => {
  const { block, base, headers, data, slotBytes, slots } = reading.landing;
  const c = libc as Libc;
  let total = 0;
  for (let call = 0; call < calls && !reading.closed; call++) {
    const count = c.recvmmsg(reading.fd, base + headers, slots, MSG_DONTWAIT, 0);
    // Nothing waits (EAGAIN), or an error the socket reports for a send of someone else (ICMP): try later.
    if (count <= 0) break;
    total += count;
    if (reading.run?.(count, reading.senderAt) === true) {
      if (count < slots) break;
      continue;
    }
    for (let slot = 0; slot < count && !reading.closed; slot++) {
      const header = headers + slot * MMSGHDR_BYTES;
      const length = block.readUInt32LE(header + 56);
      const truncated = (block.readInt32LE(header + 48) & MSG_TRUNC) !== 0;
      const sender = senderOf(reading, slot, c);
      // The kernel writes back the name's length: the next call needs the room again.
      block.writeUInt32LE(NAME_BYTES, header + 8);
      if (sender === null) continue;
      sender.size = length;
      // A datagram too big to be TS over UDP is handed on as one byte, which the packet core counts as
      // malformed, instead of as a cut that might look whole.
      reading.deliver(viewOf(reading, slot, data + slot * slotBytes, truncated ? 1 : length), sender);
    }
    if (count < slots) break;
  }
  return total;
};

const quietTurns = () => Math.max(1, Math.ceil(QUIET_MS / Math.max(timerMs, 1)));

/** Runs the turns at `ms`, or stops them (0). */
const setTurns = (ms: number) => {
  if (ms === timerMs && (timer !== null) === ms > 0) return;
  if (timer !== null) clearInterval(timer);
  timer = null;
  timerMs = ms;
  lastTurnAt = performance.now();
  if (ms > 0) {
    timer = setInterval(turn, ms);
    timer.unref();
  }
};

/**
 * Reads every flowing socket, as one turn: what all of them gave the outputs leaves together at its end (the
 * thread's UDP outputs in one system call, thread-sender.ts).
 */
const turn = () => {
  const now = performance.now();
  if (lateness.length < MAX_LATENESS) lateness.push(Math.max(0, now - lastTurnAt - timerMs));
  lastTurnAt = now;
  inReadTurn(flowingTurn);
};
/**
 * A turn of reads and the sends they make at its end: each sender looks at the clock before its system call
 * (send-gates.ts `stalledMidTurn`). The flowing sockets' turn is made once, not a closure a turn.
 */
const flowingTurn = () => asOneTurn(readFlowing);
const readTurn = (work: (at: number) => void) => {
  const at = monotonicMs();
  inReadTurn(() => asOneTurn(() => work(at)));
};
const readFlowing = () => {
  // One reading of the clock for the turn: each fence compares its gate's instant with it.
  const at = monotonicMs();
  let shortest = Number.POSITIVE_INFINITY;
  for (const reading of flowing) {
    if (drain(reading, at, at - reading.readAt) > 0) reading.quietTurns = 0;
    else if (++reading.quietTurns >= quietTurns()) {
      flowing.delete(reading);
      reading.readiness?.start();
      continue;
    }
    shortest = Math.min(shortest, reading.pace.ms);
  }
  setTurns(flowing.size === 0 ? 0 : shortest);
};

/**
 * How late this thread's turns ran beyond their interval since the last call (ms), or null when none ran: a
 * thread that reads flowing inputs wakes for its turns anyway, so their lateness is its event-loop delay, and
 * no other timer need wake it to measure that (src/effects/channel/workers/worker.ts).
 */
export const turnLateness = (): { readonly p99: number; readonly max: number } | null => {
  if (lateness.length === 0) return null;
  const sorted = lateness.sort((a, b) => a - b);
  const figures = {
    p99: sorted[Math.min(sorted.length - 1, Math.floor(0.99 * sorted.length))] ?? 0,
    max: sorted.at(-1) ?? 0,
  };
  lateness = [];
  return figures;
};

/** Whether this thread's inputs are read in turns now (a flowing input): `turnLateness` then has figures. */
export const readingInTurns = (): boolean => timer !== null;

const onReadable = (reading: Reading) => {
  if (reading.closed) return;
  if (batchMs === 0) {
    readTurn((at) => drain(reading, at, 0));
    return;
  }
  reading.readiness?.stop();
  reading.quietTurns = 0;
  flowing.add(reading);
  readTurn((at) => drain(reading, at, 0));
  if (timer === null || reading.pace.ms < timerMs) setTurns(reading.pace.ms);
};

/**
 * Takes over reading a bound socket: from now on its datagrams go to `deliver` as views into memory that is
 * reused as soon as `deliver` returns (copy what must be kept), at most `pace.ms` after they came. Returns the
 * function that reads what is left and lets the socket go (call it before closing the socket), or null when
 * this runtime or socket cannot, and node:dgram's "message" events go on.
 *
 * `flowingNow`: the stream already comes (a moving channel's new socket, which took it from the old one): the
 * socket is read from the thread's next turn on, without waiting for the event loop to report it readable. A
 * new watch's first report came 2–125 ms late on a busy forwarding thread, and the moved channel was silent
 * meanwhile (docs/benchmarks.md).
 */
export const readInBatches = (
  socket: Socket,
  deliver: (datagram: Buffer, sender: RemoteInfo) => void,
  pace: ReadPace = defaultPace,
  into?: ReadInto,
  flowingNow = false,
): (() => void) | null => {
  if (runtimeName !== "node" || !batchReadOn) return null;
  const fd = descriptorOf(socket);
  const handle = handleOf(socket);
  if (fd === null || typeof handle?.recvStop !== "function" || typeof handle.recvStart !== "function")
    return null;
  let landing: Landing;
  let own: Landing | null = null;
  try {
    landing = prepare();
    own = into === undefined ? null : landingIn(into.slots);
  } catch {
    return null;
  }
  const reading: Reading = {
    fd,
    deliver,
    landing: own ?? landing,
    run: own === null ? null : (into?.run ?? null),
    senderAt: (slot) => senderOf(reading, slot, libc as Libc),
    views: new Array(SLOTS).fill(null),
    pace,
    readiness: null,
    closed: false,
    quietTurns: 0,
    readAt: 0,
    sender: null,
    key: [0, 0, 0, 0, 0, 0],
  };
  handle.recvStop();
  try {
    reading.readiness = watchReadable(fd, () => onReadable(reading));
  } catch {
    reading.readiness = null;
  }
  if (reading.readiness === null) {
    handle.recvStart();
    return null;
  }
  if (flowingNow && batchMs > 0) {
    reading.readiness.stop();
    // Read now, as far as a fence is concerned: nothing it holds is stale yet.
    reading.readAt = monotonicMs();
    flowing.add(reading);
    if (timer === null || pace.ms < timerMs) setTurns(pace.ms);
  }
  // What came since the bind is read from the event loop (the watch reports it at once), not here: the
  // caller may not be ready for datagrams before it gets control back.
  return () => {
    if (reading.closed) return;
    // What the kernel holds for the socket still reaches the channel, all of it: a moving channel's old copy
    // closes its inputs only once the new one receives, and those datagrams are nowhere else. A thread that
    // runs late has more queued than a turn reads: moves off one at 200 × 4 lost 1.5–4 % of the stream when
    // this read stopped there (docs/benchmarks.md).
    readTurn((at) => drain(reading, at, 0, MAX_STALE_CALLS));
    reading.closed = true;
    flowing.delete(reading);
    reading.readiness?.close();
  };
};
