/**
 * The deliveries' queues (deliveries.ts): one per notifier, each with its own fiber that attempts its due
 * deliveries one after the other; the outcomes counted, finished rows kept to the last KEPT_DELIVERIES, a
 * notifier at MAX_PENDING making room by dropping its oldest, a notifier turned off or deleted dropping what it
 * had pending.
 */
import { randomUUID } from "node:crypto";
import * as Clock from "effect/Clock";
import * as Duration from "effect/Duration";
import * as Effect from "effect/Effect";
import * as FiberMap from "effect/FiberMap";
import * as Queue from "effect/Queue";
import * as Random from "effect/Random";
import { type NotifierRecord, TEST_EVENT } from "../../domain/events/notifiers.ts";
import type { NotificationPayload } from "../../domain/events/notify-bodies.ts";
import type { Notifiers } from "./notifiers.ts";
import type { Delivery, OutboxStore } from "./outbox.ts";
import { type AttemptOutcome, attempt, prepare } from "./send.ts";

/** The waits after the first failures; then hourly, until a day after the event. */
export const RETRY_DELAYS_MS = [5_000, 30_000, 120_000, 600_000, 1_800_000] as const;
const HOURLY_MS = 3_600_000;
const GIVE_UP_AFTER_MS = 24 * HOURLY_MS;
/** How many finished deliveries of each notifier are kept to be seen. */
export const KEPT_DELIVERIES = 20;
/**
 * A notifier's pending deliveries at most: past it the oldest is dropped, counted as `overflowed` (its receiver
 * has been down for a while; what happens now matters more to on-call than what happened first).
 */
export const MAX_PENDING = 1000;
/** Overflow drops between two prunings of a notifier's finished deliveries (each pruning reads its rows). */
const PRUNE_EVERY_OVERFLOW = 20;

export const OUTCOMES = ["delivered", "failed", "dropped", "disabled", "overflowed"] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** The wait after the `failures`-th failed attempt, before jitter. */
export const retryDelayMs = (failures: number): number => RETRY_DELAYS_MS[failures - 1] ?? HOURLY_MS;

interface NotifierQueue {
  readonly due: Map<string, Delivery>;
  readonly wake: Queue.Queue<void>;
}

export interface QueueDeps {
  readonly notifiers: Notifiers;
  readonly outbox: OutboxStore;
  /** This node's id, written on each delivery it makes. */
  readonly node: string;
  /** The service's own address, for the links in a delivery's body. */
  readonly serviceUrl: string;
  /** Which receivers' addresses may be sent to. */
  readonly policy: Parameters<typeof attempt>[2];
}

