/**
 * The cue history in the fleet's database (`cues`): the last cues of each channel, added by the node that
 * holds it and read back by any node that starts, so a channel's cues outlive a restart and a takeover.
 */
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import type { CueRecord } from "../channel/scte35-watcher.ts";
import type { DatabaseShape } from "../config/postgres/database.ts";

export interface CueTable {
  /** Every channel's last cues, oldest first. */
  readonly load: Effect.Effect<Option.Option<Map<string, CueRecord[]>>, { readonly message: string }>;
  /**
   * Adds cues (and keeps each channel's last ones only), forgets deleted channels' cues, and writes cues
   * that changed (an RTMP output sent them since) over their rows.
   */
  readonly save: (
    adding: ReadonlyArray<{ readonly channel: string; readonly cue: CueRecord }>,
    forgotten: ReadonlyArray<string>,
    updating?: ReadonlyArray<{ readonly channel: string; readonly cue: CueRecord }>,
  ) => Effect.Effect<void, { readonly message: string }>;
}

/** `limit` cues kept per channel; `node` names the node that adds them. */
export const cueTable = (db: DatabaseShape, limit: number, node: () => string | null): CueTable => ({
  load: db
    .query<{ channel: string; record: CueRecord }>(
      `select channel, record from (
         select channel, record, id, row_number() over (partition by channel order by id desc) as age from cues
       ) latest where age <= $1 order by channel, id`,
      [limit],
    )
    .pipe(
      Effect.map((rows) => {
        const history = new Map<string, CueRecord[]>();
        for (const row of rows) history.set(row.channel, [...(history.get(row.channel) ?? []), row.record]);
        return Option.some(history);
      }),
    ),
  save: (adding, forgotten, updating = []) =>
    // A standby's cues are not its to add: with nothing held, nothing to write.
    adding.length === 0 && forgotten.length === 0 && updating.length === 0
      ? Effect.void
      : db.transaction((tx) =>
          Effect.gen(function* () {
            if (adding.length > 0) {
              yield* tx.query(
                `insert into cues (channel, at, node, record)
             select channel, to_timestamp(at / 1000.0), $4, record
             from unnest($1::text[], $2::double precision[], $3::jsonb[]) as added(channel, at, record)`,
                [
                  adding.map((added) => added.channel),
                  adding.map((added) => added.cue.at),
                  adding.map((added) => JSON.stringify(added.cue)),
                  node(),
                ],
              );
              yield* tx.query(
                `delete from cues where channel = any($1) and id not in (
               select id from (
                 select id, row_number() over (partition by channel order by id desc) as age
                 from cues where channel = any($1)
               ) latest where age <= $2)`,
                [[...new Set(adding.map((added) => added.channel))], limit],
              );
            }
            if (updating.length > 0) {
              yield* tx.query(
                `update cues set record = changed.record
             from unnest($1::text[], $2::text[], $3::jsonb[]) as changed(channel, cue, record)
             where cues.channel = changed.channel and cues.record->>'id' = changed.cue`,
                [
                  updating.map((entry) => entry.channel),
                  updating.map((entry) => entry.cue.id),
                  updating.map((entry) => JSON.stringify(entry.cue)),
                ],
              );
            }
            if (forgotten.length > 0)
              yield* tx.query("delete from cues where channel = any($1)", [forgotten]);
          }),
        ),
});
