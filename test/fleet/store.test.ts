/**
 * The PostgreSQL document store as two nodes use it on one database: rows in the document's order, only
 * changed rows written, a stale node refused instead of undoing another's change (or another's new row), audit
 * rows and NOTIFY in the write's own transaction, and an outage that refuses a write whole.
 */
import { ConfigProvider, Effect, Exit, Layer, ManagedRuntime, Option, Stream } from "effect";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Database } from "../../src/effects/config/postgres/database.ts";
import { DocumentStore } from "../../src/effects/config/store.ts";
import { StoreChanges } from "../../src/effects/config/store-changes.ts";
import { eventually } from "../support/app.ts";
import { nodeStore, type Postgres, startPostgres } from "../support/postgres.ts";

let pg: Postgres;
beforeAll(async () => {
  pg = await startPostgres({ port: 18703 });
});
afterAll(() => pg?.close());

type Node = ManagedRuntime.ManagedRuntime<Database | DocumentStore | StoreChanges, unknown>;
const nodes: Node[] = [];
const node = (id: string): Node => {
  const runtime = ManagedRuntime.make(
    nodeStore(pg.url).pipe(
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["DISTRIBUTARY_NODE_ID", id]])))),
    ),
  );
  nodes.push(runtime);
  return runtime;
};
beforeEach(() => pg.dropAndCreate());
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((runtime) => runtime.dispose()));
});

const channel = (id: string, name: string, extra: Record<string, unknown> = {}) => ({
  id,
  name,
  outputs: [],
  ...extra,
});
const doc = (...channels: ReadonlyArray<ReturnType<typeof channel>>) =>
  JSON.stringify({ version: 1, channels });
const read = (on: Node, name = "channels.json") =>
  on
    .runPromise(Effect.flatMap(DocumentStore, (store) => store.read(name)))
    .then((text) => (Option.isSome(text) ? (JSON.parse(text.value) as { channels: unknown[] }) : undefined));
const write = (on: Node, text: string, name = "channels.json") =>
  on.runPromiseExit(Effect.flatMap(DocumentStore, (store) => store.write(name, text)));
const failure = (exit: Exit.Exit<unknown, unknown>) => {
  expect(Exit.isFailure(exit)).toBe(true);
  return JSON.stringify(exit);
};
const rows = () =>
  pg.admin<{ id: string; revision: string; name: string }>(
    "select id, revision, body->>'name' as name from channels order by position, id",
  );
const audit = () =>
  pg.admin<{
    node: string;
    actor: string;
    action: string;
    detail: string;
    channel: string;
    revision: string;
  }>("select node, actor, action, detail, channel, revision from audit order by id");

