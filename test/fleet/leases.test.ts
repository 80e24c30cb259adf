import { setTimeout } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Queryable } from "../../src/effects/config/postgres/database.ts";
import {
  acquire,
  candidates,
  ensureLeases,
  handOver,
  leases,
  RANK_STEP_MS,
  release,
  renewAll,
  shouldTry,
  takeOver,
} from "../../src/effects/fleet/leases.ts";
import { type Postgres, startPostgres } from "../support/postgres.ts";
import { migrated } from "./migrated.ts";

let db: Postgres;
let store: Awaited<ReturnType<typeof migrated>>;
let q: Queryable;
const LONG = 60_000;

const addChannels = async (...ids: ReadonlyArray<string>): Promise<void> => {
  for (const id of ids)
    await db.admin(
      "insert into channels (id, position, body, revision) values ($1, 0, '{}', nextval('config_revision'))",
      [id],
    );
  await ensureLeases(q);
};

const leaseOf = async (channel: string) => (await leases(q)).find((lease) => lease.channel === channel);

beforeAll(async () => {
  db = await startPostgres({ port: 18750 });
  store = await migrated(db);
  q = store.db;
});

afterAll(async () => {
  await store?.dispose();
  await db?.close();
});

describe("leases in PostgreSQL", () => {
  test("every channel gets one free lease row, once; a row created without a holder's time is stamped", async () => {
    await addChannels("e1", "e2");
    expect(await ensureLeases(q)).toBe(0);
    const fresh = await leaseOf("e1");
    expect(fresh).toMatchObject({ holder: null, holderBoot: null, term: 0 });
    expect(fresh?.expiresInMs).toBeLessThanOrEqual(0);
    expect(fresh?.expiresInMs).toBeGreaterThan(-5000);

    await db.admin("insert into channels (id, position, body, revision) values ('e3', 0, '{}', 1)");
    await db.admin("insert into leases (channel) values ('e3')");
    expect((await leaseOf("e3"))?.expiresInMs).toBe(Number.NEGATIVE_INFINITY);
    expect(await ensureLeases(q)).toBe(1);
    expect((await leaseOf("e3"))?.expiresInMs).toBeGreaterThan(-5000);
  });

  test("at rest, keeping every channel's lease row writes nothing to the WAL", async () => {
    await addChannels(...Array.from({ length: 300 }, (_, i) => `rest${i}`));
    const lsn = async () =>
      (await db.admin<{ lsn: string }>("select pg_current_wal_lsn()::text as lsn"))[0]?.lsn ?? "0/0";
    const before = await lsn();
    for (let i = 0; i < 20; i++) expect(await ensureLeases(q)).toBe(0);
    const [{ bytes } = { bytes: "" }] = await db.admin<{ bytes: string }>(
      "select pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::text as bytes",
      [await lsn(), before],
    );
    // 20 rounds over 300 rows: a statement that locked each row would write tens of kilobytes.
    expect(Number(bytes)).toBeLessThan(1024);
  });

  test("two nodes acquiring the same free lease at once: exactly one wins, 50 races out of 50", async () => {
    const channels = Array.from({ length: 50 }, (_, i) => `race${i}`);
    await addChannels(...channels);
    const a = new pg.Client({ connectionString: db.url });
    const b = new pg.Client({ connectionString: db.url });
    await Promise.all([a.connect(), b.connect()]);
    try {
      for (const channel of channels) {
        const [termA, termB] = await Promise.all([
          acquire(a, "a", "boot-a", channel, LONG),
          acquire(b, "b", "boot-b", channel, LONG),
        ]);
        expect([termA, termB].filter((term) => term !== null)).toEqual([1]);
        expect((await leaseOf(channel))?.holder).toBe(termA === null ? "b" : "a");
      }
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  test("a held lease cannot be acquired; an expired one can, with the next term", async () => {
    await addChannels("x1");
    expect(await acquire(q, "a", "boot-a", "x1", LONG)).toBe(1);
    expect(await acquire(q, "b", "boot-b", "x1", LONG)).toBeNull();
    await db.admin("update leases set expires_at = now() - interval '1 second' where channel = 'x1'");
    expect(await acquire(q, "b", "boot-b", "x1", LONG)).toBe(2);
    expect(await leaseOf("x1")).toMatchObject({ holder: "b", holderBoot: "boot-b", term: 2 });
    expect(await acquire(q, "a", "boot-a", "no-such-channel", LONG)).toBeNull();
  });

  test("renewAll keeps what is still mine at the term I hold and leaves out a lease another took", async () => {
    await addChannels("r1", "r2");
    const t1 = await acquire(q, "a", "boot-a", "r1", LONG);
    // Expired at once: b may take r2 before a renews it.
    const t2 = await acquire(q, "a", "boot-a", "r2", 0);
    expect(await acquire(q, "b", "boot-b", "r2", LONG)).toBe(Number(t2) + 1);

    const before = (await leaseOf("r1"))?.expiresInMs ?? 0;
    const kept = await renewAll(
      q,
      "a",
      "boot-a",
      LONG + 30_000,
      new Map([
        ["r1", Number(t1)],
        ["r2", Number(t2)],
      ]),
    );
    expect(kept).toEqual(new Map([["r1", t1]]));
    expect((await leaseOf("r1"))?.expiresInMs).toBeGreaterThan(before + 20_000);
    expect(await leaseOf("r2")).toMatchObject({ holder: "b", term: Number(t2) + 1 });
    // Another boot of the same node holds nothing it did not take itself.
    expect(await renewAll(q, "a", "boot-a2", LONG, new Map([["r1", Number(t1)]]))).toEqual(new Map());
    expect(await renewAll(q, "a", "boot-a", LONG, new Map())).toEqual(new Map());
  });

  test("after a database outage every lease has expired, and renewAll gives the holder back those nobody took", async () => {
    await addChannels("o1", "o2");
    const t1 = Number(await acquire(q, "a", "boot-a", "o1", 200));
    const t2 = Number(await acquire(q, "a", "boot-a", "o2", 200));
    await db.stop({ mode: "immediate" });
    // The outage itself: the database crashed and stays down for twice the leases' time.
    await setTimeout(400);
    await db.start();
    // b took one as soon as the database was back.
    expect((await leaseOf("o1"))?.expiresInMs).toBeLessThan(0);
    expect(await acquire(q, "b", "boot-b", "o2", LONG)).toBe(t2 + 1);

    const kept = await renewAll(
      q,
      "a",
      "boot-a",
      LONG,
      new Map([
        ["o1", t1],
        ["o2", t2],
      ]),
    );
    expect(kept).toEqual(new Map([["o1", t1]]));
    expect(await leaseOf("o1")).toMatchObject({ holder: "a", term: t1 });
    expect((await leaseOf("o1"))?.expiresInMs).toBeGreaterThan(LONG - 5000);
  });

  test("takeOver is a compare-and-set on (holder, term): a stale term or holder fails", async () => {
    await addChannels("t1");
    const first = Number(await acquire(q, "a", "boot-a", "t1", LONG));
    expect(await takeOver(q, "b", "boot-b", "t1", "a", first, LONG)).toBe(first + 1);
    expect(await takeOver(q, "c", "boot-c", "t1", "a", first, LONG)).toBeNull();
    expect(await takeOver(q, "c", "boot-c", "t1", "b", first, LONG)).toBeNull();
    expect(await leaseOf("t1")).toMatchObject({ holder: "b", holderBoot: "boot-b", term: first + 1 });
    // The holder that was taken over from cannot renew with the term it had.
    expect(await renewAll(q, "a", "boot-a", LONG, new Map([["t1", first]]))).toEqual(new Map());
  });

  test("handOver gives a held lease straight to the named node with the next term, only from its holder", async () => {
    await addChannels("m1");
    const term = Number(await acquire(q, "a", "boot-a", "m1", LONG));
    expect(await handOver(q, "b", term, "m1", "c", "boot-c", LONG)).toBeNull();
    expect(await handOver(q, "a", term - 1, "m1", "c", "boot-c", LONG)).toBeNull();
    expect(await handOver(q, "a", term, "m1", "c", "boot-c", LONG)).toBe(term + 1);
    expect(await leaseOf("m1")).toMatchObject({ holder: "c", holderBoot: "boot-c", term: term + 1 });
    expect(await renewAll(q, "c", "boot-c", LONG, new Map([["m1", term + 1]]))).toEqual(
      new Map([["m1", term + 1]]),
    );
  });

  test("release frees a lease at once for another node, only when still mine at that term", async () => {
    await addChannels("d1");
    const term = Number(await acquire(q, "a", "boot-a", "d1", LONG));
    expect(await acquire(q, "b", "boot-b", "d1", LONG)).toBeNull();
    expect(await release(q, "a", "d1", term - 1)).toBe(false);
    expect(await release(q, "b", "d1", term)).toBe(false);
    expect((await leaseOf("d1"))?.holder).toBe("a");

    expect(await release(q, "a", "d1", term)).toBe(true);
    const freed = await leaseOf("d1");
    expect(freed).toMatchObject({ holder: null, holderBoot: null, term });
    // Free since the release: the best-ranked standby may take it now, the others after their delays.
    expect(freed?.expiresInMs).toBeLessThanOrEqual(0);
    expect(freed?.expiresInMs).toBeGreaterThan(-RANK_STEP_MS);
    expect(await acquire(q, "b", "boot-b", "d1", LONG)).toBe(term + 1);
    expect(await release(q, "a", "d1", term)).toBe(false);
  });

  test("terms only grow: every change of holder in 400 random steps of three nodes raised the term", async () => {
    const channels = ["g1", "g2", "g3"];
    await addChannels(...channels);
    // Every update of a lease, as the database saw it, whoever made it.
    await db.admin(`create table lease_history (channel text, old_holder text, new_holder text,
                      old_term bigint, new_term bigint)`);
    await db.admin(`create function record_lease() returns trigger language plpgsql as $$ begin
        insert into lease_history values (new.channel, old.holder, new.holder, old.term, new.term);
        return new; end $$`);
    await db.admin(
      "create trigger lease_history after update on leases for each row execute function record_lease()",
    );
    const nodes = ["a", "b", "c"];
    const held = new Map(nodes.map((node) => [node, new Map<string, number>()]));
    let seed = 29;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pick = <T>(items: ReadonlyArray<T>): T => items[next(items.length)] as T;
    for (let step = 0; step < 400; step++) {
      const node = pick(nodes);
      const mine = held.get(node) as Map<string, number>;
      const channel = pick(channels);
      // Short leases, some already expired when written, so that acquisitions succeed often.
      const ttl = pick([0, 5, 50]);
      const action = pick(["acquire", "takeOver", "release", "renew"]);
      if (action === "acquire" || action === "takeOver") {
        const lease = await leaseOf(channel);
        const term =
          action === "acquire"
            ? await acquire(q, node, `boot-${node}`, channel, ttl)
            : await takeOver(q, node, `boot-${node}`, channel, lease?.holder ?? "", lease?.term ?? 0, ttl);
        if (term !== null) mine.set(channel, term);
      } else if (action === "release") {
        const term = mine.get(channel);
        if (term !== undefined && (await release(q, node, channel, term))) mine.delete(channel);
      } else {
        const kept = await renewAll(q, node, `boot-${node}`, ttl, mine);
        held.set(node, kept);
      }
    }
    const history = await db.admin<{
      old_holder: string | null;
      new_holder: string | null;
      old_term: string;
      new_term: string;
    }>("select old_holder, new_holder, old_term, new_term from lease_history");
    const taken = history.filter(
      (row) => row.new_holder !== null && Number(row.new_term) > Number(row.old_term),
    );
    expect(taken.length).toBeGreaterThan(25);
    for (const row of history) {
      expect(Number(row.new_term)).toBeGreaterThanOrEqual(Number(row.old_term));
      if (row.new_holder !== null && row.new_holder !== row.old_holder)
        expect(Number(row.new_term)).toBe(Number(row.old_term) + 1);
    }
    // No two nodes believe they hold the same channel at the same term.
    for (const channel of channels) {
      const claims = nodes.flatMap((node) => {
        const term = held.get(node)?.get(channel);
        return term === undefined ? [] : [`${term}`];
      });
      expect(new Set(claims).size).toBe(claims.length);
    }
  });
});

describe("who takes a channel", () => {
  const live = (...ids: ReadonlyArray<string>) => ids.map((id) => ({ id, draining: false }));

  test("the channel's nodes in their order of preference, live and not draining, the holder last", () => {
    const nodes = [...live("a", "c", "d"), { id: "b", draining: true }];
    expect(candidates(["c", "b", "a", "e"], nodes, null)).toEqual(["c", "a"]);
    expect(candidates(["c", "b", "a"], nodes, "c")).toEqual(["a", "c"]);
    expect(candidates(["c", "a"], nodes, "z")).toEqual(["c", "a"]);
    expect(candidates(["b"], nodes, null)).toEqual([]);
    expect(candidates(["b"], nodes, "b")).toEqual([]);
  });

  test("a channel that lists no nodes ranks every live node by id", () => {
    const nodes = [...live("n3", "n1"), { id: "n0", draining: true }, ...live("n2")];
    expect(candidates([], nodes, null)).toEqual(["n1", "n2", "n3"]);
    expect(candidates(undefined, nodes, "n2")).toEqual(["n1", "n3", "n2"]);
  });

  test("the best-ranked tries at once, each next one a step later, a node outside the ranking never", () => {
    const ranking = ["a", "b", "c"];
    expect(shouldTry("a", ranking, 0)).toBe(true);
    expect(shouldTry("a", ranking, -1)).toBe(false);
    expect(shouldTry("b", ranking, RANK_STEP_MS - 1)).toBe(false);
    expect(shouldTry("b", ranking, RANK_STEP_MS)).toBe(true);
    expect(shouldTry("c", ranking, 2 * RANK_STEP_MS - 1)).toBe(false);
    expect(shouldTry("c", ranking, 2 * RANK_STEP_MS)).toBe(true);
    expect(shouldTry("z", ranking, Number.POSITIVE_INFINITY)).toBe(false);
  });
});
