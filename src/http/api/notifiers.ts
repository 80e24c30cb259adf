/**
 * `/api/notifiers`: where notifications go (admin only). A webhook's secret made by the service is in the
 * answer to its creation, once; every other answer masks every secret. `GET /{id}` carries the notifier's
 * last deliveries, and `POST /{id}/test` sends one now and answers how it went.
 */
import * as Effect from "effect/Effect";
import * as Schema from "effect/Schema";
import { NotifierBody, NotifierPatch, NotifierView } from "../../domain/events/notifiers.ts";
import type { Notifications } from "../../effects/notify/deliveries.ts";
import type { Notifiers } from "../../effects/notify/notifiers.ts";
import type { Delivery } from "../../effects/notify/outbox.ts";
import { type Api, body, makeApi, param, type Run } from "../routes.ts";
import { Deleted } from "./channels.ts";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export const DeliveryView = Schema.Struct({
  id: Schema.String.annotations({ description: "the webhook-id of its requests" }),
  created_at: Schema.String,
  type: Schema.String,
  node: Schema.String,
  state: Schema.Literal("pending", "delivered", "failed", "dropped"),
  attempts: Schema.Number,
  status: Schema.NullOr(Schema.Number).annotations({ description: "the latest attempt's HTTP status" }),
  message: Schema.NullOr(Schema.String),
  last_attempt_at: Schema.NullOr(Schema.String),
  next_attempt_at: Schema.NullOr(Schema.String),
}).annotations({ identifier: "Delivery" });
export type DeliveryView = typeof DeliveryView.Type;

export const deliveryView = (delivery: Delivery): DeliveryView => ({
  id: delivery.id,
  created_at: delivery.created_at,
  type: delivery.type,
  node: delivery.node,
  state: delivery.state,
  attempts: delivery.attempts,
  status: delivery.status,
  message: delivery.message,
  last_attempt_at: iso(delivery.last_at),
  next_attempt_at: iso(delivery.next_at),
});

const WithDeliveries = Schema.Struct({
  ...NotifierView.fields,
  deliveries: Schema.Array(DeliveryView),
}).annotations({ identifier: "NotifierWithDeliveries" });

const TestOutcome = Schema.Struct({
  id: Schema.String,
  ok: Schema.Boolean,
  status: Schema.NullOr(Schema.Number),
  message: Schema.String,
}).annotations({ identifier: "NotifierTest" });

export const notifiersApi = (notifiers: Notifiers, notifications: Notifications, run: Run): Api => {
  const { app, routes, on } = makeApi();
  const withDeliveries = (id: string) =>
    Effect.flatMap(notifiers.get(id), (view) =>
      Effect.map(notifications.recent(id), (deliveries) => ({
        ...view,
        deliveries: deliveries.map(deliveryView),
      })),
    );

  on(
    {
      method: "get",
      path: "/",
      access: "admin",
      summary: "List notifiers (secrets masked)",
      response: Schema.Struct({ notifiers: Schema.Array(NotifierView) }),
    },
    (c) => run(c, notifiers.list, (list) => c.json({ notifiers: list })),
  );
  on(
    {
      method: "post",
      path: "/",
      access: "admin",
      summary: "Create a notifier; a webhook secret made for it is returned once",
      body: NotifierBody,
      response: NotifierView,
      status: 201,
    },
    (c) => run(c, Effect.flatMap(body(c, NotifierBody), notifiers.create), (view) => c.json(view, 201)),
  );
  on(
    {
      method: "get",
      path: "/{id}",
      access: "admin",
      summary: "A notifier and its last deliveries",
      response: WithDeliveries,
    },
    (c) => run(c, withDeliveries(param(c, "id")), (view) => c.json(view)),
  );
  on(
    {
      method: "get",
      path: "/{id}/deliveries",
      access: "admin",
      summary: "A notifier's last deliveries, newest first",
      response: Schema.Struct({ deliveries: Schema.Array(DeliveryView) }),
    },
    (c) =>
      run(
        c,
        Effect.map(withDeliveries(param(c, "id")), (view) => view.deliveries),
        (deliveries) => c.json({ deliveries }),
      ),
  );
  on(
    {
      method: "patch",
      path: "/{id}",
      access: "admin",
      summary: "Change a notifier (secrets: send new ones, or leave them out to keep them)",
      body: NotifierPatch,
      response: NotifierView,
    },
    (c) =>
      run(
        c,
        Effect.flatMap(body(c, NotifierPatch), (patch) => notifiers.update(param(c, "id"), patch)),
        (view) => c.json(view),
      ),
  );
  on(
    { method: "delete", path: "/{id}", access: "admin", summary: "Delete a notifier", response: Deleted },
    (c) => run(c, notifiers.remove(param(c, "id")), () => c.json({ id: param(c, "id"), deleted: true })),
  );
  on(
    {
      method: "post",
      path: "/{id}/test",
      access: "admin",
      summary: "Send a test delivery now and answer how it went",
      response: TestOutcome,
    },
    (c) =>
      run(c, Effect.flatMap(notifiers.find(param(c, "id")), notifications.test), (outcome) =>
        c.json(outcome),
      ),
  );
  return { app, routes };
};
