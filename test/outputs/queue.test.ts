import { it } from "@effect/vitest";
import { Effect, Fiber } from "effect";
import { describe, expect } from "vitest";
import { DATAGRAM_PAYLOAD, makeChunkQueue } from "../../src/effects/outputs/queue.ts";

const chunk = (packets: number, fill: number) => new Uint8Array(packets * 188).fill(fill);

describe("chunk queue", () => {
  it.effect("drops the oldest chunks when full and counts the packets", () =>
    Effect.gen(function* () {
      const queue = makeChunkQueue(10 * 188);
      for (let i = 0; i < 5; i++) queue.offer(chunk(3, i));
      expect(queue.queuedBytes()).toBe(9 * 188);
      expect(queue.droppedPackets()).toBe(6);
      const segments = yield* queue.takeUpTo(DATAGRAM_PAYLOAD);
      expect(segments.map((segment) => segment[0])).toEqual([2, 3, 4]);
    }),
  );

  it.effect("splits a chunk on a packet boundary when it does not fit a datagram", () =>
    Effect.gen(function* () {
      const queue = makeChunkQueue(1 << 20);
      queue.offer(chunk(5, 1));
      queue.offer(chunk(5, 2));
      const first = yield* queue.takeUpTo(DATAGRAM_PAYLOAD);
      expect(first.map((segment) => segment.length)).toEqual([5 * 188, 2 * 188]);
      const second = yield* queue.takeUpTo(DATAGRAM_PAYLOAD);
      expect(second.map((segment) => [segment.length, segment[0]])).toEqual([[3 * 188, 2]]);
      expect(queue.queuedBytes()).toBe(0);
    }),
  );

  it.effect("a waiting consumer wakes on offer; clear counts what it discards", () =>
    Effect.gen(function* () {
      const queue = makeChunkQueue(1 << 20);
      const taker = yield* Effect.fork(queue.takeUpTo(DATAGRAM_PAYLOAD));
      yield* Effect.yieldNow();
      queue.offer(chunk(1, 7));
      const taken = yield* Fiber.join(taker);
      expect(taken[0]?.[0]).toBe(7);
      queue.offer(chunk(4, 1));
      queue.clear();
      expect(queue.droppedPackets()).toBe(4);
      expect(queue.queuedBytes()).toBe(0);
    }),
  );

  it.effect(
    "counts whole packets, and nothing while told not to (an output waiting for its first peer)",
    () =>
      Effect.gen(function* () {
        const queue = makeChunkQueue(400);
        queue.countDrops(false);
        for (let i = 0; i < 10; i++) queue.offer(chunk(2, i));
        queue.clear();
        expect(queue.droppedPackets()).toBe(0);
        yield* Effect.yieldNow();
        queue.countDrops(true);
        // A datagram whose TS payload is not whole packets still loses whole packets' worth of counting.
        queue.offer(new Uint8Array(200));
        queue.offer(new Uint8Array(300));
        expect(queue.droppedPackets()).toBe(2);
        queue.clear();
        expect(queue.droppedPackets()).toBe(4);
        expect(Number.isInteger(queue.droppedPackets())).toBe(true);
      }),
  );
});
