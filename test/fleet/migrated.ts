import { Effect, ManagedRuntime, Redacted } from "effect";
import { Database, layerDatabase, type Queryable } from "../../src/effects/config/postgres/database.ts";
import { migrate } from "../../src/effects/config/postgres/migrations.ts";
import type { Postgres } from "../support/postgres.ts";

/**
 * The fleet's database as a node has it: the schema brought up by the migrations, and the store's own
 * connection (its pool, timeouts and errors) as the Queryable the fleet's statements run on.
 */
export const migrated = async (
  postgres: Postgres,
): Promise<{ readonly db: Queryable; readonly dispose: () => Promise<void> }> => {
  const runtime = ManagedRuntime.make(layerDatabase(Redacted.make(postgres.url)));
  const database = await runtime.runPromise(Effect.tap(Database, migrate));
  return { db: database.queryable, dispose: () => runtime.dispose() };
};
