import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { Queryable } from "../../src/effects/config/postgres/database.ts";
import { round } from "../../src/effects/fleet/leases.ts";
import { listNodes, type NodeLoad, registerNode, setDraining } from "../../src/effects/fleet/nodes.ts";
import { type Postgres, startPostgres } from "../support/postgres.ts";
import { migrated } from "./migrated.ts";

let db: Postgres;
let store: Awaited<ReturnType<typeof migrated>>;
let q: Queryable;

beforeAll(async () => {
  db = await startPostgres({ port: 18751 });
  store = await migrated(db);
  q = store.db;
});

afterAll(async () => {
  await store?.dispose();
  await db?.close();
});

const nodeA = { id: "a", url: "http://198.18.0.2:8080", bootId: "boot-1", version: "1.4.0" };
const row = async (id: string) => (await listNodes(q)).find((node) => node.id === id);
/** A heartbeat is a node's round: whether the row was this boot's. */
const heartbeat = async (id: string, bootId: string, load: NodeLoad) =>
  (await round(q, id, bootId, 6000, load, Number.MAX_SAFE_INTEGER)).mine;

test("a node registers, beats with its load, and its heartbeat's age and lease are by the database's clock", async () => {
  await registerNode(q, nodeA);
  const registered = await row("a");
  expect(registered).toMatchObject({
    ...nodeA,
    draining: false,
    load: { channels_running: 0, cpu_percent: 0 },
  });
  expect(registered?.heartbeatAgeMs).toBeGreaterThanOrEqual(0);
  expect(registered?.heartbeatAgeMs).toBeLessThan(5000);
  expect(Date.parse(registered?.startedAt ?? "")).not.toBeNaN();
  // Registered, it holds nothing until its first round.
  expect(registered?.leaseInMs).toBe(Number.NEGATIVE_INFINITY);

  await db.admin("update nodes set heartbeat_at = now() - interval '7 seconds' where id = 'a'");
  expect((await row("a"))?.heartbeatAgeMs).toBeGreaterThanOrEqual(7000);
  expect((await row("a"))?.heartbeatAgeMs).toBeLessThan(12_000);

  expect(await heartbeat("a", "boot-1", { channels_running: 3, cpu_percent: 41.5 })).toBe(true);
  const beaten = await row("a");
  expect(beaten?.heartbeatAgeMs).toBeLessThan(5000);
  // With the load, the process's upgrade on its box (none in this test process): the Nodes page's column.
  expect(beaten?.load).toEqual({
    channels_running: 3,
    cpu_percent: 41.5,
    upgrade: { upgrading: null, last: null },
  });
  // The round renewed the node's lease, by the database's clock.
  expect(beaten?.leaseInMs).toBeGreaterThan(5000);
  expect(beaten?.leaseInMs).toBeLessThanOrEqual(6000);
  expect(await heartbeat("nobody", "boot-1", { channels_running: 0, cpu_percent: 0 })).toBe(false);
});

test("a restart registers a new boot id and ends a drain; the old process's heartbeats are refused", async () => {
  await registerNode(q, nodeA);
  expect(await setDraining(q, "a", true)).toBe(true);
  expect((await row("a"))?.draining).toBe(true);
  expect(await setDraining(q, "nobody", true)).toBe(false);

  const restarted = { ...nodeA, bootId: "boot-2", version: "1.5.0", url: "http://198.18.0.3:8080" };
  await registerNode(q, restarted);
  expect(await row("a")).toMatchObject({ ...restarted, draining: false });
  expect(await heartbeat("a", "boot-1", { channels_running: 1, cpu_percent: 1 })).toBe(false);
  expect(await heartbeat("a", "boot-2", { channels_running: 1, cpu_percent: 1 })).toBe(true);

  await registerNode(q, { id: "b", url: "http://198.18.0.4:8080", bootId: "boot-b", version: "1.5.0" });
  expect((await listNodes(q)).map((node) => node.id)).toEqual(["a", "b"]);
  expect(await setDraining(q, "b", true)).toBe(true);
  expect(await setDraining(q, "b", false)).toBe(true);
  expect((await row("b"))?.draining).toBe(false);
});

test("a registration and a change of drain are announced on distributary_nodes with the node's id", async () => {
  const listener = new pg.Client({ connectionString: db.url });
  await listener.connect();
  try {
    const heard: string[] = [];
    listener.on("notification", (message) => heard.push(`${message.channel}:${message.payload}`));
    await listener.query("listen distributary_nodes");
    await registerNode(q, { ...nodeA, bootId: "boot-3" });
    await setDraining(q, "a", true);
    await setDraining(q, "nobody", true);
    await heartbeat("a", "boot-3", { channels_running: 0, cpu_percent: 0 });
    await listener.query("select 1");
    expect(heard).toEqual(["distributary_nodes:a", "distributary_nodes:a"]);
  } finally {
    await listener.end();
  }
});
