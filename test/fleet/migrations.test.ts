/**
 * The fleet database's schema: brought up from an empty database, from version 1 with data in it, by two
 * nodes at once, and refused when a newer build has moved it on.
 */
import { Effect, Exit, ManagedRuntime, Redacted } from "effect";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Database, layerDatabase } from "../../src/effects/config/postgres/database.ts";
import { LATEST_VERSION, migrate } from "../../src/effects/config/postgres/migrations.ts";
import { type Postgres, startPostgres } from "../support/postgres.ts";

let pg: Postgres;
beforeAll(async () => {
  pg = await startPostgres({ port: 18702 });
});
afterAll(() => pg?.close());
beforeEach(() => pg.dropAndCreate());

/** A Database of its own (pool and listener), as a node has. */
const database = () => ManagedRuntime.make(layerDatabase(Redacted.make(pg.url)));
const migrateTo = async (target?: number) => {
  const runtime = database();
  try {
    return await runtime.runPromise(Effect.flatMap(Database, (db) => migrate(db, target)));
  } finally {
    await runtime.dispose();
  }
};
const tables = async () =>
  (
    await pg.admin<{ table_name: string }>(
      "select table_name from information_schema.tables where table_schema = 'public' order by 1",
    )
  ).map((row) => row.table_name);

/** Every version from `first` to the latest, in order. */
const versionsFrom = (first: number) =>
  Array.from({ length: LATEST_VERSION - first + 1 }, (_, i) => first + i);

describe("migrations", () => {
  it("bring an empty database to the latest version, once", async () => {
    expect(await migrateTo()).toEqual(versionsFrom(1));
    expect(await tables()).toEqual([
      "access_rules",
      "audit",
      "channels",
      "cluster",
      "cues",
      "leases",
      "node_reads",
      "node_states",
      "nodes",
      "notifications",
      "notifiers",
      "person_sessions",
      "schedule_progress",
      "schema_migrations",
      "token_sessions",
      "tokens",
    ]);
    // Version 6: each audit row says how its actor proved who it is.
    expect(
      (
        await pg.admin<{ column_name: string }>(
          "select column_name from information_schema.columns where table_name = 'audit' and column_name like 'actor%' order by 1",
        )
      ).map((row) => row.column_name),
    ).toEqual(["actor", "actor_issuer", "actor_subject", "actor_via"]);
    const [token] = await pg.admin<{ value: string }>("select value from cluster where key = 'peer_token'");
    expect(token?.value.length).toBeGreaterThanOrEqual(40);
    expect(await migrateTo()).toEqual([]);
    expect(
      (await pg.admin<{ version: number }>("select version from schema_migrations order by 1")).map(
        (row) => row.version,
      ),
    ).toEqual(versionsFrom(1));
  });

  it("take a version-1 database holding a channel and a token to the latest version with both intact", async () => {
    expect(await migrateTo(1)).toEqual([1]);
    const channel = { id: "news", name: "News", outputs: [{ id: "o1", url: "udp://127.0.0.1:5000" }] };
    const token = {
      id: "t1",
      name: "ops",
      role: "operator",
      sha256: "a".repeat(64),
      created_at: "2026-01-01",
    };
    await pg.admin(
      "insert into channels (id, position, body, revision) values ($1, 0, $2, nextval('config_revision'))",
      [channel.id, channel],
    );
    await pg.admin("insert into tokens (id, body, revision) values ($1, $2, nextval('config_revision'))", [
      token.id,
      token,
    ]);
    expect(await tables()).not.toContain("leases");

    expect(await migrateTo()).toEqual(versionsFrom(2));
    expect(await pg.admin("select id, position, body, revision from channels")).toEqual([
      { id: "news", position: 0, body: channel, revision: "1" },
    ]);
    expect(await pg.admin("select id, body, revision from tokens")).toEqual([
      { id: "t1", body: token, revision: "2" },
    ]);
    // Version 3 gives every channel its lease row, free; later channels get theirs as they are made.
    expect(await pg.admin("select channel, holder, term::int from leases")).toEqual([
      { channel: "news", holder: null, term: 0 },
    ]);
    await pg.admin("insert into channels (id, position, body, revision) values ('later', 1, '{}', 9)");
    expect(await pg.admin("select channel from leases order by channel")).toEqual([
      { channel: "later" },
      { channel: "news" },
    ]);
  });

  it("run once when two nodes start together", async () => {
    const results = await Promise.all([migrateTo(), migrateTo(), migrateTo()]);
    expect(results.flat().sort((x, y) => x - y)).toEqual(versionsFrom(1));
    expect(await pg.admin("select count(*)::int as n from cluster")).toEqual([{ n: 1 }]);
  });

  it("refuse, in words, a database a newer build has moved on", async () => {
    await migrateTo();
    await pg.admin("insert into schema_migrations (version, name) values ($1, 'from the future')", [
      LATEST_VERSION + 1,
    ]);
    const runtime = database();
    const exit = await runtime.runPromiseExit(Effect.flatMap(Database, (db) => migrate(db)));
    await runtime.dispose();
    expect(Exit.isFailure(exit)).toBe(true);
    expect(JSON.stringify(exit)).toContain(
      `the database's schema is at version ${LATEST_VERSION + 1}, newer than this distributary knows (${LATEST_VERSION})`,
    );
  });
});
