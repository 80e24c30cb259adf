/**
 * The notifications' figures in `/metrics`, read at scrape time: deliveries by notifier and outcome (each
 * attempt that failed, each delivery delivered, given up or dropped, each notifier turned off by a 410, each
 * delivery dropped to make room past a notifier's pending cap), and
 * each notifier's backlog, the deliveries waiting for their next attempt. Labels are notifier ids: bounded by
 * what an admin configures, never a URL.
 */
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import { Counter, Gauge } from "prom-client";
import { Metrics } from "../status/metrics.ts";
import { Notifications } from "./deliveries.ts";
import { OUTCOMES } from "./delivery-queues.ts";

export const NotifyMetricsLive = Layer.effectDiscard(
  Effect.gen(function* () {
    const metrics = yield* Metrics;
    const notifications = yield* Notifications;
    new Counter({
      name: "distributary_notifications_total",
      help: "Notification attempts and deliveries by notifier and outcome: delivered, failed (an attempt), dropped (given up or left pending by a notifier turned off), disabled (a 410 turned the notifier off), overflowed (the oldest pending delivery dropped for a new one, the notifier at its 1000 pending)",
      labelNames: ["notifier", "outcome"],
      registers: [metrics.registry],
      collect() {
        this.reset();
        for (const [notifier, counts] of notifications.counts())
          for (const outcome of OUTCOMES) this.inc({ notifier, outcome }, counts[outcome]);
      },
    });
    new Gauge({
      name: "distributary_notification_backlog",
      help: "Deliveries of each notifier waiting for their next attempt",
      labelNames: ["notifier"],
      registers: [metrics.registry],
      collect() {
        this.reset();
        for (const [notifier, size] of notifications.backlog()) this.set({ notifier }, size);
      },
    });
  }),
);
