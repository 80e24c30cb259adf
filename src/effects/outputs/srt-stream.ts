/**
 * What an SRT output's attempt does once a peer is connected: the peers it sends to with their statistics, and
 * the queue's chunks gathered for a few milliseconds across all of this thread's SRT outputs, then handed to
 * libsrt for every peer. The attempts themselves (caller, listener) are in srt.ts.
 */
import * as Effect from "effect/Effect";
import * as Schedule from "effect/Schedule";
import type * as Scope from "effect/Scope";
import type { OutputError } from "../../domain/channel/output-error.ts";
import { maskStreamId } from "../../domain/url/srt.ts";
import { type LibSrt, SRT_ERR, SRTS, type SrtSocketStats } from "../runtime/ffi/libsrt-api.ts";
import { atEndOfTurn, cancelEndOfTurn } from "../runtime/timers/end-of-turn.ts";
import type { SrtLinkStats, SrtPeerStats, WriterContext } from "./context.ts";

/** How long chunks are gathered before they go to libsrt, and how many bytes flush them at once. */
const GATHER_MS = 20;
const GATHER_MAX_BYTES = 16 * 1316;
/**
 * The timer that sends what was gathered when no further datagram comes (the input stopped). It waits longer
 * than GATHER_MS so that while the input flows the end of a turn always sends first: a timer due at 20 ms
 * fired before the turn that found the chunks due (turns come every DISTRIBUTARY_BATCH_MS) and woke the
 * thread once more every gathering.
 */
const GATHER_TIMEOUT_MS = 2 * GATHER_MS;

/**
 * The SRT outputs of this thread that hold gathered chunks, and when the oldest of them arrived. They all
 * leave together: libsrt's send thread then wakes once per gathering for every output of the thread rather
 * than in whichever turn each output's own oldest chunk came due (up to one wake-up a turn), and an output
 * whose chunks are younger sends them early, never late.
 */
const gathered = new Set<() => void>();
let gatheredSince = 0;
let gatherTimer: ReturnType<typeof setTimeout> | null = null;

/** Nothing is due any more: neither the timer nor the end of this turn sends. */
const stopWaiting = () => {
  if (gatherTimer !== null) clearTimeout(gatherTimer);
  gatherTimer = null;
  cancelEndOfTurn(sendGatheredWhenDue);
};

const sendGathered = () => {
  stopWaiting();
  for (const flush of gathered) flush();
  gathered.clear();
};
// While the inputs flow, the gathered chunks leave at the end of the turn that finds them due, so the timer
// (kept for when the inputs stop, GATHER_TIMEOUT_MS) does not wake the thread once more.
const sendGatheredWhenDue = () => {
  if (gathered.size > 0 && performance.now() - gatheredSince >= GATHER_MS) sendGathered();
};

/** Counts `flush` among the outputs holding chunks; `now` is when its chunk arrived. */
const gather = (flush: () => void, now: number) => {
  if (gathered.size === 0) {
    gatheredSince = now;
    gatherTimer = setTimeout(sendGathered, GATHER_TIMEOUT_MS);
  }
  gathered.add(flush);
  atEndOfTurn(sendGatheredWhenDue);
};

/** `flush` holds nothing any more (it sent on its own, or its output stopped). */
const ungather = (flush: () => void) => {
  gathered.delete(flush);
  if (gathered.size === 0) stopWaiting();
};

interface Peer {
  readonly socket: number;
  readonly address: string;
  readonly streamId: string | null;
  readonly connectedAt: number;
  /** libsrt's clock when it connected: no message may carry an earlier source time. */
  readonly since: number;
  /** Messages libsrt's full send buffer refused. */
  refused: number;
  last: SrtSocketStats | null;
}

const peerStats = (peer: Peer): SrtPeerStats => {
  const stats = peer.last;
  return {
    peer: peer.address,
    streamId: peer.streamId === null ? null : maskStreamId(peer.streamId).shown,
    connectedAt: peer.connectedAt,
    rttMs: stats?.rttMs ?? 0,
    sendRateMbps: stats?.sendRateMbps ?? 0,
    bandwidthMbps: stats?.bandwidthMbps ?? 0,
    retransmits: stats?.retransmits ?? 0,
    lossPackets: stats?.sendLoss ?? 0,
    droppedPackets: (stats?.sendDrops ?? 0) + peer.refused,
    flightSize: stats?.flightSize ?? 0,
    sendBufferPackets: stats?.sendBufferPackets ?? 0,
    sendBufferMs: stats?.sendBufferMs ?? 0,
  };
};

/**
 * The peers an attempt sends to, their statistics, and the totals of peers already gone (so an output's
 * counters never go back when a receiver leaves).
 */
