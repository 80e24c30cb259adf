/**
 * `node_down` and `node_up`, said once in the fleet: every node reads every node's lease at each round, so
 * every node notices a node whose lease ran out (its channels are then taken over) or that renews again; the
 * one whose statement flips that node's row of `node_states` (migration 4) first is the one that says it, on
 * its own bus, from where its notifiers deliver it. A drained node's lease runs out too, on purpose: it is not
 * down. The claims run in a fiber of their own, never in the round that renews this node's leases; a statement
 * that fails is tried again after the next round.
 *
 * Every node that sees a node go down, whether its claim won or not, also hands it to its `onDown` listeners
 * (the notifications take over its pending deliveries: one statement, so one node gets each), unless it drains
 * itself; a listener that fails has the node handed again after the next round.
 */
import * as Effect from "effect/Effect";
import * as Queue from "effect/Queue";
import type { Queryable } from "../config/postgres/database.ts";
import type { EventBus } from "../events/event-bus.ts";
import type { NodeRow } from "./nodes.ts";

/** Marks `node` down; true only for the statement that changed it (or made its row). */
const claimDown = async (q: Queryable, node: string) =>
  (
    await q.query(
      `insert into node_states (node, down) values ($1, true)
       on conflict (node) do update set down = true, changed_at = now() where not node_states.down
       returning node`,
      [node],
    )
  ).rows.length === 1;

/** Marks `node` up again; true only for the statement that changed it from down. */
const claimUp = async (q: Queryable, node: string) =>
  (
    await q.query(
      "update node_states set down = false, changed_at = now() where node = $1 and down returning node",
      [node],
    )
  ).rows.length === 1;

/** What a node found down is handed to: fails when what it did should be done again. */
export type NodeDownListener = (node: string) => Effect.Effect<void, unknown>;

export const makeNodeNotices = (q: Queryable, bus: EventBus, me: string) =>
  Effect.gen(function* () {
    const listeners = new Set<NodeDownListener>();
    /** Each node as this node last saw it (true: down); absent until first seen. */
    const seen = new Map<string, boolean>();
    /** Whether `node` is down as a round reads it: its lease ran out, and not by a drain; null: not yet renewed. */
    const downOf = (node: NodeRow): boolean | null =>
      node.draining || !Number.isFinite(node.leaseInMs) ? null : node.leaseInMs < 0;

    /** What changed since the last round is claimed, and said if this node's claim won. */
    const claim = (nodes: ReadonlyArray<NodeRow>) => {
      const draining = nodes.find((node) => node.id === me)?.draining === true;
      const handOver = (node: string) =>
        draining ? Effect.void : Effect.forEach(listeners, (listener) => listener(node), { discard: true });
      return Effect.forEach(
        nodes,
        (node) => {
          const down = downOf(node);
          if (down === null || seen.get(node.id) === down) return Effect.void;
          return Effect.tryPromise(() => (down ? claimDown(q, node.id) : claimUp(q, node.id))).pipe(
            Effect.tap((won) =>
              Effect.sync(() => {
                if (!won) return;
                bus.emit(
                  down
                    ? {
                        type: "node_down",
                        node: node.id,
                        message: "its lease ran out: its channels go to the other nodes",
                      }
                    : { type: "node_up", node: node.id, message: "it renews its lease again" },
                );
              }),
            ),
            // Said once: handed again after a failure, the claim is the database's already and wins nothing.
            Effect.zipRight(down ? handOver(node.id) : Effect.void),
            Effect.zipRight(Effect.sync(() => seen.set(node.id, down))),
            Effect.catchAllCause(() => Effect.void),
          );
        },
        { discard: true },
      );
    };
    const latest = yield* Queue.sliding<ReadonlyArray<NodeRow>>(1);
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(latest), claim)));
    /** Each round's nodes: handed over, never waited for. */
    return {
      observe: (nodes: ReadonlyArray<NodeRow>) => latest.unsafeOffer(nodes),
      onDown: (listener: NodeDownListener) => {
        listeners.add(listener);
      },
    } as const;
  });
