/**
 * Expand, then contract (docs/upgrades.md): while a fleet is rolled one node at a time, nodes of the previous
 * release run on the schema the first new node brought up. So every migration this release added since the
 * previous one (test/support/previous-release.ts) only adds; each version records whether it did, and a node
 * started on a schema a later release only expanded runs on it, while one that took something away is
 * refused, in words.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { Effect, Exit, ManagedRuntime, Redacted } from "effect";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Database, layerDatabase, type Transaction } from "../../src/effects/config/postgres/database.ts";
import { contractions } from "../../src/effects/config/postgres/expand-only.ts";
import { LATEST_VERSION, MIGRATIONS, migrate } from "../../src/effects/config/postgres/migrations.ts";
import { type Postgres, startPostgres } from "../support/postgres.ts";
import { PREVIOUS_RELEASE } from "../support/previous-release.ts";

/** The SQL a migration runs, recorded by a transaction that runs nothing. */
const statementsOf = (apply: (tx: Transaction) => Effect.Effect<unknown, unknown>) => {
  const ran: string[] = [];
  const recording: Transaction = {
    query: (sql) => {
      ran.push(sql);
      return Effect.succeed([]);
    },
  };
  Effect.runSync(Effect.either(apply(recording)));
  return ran;
};

/** The latest schema version of the previous release, read from its migrations at its commit. */
const previousLatest = () => {
  let source: string;
  try {
    source = execFileSync(
      "git",
      [
        "-C",
        join(import.meta.dirname, "../.."),
        "show",
        `${PREVIOUS_RELEASE}:src/effects/config/postgres/migrations.ts`,
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
  } catch (error) {
    throw new Error(
      `the previous release's migrations (commit ${PREVIOUS_RELEASE}) are not in this clone's history (a shallow clone?): fetch it with \`git fetch --unshallow\` (${String(error)})`,
    );
  }
  return Math.max(...[...source.matchAll(/\bversion: (\d+),/g)].map((match) => Number(match[1])));
};

describe("the migrations of this release", () => {
  it("only add (no DROP, no RENAME, no NOT NULL without a default, no new constraint on an existing table)", () => {
    const since = previousLatest();
    const ours = MIGRATIONS.filter((migration) => migration.version > since);
    const found = ours.flatMap((migration) =>
      statementsOf(migration.apply).flatMap((sql) =>
        contractions(sql).map((what) => `version ${migration.version} (${migration.name}) ${what}: ${sql}`),
      ),
    );
    expect(found).toEqual([]);
    // Every version since the previous release is counted, the previous release's own included in the range.
    expect(since).toBeGreaterThanOrEqual(8);
    expect(since).toBeLessThanOrEqual(LATEST_VERSION);
  });

  it("the rule's reading catches what an older node could not live with, and lets what only adds through", () => {
    const refused = [
      "drop table cues",
      "alter table leases drop column cut",
      "alter table nodes rename column url to address",
      "alter table leases alter column holder set not null",
      "alter table leases add column cut jsonb not null",
      "alter table nodes alter column version type integer using 0",
      "alter table leases add constraint holder_known check (holder is not null)",
      "delete from tokens where id = 'admin-from-env'",
    ];
    for (const sql of refused) expect(contractions(sql), sql).not.toEqual([]);
    const allowed = [
      "create table cuts (channel text primary key, at bigint not null)",
      "alter table leases add column cut jsonb",
      "alter table nodes add column draining_since timestamptz not null default '-infinity'",
      "create index leases_by_term on leases (term)",
      `create function f() returns trigger language plpgsql as $$ begin delete from x; drop table y; end $$`,
      "insert into cluster (key, value) values ('drop', 'rename')",
    ];
    for (const sql of allowed) expect(contractions(sql), sql).toEqual([]);
  });
});

describe("a node on a schema newer than it knows", () => {
  let pg: Postgres;
  beforeAll(async () => {
    pg = await startPostgres({ port: 22_702 });
  });
  afterAll(() => pg?.close());
  beforeEach(() => pg.dropAndCreate());

  const migrateExit = async () => {
    const runtime = ManagedRuntime.make(layerDatabase(Redacted.make(pg.url)));
    try {
      return await runtime.runPromiseExit(Effect.flatMap(Database, (db) => migrate(db)));
    } finally {
      await runtime.dispose();
    }
  };

  it("finds each version recorded as expand-only when it only added", async () => {
    expect(Exit.isSuccess(await migrateExit())).toBe(true);
    const rows = await pg.admin<{ version: number; expand_only: boolean }>(
      "select version, expand_only from schema_migrations order by version",
    );
    expect(rows.map((row) => row.version)).toEqual(MIGRATIONS.map((migration) => migration.version));
    expect(rows.filter((row) => row.expand_only !== true)).toEqual([]);
  });

  it("runs on it when every newer version only added, and is refused in words when one did more", async () => {
    expect(Exit.isSuccess(await migrateExit())).toBe(true);
    await pg.admin("insert into schema_migrations (version, name, expand_only) values ($1, $2, true)", [
      LATEST_VERSION + 1,
      "a later release's new table",
    ]);
    const expanded = await migrateExit();
    expect(Exit.isSuccess(expanded), JSON.stringify(expanded)).toBe(true);
    expect(Exit.isSuccess(expanded) ? expanded.value : undefined).toEqual([]);

    await pg.admin("insert into schema_migrations (version, name, expand_only) values ($1, $2, false)", [
      LATEST_VERSION + 2,
      "a later release's drop",
    ]);
    const contracted = await migrateExit();
    expect(Exit.isFailure(contracted)).toBe(true);
    expect(JSON.stringify(contracted)).toContain(
      `newer than this distributary knows (${LATEST_VERSION}), and version ${LATEST_VERSION + 2} (a later release's drop) did more than add`,
    );
  });
});
