/**
 * The schedule's progress in a fleet: the `schedule_progress` table (migration 4), one row per channel and
 * occurrence, shared by every node so that the node taking a channel over reads what its holder did. Only the
 * holder writes: a write counts only while this node holds the channel's lease (its lease row names this node
 * at the boot its node row carries, and that node's lease runs), so a node that lost the lease — cut off, or
 * stalled past it — cannot overwrite what the new holder stored. Such a write is refused as a conflict.
 */
import { hostname } from "node:os";
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import * as Option from "effect/Option";
import * as Schema from "effect/Schema";
import { type ChannelProgress, ScheduleStore, StoredProgress } from "../schedule-progress.ts";
import { nodeId } from "../settings.ts";
import { StoreError } from "../store.ts";
import { Database, type DatabaseError } from "./database.ts";

/** The row that says since when the channel's schedule runs (occurrence keys always hold an "@"). */
const SINCE = "since";

/** This node holds the channel's lease now ($1 the channel, $2 this node). */
const HOLDS = `exists (select 1 from leases l join nodes n on n.id = l.holder and n.boot_id = l.holder_boot
  where l.channel = $1 and l.holder = $2 and n.lease_until > now())`;

const storeError = (error: DatabaseError) =>
  new StoreError({ reason: "unavailable", message: `the schedule's progress: ${error.message}` });

const decodeProgress = Schema.decodeUnknownOption(StoredProgress);

export const layerSchedulePostgres: Layer.Layer<ScheduleStore, never, Database> = Layer.effect(
  ScheduleStore,
  Effect.gen(function* () {
    const db = yield* Database;
    const node = Option.getOrElse(yield* Effect.orDie(nodeId), () => hostname());
    /** Upserts one row, fenced by the lease; a refused write is a conflict. */
    const write = (channel: string, key: string, value: unknown) =>
      db
        .query(
          `insert into schedule_progress (channel, key, progress, updated_at)
             select $1, $3, $4::jsonb, now() where ${HOLDS}
           on conflict (channel, key) do update set progress = excluded.progress, updated_at = now()
           returning key`,
          [channel, node, key, JSON.stringify(value)],
        )
        .pipe(
          Effect.mapError(storeError),
          Effect.flatMap((rows) =>
            rows.length === 1
              ? Effect.void
              : Effect.fail(
                  new StoreError({
                    reason: "conflict",
                    message: `node ${node} no longer holds channel ${channel}'s lease: its schedule's progress is the holder's to write`,
                  }),
                ),
          ),
        );
    return ScheduleStore.of({
      load: (channel) =>
        db
          .query<{ key: string; progress: unknown }>(
            "select key, progress from schedule_progress where channel = $1",
            [channel],
          )
          .pipe(
            Effect.mapError(storeError),
            Effect.map((rows): ChannelProgress => {
              let since: number | null = null;
              const occurrences = new Map<string, StoredProgress>();
              for (const row of rows) {
                if (row.key === SINCE) {
                  const value = (row.progress as { since?: unknown } | null)?.since;
                  since = typeof value === "number" ? value : null;
                  continue;
                }
                const progress = decodeProgress(row.progress);
                if (Option.isSome(progress)) occurrences.set(row.key, progress.value);
              }
              return { since, occurrences };
            }),
          ),
      save: (channel, progress) => write(channel, progress.key, progress),
      saveSince: (channel, since) => write(channel, SINCE, { since }),
      prune: (channel, beforeT0) =>
        db
          .query(
            `delete from schedule_progress where channel = $1 and key <> '${SINCE}'
               and (progress->>'t0')::double precision < $2`,
            [channel, beforeT0],
          )
          .pipe(Effect.mapError(storeError), Effect.asVoid),
    });
  }),
);
