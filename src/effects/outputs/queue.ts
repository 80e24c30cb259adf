/**
 * The per-output queue between the channel's fan-out and one writer. The producer side (`offer`) is plain
 * synchronous code on the hot path: it never waits, never allocates beyond the ring's growth, and when the
 * queue is full it drops the OLDEST chunks (live video wants the newest) and counts the TS packets lost.
 *
 * Single producer, single consumer. Chunks are kept by reference: the fan-out must not reuse a chunk's
 * memory after offering it (it copies once per datagram and shares that copy between outputs).
 */
import * as Effect from "effect/Effect";
import { DATAGRAM, PACKET } from "../../core/ts/index.ts";

export const TS_PACKET_SIZE = PACKET;
/** Seven TS packets: the customary MPEG-TS-over-UDP payload, which fits an Ethernet MTU. */
export const DATAGRAM_PAYLOAD = DATAGRAM;

export interface ChunkQueue {
  /** Never blocks; drops the oldest chunks when over capacity. `chunk.length` must be a multiple of 188. */
  readonly offer: (chunk: Uint8Array) => void;
  /**
   * Waits for at least one chunk, then returns the queued bytes up to `maxBytes` (a multiple of 188) as
   * zero-copy segments, splitting a chunk on a packet boundary when it does not fit whole.
   */
  readonly takeUpTo: (maxBytes: number) => Effect.Effect<ReadonlyArray<Uint8Array>>;
  /**
   * While set, every offer goes straight to `deliver`, synchronously, after anything still queued: for writers
   * whose send never waits (UDP datagrams), so that steady streaming costs no fiber wake-up per datagram.
   * `null` returns to queueing.
   */
  readonly deliverDirectly: (deliver: ((chunk: Uint8Array) => void) | null) => void;
  /** Discards everything queued, counting it as dropped (stale video is worse than a gap after a reconnect). */
  readonly clear: () => void;
  /**
   * Whether what is discarded counts as dropped (it does from the start). An output waiting for its first peer
   * turns it off: the data it lets go meanwhile had nowhere to go, and is not a loss at a destination.
   */
  readonly countDrops: (counting: boolean) => void;
  readonly queuedBytes: () => number;
  /** TS packets dropped since the queue was made (a whole number: a part of a packet counts as one). */
  readonly droppedPackets: () => number;
}

export const makeChunkQueue = (capacityBytes: number): ChunkQueue => {
  let ring: Array<Uint8Array | undefined> = new Array(64);
  let head = 0;
  let count = 0;
  let bytes = 0;
  let dropped = 0;
  let counting = true;
  let wake: (() => void) | null = null;
  let direct: ((chunk: Uint8Array) => void) | null = null;

  const dropHead = () => {
    const chunk = ring[head];
    ring[head] = undefined;
    head = (head + 1) % ring.length;
    count -= 1;
    const length = chunk?.length ?? 0;
    bytes -= length;
    if (counting) dropped += Math.ceil(length / TS_PACKET_SIZE);
  };

  const grow = () => {
    const next: Array<Uint8Array | undefined> = new Array(ring.length * 2);
    for (let i = 0; i < count; i++) next[i] = ring[(head + i) % ring.length];
    ring = next;
    head = 0;
  };

  const offer = (chunk: Uint8Array) => {
    if (chunk.length === 0) return;
    if (direct !== null) return direct(chunk);
    while (count > 0 && bytes + chunk.length > capacityBytes) dropHead();
    if (count === ring.length) grow();
    ring[(head + count) % ring.length] = chunk;
    count += 1;
    bytes += chunk.length;
    if (wake !== null) {
      const resume = wake;
      wake = null;
      resume();
    }
  };

  const drain = (maxBytes: number): ReadonlyArray<Uint8Array> => {
    const segments: Array<Uint8Array> = [];
    let room = maxBytes;
    while (count > 0 && room > 0) {
      const chunk = ring[head];
      if (chunk === undefined) break;
      if (chunk.length <= room) {
        segments.push(chunk);
        room -= chunk.length;
        ring[head] = undefined;
        head = (head + 1) % ring.length;
        count -= 1;
        bytes -= chunk.length;
      } else {
        segments.push(chunk.subarray(0, room));
        ring[head] = chunk.subarray(room);
        bytes -= room;
        room = 0;
      }
    }
    return segments;
  };

  const waitForChunk = Effect.async<void>((resume) => {
    const self = () => resume(Effect.void);
    wake = self;
    // Only forget our own waiter: a replacement consumer may already have registered its own.
    return Effect.sync(() => {
      if (wake === self) wake = null;
    });
  });

  const takeUpTo = (maxBytes: number): Effect.Effect<ReadonlyArray<Uint8Array>> =>
    Effect.suspend(() =>
      count > 0 ? Effect.sync(() => drain(maxBytes)) : Effect.flatMap(waitForChunk, () => takeUpTo(maxBytes)),
    );

  const deliverDirectly = (deliver: ((chunk: Uint8Array) => void) | null) => {
    if (deliver !== null) {
      for (const segment of drain(bytes)) deliver(segment);
    }
    direct = deliver;
  };

  return {
    offer,
    takeUpTo,
    deliverDirectly,
    clear: () => {
      while (count > 0) dropHead();
    },
    countDrops: (next) => {
      counting = next;
    },
    queuedBytes: () => bytes,
    droppedPackets: () => dropped,
  };
};
