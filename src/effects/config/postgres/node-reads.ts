/**
 * Each node says, at its start, what of the configuration its release reads (CONFIG_READS,
 * src/domain/channel/config-reads.ts), in `node_reads` (migration 10). A node of a release before that table says
 * nothing, so it reads none of it. FleetReads answers which live nodes (their node lease running) cannot read a
 * change, so a node of a newer release refuses to write it while they run (docs/upgrades.md).
 */
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import { CONFIG_READS } from "../../../domain/channel/config-reads.ts";
import { FleetReads } from "../fleet-reads.ts";
import { Database } from "./database.ts";

/** Records what node `node` reads, then serves FleetReads for it. */
export const layerNodeReads = (node: string) =>
  Layer.effect(
    FleetReads,
    Effect.gen(function* () {
      const db = yield* Database;
      yield* db.query(
        `insert into node_reads (node, reads) values ($1, $2)
         on conflict (node) do update set reads = excluded.reads, updated_at = now()`,
        [node, JSON.stringify(Object.keys(CONFIG_READS))],
      );
      return {
        unable: (reads) =>
          db
            .query<{ id: string }>(
              `select n.id from nodes n left join node_reads r on r.node = n.id
               where n.id <> $1 and n.lease_until > now() and not coalesce(r.reads ?& $2::text[], false)
               order by n.id`,
              [node, [...reads]],
            )
            .pipe(
              Effect.map((rows) => rows.map((row) => row.id)),
              // A database that does not answer refuses the write itself a moment later, in its own words.
              Effect.orElseSucceed(() => []),
            ),
      };
    }),
  );