export const makePeers = (lib: LibSrt, context: WriterContext, payloadSize: number) => {
  const peers = new Map<number, Peer>();
  let gone = { retransmits: 0, lossPackets: 0, droppedPackets: 0 };

  /** `called`: the address a caller called, which libsrt (1.5.1) does not give back for a caller's socket. */
  const add = (socket: number, streamId: string | null, called?: string): Peer => {
    const peer: Peer = {
      socket,
      address: lib.peerAddress(socket) || (called ?? ""),
      streamId: streamId === "" ? null : streamId,
      connectedAt: Date.now(),
      since: lib.now(),
      refused: 0,
      last: null,
    };
    peers.set(socket, peer);
    return peer;
  };

  const remove = (socket: number) => {
    const peer = peers.get(socket);
    if (peer === undefined) return;
    peer.last = lib.stats(socket) ?? peer.last;
    const final = peerStats(peer);
    gone = {
      retransmits: gone.retransmits + final.retransmits,
      lossPackets: gone.lossPackets + final.lossPackets,
      droppedPackets: gone.droppedPackets + final.droppedPackets,
    };
    peers.delete(socket);
    lib.close(socket);
  };

  /**
   * Sends `chunk`, which arrived at `arrivedUs` on libsrt's clock, to every peer in messages of
   * `payloadSize`; tells `broken` of each peer whose link failed.
   */
  const send = (chunk: Uint8Array, arrivedUs: number, broken: (socket: number) => void) => {
    for (const peer of peers.values()) {
      const sourceTime = Math.max(arrivedUs, peer.since);
      for (let at = 0; at < chunk.length; at += payloadSize) {
        const result = lib.send(
          peer.socket,
          at === 0 && chunk.length <= payloadSize ? chunk : chunk.subarray(at, at + payloadSize),
          sourceTime,
        );
        if (result >= 0) continue;
        if (-result === SRT_ERR.EASYNCSND) {
          peer.refused += 1;
          continue;
        }
        broken(peer.socket);
        break;
      }
    }
  };

  /**
   * Reads every peer's statistics and reports them; tells `broken` of each peer whose link libsrt has given
   * up on (a send finds that sooner while the stream flows; this finds it when nothing is sent).
   */
  const report = (broken: (socket: number) => void) => {
    const list: Array<SrtPeerStats> = [];
    for (const peer of peers.values()) {
      if (lib.state(peer.socket) >= SRTS.BROKEN) {
        broken(peer.socket);
        continue;
      }
      peer.last = lib.stats(peer.socket) ?? peer.last;
      list.push(peerStats(peer));
    }
    const link: SrtLinkStats = {
      rttMs: Math.max(0, ...list.map((peer) => peer.rttMs)),
      retransmits: gone.retransmits + sum(list, (peer) => peer.retransmits),
      lossPackets: gone.lossPackets + sum(list, (peer) => peer.lossPackets),
      droppedPackets: gone.droppedPackets + sum(list, (peer) => peer.droppedPackets),
      sendRateMbps: sum(list, (peer) => peer.sendRateMbps),
      flightSize: sum(list, (peer) => peer.flightSize),
      sendBufferMs: Math.max(0, ...list.map((peer) => peer.sendBufferMs)),
      peers: list,
    };
    context.reportSrt(link);
  };

  return { peers, add, remove, send, report, clockNow: lib.now };
};

export type Peers = ReturnType<typeof makePeers>;

const sum = (list: ReadonlyArray<SrtPeerStats>, of: (peer: SrtPeerStats) => number): number =>
  list.reduce((total, peer) => total + of(peer), 0);

/**
 * Streams the queue to the peers until `until` ends, with its outcome; statistics are read every interval
 * meanwhile. Scoped: closing the scope stops the delivery and the readings.
 */
export const stream = <A>(
  context: WriterContext,
  peers: Peers,
  until: Effect.Effect<A, OutputError>,
  onBroken: (socket: number) => void,
): Effect.Effect<A, OutputError, Scope.Scope> =>
  Effect.gen(function* () {
    // Whatever queued while nobody was connected is stale now.
    context.queue.clear();
    yield* context.markConnected;
    const report = () => peers.report(onBroken);
    report();
    yield* Effect.forkScoped(
      Effect.repeat(
        Effect.sync(report),
        Schedule.spaced(`${Math.max(10, context.srtStatsIntervalMs)} millis`),
      ),
    );
    // Chunks are gathered for a few milliseconds and handed to libsrt together: its send thread then wakes
    // once per burst rather than once per input datagram, which is most of what SRT costs in CPU. Each
    // message carries the time its chunk arrived (SRT_MSGCTRL.srctime), so the receiver delivers the stream
    // paced as it came, within SRT's own latency window (120 ms by default), not in bursts.
    const clockOffsetUs = peers.clockNow() - performance.now() * 1000;
    // Kept and emptied rather than replaced, so that a flush allocates nothing (a send never runs other code).
    const pending: Array<Uint8Array> = [];
    const arrivals: Array<number> = [];
    let pendingBytes = 0;
    const flush = () => {
      pendingBytes = 0;
      for (let index = 0; index < pending.length; index++) {
        peers.send(pending[index] as Uint8Array, arrivals[index] ?? 0, onBroken);
      }
      pending.length = 0;
      arrivals.length = 0;
    };
    yield* Effect.acquireRelease(
      Effect.sync(() =>
        context.queue.deliverDirectly((chunk) => {
          // The last peer left and `until` is about to end: nobody is sent this.
          if (peers.peers.size === 0) return;
          const now = performance.now();
          pending.push(chunk);
          arrivals.push(clockOffsetUs + now * 1000);
          pendingBytes += chunk.length;
          context.countSent(chunk.length);
          if (pendingBytes < GATHER_MAX_BYTES) gather(flush, now);
          else {
            ungather(flush);
            flush();
          }
        }),
      ),
      () =>
        Effect.sync(() => {
          context.queue.deliverDirectly(null);
          ungather(flush);
        }),
    );
    return yield* until;
  });
