/**
 * The recent events behind /api/events: a ring per channel and one for the node's events, read merged in
 * `seq` order. A flood of one kind (one channel's, or the node's) pushes out only its own kind's history;
 * `limit`, `after`, `type`, `channel` and what a caller may see work on the merged list as on one ring.
 */
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { EVENT_RING_SIZE, EventBus } from "../../src/effects/events/event-bus.ts";

const withBus = (body: (bus: EventBus) => void) =>
  Effect.runPromise(Effect.scoped(Effect.map(EventBus, body)).pipe(Effect.provide(EventBus.Default)));

const started = (channel: string) => ({ type: "channel_started" as const, channel });
const nodeDown = (node: string) => ({ type: "node_down" as const, node, message: "lease ran out" });

describe("the recent events", () => {
  it("keep each channel's history whatever floods another ring", async () => {
    await withBus((bus) => {
      bus.emit(started("quiet"));
      for (let i = 0; i < EVENT_RING_SIZE + 100; i++) bus.emit(nodeDown(`n${i}`));
      for (let i = 0; i < EVENT_RING_SIZE + 100; i++) bus.emit(started("loud"));
      expect(bus.recent({ channel: "quiet" }).map((event) => event.seq)).toEqual([1]);
      expect(bus.recent({ channel: "loud", limit: EVENT_RING_SIZE })).toHaveLength(EVENT_RING_SIZE);
      // The node's ring lost its oldest 100 to its own flood, no more.
      const nodes = bus.recent({ types: ["node_down"], limit: EVENT_RING_SIZE });
      expect(nodes).toHaveLength(EVENT_RING_SIZE);
      expect(nodes[0]?.seq).toBe(102);
      expect(bus.recent({ types: ["channel_started"], limit: 3 }).map((event) => event.channel)).toEqual([
        "loud",
        "loud",
        "loud",
      ]);
    });
  });

  it("read merged in seq order, with limit, after and what the caller may see", async () => {
    await withBus((bus) => {
      for (let i = 0; i < 30; i++) {
        if (i % 3 === 0) bus.emit(nodeDown(`n${i}`));
        else bus.emit(started(i % 3 === 1 ? "a" : "b"));
      }
      const seqs = (events: ReadonlyArray<{ readonly seq: number }>) => events.map((event) => event.seq);
      expect(seqs(bus.recent({ limit: 100 }))).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(seqs(bus.recent({ limit: 4 }))).toEqual([27, 28, 29, 30]);
      expect(seqs(bus.recent({ after: 25 }))).toEqual([26, 27, 28, 29, 30]);
      expect(seqs(bus.recent({ after: 25, limit: 2 }))).toEqual([29, 30]);
      expect(seqs(bus.recent({ channel: "a", limit: 3 }))).toEqual([23, 26, 29]);
      const channelsOnly = bus.recent({ limit: 3, visible: (event) => event.channel !== null });
      expect(seqs(channelsOnly)).toEqual([27, 29, 30]);
    });
  });
});
