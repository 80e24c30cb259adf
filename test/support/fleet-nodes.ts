/**
 * A fleet on 127.0.0.1 for the tests of its API and pages: one PostgreSQL and nodes run as
 * `bin/distributary serve` (spawnService), each on its own port with its own id and URL, sharing an admin
 * token. `useFleetNodes` is the prologue of a file: the database in `beforeAll`, every node killed and the
 * database removed in `afterAll`. No namespaces: the nodes' inputs are kept apart by each channel's `nodes`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { eventually, json } from "./app.ts";
import { type Postgres, startPostgres } from "./postgres.ts";
import { type ServiceProcess, spawnService } from "./service.ts";

export const FLEET_ADMIN = "fleet-nodes-admin-token-7c1e0b5a93d2f64e";

export interface ChannelFleet {
  readonly holder: string | null;
  readonly term: number;
  readonly standbys: ReadonlyArray<string>;
  readonly holder_reachable: boolean;
}

export interface NodeSeen {
  readonly id: string;
  readonly state: string;
  readonly self: boolean;
  readonly channels_held: number;
  readonly version: string;
  readonly heartbeat_age_ms: number | null;
}

export interface FleetNodes {
  readonly pg: () => Postgres;
  readonly process: (id: string) => ServiceProcess;
  readonly base: (id: string) => string;
  /** Node `id`'s config directory (its control socket: `distributary upgrade --config-dir`). */
  readonly configDir: (id: string) => string;
  /**
   * Starts (or starts again) node `id` with `env` added, and waits until it is ready; `bin`: another tree's
   * launcher (an installed release's link), this tree's by default.
   */
  readonly start: (id: string, env?: NodeJS.ProcessEnv, bin?: string) => Promise<void>;
  /** A request to node `id`'s API, as admin unless `token` says otherwise (null: none). */
  readonly api: (
    id: string,
    path: string,
    init?: RequestInit & { token?: string | null },
  ) => Promise<Response>;
  /** A channel's fleet view as node `id` gives it. */
  readonly fleetOf: (id: string, channel: string) => Promise<ChannelFleet | undefined>;
  readonly nodesSeenBy: (id: string) => Promise<ReadonlyArray<NodeSeen>>;
  /** Waits until `check` holds (10 s unless given). */
  readonly until: (what: string, check: () => Promise<boolean>, timeoutMs?: number) => Promise<void>;
}

export const useFleetNodes = (options: {
  readonly dbPort: number;
  readonly ports: Readonly<Record<string, number>>;
  /** Settings every node gets. */
  readonly env?: NodeJS.ProcessEnv;
}): FleetNodes => {
  let pg: Postgres | undefined;
  let dir = "";
  const running = new Map<string, ServiceProcess>();
  const portOf = (id: string) => {
    const port = options.ports[id];
    if (port === undefined) throw new Error(`no port for node ${id}`);
    return port;
  };
  const base = (id: string) => `http://127.0.0.1:${portOf(id)}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "distributary-fleet-nodes-"));
    pg = await startPostgres({ port: options.dbPort });
  });
  afterAll(async () => {
    for (const node of running.values()) {
      node.process.kill("SIGCONT");
      node.process.kill("SIGKILL");
      await node.exited;
    }
    await pg?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const api: FleetNodes["api"] = (id, path, init = {}) => {
    const { token = FLEET_ADMIN, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (token !== null) headers.set("authorization", `Bearer ${token}`);
    if (rest.body !== undefined) headers.set("content-type", "application/json");
    return fetch(`${base(id)}${path}`, { ...rest, headers });
  };

  return {
    pg: () => {
      if (pg === undefined) throw new Error("the fleet's database exists from beforeAll to afterAll");
      return pg;
    },
    process: (id) => {
      const node = running.get(id);
      if (node === undefined) throw new Error(`node ${id} was never started`);
      return node;
    },
    base,
    configDir: (id) => join(dir, id),
    start: async (id, env = {}, bin) => {
      const node = spawnService({
        ...(bin === undefined ? {} : { bin }),
        port: portOf(id),
        after: ["--host", "127.0.0.1", "--config-dir", join(dir, id)],
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          DISTRIBUTARY_ADMIN_TOKEN: FLEET_ADMIN,
          DISTRIBUTARY_WORKERS: "0",
          DISTRIBUTARY_DATABASE_URL: pg?.url,
          DISTRIBUTARY_NODE_ID: id,
          DISTRIBUTARY_NODE_URL: base(id),
          ...options.env,
          ...env,
        },
      });
      running.set(id, node);
      await node.ready(30_000);
    },
    api,
    fleetOf: async (id, channel) => {
      const list = (await json(await api(id, "/api/channels"))).channels as Array<{
        id: string;
        fleet?: ChannelFleet;
      }>;
      return list.find((candidate) => candidate.id === channel)?.fleet;
    },
    nodesSeenBy: async (id) => (await json(await api(id, "/api/nodes"))).nodes as ReadonlyArray<NodeSeen>,
    until: async (what, check, timeoutMs = 10_000) => {
      await eventually(what, async () => ((await check()) ? true : undefined), timeoutMs);
    },
  };
};

/** A fleet for the notifications' tests: leases of `leaseMs`, no stills, notifiers allowed to reach 127.0.0.1. */
export const useNotifyingFleet = (
  dbPort: number,
  ports: Readonly<Record<string, number>>,
  leaseMs: number,
): FleetNodes =>
  useFleetNodes({
    dbPort,
    ports,
    env: {
      DISTRIBUTARY_LEASE_MS: String(leaseMs),
      DISTRIBUTARY_THUMBNAILS: "off",
      DISTRIBUTARY_NOTIFY_ALLOW_PRIVATE: "true",
    },
  });

/**
 * Waits until every node of `by` has read, at a round at least two rounds after it, that `node`'s lease (of
 * `leaseMs`) ran out: what a node does when it sees another down is done by then.
 */
export const untilLeaseRunOutSeen = (
  fleet: FleetNodes,
  by: ReadonlyArray<string>,
  node: string,
  leaseMs: number,
) =>
  fleet.until(
    `${by.join(" and ")} to have seen ${node}'s lease run out`,
    async () => {
      for (const id of by) {
        const age = (await fleet.nodesSeenBy(id)).find((seen) => seen.id === node)?.heartbeat_age_ms ?? 0;
        if (age <= leaseMs + (2 * leaseMs) / 3 + 500) return false;
      }
      return true;
    },
    20_000,
  );
