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
  leasesOf,
  RANK_STEP_MS,
  release,
  round,
  shouldTry,
  takeOver,
  takeOverMany,
} from "../../src/effects/fleet/leases.ts";
import { registerNode } from "../../src/effects/fleet/nodes.ts";
import { type Postgres, startPostgres } from "../support/postgres.ts";
import { migrated } from "./migrated.ts";

let db: Postgres;
let store: Awaited<ReturnType<typeof migrated>>;
let q: Queryable;
const LONG = 60_000;
const IDLE = { channels_running: 0, cpu_percent: 0 };

const addChannels = async (...ids: ReadonlyArray<string>): Promise<void> => {
  for (const id of ids)
    await db.admin(
      "insert into channels (id, position, body, revision) values ($1, 0, '{}', nextval('config_revision'))",
      [id],
    );
};

const leaseOf = async (channel: string) => (await leases(q)).find((lease) => lease.channel === channel);

/** Node `id` (boot `boot-<id>` unless given) registers and renews its node lease for `ttl` ms. */
const join = async (id: string, ttl = LONG, bootId = `boot-${id}`) => {
  await registerNode(q, { id, url: `http://198.18.0.9:${id.length}`, bootId, version: "test" });
  await renew(id, ttl, bootId);
};
/** One round of node `id`: the leases it still holds. */
const renew = async (id: string, ttl = LONG, bootId = `boot-${id}`) =>
  (await round(q, id, bootId, ttl, IDLE, Number.MAX_SAFE_INTEGER)).held;

const walBytes = async (during: () => Promise<void>): Promise<number> => {
  const lsn = async () =>
    (await db.admin<{ lsn: string }>("select pg_current_wal_lsn()::text as lsn"))[0]?.lsn ?? "0/0";
  const before = await lsn();
  await during();
  const [{ bytes } = { bytes: "" }] = await db.admin<{ bytes: string }>(
    "select pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::text as bytes",
    [await lsn(), before],
  );
  return Number(bytes);
};

beforeAll(async () => {
  db = await startPostgres({ port: 18750 });
  store = await migrated(db);
  q = store.db;
  await join("a");
  await join("b");
  await join("c");
});

afterAll(async () => {
  await store?.dispose();
  await db?.close();
});

