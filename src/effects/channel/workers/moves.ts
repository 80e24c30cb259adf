/**
 * A running channel moved from one forwarding worker to another (pool.ts): asked through the API
 * (`POST /api/channels/{id}/move`) or decided by the pool's rebalance, which moves a part of a busy worker's
 * channels to a calmer one (placement.ts `planRebalance`), one after another.
 *
 * A move starts the channel's new copy beside the old one, its UDP inputs joining the old sockets' ports
 * connected to the senders they hear (udp-receiver.ts), so the kernel hands the stream over between two
 * datagrams. The two copies then tell each other through one shared word (runtime/threads/move-word.ts): the
 * new copy says it runs, the old one reads and sends what its sockets still hold and says it is done, and the
 * new copy sends what it held meanwhile and forwards from then on. The old copy then closes its inputs, lets
 * its outputs send what they queued, and stops. Each move is a `handover` event (handover/report.ts).
 */
import * as Effect from "effect/Effect";
import type * as Scope from "effect/Scope";
import type { ChannelId } from "../../../domain/base/ids.ts";
import type { EventBus } from "../../events/event-bus.ts";
import { reportHandoverOn } from "../../handover/report.ts";
import { makeMoveWord } from "../../runtime/threads/move-word.ts";
import type { Handover } from "../channel-types.ts";
import { ChannelError } from "../channel-types.ts";
import { type Entry, portMate } from "./mirror.ts";
import { planRebalance, type Seat } from "./placement.ts";
import { cpuShare, judgeAfresh, request, type Slot } from "./threads.ts";

/** What the moves need of the pool: its channels, its workers and how to weigh them. */
export interface PoolView {
  readonly bus: EventBus;
  /** The pool's own scope: a rebalance's moves run in it, and end with the service. */
  readonly scope: Scope.Scope;
  readonly entries: ReadonlyMap<ChannelId, Entry>;
  readonly slots: ReadonlyArray<Slot>;
  /** Starts the slot's thread if it is not running yet. */
  readonly wake: (slot: Slot) => void;
  /** `use` on a running channel and its worker's slot; fails with not_running otherwise. */
  readonly withEntry: <A>(
    id: ChannelId,
    use: (entry: Entry, slot: Slot) => Effect.Effect<A, ChannelError>,
  ) => Effect.Effect<A, ChannelError>;
  /** The workers as placement.ts weighs them, each with its share of a core as `share` says. */
  readonly seats: (share: (slot: Slot) => number | null) => ReadonlyArray<Seat & { readonly slot: Slot }>;
  /** The busy line and the move line, as shares of a core. */
  readonly lines: { readonly busy: number; readonly move: number };
}

export const makeMoves = (pool: PoolView) => {
  const { bus, entries, slots, wake, withEntry } = pool;

  const move = (id: ChannelId, to: number) =>
    withEntry(id, (entry, from) =>
      Effect.gen(function* () {
        const target = slots[to];
        if (target === undefined)
          return yield* Effect.fail(
            new ChannelError({
              reason: "not_running",
              message: `there is no forwarding worker ${to} (0–${slots.length - 1})`,
            }),
          );
        if (target === from) return;
        const mate = portMate(entries, entry.spec);
        if (mate !== undefined) {
          return yield* Effect.fail(
            new ChannelError({
              reason: "not_running",
              message: `channel ${id} shares an SRT port by stream id with channel ${mate.spec.id}: channels on one such port run on one forwarding worker, whose listener the port is`,
            }),
          );
        }
        wake(target);
        judgeAfresh(target);
        // The two copies' own word (move-word.ts): they hand the stream over between themselves, without
        // waiting for the replies to cross this thread (a silence of hundreds of ms when it is busy).
        const handedOver = makeMoveWord();
        const startedAt = performance.now();
        const handover = yield* request<Handover>(from, { op: "senders", channel: id, handedOver });
        yield* request(target, { op: "start", spec: entry.spec, handover, handedOver }).pipe(
          Effect.tapError(() => Effect.ignore(request(target, { op: "stop", channel: id }))),
        );
        entry.worker = to;
        const packets = yield* request<number>(from, { op: "release", channel: id, handedOver }).pipe(
          Effect.orElseSucceed(() => null),
        );
        // The kernel gives each datagram to one socket and the new copy holds what it reads until the old
        // one has sent its last (move-word.ts): nothing is lost or repeated that either copy could count.
        reportHandoverOn(bus, {
          kind: "thread",
          mode: "thread",
          channel: id,
          from: `thread ${from.index}`,
          to: `thread ${to}`,
          packetsAtCut: packets ?? 0,
          durationMs: performance.now() - startedAt,
          lost: 0,
          repeated: 0,
        });
        yield* request(target, { op: "settle", channel: id });
      }),
    );

  /** A rebalance's moves are under way: no other is decided meanwhile. */
  let balancing = false;
  /** A worker over the move line hands channels to a calmer one (placement.ts `planRebalance`). */
  const rebalance: Effect.Effect<unknown> = Effect.suspend(() => {
    if (balancing) return Effect.void;
    const runningOn = (index: number) =>
      [...entries.entries()].flatMap(([id, entry]) => (entry.worker === index && entry.running ? [id] : []));
    const plan = planRebalance(
      pool.seats((slot) => (slot.worker === null ? null : cpuShare(slot))),
      pool.lines,
      (seat) => runningOn(seat.index).length,
    );
    if (plan === null) return Effect.void;
    const { share } = plan;
    const busy = plan.from.slot;
    const target = plan.to.slot;
    const ids = runningOn(busy.index);
    // Channels sharing an SRT port by stream id stay with the port's listener.
    const moving = ids
      .filter((id) => {
        const entry = entries.get(id);
        return entry === undefined || portMate(entries, entry.spec) === undefined;
      })
      .slice(-plan.count);
    balancing = true;
    // One packet core a channel's input (primary, backup): their memories (1.9 MB each) made on the new worker
    // before the first move, so that the full collections V8 makes for them do not pause it while it forwards
    // the channels it took (50 × 4: 25 channels, 47 MB, two pauses of 20–27 ms before this).
    const cores = moving.reduce((sum, id) => sum + (entries.get(id)?.spec.backup == null ? 1 : 2), 0);
    return Effect.forkIn(
      Effect.logInfo(
        `forwarding worker ${busy.index} is busy (${Math.round(share * 100)} % of a core over 5 s): ` +
          `${moving.length} of its ${ids.length} channels move to worker ${target.index}` +
          (target.worker === null ? ", started for them" : ""),
      ).pipe(
        Effect.zipRight(
          Effect.suspend(() => {
            wake(target);
            return Effect.ignore(request(target, { op: "prepare", cores }));
          }),
        ),
        Effect.zipRight(
          Effect.forEach(
            moving,
            (id) =>
              move(id, target.index).pipe(
                Effect.catchAll((error) =>
                  Effect.logWarning(`channel ${id} stays on worker ${busy.index}: ${error.message}`),
                ),
              ),
            { discard: true },
          ),
        ),
        Effect.ensuring(
          Effect.ignore(request(target, { op: "prepare", cores: 0 })).pipe(
            Effect.zipRight(
              Effect.sync(() => {
                judgeAfresh(busy);
                judgeAfresh(target);
                balancing = false;
              }),
            ),
          ),
        ),
      ),
      pool.scope,
    );
  });

  return { move, rebalance };
};