describe("the PostgreSQL store", () => {
  it("keeps a document as rows in its order, writes only what changed, and reads no .bak", async () => {
    const a = node("a");
    await read(a);
    expect(
      Exit.isSuccess(await write(a, doc(channel("c3", "Three"), channel("c1", "One"), channel("c2", "Two")))),
    ).toBe(true);
    expect((await read(node("b")))?.channels).toEqual([
      channel("c3", "Three"),
      channel("c1", "One"),
      channel("c2", "Two"),
    ]);
    expect(await read(a, "channels.json.bak")).toBeUndefined();

    const before = await rows();
    expect(
      Exit.isSuccess(await write(a, doc(channel("c3", "Three"), channel("c1", "Uno"), channel("c2", "Two")))),
    ).toBe(true);
    const after = await rows();
    expect(after.map((row) => row.name)).toEqual(["Three", "Uno", "Two"]);
    expect(after[0]?.revision).toBe(before[0]?.revision);
    expect(after[2]?.revision).toBe(before[2]?.revision);
    expect(Number(after[1]?.revision)).toBeGreaterThan(
      Math.max(...before.map((row) => Number(row.revision))),
    );

    expect(Exit.isSuccess(await write(a, doc(channel("c3", "Three"), channel("c2", "Two"))))).toBe(true);
    expect((await audit()).map((row) => [row.node, row.actor, row.action, row.detail, row.channel])).toEqual([
      ["a", "system", "channel.create", "channel Three (c3) created", "c3"],
      ["a", "system", "channel.create", "channel One (c1) created", "c1"],
      ["a", "system", "channel.create", "channel Two (c2) created", "c2"],
      ["a", "system", "channel.update", "channel Uno (c1) changed: name", "c1"],
      ["a", "system", "channel.delete", "channel Uno (c1) deleted", "c1"],
    ]);
    // Each audit row carries the revision its change gave the row.
    expect((await audit())[3]?.revision).toBe(after[1]?.revision);
  });

  it("refuses a stale node's change to a row another node changed, and keeps the other node's change", async () => {
    const [a, b] = [node("a"), node("b")];
    await read(a);
    await write(a, doc(channel("x", "X"), channel("y", "Y")));
    await read(b);
    expect(Exit.isSuccess(await write(a, doc(channel("x", "X by a"), channel("y", "Y"))))).toBe(true);
    const auditBefore = (await audit()).length;

    // b still has X as it was: its change to X and Y together is refused whole.
    const refused = failure(await write(b, doc(channel("x", "X by b"), channel("y", "Y by b"))));
    expect(refused).toContain(
      "channel X by b (x) was changed on another node meanwhile: reload and try again",
    );
    expect((await rows()).map((row) => row.name)).toEqual(["X by a", "Y"]);
    expect(await audit()).toHaveLength(auditBefore);
    // Nor may b delete it.
    expect(failure(await write(b, doc(channel("y", "Y"))))).toContain(
      "was changed on another node meanwhile",
    );

    // A row nobody else touched is b's to change, and a's change to X stays.
    expect(Exit.isSuccess(await write(b, doc(channel("x", "X"), channel("y", "Y by b"))))).toBe(true);
    expect((await rows()).map((row) => row.name)).toEqual(["X by a", "Y by b"]);

    // Once b has read again, its change goes through.
    await read(b);
    expect(Exit.isSuccess(await write(b, doc(channel("x", "X by b"), channel("y", "Y by b"))))).toBe(true);
    expect((await rows()).map((row) => row.name)).toEqual(["X by b", "Y by b"]);
  });

  it("lets exactly one of two nodes changing the same row at the same moment win", async () => {
    const [a, b] = [node("a"), node("b")];
    await read(a);
    await write(a, doc(channel("race", "Race")));
    await read(b);
    const [byA, byB] = await Promise.all([
      write(a, doc(channel("race", "Race by a"))),
      write(b, doc(channel("race", "Race by b"))),
    ]);
    const won = [byA, byB].filter(Exit.isSuccess);
    expect(won).toHaveLength(1);
    const winner = Exit.isSuccess(byA) ? "Race by a" : "Race by b";
    expect(failure(Exit.isSuccess(byA) ? byB : byA)).toContain("was changed on another node meanwhile");
    expect((await rows()).map((row) => row.name)).toEqual([winner]);
    expect((await audit()).filter((row) => row.action === "channel.update")).toHaveLength(1);
  });

  it("lets exactly one of two nodes creating the same row at the same moment win, never overwriting it", async () => {
    const [a, b] = [node("a"), node("b")];
    await Promise.all([read(a), read(b)]);
    // Both find no such row and may insert it; neither's insert may begin before both are on their way.
    const blocker = await pg.session();
    await blocker.query("begin");
    await blocker.query("lock table channels in exclusive mode");
    const writes = Promise.all([
      write(a, doc(channel("born", "Born on a"))),
      write(b, doc(channel("born", "Born on b"))),
    ]);
    await eventually("both writes to wait for the table", async () => {
      const [waiting] = await pg.admin<{ count: string }>(
        "select count(*) from pg_locks where relation = 'channels'::regclass and not granted",
      );
      return Number(waiting?.count) === 2 ? true : undefined;
    });
    await blocker.query("commit");
    await blocker.end();
    const [byA, byB] = await writes;
    expect([byA, byB].filter(Exit.isSuccess)).toHaveLength(1);
    const winner = Exit.isSuccess(byA) ? "Born on a" : "Born on b";
    expect(failure(Exit.isSuccess(byA) ? byB : byA)).toContain("was created on another node meanwhile");
    expect((await rows()).map((row) => row.name)).toEqual([winner]);
    expect((await audit()).filter((row) => row.action === "channel.create")).toHaveLength(1);
  });

  it("notifies every node of a commit, with the document, its revision and the writer (and the new lease row)", async () => {
    const [a, b] = [node("a"), node("b")];
    await read(a);
    const heard = b.runPromise(
      Effect.flatMap(StoreChanges, (changes) =>
        Stream.runHead(Stream.filter(changes.changes, (notice) => "document" in notice)),
      ).pipe(Effect.timeout("5 seconds")),
    );
    const leaseHeard = b.runPromise(
      Effect.flatMap(StoreChanges, (changes) =>
        Stream.runHead(Stream.filter(changes.changes, (notice) => "lease" in notice)),
      ).pipe(Effect.timeout("5 seconds")),
    );
    // b is up, and both nodes' listening sessions are: a NOTIFY sent now is heard.
    await b.runPromise(Effect.flatMap(Database, (db) => db.query("select 1")));
    await eventually("both nodes listening", async () => {
      const [listening] = await pg.admin<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where query like 'listen distributary_config;%'",
      );
      return (listening?.n ?? 0) >= 2 ? true : undefined;
    });
    await write(a, doc(channel("n", "N")));
    const [row] = await rows();
    expect(Option.getOrThrow(await heard)).toEqual({
      document: "channels",
      revision: Number(row?.revision),
      node: "a",
    });
    expect(Option.getOrThrow(await leaseHeard)).toEqual({ lease: "n" });
  });

  it("refuses a write while the database is down, within seconds and whole, and works again after", async () => {
    const a = node("a");
    await read(a);
    await write(a, doc(channel("p", "P"), channel("q", "Q")));
    const reconnected = a.runPromise(
      Effect.flatMap(StoreChanges, (changes) =>
        Stream.runHead(Stream.filter(changes.changes, (notice) => "reconnected" in notice)),
      ).pipe(Effect.timeout("20 seconds")),
    );
    await pg.stop({ mode: "immediate" });
    const started = performance.now();
    const refused = failure(await write(a, doc(channel("p", "P2"), channel("q", "Q2"))));
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(refused).toContain("unavailable");
    expect(refused).toContain("cannot be reached");
    expect(refused).not.toContain(pg.password);
    expect(await a.runPromise(Effect.map(Database, (db) => db.reachable()))).toBe(false);

    await pg.start();
    expect((await rows()).map((row) => row.name)).toEqual(["P", "Q"]);
    expect(Option.isSome(await reconnected)).toBe(true);
    expect(Exit.isSuccess(await write(a, doc(channel("p", "P2"), channel("q", "Q2"))))).toBe(true);
    expect((await rows()).map((row) => row.name)).toEqual(["P2", "Q2"]);
    expect(await a.runPromise(Effect.map(Database, (db) => db.reachable()))).toBe(true);
  });

  it("fails a write within about 2 s when the database stops answering, and works again when it answers", async () => {
    const a = node("a");
    await read(a);
    await write(a, doc(channel("f", "F")));
    pg.freeze(true);
    try {
      const started = performance.now();
      const refused = failure(await write(a, doc(channel("f", "F2"))));
      expect(performance.now() - started).toBeLessThan(3_000);
      expect(refused).toContain("cannot be reached");
      expect(refused).not.toContain(pg.password);
    } finally {
      pg.freeze(false);
    }
    await eventually("the write to go through again", async () =>
      Exit.isSuccess(await write(a, doc(channel("f", "F2")))) ? true : undefined,
    );
    expect((await rows()).map((row) => row.name)).toEqual(["F2"]);
  });
});
