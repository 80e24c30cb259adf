/**
 * `/api/events`: the recent events of the event bus (a bounded ring), oldest first, filtered by channel and by
 * type; `after` gives only events newer than a `seq` a client already has. The same events reach WebSocket
 * clients as they happen.
 */
import * as Effect from "effect/Effect";
import { invalid } from "../../domain/base/validate.ts";
import { EVENT_TYPES, EventList } from "../../domain/events/events.ts";
import { EVENT_RING_SIZE, type EventBus, type EventFilter } from "../../effects/events/event-bus.ts";
import { eventsFor } from "../access.ts";
import { type Api, makeApi, type Run } from "../routes.ts";

const integerIn = (text: string | undefined, field: string, min: number, max: number) => {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    return invalid([{ field, message: `must be an integer from ${min} to ${max}, got '${text}'` }]);
  }
  return value;
};

/** The query of `/api/events` as a filter, or the problem with it. */
export const eventFilter = (query: Record<string, string>, channel?: string) =>
  Effect.suspend(() => {
    const types = query.type?.split(",").map((type) => type.trim());
    const unknown = types?.filter((type) => !(EVENT_TYPES as ReadonlyArray<string>).includes(type)) ?? [];
    if (unknown.length > 0) {
      return Effect.fail(
        invalid([
          { field: "type", message: `unknown event type '${unknown[0]}'; one of ${EVENT_TYPES.join(", ")}` },
        ]),
      );
    }
    const limit = integerIn(query.limit, "limit", 1, EVENT_RING_SIZE);
    const after = integerIn(query.after, "after", 0, Number.MAX_SAFE_INTEGER);
    for (const value of [limit, after]) if (typeof value === "object") return Effect.fail(value);
    const filter: EventFilter = {
      channel: channel ?? query.channel,
      types: types as EventFilter["types"],
      limit: limit as number | undefined,
      after: after as number | undefined,
    };
    return Effect.succeed(filter);
  });

export const eventsApi = (bus: EventBus, run: Run): Api => {
  // The list of every channel's events: needs the role on some channel, and shows only the caller's channels'.
  const { app, routes, on } = makeApi({ channels: true });
  on(
    {
      method: "get",
      path: "/",
      access: "viewer",
      summary:
        "Recent events, oldest first: switches, input loss, output states and reconnects, cues, API changes " +
        "(query: channel, type=a,b, limit, after=seq)",
      response: EventList,
    },
    (c) =>
      run(
        c,
        Effect.map(eventFilter(c.req.query()), (filter) =>
          bus.recent({ ...filter, visible: eventsFor(c.get("principal"), c.get("access")) }),
        ),
        (events) => c.json({ events }),
      ),
  );
  return { app, routes };
};
