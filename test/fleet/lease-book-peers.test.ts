/**
 * Which nodes a node asks and probes as its peers (lease-book.ts `peers`): every other node until it is down
 * (its heartbeat 30 s old), not only those that beat within three lease times. A peer back from a cut longer
 * than three lease times has not beaten again yet when this node reads the nodes; cut off itself just then, a
 * node that left such a peer out took the fleet for empty and kept sending while that peer took its leases
 * (test/lab/fleet-partition: 213 ms of two senders after an 8.6 s cut with a 3 s lease).
 */
import * as Effect from "effect/Effect";
import { describe, expect, it } from "vitest";
import { fleetClock } from "../../src/effects/fleet/fleet-clock.ts";
import { makeLeaseBook } from "../../src/effects/fleet/lease-book.ts";
import type { NodeRow } from "../../src/effects/fleet/nodes.ts";

const TTL = 3000;
const node = (id: string, heartbeatAgeMs: number): NodeRow => ({
  id,
  url: `http://198.18.0.1:${8000 + id.charCodeAt(0)}`,
  bootId: `boot-${id}`,
  version: "test",
  startedAt: new Date(0).toISOString(),
  heartbeatAgeMs,
  draining: false,
  load: { channels_running: 0, cpu_percent: 0 },
  leaseInMs: TTL,
});

describe("a node's peers", () => {
  it("are the other nodes until they are down, a peer back from a long cut among them", async () => {
    const book = makeLeaseBook("b", TTL, await Effect.runPromise(fleetClock));
    // a's last beat was 9.6 s ago (it was cut for 8.6 s), c's 31 s ago, d's just now.
    book.setNodes([node("a", 9600), node("b", 0), node("c", 31_000), node("d", 0)], 0);
    expect(book.peers().map((peer) => peer.id)).toEqual(["a", "d"]);
    // c beats again: a peer once more.
    book.setNodes([node("a", 600), node("b", 0), node("c", 200), node("d", 0)], 1000);
    expect(book.peers().map((peer) => peer.id)).toEqual(["a", "c", "d"]);
  });
});
