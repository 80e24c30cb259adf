/**
 * The fleet's audit trail holds every configuration change (written in the change's own transaction), but an
 * operator's commands that change no stored row — a drain, a move, MediaLive started or stopped, the cost
 * guard's stop called off, thumbnails turned on or off — and a configuration document's apply as one change
 * with its digest (`config.apply`, or `config.file_refused`; the store audits its rows one by one), exist
 * only as `api_change` events on the node that carried them out. This copies those into the `audit` table,
 * so `GET /api/audit` on any node answers who drained a node or moved a channel, and when — and who was refused on a channel out of their reach
 * (`access.refused`, already at most one a minute per caller). Each hand-over of a channel (its `handover` event:
 * an upgrade, a move, a drain, a thread move) is a row too, by `system`, action `handover.<kind>`. A row that cannot be written (the database is
 * away) is logged and stays in that node's own event log.
 */
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import * as Stream from "effect/Stream";
import { handoverWords } from "../../domain/channel/handover.ts";
import type { ChannelEvent } from "../../domain/events/events.ts";
import type { DatabaseShape } from "../config/postgres/database.ts";
import type { EventBus } from "../events/event-bus.ts";

/** Commands of an operator that are not a stored change (those are audited by the store already). */
const COMMANDS =
  /^(node\.drain|channel\.move|medialive\.[a-z]+|settings\.[a-z]+|access\.refused|config\.(apply|file_refused))$/;

type Audited = Extract<ChannelEvent, { type: "api_change" }>;

/** A hand-over (handover/report.ts) as an audit row: the service did it, action `handover.<kind>`. */
const handoverRow = (event: Extract<ChannelEvent, { type: "handover" }>): Audited => ({
  ...event,
  type: "api_change",
  actor: "system",
  action: `handover.${event.kind}`,
  detail: handoverWords(event),
});

export const auditCommands = (bus: EventBus, db: DatabaseShape, node: string) =>
  bus.stream.pipe(
    Stream.filterMap((event) =>
      event.type === "api_change" && COMMANDS.test(event.action)
        ? Option.some<Audited>(event)
        : event.type === "handover"
          ? Option.some(handoverRow(event))
          : Option.none(),
    ),
    Stream.runForEach((event) =>
      db
        .query(
          `insert into audit (at, node, actor, action, detail, channel, actor_via, actor_subject, actor_issuer)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          [
            event.at,
            node,
            event.actor,
            event.action,
            event.detail,
            event.channel,
            event.actor_via ?? null,
            event.actor_subject ?? null,
            event.actor_issuer ?? null,
          ],
        )
        .pipe(
          Effect.catchAll((error) =>
            Effect.logWarning(`fleet: the audit row of ${event.action} was not written: ${String(error)}`),
          ),
        ),
    ),
  );
