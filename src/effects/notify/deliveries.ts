import { hostname } from "node:os";
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import * as Queue from "effect/Queue";
import type { ChannelEvent } from "../../domain/events/events.ts";
import { type NotifierRecord, notifyEventOf, wants } from "../../domain/events/notifiers.ts";
import { payloadOf } from "../../domain/events/notify-bodies.ts";
import { Database } from "../config/postgres/database.ts";
import { nodeId, nodeUrl, notifyAllowPrivate, servePort } from "../config/settings.ts";
import { DocumentStore } from "../config/store.ts";
import { EventBus } from "../events/event-bus.ts";
import { KEPT_DELIVERIES, makeDeliveryQueues, type Outcome, testDelivery } from "./delivery-queues.ts";
import { Notifiers } from "./notifiers.ts";
import { type Delivery, databaseOutbox, type OutboxStore, storeOutbox } from "./outbox.ts";

export class Notifications extends Effect.Service<Notifications>()("distributary/Notifications", {
  scoped: Effect.gen(function* () {
    const notifiers = yield* Notifiers;
    const bus = yield* EventBus;
    const database = yield* Effect.serviceOption(Database);
    const outbox: OutboxStore = Option.isSome(database)
      ? databaseOutbox(database.value)
      : yield* storeOutbox(yield* DocumentStore);
    const node = Option.getOrElse(yield* Effect.orDie(nodeId), () => hostname());
    const port = yield* Effect.orDie(servePort);
    const serviceUrl = Option.getOrElse(yield* Effect.orDie(nodeUrl), () => `http://${hostname()}:${port}`);
    const allowPrivate = yield* Effect.orDie(notifyAllowPrivate);
    const policy = {
      allowPrivate,
      allowLoopback: allowPrivate,
      words: {
        target: "the notifier's address",
        service: "notifications go",
        setting: "DISTRIBUTARY_NOTIFY_ALLOW_PRIVATE",
      },
    };

    const deps = { notifiers, outbox, node, serviceUrl, policy };
    const queues = yield* makeDeliveryQueues(deps);
    const { enqueue, newDelivery, resume } = queues;

    /** The output states seen, for `output_recovered` (connected after an error). */
    const outputStates = new Map<string, string>();
    /** Whether this node speaks for a channel's events (in a fleet: it holds the channel's lease). */
    let sendsFor: (channel: string) => boolean = () => true;
    const onEvent = (event: ChannelEvent) =>
      Effect.gen(function* () {
        let previous: string | undefined;
        if (event.type === "output_state") {
          const key = `${event.channel}/${event.output}`;
          previous = outputStates.get(key);
          outputStates.set(key, event.state);
        }
        const type = notifyEventOf(event, previous);
        if (type === null || (event.channel !== null && !sendsFor(event.channel))) return;
        const payload = payloadOf(type, event, node);
        const deliveries: Delivery[] = [];
        for (const notifier of notifiers.current())
          if (wants(notifier, type, event.channel)) deliveries.push(yield* newDelivery(notifier.id, payload));
        if (deliveries.length > 0) yield* enqueue(deliveries);
      });

    // What this node left pending when it stopped goes on (unless a live node took it over meanwhile).
    yield* resume(yield* outbox.pending(node));
    const subscription = yield* bus.subscribe;
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.flatMap(Queue.take(subscription), (event) =>
          onEvent(event).pipe(
            Effect.catchAllCause((cause) =>
              Effect.logWarning("notifications: an event was not queued", cause),
            ),
          ),
        ),
      ),
    );

    return {
      /** A notifier's last deliveries, newest first. */
      recent: (notifier: string) => outbox.recent(notifier, KEPT_DELIVERIES),
      /** Sends a test delivery to the notifier now (once, whatever its events) and answers how it went. */
      test: (notifier: NotifierRecord) => testDelivery(deps, queues, notifier),
      /**
       * In a fleet, a channel's standbys run it too and see the same input events: only the node that holds its
       * lease (that sends its outputs) delivers them (wired in services.ts).
       */
      sendOnlyFor: (holds: (channel: string) => boolean): void => {
        sendsFor = holds;
      },
      /**
       * In a fleet, a delivery whose row the database cannot be asked about is attempted only while `holds`
       * (this node's lease still holds, so no node can have found it down and taken it over).
       */
      sendUnconfirmedWhile: (holds: () => boolean): void => {
        queues.sendUnconfirmed = holds;
      },
      /**
       * Node `from` was found down: its pending deliveries become this node's, in one statement (one node gets
       * each), and are attempted at their next tries. Fails when the statement did, to be tried again.
       */
      adoptFrom: (from: string) =>
        Effect.gen(function* () {
          const taken = yield* outbox.adopt(from, node);
          if (taken.length === 0) return;
          yield* resume(taken);
          yield* Effect.logInfo(
            `notifications: node ${node} took over ${taken.length} pending deliveries of node ${from}`,
          );
        }),
      /** Deliveries by outcome since the start, by notifier. */
      counts: (): ReadonlyMap<string, Readonly<Record<Outcome, number>>> => queues.counts,
      /** Deliveries waiting for their next attempt, by notifier. */
      backlog: (): ReadonlyMap<string, number> =>
        new Map([...queues.byNotifier].map(([id, queue]) => [id, queue.due.size] as const)),
    } as const;
  }),
}) {}
