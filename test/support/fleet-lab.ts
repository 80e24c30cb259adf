/**
 * The fleet in the network lab: one bridge joining a PostgreSQL namespace (`db`), the nodes (`a`, `b`, and
 * `c` when asked), a sender (`tx`) that plays MediaLive's two pipelines (the same stream to two nodes) and a
 * receiver (`rx`) that records every datagram's arrival time, source address and port.
 *
 *   db ─┐
 *   a  ─┤
 *   b  ─┼─ bridge (198.18.128.0/24)        the test process reaches each node's API over a management veth
 *   c  ─┤
 *   tx ─┤
 *   rx ─┘
 *
 * Each node is `bin/distributary serve` (spawnService) inside its namespace with DISTRIBUTARY_DATABASE_URL,
 * its id and URL, the lease time and a shared admin token; it can be killed with SIGKILL and started again.
 * `useFleetLab` goes inside a `describeLab`: the lab of run `id` (which sweeps a killed run's leftovers), the
 * database and the namespaces are made in `beforeAll`; `afterAll` stops every node and the database before
 * the lab closes, so nothing of the run remains.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import type { Received } from "./fleet-analysis.ts";
import { type Impairment, type LabProcess, type Namespace, type UsedLab, useLab, written } from "./netlab.ts";
import { type Postgres, startPostgres } from "./postgres.ts";
import { type ServiceProcess, spawnService } from "./service.ts";

const agentScript = join(import.meta.dirname, "fleet-agent.ts");
const NODE_PORT = 8000;
const DB_PORT = 5432;

export interface ApiInit {
  readonly method?: string;
  readonly body?: unknown;
}

export interface FleetNode {
  readonly id: string;
  readonly ns: Namespace;
  /** Its address on the bridge: where tx sends its input and where peers reach it. */
  readonly address: string;
  /** DISTRIBUTARY_NODE_URL */
  readonly url: string;
  /** Its API as the test process reaches it (management veth). */
  readonly base: string;
  /** A request to its API as admin, JSON in and out. */
  readonly api: (path: string, init?: ApiInit) => Promise<Response>;
  /**
   * Starts the node (with `env` added to the lab's) and waits until /api/ready answers 200; with `bin`, that
   * launcher (another release's `bin/distributary`) instead of this tree's.
   */
  readonly start: (env?: NodeJS.ProcessEnv, bin?: string) => Promise<void>;
  /** SIGKILL: the process is gone at once, its sockets closed by the kernel. */
  readonly kill: () => Promise<void>;
  /** SIGTERM, SIGKILL after 10 s. */
  readonly stop: () => Promise<void>;
  readonly running: () => boolean;
  /** The service's process id while it runs (the runtime itself: its launchers exec it). */
  readonly pid: () => number | undefined;
  /** Everything it wrote on stdout and stderr since its last start. */
  readonly log: () => string;
}

export interface Receiver {
  /** What came to `port`, in order of arrival. */
  readonly at: (port: number) => ReadonlyArray<Received>;
  readonly stop: () => Promise<void>;
}

export interface Sender {
  readonly process: LabProcess;
  readonly done: Promise<void>;
  readonly stop: () => Promise<void>;
}

export interface FleetLab {
  readonly lab: UsedLab;
  readonly db: Postgres;
  readonly dbAddress: string;
  readonly nodes: ReadonlyMap<string, FleetNode>;
  readonly node: (id: string) => FleetNode;
  readonly tx: Namespace;
  readonly rx: Namespace;
  readonly rxAddress: string;
  /** Source address → node id, for reports. */
  readonly names: ReadonlyMap<string, string>;
  readonly token: string;
  /** Starts every node (or those given) at once and waits until all are ready. */
  readonly startNodes: (ids?: ReadonlyArray<string>, env?: NodeJS.ProcessEnv) => Promise<void>;
  /** A receiver in rx on `ports`; with `bytes` it keeps every datagram (else only times, sources, lengths). */
  readonly receiver: (ports: ReadonlyArray<number>, bytes: boolean) => Promise<Receiver>;
  /** Sends `datagrams` at `perMs` to every destination ("addr:port"), each datagram to all of them. */
  readonly send: (
    name: string,
    datagrams: ReadonlyArray<Uint8Array>,
    perMs: number,
    destinations: ReadonlyArray<string>,
  ) => Promise<Sender>;
  /** nftables in `node`'s namespace dropping everything to and from the database's address, and only that. */
  readonly cutFromDatabase: (node: FleetNode) => Promise<Impairment>;
  /** Drops the node's traffic to and from `addresses` (nodes' and the database's on the bridge). */
  readonly cutFrom: (node: FleetNode, addresses: ReadonlyArray<string>) => Promise<Impairment>;
  /** The same for every other address on the bridge: the database, the peers, tx and rx. */
  readonly isolate: (node: FleetNode) => Promise<Impairment>;
}

