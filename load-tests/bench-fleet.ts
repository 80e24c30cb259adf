/**
 * What a fleet costs at rest, and how fast it moves: N real nodes (`bin/distributary serve`, data plane idle:
 * channels whose inputs nobody sends to) against one real PostgreSQL started here, C channels each listing two
 * nodes, so that every node holds about C/N and stands by for as many. It prints, over S seconds at rest:
 * each node's CPU (every thread, from /proc) and main-thread event-loop delay p99 (its /metrics), PostgreSQL's
 * CPU (every process of the cluster), WAL bytes/s (pg_current_wal_lsn) and transactions/s (pg_stat_database),
 * the nodes' connections to it (pg_stat_activity),
 * and lease renewal p50/p99 (every node's distributary_fleet_lease_renewal_seconds histogram over the window,
 * as PromQL's histogram_quantile reads it); then how
 * long after a `kill -9` of a node (from its port refusing) every channel it held has a new holder, and how
 * long a change made on one node takes to reach every other.
 *
 *   npm run bench:fleet -- --nodes 10 --channels 200 --seconds 30 [--settle 20] [--repo DIR] [--logs DIR] [--json]
 *
 * "At rest" begins `--settle` seconds after every channel is held, when the start's work (compiling, the first
 * full reads) is over. `--repo DIR` runs DIR/bin/distributary (another checkout, set up: an older commit, to compare); `--logs DIR`
 * keeps each node's log there (DIR/n01.log, …) instead of dropping it.
 */
import { spawn } from "node:child_process";
import { mkdirSync, openSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startPostgres } from "../test/support/postgres.ts";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "3" },
    channels: { type: "string", default: "30" },
    seconds: { type: "string", default: "30" },
    settle: { type: "string", default: "20" },
    repo: { type: "string" },
    logs: { type: "string" },
    json: { type: "boolean", default: false },
  },
});
const N = Number(values.nodes);
const C = Number(values.channels);
const SECONDS = Number(values.seconds);
const SETTLE = Number(values.settle);
const repo = resolve(values.repo ?? ".");
const TOKEN = "bench-fleet-admin-token-4b7d1e9a0c3f5e26";
const PG_PORT = 55_450;
const portOf = (i: number) => 28_450 + i;
const ids = Array.from({ length: N }, (_, i) => `n${String(i + 1).padStart(2, "0")}`);
const say = (line: string) => process.stderr.write(`${line}\n`);

const TICKS = 100; // USER_HZ
const cpuTicks = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return Number(fields[11]) + Number(fields[12]);
};
const childrenOf = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
};
const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0);
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const until = async (what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 50) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
};