export const makeDeliveryQueues = ({ notifiers, outbox, node, serviceUrl, policy }: QueueDeps) =>
  Effect.gen(function* () {
    const counts = new Map<string, Record<Outcome, number>>();
    const count = (notifier: string, outcome: Outcome) => {
      const entry = counts.get(notifier) ?? {
        delivered: 0,
        failed: 0,
        dropped: 0,
        disabled: 0,
        overflowed: 0,
      };
      entry[outcome] += 1;
      counts.set(notifier, entry);
    };
    const queues = new Map<string, NotifierQueue>();
    const workers = yield* FiberMap.make<string>();
    const record = (id: string): NotifierRecord | undefined =>
      notifiers.current().find((candidate) => candidate.id === id);

    /** A delivery another node took over: out of this node's queue, never sent from here again. */
    const release = (delivery: Delivery) =>
      Effect.zipRight(
        Effect.sync(() => queues.get(delivery.notifier)?.due.delete(delivery.id)),
        Effect.logInfo(`notifications: delivery ${delivery.id} was taken over by another node: dropped here`),
      );

    /** Overflow drops since each notifier's finished deliveries were last pruned. */
    const overflowsSincePrune = new Map<string, number>();
    const finish = (
      delivery: Delivery,
      outcome: AttemptOutcome | null,
      state: Delivery["state"],
      prune = true,
    ) =>
      Effect.gen(function* () {
        queues.get(delivery.notifier)?.due.delete(delivery.id);
        // Fenced: a row another node took over stays as its new node has it (nothing written here).
        yield* outbox.save({
          ...delivery,
          state,
          next_at: null,
          ...(outcome === null ? {} : { status: outcome.status, message: outcome.message }),
        });
        if (prune) yield* outbox.prune(delivery.notifier, KEPT_DELIVERIES, false);
      });

    /** One attempt of `delivery` now, and what follows from it. */
    const attemptNow = (delivery: Delivery) =>
      Effect.gen(function* () {
        const notifier = record(delivery.notifier);
        if (notifier === undefined || !notifier.enabled) {
          count(delivery.notifier, "dropped");
          return yield* finish(delivery, null, "dropped");
        }
        const now = yield* Clock.currentTimeMillis;
        const own = yield* outbox.owns(delivery.id, node);
        if (own === false) return yield* release(delivery);
        if (own === null && !self.sendUnconfirmed()) {
          // The database away and this node's lease run out: another node may have it. Asked again later.
          queues
            .get(delivery.notifier)
            ?.due.set(delivery.id, { ...delivery, next_at: now + RETRY_DELAYS_MS[0] });
          return;
        }
        const prepared = prepare(notifier, delivery.id, delivery.payload, serviceUrl, now);
        const outcome = yield* Effect.promise(() => attempt(notifier, prepared, policy));
        const tried: Delivery = { ...delivery, attempts: delivery.attempts + 1, last_at: now };
        if (outcome.ok) {
          count(delivery.notifier, "delivered");
          return yield* finish(tried, outcome, "delivered");
        }
        count(delivery.notifier, "failed");
        if (outcome.status === 410) {
          count(delivery.notifier, "disabled");
          yield* finish(tried, outcome, "failed");
          return yield* Effect.ignore(
            notifiers.disable(delivery.notifier, `its receiver answered 410 Gone (${notifier.name})`),
          );
        }
        const wait = Math.round(retryDelayMs(tried.attempts) * (0.9 + 0.2 * (yield* Random.next)));
        const created = new Date(delivery.created_at).getTime();
        if (delivery.type === TEST_EVENT || now + wait > created + GIVE_UP_AFTER_MS) {
          if (delivery.type !== TEST_EVENT) count(delivery.notifier, "dropped");
          return yield* finish(tried, outcome, "failed");
        }
        // Dropped while it was being attempted (its notifier's pending cap, or turned off): not tried again.
        if (queues.get(delivery.notifier)?.due.has(delivery.id) !== true) return;
        const next: Delivery = {
          ...tried,
          status: outcome.status,
          message: outcome.message,
          next_at: now + wait,
        };
        queues.get(delivery.notifier)?.due.set(next.id, next);
        if (!(yield* outbox.save(next))) yield* release(next);
      });

    /** A notifier's fiber: its earliest due delivery, attempted when due; woken by a new one. */
    const worker = (id: string, queue: NotifierQueue) =>
      Effect.forever(
        Effect.gen(function* () {
          let earliest: Delivery | undefined;
          for (const delivery of queue.due.values())
            if (earliest === undefined || (delivery.next_at ?? 0) < (earliest.next_at ?? 0))
              earliest = delivery;
          if (earliest === undefined) return yield* Queue.take(queue.wake);
          const wait = (earliest.next_at ?? 0) - (yield* Clock.currentTimeMillis);
          if (wait > 0)
            return yield* Effect.race(Effect.sleep(Duration.millis(wait)), Queue.take(queue.wake));
          yield* attemptNow(earliest);
        }),
      ).pipe(Effect.annotateLogs("notifier", id));

    const queueOf = (id: string) =>
      Effect.gen(function* () {
        const known = queues.get(id);
        if (known !== undefined) return known;
        const queue: NotifierQueue = { due: new Map(), wake: yield* Queue.sliding<void>(1) };
        queues.set(id, queue);
        yield* FiberMap.run(workers, id, worker(id, queue));
        return queue;
      });

    /** A notifier at its pending cap: its oldest pending delivery dropped, counted, to make room. */
    const overflow = (queue: NotifierQueue, notifier: string) =>
      Effect.gen(function* () {
        // The queue keeps its deliveries in the order they came: the first is the oldest.
        const oldest = queue.due.values().next().value;
        if (oldest === undefined) return;
        count(notifier, "overflowed");
        const since = (overflowsSincePrune.get(notifier) ?? 0) + 1;
        overflowsSincePrune.set(notifier, since % PRUNE_EVERY_OVERFLOW);
        yield* finish(
          oldest,
          {
            ok: false,
            status: oldest.status,
            message: `dropped: ${MAX_PENDING} deliveries were pending for this notifier, and the oldest made room for a new one`,
          },
          "dropped",
          since >= PRUNE_EVERY_OVERFLOW,
        );
      });

    /** Writes an event's deliveries to the outbox together, then hands each to its notifier's fiber. */
    const enqueue = (deliveries: ReadonlyArray<Delivery>) =>
      Effect.gen(function* () {
        const targets: Array<readonly [Delivery, NotifierQueue]> = [];
        for (const delivery of deliveries) {
          const queue = yield* queueOf(delivery.notifier);
          if (queue.due.size >= MAX_PENDING) yield* overflow(queue, delivery.notifier);
          targets.push([delivery, queue]);
        }
        yield* outbox.saveNew(deliveries);
        for (const [delivery, queue] of targets) {
          queue.due.set(delivery.id, delivery);
          queue.wake.unsafeOffer(undefined);
        }
      });

    const newDelivery = (notifier: string, payload: NotificationPayload) =>
      Effect.map(
        Clock.currentTimeMillis,
        (now): Delivery => ({
          id: `msg_${randomUUID().replaceAll("-", "")}`,
          notifier,
          node,
          type: payload.type,
          payload,
          state: "pending",
          attempts: 0,
          status: null,
          message: null,
          created_at: new Date(now).toISOString(),
          next_at: now,
          last_at: null,
        }),
      );

    /** A notifier turned off or deleted: what it had pending is dropped; a deleted one's record goes too. */
    const applyChanges = Effect.gen(function* () {
      const current = new Map(notifiers.current().map((notifier) => [notifier.id, notifier]));
      for (const [id, queue] of queues) {
        const notifier = current.get(id);
        if (notifier?.enabled === true) continue;
        // Written together (a thousand pending: one write, not a thousand), then pruned once.
        const left = [...queue.due.values()];
        yield* Effect.forEach(
          left,
          (delivery) => {
            count(id, "dropped");
            return finish(delivery, null, "dropped", false);
          },
          { concurrency: 16, discard: true },
        );
        if (notifier !== undefined && left.length > 0) yield* outbox.prune(id, KEPT_DELIVERIES, false);
        if (notifier === undefined) {
          yield* FiberMap.remove(workers, id);
          queues.delete(id);
          yield* outbox.prune(id, 0, true);
        }
      }
    });
    const changed = yield* Queue.sliding<void>(1);
    notifiers.onChange(() => changed.unsafeOffer(undefined));
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Queue.take(changed), applyChanges)));

    /** Pending deliveries read from the outbox, each handed to its notifier's fiber at the try it was due. */
    const resume = (deliveries: ReadonlyArray<Delivery>) =>
      Effect.forEach(
        deliveries,
        (delivery) =>
          Effect.map(queueOf(delivery.notifier), (queue) => {
            queue.due.set(delivery.id, delivery);
            queue.wake.unsafeOffer(undefined);
          }),
        { discard: true },
      );
    const self = {
      /** Deliveries by outcome since the start, by notifier. */
      counts,
      /** Each notifier's queue. */
      byNotifier: queues as ReadonlyMap<string, NotifierQueue>,
      enqueue,
      newDelivery,
      resume,
      count,
      finish,
      /** Whether this node may attempt a delivery the outbox cannot confirm is its own (in a fleet: wired). */
      sendUnconfirmed: (() => true) as () => boolean,
    };
    return self;
  });