export interface FleetLabOptions {
  readonly nodes: ReadonlyArray<string>;
  readonly leaseMs: number;
  /** Without it the nodes run alone (one box each), to check the harness's traffic paths. */
  readonly database?: boolean;
  /** Added to every node's environment. */
  readonly env?: NodeJS.ProcessEnv;
}

const ipv4 = (value: number) =>
  [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");

/** Polls `check` every 100 ms until it answers true, failing with `what` after `timeoutMs`. */
const until = async (
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  /** Throws when waiting is pointless (the process exited): fails at once, not after `timeoutMs`. */
  alive: () => void = () => undefined,
) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    alive();
    if (Date.now() > deadline) throw new Error(`${what}: not in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
};

export const useFleetLab = (id: string, options: FleetLabOptions): FleetLab => {
  const lab = useLab(id);
  const token = `fleet-${id}-admin-token-0123456789abcdef`;
  let state:
    | {
        db: Postgres;
        dbAddress: string;
        nodes: Map<string, FleetNode>;
        tx: Namespace;
        rx: Namespace;
        rxAddress: string;
        names: Map<string, string>;
        bridged: ReadonlyArray<string>;
      }
    | undefined;
  const cuts = new Set<Impairment>();
  const get = () => {
    if (state === undefined) throw new Error("the fleet lab exists from beforeAll to afterAll");
    return state;
  };

  const makeNode = (
    nodeId: string,
    ns: Namespace,
    address: string,
    managed: string,
    db: Postgres,
  ): FleetNode => {
    let current: ServiceProcess | undefined;
    const base = `http://${managed}:${NODE_PORT}`;
    const url = `http://${address}:${NODE_PORT}`;
    const running = () =>
      current !== undefined && current.process.exitCode === null && current.process.signalCode === null;
    const api = (path: string, init: ApiInit = {}) =>
      fetch(`${base}${path}`, {
        method: init.method ?? "GET",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
        signal: AbortSignal.timeout(10_000),
      });
    const ended = async (signal: NodeJS.Signals) => {
      const child = current;
      if (child === undefined || !running()) return;
      child.process.kill(signal);
      const timer =
        signal === "SIGKILL" ? undefined : setTimeout(() => child.process.kill("SIGKILL"), 10_000);
      await child.exited;
      clearTimeout(timer);
    };
    return {
      id: nodeId,
      ns,
      address,
      url,
      base,
      api,
      running,
      pid: () => (running() ? current?.process.pid : undefined),
      log: () => current?.output() ?? "",
      start: async (env = {}, bin) => {
        if (running()) throw new Error(`node ${nodeId} is already running`);
        const child = spawnService({
          port: NODE_PORT,
          ...(bin === undefined ? {} : { bin }),
          wrapper: ["ip", "netns", "exec", ns.name],
          after: ["--config-dir", join(lab.dir, `node-${nodeId}`)],
          env: {
            ...process.env,
            DISTRIBUTARY_ADMIN_TOKEN: token,
            DISTRIBUTARY_WORKERS: "1",
            ...(options.database === false
              ? {}
              : {
                  DISTRIBUTARY_DATABASE_URL: db.url,
                  DISTRIBUTARY_NODE_ID: nodeId,
                  DISTRIBUTARY_NODE_URL: url,
                  DISTRIBUTARY_LEASE_MS: String(options.leaseMs),
                }),
            ...options.env,
            ...env,
          },
        });
        current = child;
        await until(
          `node ${nodeId} ready`,
          async () =>
            (await fetch(`${base}/api/ready`, { signal: AbortSignal.timeout(2000) })).status === 200,
          // Ready in a few seconds; up to 30 s seen on a 2-core machine under a load of 25.
          60_000,
          () => {
            if (!running()) throw new Error(`node ${nodeId} exited before it was ready`);
          },
        ).catch((error: unknown) => {
          throw new Error(`${String(error)}\n${child.output().slice(-3000)}`);
        });
      },
      kill: () => ended("SIGKILL"),
      stop: () => ended("SIGTERM"),
    };
  };

  let cutCount = 0;
  /**
   * An inet table of its own in the node's namespace dropping its traffic to and from `addresses`: output and
   * input hooks see the node's own traffic, which the netlab's ingress rules on a bridge port cannot single
   * out per peer.
   */
  const cut = async (node: FleetNode, addresses: ReadonlyArray<string>): Promise<Impairment> => {
    const table = `dl${id}cut${cutCount++}`;
    const set = `{ ${addresses.join(", ")} }`;
    const nft = (args: ReadonlyArray<string>) => node.ns.exec("nft", args);
    await nft(["add", "table", "inet", table]);
    await nft(["add", "chain", "inet", table, "out", "{ type filter hook output priority 0; }"]);
    await nft(["add", "chain", "inet", table, "in", "{ type filter hook input priority 0; }"]);
    await nft(["add", "rule", "inet", table, "out", "ip", "daddr", set, "counter", "drop"]);
    await nft(["add", "rule", "inet", table, "in", "ip", "saddr", set, "counter", "drop"]);
    let healed = false;
    let last = 0;
    const dropped = async () => {
      if (healed) return last;
      const listing = await nft(["list", "table", "inet", table]);
      last = [...listing.matchAll(/counter packets (\d+)/g)].reduce(
        (sum, match) => sum + Number(match[1]),
        0,
      );
      return last;
    };
    const impairment: Impairment = {
      dropped,
      heal: async () => {
        if (healed) return;
        await dropped();
        healed = true;
        cuts.delete(impairment);
        await nft(["delete", "table", "inet", table]);
      },
    };
    cuts.add(impairment);
    return impairment;
  };

  beforeAll(async () => {
    const db = await lab.namespace("db");
    const members = await Promise.all(options.nodes.map((name) => lab.namespace(name)));
    const tx = await lab.namespace("tx");
    const rx = await lab.namespace("rx");
    const bridge = await lab.bridge([db, ...members, tx, rx]);
    const address = (ns: Namespace) => bridge.ends.find((end) => end.ns === ns)?.address ?? "";
    const dbAddress = address(db);
    const postgres = await startPostgres({
      port: DB_PORT,
      listen: dbAddress,
      wrap: (command, args) => ["ip", ["netns", "exec", db.name, command, ...args]],
    });
    const nodes = new Map<string, FleetNode>();
    const names = new Map<string, string>();
    for (const [index, name] of options.nodes.entries()) {
      const ns = members[index] as Namespace;
      const managed = await lab.management(ns);
      nodes.set(name, makeNode(name, ns, address(ns), managed, postgres));
      names.set(address(ns), name);
    }
    const bridged = bridge.ends.map((end) => end.address);
    state = { db: postgres, dbAddress, nodes, tx, rx, rxAddress: address(rx), names, bridged };
  }, 120_000);

  afterAll(async () => {
    const current = state;
    state = undefined;
    for (const cut of cuts) await cut.heal().catch(() => undefined);
    if (current === undefined) return;
    await Promise.all([...current.nodes.values()].map((node) => node.stop()));
    await current.db.close();
  }, 60_000);

  return {
    lab,
    get db() {
      return get().db;
    },
    get dbAddress() {
      return get().dbAddress;
    },
    get nodes() {
      return get().nodes;
    },
    node: (name) => {
      const found = get().nodes.get(name);
      if (found === undefined) throw new Error(`no node ${name} in this fleet lab`);
      return found;
    },
    get tx() {
      return get().tx;
    },
    get rx() {
      return get().rx;
    },
    get rxAddress() {
      return get().rxAddress;
    },
    get names() {
      return get().names;
    },
    token,
    startNodes: async (ids, env) => {
      const chosen = ids ?? [...get().nodes.keys()];
      await Promise.all(chosen.map((name) => get().nodes.get(name)?.start(env)));
    },
    receiver: async (ports, bytes) => {
      const child = lab.spawn(get().rx, process.execPath, [
        agentScript,
        "rx",
        get().rxAddress,
        bytes ? "1" : "0",
        ...ports.map(String),
      ]);
      const byPort = new Map<number, Received[]>(ports.map((port) => [port, []]));
      let rest: Buffer = Buffer.alloc(0);
      child.child.stdout?.on("data", (chunk: Buffer) => {
        rest = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
        while (rest.length >= 24) {
          const length = rest.readUInt32LE(14);
          const whole = 24 + (bytes ? length : 0);
          if (rest.length < whole) break;
          const port = rest.readUInt16LE(0);
          byPort.get(port)?.push({
            atMs: rest.readDoubleLE(6),
            source: ipv4(rest.readUInt32LE(2)),
            port,
            length,
            sourcePort: rest.readUInt16LE(18),
            ssrc: rest.readUInt32LE(20),
            ...(bytes ? { datagram: Buffer.from(rest.subarray(24, whole)) } : {}),
          });
          rest = rest.subarray(whole);
        }
      });
      await written(child, "ready");
      return { at: (port) => byPort.get(port) ?? [], stop: () => child.stop() };
    },
    send: async (name, datagrams, perMs, destinations) => {
      const file = join(lab.dir, `${name}.tx`);
      await writeFile(
        file,
        Buffer.concat(
          datagrams.flatMap((datagram) => {
            const length = Buffer.alloc(2);
            length.writeUInt16LE(datagram.length);
            return [length, Buffer.from(datagram)];
          }),
        ),
      );
      const child = lab.spawn(get().tx, process.execPath, [
        agentScript,
        "tx",
        file,
        String(perMs),
        ...destinations,
      ]);
      const done = written(child, "done", 600_000);
      // Marked as handled here: a test that stops the sender early never awaits it.
      done.catch(() => undefined);
      await written(child, "sending");
      return { process: child, done, stop: () => child.stop() };
    },
    cutFromDatabase: (node) => cut(node, [get().dbAddress]),
    cutFrom: cut,
    isolate: (node) =>
      cut(
        node,
        [...get().bridged].filter((address) => address !== node.address),
      ),
  };
};