// Room for a node's pool (5) and listener (1) each: the connections the fleet uses are one of the figures.
const pg = await startPostgres({ port: PG_PORT, maxConnections: Math.max(60, 6 * N + 10) });
const dir = await mkdtemp(join(tmpdir(), "bench-fleet-"));
const nodes = new Map<string, { pid: number; kill: () => void; exited: Promise<unknown> }>();
const api = (id: string, path: string, init: RequestInit = {}) =>
  fetch(`http://127.0.0.1:${portOf(ids.indexOf(id))}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
  });

const cleanUp = async () => {
  for (const node of nodes.values()) node.kill();
  await Promise.all([...nodes.values()].map((node) => node.exited));
  await pg.close();
  await rm(dir, { recursive: true, force: true });
};
process.once("SIGINT", () => void cleanUp().finally(() => process.exit(130)));

if (values.logs !== undefined) mkdirSync(values.logs, { recursive: true });
const log = (id: string) => openSync(join(values.logs ?? "", `${id}.log`), "a");

try {
  const started = performance.now();
  for (const [i, id] of ids.entries()) {
    const child = spawn(
      "/usr/bin/setpriv",
      [
        "--pdeathsig",
        "KILL",
        join(repo, "bin/distributary"),
        "serve",
        "--port",
        String(portOf(i)),
        "--host",
        "127.0.0.1",
        "--config-dir",
        join(dir, id),
      ],
      {
        stdio: values.logs === undefined ? ["ignore", "ignore", "ignore"] : ["ignore", log(id), log(id)],
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          DISTRIBUTARY_ADMIN_TOKEN: TOKEN,
          DISTRIBUTARY_WORKERS: "0",
          DISTRIBUTARY_LOG_LEVEL: values.logs === undefined ? "warn" : "info",
          DISTRIBUTARY_METRICS_AUTH: "loopback",
          DISTRIBUTARY_DATABASE_URL: pg.url,
          DISTRIBUTARY_NODE_ID: id,
          DISTRIBUTARY_NODE_URL: `http://127.0.0.1:${portOf(i)}`,
        },
      },
    );
    nodes.set(id, {
      pid: child.pid ?? 0,
      kill: () => child.kill("SIGKILL"),
      exited: new Promise((done) => child.once("exit", done)),
    });
  }
  for (const id of ids)
    await until(`node ${id} ready`, async () => (await api(id, "/api/ready")).ok, 60_000, 200);
  say(`${N} nodes ready in ${Math.round(performance.now() - started)} ms`);

  // Channel k lists nodes k mod N and k+1 mod N: each node is first for C/N channels and second for as many.
  const channels = Array.from({ length: C }, (_, k) => ({
    id: `c${k}`,
    name: `Channel ${k}`,
    desired: "running",
    nodes: [ids[k % N], ids[(k + 1) % N]],
    rtp_ip: "127.0.0.1",
    rtp_port: 40_000 + k,
    outputs: [{ id: "out", name: "Out", protocol: "udp", url: "udp://127.0.0.1:9" }],
  }));
  const imported = await api(ids[0] ?? "", "/api/config", {
    method: "POST",
    body: JSON.stringify({ version: 1, channels }),
  });
  if (!imported.ok) throw new Error(`import: ${imported.status} ${await imported.text()}`);
  const heldAll = async () =>
    Number(
      (await pg.admin<{ n: number }>("select count(*)::int as n from leases where holder is not null"))[0]?.n,
    ) === C;
  await until(`all ${C} channels held`, heldAll, 120_000, 200);
  say(
    `${C} channels held ${Math.round(performance.now() - started)} ms after the start; settling ${SETTLE} s`,
  );
  await sleep(SETTLE * 1000);

  // At rest.
  // The postmaster is the process started with this port; its children are the rest of the cluster.
  const postmaster = Number(
    readdirSync("/proc").find((pid) => {
      try {
        const command = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        return /^\d+$/.test(pid) && command.includes("/postgres\0") && command.includes(`\0-p\0${PG_PORT}\0`);
      } catch {
        return false;
      }
    }),
  );
  // Per process: a backend that ends during the window takes its ticks with it, so only processes there at
  // both ends are counted (a sum over whichever were there went below zero at 20 × 500).
  const pgTicks = () =>
    new Map(
      [postmaster, ...childrenOf(postmaster)].flatMap((pid) => {
        try {
          return [[pid, cpuTicks(pid)] as const];
        } catch {
          return []; // ended between the listing and the reading
        }
      }),
    );
  const walAndTx = async () =>
    (
      await pg.admin<{ lsn: string; tx: string }>(
        `select pg_current_wal_lsn()::text as lsn, (select xact_commit + xact_rollback from pg_stat_database
           where datname = 'distributary')::text as tx`,
      )
    )[0] ?? { lsn: "0/0", tx: "0" };
  const nodeTicks = () => new Map(ids.map((id) => [id, cpuTicks(nodes.get(id)?.pid ?? 0)]));
  const scrapeAll = () => Promise.all(ids.map(async (id) => (await api(id, "/metrics")).text()));
  // A scrape now starts the window of each node's event-loop figures (prom-client's resets at each) and
  // gives the renewal histograms' counts before it.
  const restStarts = await scrapeAll();
  const before = { at: performance.now(), nodes: nodeTicks(), pg: pgTicks(), db: await walAndTx() };
  await sleep(SECONDS * 1000);
  const after = { at: performance.now(), nodes: nodeTicks(), pg: pgTicks(), db: await walAndTx() };
  const [{ connections } = { connections: 0 }] = await pg.admin<{ connections: number }>(
    "select count(*)::int as connections from pg_stat_activity where application_name = 'distributary'",
  );
  const seconds = (after.at - before.at) / 1000;
  const [{ wal } = { wal: "0" }] = await pg.admin<{ wal: string }>(
    "select pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::text as wal",
    [after.db.lsn, before.db.lsn],
  );
  const nodeCpu = ids.map(
    (id) => (((after.nodes.get(id) ?? 0) - (before.nodes.get(id) ?? 0)) / TICKS / seconds) * 100,
  );
  const metric = (text: string, name: string, labels = "") => {
    const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
    return line === undefined ? Number.NaN : Number(line.split(" ")[1]);
  };
  const scrapes = await scrapeAll();
  const loopP99 = scrapes.map((text) => metric(text, "nodejs_eventloop_lag_p99_seconds") * 1000);
  const max = (xs: ReadonlyArray<number>) => (xs.some(Number.isNaN) ? Number.NaN : Math.max(...xs));
  // Every node's renewals during the rest window: the histograms' bucket counts after less before, summed.
  const buckets = (text: string) =>
    new Map(
      [...text.matchAll(/^distributary_fleet_lease_renewal_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map(
        (m) => [m[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(m[1]), Number(m[2])],
      ),
    );
  const window = new Map<number, number>();
  for (const [i, text] of scrapes.entries()) {
    const start = buckets(restStarts[i] ?? "");
    for (const [le, count] of buckets(text))
      window.set(le, (window.get(le) ?? 0) + count - (start.get(le) ?? 0));
  }
  const renewals = Array.from(window.entries()).sort(([a], [b]) => a - b);
  const renewalCount = renewals[renewals.length - 1]?.[1] ?? 0;
  /** As PromQL's histogram_quantile: linear within the bucket the quantile falls in, in ms. */
  const renewalQuantile = (q: number) => {
    let lower = 0;
    let below = 0;
    for (const [le, count] of renewals) {
      if (count >= q * renewalCount && renewalCount > 0) {
        const upper = Number.isFinite(le) ? le : lower;
        return (lower + ((upper - lower) * (q * renewalCount - below)) / Math.max(1, count - below)) * 1000;
      }
      lower = Number.isFinite(le) ? le : lower;
      below = count;
    }
    return Number.NaN;
  };

  // A kill -9 of the node holding the most channels.
  const holders = await pg.admin<{ holder: string; channel: string; term: string }>(
    "select holder, channel, term::text from leases where holder is not null",
  );
  const victim =
    [...ids].sort(
      (a, b) => holders.filter((h) => h.holder === b).length - holders.filter((h) => h.holder === a).length,
    )[0] ?? "";
  const itsChannels = holders.filter((h) => h.holder === victim);
  const port = portOf(ids.indexOf(victim));
  nodes.get(victim)?.kill();
  const refused = await new Promise<number>((done) => {
    const probe = () => {
      const socket = connect({ host: "127.0.0.1", port });
      socket.once("connect", () => {
        socket.destroy();
        setTimeout(probe, 5);
      });
      socket.once("error", () => done(performance.now()));
    };
    probe();
  });
  await until(
    "every channel of the killed node held again",
    async () => {
      const now = await pg.admin<{ channel: string; holder: string | null; term: string }>(
        "select channel, holder, term::text from leases where channel = any($1)",
        [itsChannels.map((c) => c.channel)],
      );
      return now.every((row) => row.holder !== null && row.holder !== victim);
    },
    60_000,
    20,
  );
  const takeoverMs = performance.now() - refused;
  nodes.delete(victim);
  const alive = ids.filter((id) => id !== victim);

  // Changes: a rename on one node, awaited on every other.
  const reach: number[] = [];
  for (let i = 0; i < 5; i++) {
    const [writer, ...readers] = alive;
    const channel = channels[i % channels.length];
    const name = `Renamed ${i}`;
    const sent = performance.now();
    const patched = await api(writer ?? "", `/api/channels/${channel?.id}`, {
      method: "PATCH",
      body: JSON.stringify({ name }),
    });
    if (!patched.ok) throw new Error(`rename: ${patched.status} ${await patched.text()}`);
    await Promise.all(
      readers.map((id) =>
        until(
          `${id} to see the rename`,
          async () =>
            ((await (await api(id, `/api/channels/${channel?.id}`)).json()) as { name?: string }).name ===
            name,
          30_000,
          10,
        ),
      ),
    );
    reach.push(performance.now() - sent);
  }
  reach.sort((a, b) => a - b);

  const figures = {
    nodes: N,
    channels: C,
    seconds: Math.round(seconds),
    node_cpu_percent_total: Math.round(nodeCpu.reduce((a, b) => a + b, 0) * 10) / 10,
    node_cpu_percent_max: Math.round(Math.max(...nodeCpu) * 10) / 10,
    event_loop_p99_ms_max: Math.round(max(loopP99) * 10) / 10,
    postgres_cpu_percent:
      Math.round(
        ([...after.pg].reduce((sum, [pid, ticks]) => sum + ticks - (before.pg.get(pid) ?? ticks), 0) /
          TICKS /
          seconds) *
          1000,
      ) / 10,
    wal_bytes_per_s: Math.round(Number(wal) / seconds),
    transactions_per_s: Math.round(((Number(after.db.tx) - Number(before.db.tx)) / seconds) * 10) / 10,
    connections,
    renewals: renewalCount,
    renewal_p50_ms: Math.round(renewalQuantile(0.5) * 10) / 10,
    renewal_p99_ms: Math.round(renewalQuantile(0.99) * 10) / 10,
    killed_node_channels: itsChannels.length,
    takeover_all_ms: Math.round(takeoverMs),
    change_reaches_all_ms_p50: Math.round(quantile(reach, 0.5)),
    change_reaches_all_ms_max: Math.round(reach[reach.length - 1] ?? Number.NaN),
  };
  if (values.json) process.stdout.write(`${JSON.stringify(figures)}\n`);
  else
    for (const [key, value] of Object.entries(figures)) process.stdout.write(`${key.padEnd(28)} ${value}\n`);
} finally {
  await cleanUp();
}