export type DeliveryQueues = Effect.Effect.Success<ReturnType<typeof makeDeliveryQueues>>;

/** A test delivery to the notifier now (once, whatever its events), and how it went. */
export const testDelivery = (
  { notifiers, outbox, node, serviceUrl, policy }: QueueDeps,
  { newDelivery, count, finish }: DeliveryQueues,
  notifier: NotifierRecord,
) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis;
    const payload: NotificationPayload = {
      type: TEST_EVENT,
      timestamp: new Date(now).toISOString(),
      node,
      channel: null,
      output: null,
      data: { message: `a test delivery from distributary to ${notifier.name}` },
    };
    const delivery = yield* newDelivery(notifier.id, payload);
    yield* outbox.save(delivery);
    const prepared = prepare(notifier, delivery.id, payload, serviceUrl, now);
    const outcome = yield* Effect.promise(() => attempt(notifier, prepared, policy));
    count(notifier.id, outcome.ok ? "delivered" : "failed");
    yield* finish({ ...delivery, attempts: 1, last_at: now }, outcome, outcome.ok ? "delivered" : "failed");
    // A receiver gone for a test is gone for every event.
    if (outcome.status === 410) {
      count(notifier.id, "disabled");
      yield* Effect.ignore(
        notifiers.disable(notifier.id, `its receiver answered 410 Gone (${notifier.name})`),
      );
    }
    return { id: delivery.id, ...outcome };
  });