describe("leases in PostgreSQL", () => {
  test("a channel's lease row is made with it, free from then, and removed with it; the repair stamps what others made", async () => {
    await addChannels("e1", "e2");
    expect(await ensureLeases(q)).toBe(0);
    const fresh = await leaseOf("e1");
    expect(fresh).toMatchObject({ holder: null, holderBoot: null, term: 0 });
    expect(fresh?.expiresInMs).toBeLessThanOrEqual(0);
    expect(fresh?.expiresInMs).toBeGreaterThan(-5000);
    await db.admin("delete from channels where id = 'e2'");
    expect(await leaseOf("e2")).toBeUndefined();

    // A row another writer made with the column's default, or a channel whose row was lost.
    await db.admin("insert into channels (id, position, body, revision) values ('e3', 0, '{}', 1)");
    await db.admin("update leases set expires_at = '-infinity' where channel = 'e3'");
    await db.admin("insert into channels (id, position, body, revision) values ('e4', 0, '{}', 1)");
    await db.admin("delete from leases where channel = 'e4'");
    expect((await leaseOf("e3"))?.expiresInMs).toBe(Number.NEGATIVE_INFINITY);
    expect(await ensureLeases(q)).toBe(2);
    expect((await leaseOf("e3"))?.expiresInMs).toBeGreaterThan(-5000);
    expect((await leaseOf("e4"))?.holder).toBeNull();
  });

  test("at rest a node's round writes one row whatever it holds: 300 leases, 20 rounds, a few kilobytes of WAL", async () => {
    const ids = Array.from({ length: 300 }, (_, i) => `rest${i}`);
    await addChannels(...ids);
    for (const id of ids) expect(await acquire(q, "a", "boot-a", id)).toBe(1);
    let held: ReadonlyMap<string, number> = new Map();
    const bytes = await walBytes(async () => {
      for (let i = 0; i < 20; i++) held = await renew("a");
      for (let i = 0; i < 20; i++) expect(await ensureLeases(q)).toBe(0);
    });
    expect([...held.keys()].filter((id) => id.startsWith("rest")).length).toBe(300);
    // A statement that wrote each held row (as renewing every lease did) logs over a megabyte here.
    expect(bytes).toBeLessThan(20 * 1024);
  });

  test("a round reads the lease rows written since the revision it names, and every one for -1", async () => {
    await addChannels("v1", "v2", "v3");
    const all = await round(q, "b", "boot-b", LONG, IDLE, -1);
    expect(all.changed.map((row) => row.channel)).toEqual(expect.arrayContaining(["v1", "v2", "v3"]));
    const newest = Math.max(...all.changed.map((row) => row.revision));
    expect((await round(q, "b", "boot-b", LONG, IDLE, newest)).changed).toEqual([]);
    const term = await acquire(q, "b", "boot-b", "v2");
    const changed = (await round(q, "b", "boot-b", LONG, IDLE, newest)).changed;
    expect(changed).toMatchObject([{ channel: "v2", holder: "b", term }]);
    expect(changed[0]?.expiresInMs).toBeGreaterThan(LONG - 5000);
    expect((await leasesOf(q, ["v1", "v3", "nothing"])).map((row) => row.channel).sort()).toEqual([
      "v1",
      "v3",
    ]);
  });

  test("a change of a lease row is announced on distributary_leases with its channel", async () => {
    await addChannels("n1");
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    try {
      const heard: string[] = [];
      listener.on("notification", (message) => heard.push(`${message.channel}:${message.payload}`));
      await listener.query("listen distributary_leases");
      const term = Number(await acquire(q, "c", "boot-c", "n1"));
      await release(q, "c", "n1", term);
      // A renewal is not a change of the row: nothing is announced.
      await renew("c");
      await listener.query("select 1");
      expect(heard).toEqual(["distributary_leases:n1", "distributary_leases:n1"]);
    } finally {
      await listener.end();
    }
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
          acquire(a, "a", "boot-a", channel),
          acquire(b, "b", "boot-b", channel),
        ]);
        expect([termA, termB].filter((term) => term !== null)).toEqual([1]);
        expect((await leaseOf(channel))?.holder).toBe(termA === null ? "b" : "a");
      }
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  test("a held lease lasts as long as its holder's node lease; once that runs out, another takes it with the next term", async () => {
    await addChannels("x1");
    await join("x", LONG);
    expect(await acquire(q, "x", "boot-x", "x1")).toBe(1);
    expect(await acquire(q, "b", "boot-b", "x1")).toBeNull();
    expect((await leaseOf("x1"))?.expiresInMs).toBeGreaterThan(LONG - 5000);
    await db.admin("update nodes set lease_until = now() - interval '1 second' where id = 'x'");
    expect((await leaseOf("x1"))?.expiresInMs).toBeLessThan(0);
    expect(await acquire(q, "b", "boot-b", "x1")).toBe(2);
    expect(await leaseOf("x1")).toMatchObject({ holder: "b", holderBoot: "boot-b", term: 2 });
    expect(await acquire(q, "a", "boot-a", "no-such-channel")).toBeNull();
  });

  test("a holder that restarted holds nothing its old boot took", async () => {
    await addChannels("y1");
    await join("y", LONG, "boot-y1");
    expect(await acquire(q, "y", "boot-y1", "y1")).toBe(1);
    await join("y", LONG, "boot-y2");
    expect((await leaseOf("y1"))?.expiresInMs).toBe(Number.NEGATIVE_INFINITY);
    expect(await renew("y", LONG, "boot-y2")).toEqual(new Map());
    // The old process's round is refused: its row is the new boot's.
    expect((await round(q, "y", "boot-y1", LONG, IDLE, 0)).mine).toBe(false);
    expect(await acquire(q, "a", "boot-a", "y1")).toBe(2);
  });

  test("a round keeps what is still mine at the term I hold and leaves out a lease another took", async () => {
    await addChannels("r1", "r2");
    await join("r", LONG);
    const t1 = Number(await acquire(q, "r", "boot-r", "r1"));
    const t2 = Number(await acquire(q, "r", "boot-r", "r2"));
    expect(await takeOver(q, "b", "boot-b", "r2", "r", t2)).toBe(t2 + 1);
    expect(await renew("r")).toEqual(new Map([["r1", t1]]));
    expect(await leaseOf("r2")).toMatchObject({ holder: "b", term: t2 + 1 });
  });

  test("after a database outage every lease has expired, and a round gives the holder back those nobody took", async () => {
    await addChannels("o1", "o2");
    await join("o", 200);
    const t1 = Number(await acquire(q, "o", "boot-o", "o1"));
    const t2 = Number(await acquire(q, "o", "boot-o", "o2"));
    await db.stop({ mode: "immediate" });
    // The outage itself: the database crashed and stays down for twice the leases' time.
    await setTimeout(400);
    await db.start();
    // b took one as soon as the database was back.
    expect((await leaseOf("o1"))?.expiresInMs).toBeLessThan(0);
    expect(await acquire(q, "b", "boot-b", "o2")).toBe(t2 + 1);

    expect(await renew("o", LONG)).toEqual(new Map([["o1", t1]]));
    expect(await leaseOf("o1")).toMatchObject({ holder: "o", term: t1 });
    expect((await leaseOf("o1"))?.expiresInMs).toBeGreaterThan(LONG - 5000);
  });

  test("takeOver is a compare-and-set on (holder, term): a stale term or holder fails", async () => {
    await addChannels("t1");
    const first = Number(await acquire(q, "a", "boot-a", "t1"));
    expect(await takeOver(q, "b", "boot-b", "t1", "a", first)).toBe(first + 1);
    expect(await takeOver(q, "c", "boot-c", "t1", "a", first)).toBeNull();
    expect(await takeOver(q, "c", "boot-c", "t1", "b", first)).toBeNull();
    expect(await leaseOf("t1")).toMatchObject({ holder: "b", holderBoot: "boot-b", term: first + 1 });
    // The holder that was taken over from no longer holds it at its next round.
    expect((await renew("a")).has("t1")).toBe(false);
  });

  test("takeOverMany takes a dead holder's leases in one statement, each only if its holder and term still match", async () => {
    await addChannels("u1", "u2", "u3");
    const [t1, t2, t3] = [
      Number(await acquire(q, "a", "boot-a", "u1")),
      Number(await acquire(q, "a", "boot-a", "u2")),
      Number(await acquire(q, "a", "boot-a", "u3")),
    ];
    // u2 changed hands since it was read (c took it over first): it is left out.
    expect(await takeOver(q, "c", "boot-c", "u2", "a", t2)).toBe(t2 + 1);
    const taken = await takeOverMany(q, "b", "boot-b", [
      { channel: "u1", holder: "a", term: t1 },
      { channel: "u2", holder: "a", term: t2 },
      { channel: "u3", holder: "a", term: t3 },
    ]);
    expect(taken).toEqual(
      new Map([
        ["u1", t1 + 1],
        ["u3", t3 + 1],
      ]),
    );
    expect(await leaseOf("u1")).toMatchObject({ holder: "b", holderBoot: "boot-b", term: t1 + 1 });
    expect(await leaseOf("u2")).toMatchObject({ holder: "c", term: t2 + 1 });
    expect(await leaseOf("u3")).toMatchObject({ holder: "b", term: t3 + 1 });
    expect(await takeOverMany(q, "b", "boot-b", [])).toEqual(new Map());
  });

  test("a takeover for a restarted holder is refused while the holder's registered boot is the one the lease names", async () => {
    await addChannels("w1");
    // Node r restarted (boot r2) and took w1: a peer whose book still has r's boot r1 thinks r restarted since.
    await join("r", LONG, "boot-r1");
    await join("r", LONG, "boot-r2");
    const term = Number(await acquire(q, "r", "boot-r2", "w1"));
    const asRestarted = [{ channel: "w1", holder: "r", term, restarted: true }];
    expect(await takeOverMany(q, "b", "boot-b", asRestarted)).toEqual(new Map());
    expect(await leaseOf("w1")).toMatchObject({ holder: "r", holderBoot: "boot-r2", term });
    // r really restarts (boot r3): now the lease names a boot that is gone, and it is taken.
    await join("r", LONG, "boot-r3");
    expect(await takeOverMany(q, "b", "boot-b", asRestarted)).toEqual(new Map([["w1", term + 1]]));
  });

  test("handOver gives a held lease straight to the named node with the next term, naming the boot it registered last, only from its holder", async () => {
    await addChannels("m1");
    const term = Number(await acquire(q, "a", "boot-a", "m1"));
    expect(await handOver(q, "b", term, "m1", "c")).toBeNull();
    expect(await handOver(q, "a", term - 1, "m1", "c")).toBeNull();
    expect(await handOver(q, "a", term, "m1", "nobody")).toBeNull();
    expect(await handOver(q, "a", term, "m1", "c")).toEqual({ term: term + 1, boot: "boot-c" });
    expect(await leaseOf("m1")).toMatchObject({ holder: "c", holderBoot: "boot-c", term: term + 1 });
    expect((await renew("c")).get("m1")).toBe(term + 1);
    // Node m started again a moment ago: the lease names its new boot, whatever the holder last saw of it.
    await join("m", LONG, "boot-m1");
    await join("m", LONG, "boot-m2");
    expect(await handOver(q, "c", term + 1, "m1", "m")).toEqual({ term: term + 2, boot: "boot-m2" });
    expect((await renew("m", LONG, "boot-m2")).get("m1")).toBe(term + 2);
  });

  test("release frees a lease at once for another node, only when still mine at that term", async () => {
    await addChannels("d1");
    const term = Number(await acquire(q, "a", "boot-a", "d1"));
    expect(await acquire(q, "b", "boot-b", "d1")).toBeNull();
    expect(await release(q, "a", "d1", term - 1)).toBe(false);
    expect(await release(q, "b", "d1", term)).toBe(false);
    expect((await leaseOf("d1"))?.holder).toBe("a");

    expect(await release(q, "a", "d1", term)).toBe(true);
    const freed = await leaseOf("d1");
    expect(freed).toMatchObject({ holder: null, holderBoot: null, term });
    // Free since the release: the best-ranked standby may take it now, the others after their delays.
    expect(freed?.expiresInMs).toBeLessThanOrEqual(0);
    expect(freed?.expiresInMs).toBeGreaterThan(-RANK_STEP_MS);
    expect(await acquire(q, "b", "boot-b", "d1")).toBe(term + 1);
    expect(await release(q, "a", "d1", term)).toBe(false);
  });

  test("a lease a node of the previous version renews row by row counts until its own expiry", async () => {
    await addChannels("p1");
    // The previous version took a lease by writing its holder and a finite expiry, and renewed that expiry.
    await db.admin(
      "update leases set holder = 'old', holder_boot = 'boot-old', term = 1, expires_at = now() + interval '30 seconds' where channel = 'p1'",
    );
    expect((await leaseOf("p1"))?.expiresInMs).toBeGreaterThan(25_000);
    expect(await acquire(q, "a", "boot-a", "p1")).toBeNull();
    await db.admin("update leases set expires_at = now() - interval '1 second' where channel = 'p1'");
    expect(await acquire(q, "a", "boot-a", "p1")).toBe(2);
    // Held by this version, the row's own expiry says 'infinity': the previous version never sees it run out.
    const [row] = await db.admin<{ expired: boolean }>(
      "select expires_at <= now() as expired from leases where channel = 'p1'",
    );
    expect(row?.expired).toBe(false);
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
    const nodes = ["g", "h", "i"];
    for (const node of nodes) await join(node, 50);
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
      const action = pick(["acquire", "takeOver", "release", "renew", "lapse"]);
      if (action === "acquire" || action === "takeOver") {
        const lease = await leaseOf(channel);
        const term =
          action === "acquire"
            ? await acquire(q, node, `boot-${node}`, channel)
            : await takeOver(q, node, `boot-${node}`, channel, lease?.holder ?? "", lease?.term ?? 0);
        if (term !== null) mine.set(channel, term);
      } else if (action === "release") {
        const term = mine.get(channel);
        if (term !== undefined && (await release(q, node, channel, term))) mine.delete(channel);
      } else if (action === "renew") {
        held.set(
          node,
          new Map([...(await renew(node, pick([0, 5, 50])))].filter(([id]) => channels.includes(id))),
        );
      } else {
        // Its node lease runs out, so that acquisitions succeed often.
        await db.admin("update nodes set lease_until = now() where id = $1", [node]);
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
