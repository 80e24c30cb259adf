/**
 * A network lab for tests: Linux network namespaces joined by veth pairs (or through a bridge), addressed in
 * 198.18.0.0/16 with no route out, and impairments per link and direction — loss (random, or of chosen RTP
 * sequence numbers, so a test knows exactly what was lost), bursts and partitions with nftables, rate limits
 * with `tc tbf`, delay and jitter with a userspace relay (netlab-agent.ts: this kernel has no netem).
 *
 * Every name starts with `dl`: namespaces `dl-<run>-<name>`, links `dl<run>-<n>a`/`b`, nft tables `dl<run>`,
 * where `<run>` is the test file's own short id, so files running in parallel never touch each other's. A lab
 * first sweeps what a killed run of the same id left (its namespaces, the processes in them, its links in the
 * root namespace); `close` stops every process it started, removes everything, and fails if anything of its
 * own remains. The test process stays in the root namespace and reaches a namespace over a management veth.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe } from "vitest";
import { stopChild } from "./peers.ts";
import { bin } from "./service.ts";

const ip = "ip";
const agentScript = join(import.meta.dirname, "netlab-agent.ts");

/** Why this machine cannot run the lab (one line), or undefined when it can. */
export const labUnavailable: string | undefined = (() => {
  if (process.platform !== "linux") return "the network lab needs Linux network namespaces";
  if (process.getuid?.() !== 0) return "the network lab needs root (network namespaces, nftables, tc)";
  for (const tool of ["ip", "nft", "tc"]) {
    try {
      execFileSync(tool, ["-V"], { stdio: "ignore" });
    } catch {
      return `the network lab needs \`${tool}\` (apt-get install ${tool === "nft" ? "nftables" : "iproute2"})`;
    }
  }
  const probe = `dl-probe-${process.pid}`;
  try {
    execFileSync(ip, ["netns", "add", probe], { stdio: "pipe" });
    execFileSync(ip, ["netns", "del", probe], { stdio: "pipe" });
  } catch (error) {
    return `the network lab cannot create a network namespace: ${String((error as { stderr?: unknown }).stderr ?? error).trim()}`;
  }
  return undefined;
})();
if (labUnavailable !== undefined) console.log(`network lab: skipped — ${labUnavailable}`);

/** A lab test file's `describe`: skipped where the lab cannot run, the reason logged above. */
export const describeLab = describe.skipIf(labUnavailable !== undefined);

const run = async (command: string, args: ReadonlyArray<string>): Promise<string> => {
  const result = await execa(command, args, { reject: false });
  if (result.exitCode !== 0)
    throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr || result.stdout}`);
  return result.stdout;
};

export interface Namespace {
  readonly name: string;
  /** Runs a command in this namespace and returns its stdout (fails with its stderr). */
  readonly exec: (command: string, args: ReadonlyArray<string>) => Promise<string>;
}

/** One side of a link: the device in its namespace, its address, and the device at the other side. */
export interface End {
  readonly ns: Namespace;
  readonly dev: string;
  readonly address: string;
  readonly peer: { readonly ns: Namespace; readonly dev: string };
}

export interface Link {
  readonly a: End;
  readonly b: End;
}

/** A bridge (in a namespace of its own) with one port per member; `ends` are the members' sides. */
export interface Bridge {
  readonly ends: ReadonlyArray<End>;
}

/** A process in a namespace: its output, its exit, and a stop that waits for it. */
export interface LabProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** The last 20 kB of stderr (and of stdout, for the service's log). */
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  readonly stop: (graceMs?: number) => Promise<void>;
}

/** A rule in force on one direction of a link, with what it dropped so far. */
export interface Impairment {
  readonly dropped: () => Promise<number>;
  readonly heal: () => Promise<void>;
}

export interface Lab {
  readonly run: string;
  readonly namespace: (name: string) => Promise<Namespace>;
  /** A veth pair between `a` and `b`, addressed from the lab's next /30 (or the one given). */
  readonly link: (a: Namespace, b: Namespace) => Promise<Link>;
  /** A bridge joining `members` in one /24, multicast routed onto it in each member; snooping off. */
  readonly bridge: (members: ReadonlyArray<Namespace>) => Promise<Bridge>;
  /** A veth from the root namespace (where the test runs) to `ns`: the address to reach it at. */
  readonly management: (ns: Namespace) => Promise<string>;
  /** Starts `command` in `ns` (killed and checked at close). */
  readonly spawn: (
    ns: Namespace,
    command: string,
    args: ReadonlyArray<string>,
    env?: NodeJS.ProcessEnv,
  ) => LabProcess;
  /** Starts netlab-agent.ts in `ns` with `args` (relay, sink, send). */
  readonly agent: (ns: Namespace, args: ReadonlyArray<string>) => LabProcess;
  /** Drops `percent` % of the UDP datagrams `from` sends over its link, at random. */
  readonly loss: (from: End, percent: number) => Promise<Impairment>;
  /** Drops the UDP datagrams `from` sends to `port` whose RTP sequence number is in `sequences`. */
  readonly dropSequences: (from: End, port: number, sequences: Iterable<number>) => Promise<Impairment>;
  /** Drops everything `from` sends over its link (a broken link, or a burst while it lasts). */
  readonly partition: (from: End) => Promise<Impairment>;
  /** Limits what `from` sends over its link to `kbit` kbit/s (tbf; the queue holds `latencyMs`). */
  readonly rate: (from: End, kbit: number, latencyMs?: number) => Promise<Impairment>;
  /** Stops every process, deletes every namespace and link; throws if any of this run's remains. */
  readonly close: () => Promise<void>;
}

const namespaceOf = (name: string): Namespace => ({
  name,
  exec: (command, args) => run(ip, ["netns", "exec", name, command, ...args]),
});

/**
 * A rule in force from its counter and its removal. Once healed it answers the count read at the heal, since
 * the counter goes with the rule.
 */
const impairment = (count: () => Promise<number>, remove: () => Promise<unknown>): Impairment => {
  let healed = false;
  let last = 0;
  const dropped = async () => {
    if (healed) return last;
    last = await count();
    return last;
  };
  return {
    dropped,
    heal: async () => {
      if (healed) return;
      await dropped();
      healed = true;
      await remove();
    },
  };
};

/** This run's leftovers: namespaces, root links, and the processes inside those namespaces. */
const leftovers = async (id: string) => {
  const namespaces = (await run(ip, ["netns", "list"]))
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name.startsWith(`dl-${id}-`));
  const links = (await run(ip, ["-o", "link", "show"]))
    .split("\n")
    .map((line) => (line.split(": ")[1] ?? "").split("@")[0] ?? "")
    .filter((name) => name.startsWith(`dl${id}-`));
  const pids: number[] = [];
  for (const name of namespaces)
    for (const pid of (await run(ip, ["netns", "pids", name]).catch(() => "")).split(/\s+/))
      if (pid !== "") pids.push(Number(pid));
  return { namespaces, links, pids };
};

const sweep = async (id: string) => {
  const { namespaces, links, pids } = await leftovers(id);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  for (const name of namespaces) await run(ip, ["netns", "del", name]).catch(() => undefined);
  for (const link of links) await run(ip, ["link", "del", link]).catch(() => undefined);
};

/** The root side's address of management block `block` (four addresses in 198.18.254.0/23). */
const managementAddress = (block: number, offset: number) =>
  `198.18.${254 + Math.floor(block / 256)}.${(block % 256) + offset}`;

/** The block of four addresses the management veth of run `id` takes: hashed, then the next unused. */
const managementBlock = async (id: string): Promise<number> => {
  const used = await run(ip, ["-o", "-4", "addr", "show"]);
  let hash = 0;
  for (const char of id) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  for (let i = 0; i < 128; i++) {
    const block = ((hash + i) % 128) * 4;
    if (!used.includes(`${managementAddress(block, 1)}/30`)) return block;
  }
  throw new Error("no free management block in 198.18.254.0/23");
};

/**
 * Gives the root side of a management veth (`dev`) a free block's address and returns the block. Lab files run
 * two at a time (the fleet's labs) can choose the same free block at once, between one's listing and its
 * address: each looks again once its address is on, and one that finds the address on another device too
 * takes it off and chooses again, after a random pause. The later of two always sees the other's address, so
 * no two keep one.
 */
const claimManagementBlock = async (id: string, dev: string): Promise<number> => {
  for (let attempt = 0; attempt < 20; attempt++) {
    const block = await managementBlock(id);
    const address = `${managementAddress(block, 1)}/30`;
    await run(ip, ["addr", "add", address, "dev", dev]);
    const holders = (await run(ip, ["-o", "-4", "addr", "show"]))
      .split("\n")
      .filter((line) => line.includes(` ${address} `));
    if (holders.length === 1) return block;
    await run(ip, ["addr", "del", address, "dev", dev]);
    await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 200));
  }
  throw new Error(`no management block of its own for lab ${id} after 20 tries`);
};

/**
 * A lab for run `id` (a few lower-case letters or digits, unique per test file), after sweeping what a killed
 * run with this id left behind.
 */
export const makeLab = async (id: string): Promise<Lab> => {
  if (!/^[a-z0-9]{1,6}$/.test(id)) throw new Error(`a lab run id is 1–6 lower-case letters or digits: ${id}`);
  await sweep(id);
  const processes = new Set<LabProcess>();
  let links = 0;
  let subnets = 0;
  let bridges = 0;
  const nftReady = new Set<string>();
  const table = `dl${id}`;

  const nextSubnet = () => {
    const n = subnets++;
    return { third: Math.floor((n * 4) / 256), fourth: (n * 4) % 256 };
  };

  const veth = async (a: Namespace | null, b: Namespace) => {
    const n = links++;
    const [devA, devB] = [`dl${id}-${n}a`, `dl${id}-${n}b`];
    await run(ip, ["link", "add", devA, "type", "veth", "peer", "name", devB]);
    if (a !== null) await run(ip, ["link", "set", devA, "netns", a.name]);
    await run(ip, ["link", "set", devB, "netns", b.name]);
    return { devA, devB };
  };

  const up = (ns: Namespace | null, dev: string, address: string | null) =>
    (async () => {
      const prefix = ns === null ? [] : ["-n", ns.name];
      if (address !== null) await run(ip, [...prefix, "addr", "add", address, "dev", dev]);
      await run(ip, [...prefix, "link", "set", dev, "up"]);
    })();

  const chainFor = async (ns: Namespace, dev: string) => {
    if (!nftReady.has(ns.name)) {
      await ns.exec("nft", ["add", "table", "netdev", table]);
      nftReady.add(ns.name);
    }
    const chain = `in-${dev}`;
    if (!nftReady.has(`${ns.name}/${chain}`)) {
      await ns.exec("nft", [
        "add",
        "chain",
        "netdev",
        table,
        chain,
        `{ type filter hook ingress device "${dev}" priority 0; }`,
      ]);
      nftReady.add(`${ns.name}/${chain}`);
    }
    return chain;
  };

  // A rule on the ingress of the far side of `from`'s link: it sees exactly what crossed the link.
  const nftRule = async (from: End, rule: ReadonlyArray<string>): Promise<Impairment> => {
    const { ns, dev } = from.peer;
    const chain = await chainFor(ns, dev);
    const echoed = await ns.exec("nft", [
      "--echo",
      "--handle",
      "add",
      "rule",
      "netdev",
      table,
      chain,
      ...rule,
    ]);
    const handle = /# handle (\d+)/.exec(echoed)?.[1];
    if (handle === undefined) throw new Error(`nft did not say the rule's handle: ${echoed}`);
    return impairment(
      async () => {
        const listing = JSON.parse(await ns.exec("nft", ["-j", "list", "chain", "netdev", table, chain])) as {
          nftables: Array<{ rule?: { handle: number; expr: Array<{ counter?: { packets: number } }> } }>;
        };
        const found = listing.nftables.find((item) => item.rule?.handle === Number(handle));
        return found?.rule?.expr.find((expr) => expr.counter !== undefined)?.counter?.packets ?? 0;
      },
      () => ns.exec("nft", ["delete", "rule", "netdev", table, chain, "handle", handle]),
    );
  };

  const spawnIn = (
    ns: Namespace,
    command: string,
    args: ReadonlyArray<string>,
    env: NodeJS.ProcessEnv = process.env,
  ): LabProcess => {
    const child = spawn(ip, ["netns", "exec", ns.name, command, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env,
    });
    // Read always, so a process that writes much on stdout never blocks on a full pipe.
    child.stdout?.on("data", () => undefined);
    let stderr = "";
    const keep = (chunk: unknown) => {
      stderr = (stderr + String(chunk)).slice(-20_000);
    };
    child.stderr?.on("data", keep);
    if (command === bin) child.stdout?.on("data", keep);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const lab: LabProcess = {
      pid: child.pid ?? -1,
      child,
      stderr: () => stderr,
      exited,
      stop: async (graceMs = 3_000) => {
        await stopChild(child, graceMs);
        processes.delete(lab);
      },
    };
    processes.add(lab);
    return lab;
  };

  return {
    run: id,
    namespace: async (name) => {
      const ns = namespaceOf(`dl-${id}-${name}`);
      await run(ip, ["netns", "add", ns.name]);
      await run(ip, ["-n", ns.name, "link", "set", "lo", "up"]);
      return ns;
    },
    link: async (a, b) => {
      const { third, fourth } = nextSubnet();
      const [addressA, addressB] = [`198.18.${third}.${fourth + 1}`, `198.18.${third}.${fourth + 2}`];
      const { devA, devB } = await veth(a, b);
      await up(a, devA, `${addressA}/30`);
      await up(b, devB, `${addressB}/30`);
      return {
        a: { ns: a, dev: devA, address: addressA, peer: { ns: b, dev: devB } },
        b: { ns: b, dev: devB, address: addressB, peer: { ns: a, dev: devA } },
      };
    },
    bridge: async (members) => {
      const n = bridges++;
      const sw = namespaceOf(`dl-${id}-sw${n}`);
      await run(ip, ["netns", "add", sw.name]);
      const bridgeDev = `dl${id}-br${n}`;
      await run(ip, ["-n", sw.name, "link", "add", bridgeDev, "type", "bridge", "mcast_snooping", "0"]);
      await up(sw, bridgeDev, null);
      const block = 128 + n;
      const ends: End[] = [];
      for (const [index, member] of members.entries()) {
        const { devA: port, devB: dev } = await veth(sw, member);
        await run(ip, ["-n", sw.name, "link", "set", port, "master", bridgeDev]);
        await up(sw, port, null);
        const address = `198.18.${block}.${index + 1}`;
        await up(member, dev, `${address}/24`);
        // Multicast to and from the bridge; still no route out of the lab.
        await run(ip, ["-n", member.name, "route", "add", "224.0.0.0/4", "dev", dev]);
        ends.push({ ns: member, dev, address, peer: { ns: sw, dev: port } });
      }
      return { ends };
    },
    management: async (ns) => {
      const { devA, devB } = await veth(null, ns);
      const block = await claimManagementBlock(id, devA);
      await up(null, devA, null);
      await up(ns, devB, `${managementAddress(block, 2)}/30`);
      return managementAddress(block, 2);
    },
    spawn: spawnIn,
    agent: (ns, args) => spawnIn(ns, process.execPath, [agentScript, ...args]),
    loss: (from, percent) =>
      nftRule(from, [
        "ip",
        "protocol",
        "udp",
        "numgen",
        "random",
        "mod",
        "100",
        "<",
        String(percent),
        "counter",
        "drop",
      ]),
    dropSequences: (from, port, sequences) => {
      const set = [...new Set(sequences)].map((sequence) => sequence & 0xffff);
      if (set.length === 0) throw new Error("dropSequences needs at least one sequence number");
      // The RTP sequence number is bytes 2–3 of the UDP payload: bits 80–95 from the transport header.
      return nftRule(from, [
        "udp",
        "dport",
        String(port),
        "@th,80,16",
        `{ ${set.join(", ")} }`,
        "counter",
        "drop",
      ]);
    },
    partition: (from) => nftRule(from, ["counter", "drop"]),
    rate: async (from, kbit, latencyMs = 200) => {
      const args = ["qdisc", "add", "dev", from.dev, "root", "tbf"];
      await from.ns.exec("tc", [
        ...args,
        "rate",
        `${kbit}kbit`,
        "burst",
        "16kb",
        "latency",
        `${latencyMs}ms`,
      ]);
      return impairment(
        async () =>
          Number(
            /dropped (\d+)/.exec(await from.ns.exec("tc", ["-s", "qdisc", "show", "dev", from.dev]))?.[1] ??
              0,
          ),
        () => from.ns.exec("tc", ["qdisc", "del", "dev", from.dev, "root"]),
      );
    },
    close: async () => {
      await Promise.all([...processes].map((child) => child.stop()));
      const before = await leftovers(id);
      await sweep(id);
      const after = await leftovers(id);
      const problems = [
        ...before.pids.map((pid) => `process ${pid} was still running in the lab`),
        ...after.namespaces.map((name) => `namespace ${name} remains`),
        ...after.links.map((name) => `link ${name} remains`),
        ...after.pids.map((pid) => `process ${pid} remains`),
      ];
      if (problems.length > 0) throw new Error(`the lab ${id} left things behind: ${problems.join("; ")}`);
    },
  };
};

/** Resolves once `child` has written `text` on stdout or stderr; fails if it exits first. */
export const written = (child: LabProcess, text: string, timeoutMs = 15_000): Promise<void> =>
  new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for "${text}" from ${child.pid}: ${child.stderr()}`)),
      timeoutMs,
    );
    const look = (chunk: unknown) => {
      seen = (seen + String(chunk)).slice(-4096);
      if (!seen.includes(text)) return;
      clearTimeout(timer);
      resolve();
    };
    child.child.stdout?.on("data", look);
    child.child.stderr?.on("data", look);
    void child.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${child.pid} exited (${code}) before "${text}": ${child.stderr()}`));
    });
  });

export interface Arrival {
  /** Epoch milliseconds, as the agent's clock read it on arrival. */
  readonly atMs: number;
  readonly datagram: Buffer;
}

export interface LabSink {
  readonly process: LabProcess;
  readonly arrivals: ReadonlyArray<Arrival>;
  readonly bytes: () => Buffer;
  readonly totalBytes: () => number;
}

/** A UDP sink agent in `ns` on `address:port` (joining `group` when given), its datagrams read as they come. */
export const labSink = async (
  lab: Lab,
  ns: Namespace,
  address: string,
  port: number,
  group?: string,
): Promise<LabSink> => {
  const child = lab.agent(ns, ["sink", `${address}:${port}`, ...(group === undefined ? [] : [group])]);
  const arrivals: Arrival[] = [];
  let total = 0;
  let rest: Buffer = Buffer.alloc(0);
  child.child.stdout?.on("data", (chunk: Buffer) => {
    rest = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
    while (rest.length >= 12) {
      const length = rest.readUInt32LE(0);
      if (rest.length < 12 + length) break;
      arrivals.push({ atMs: rest.readDoubleLE(4), datagram: Buffer.from(rest.subarray(12, 12 + length)) });
      total += length;
      rest = rest.subarray(12 + length);
    }
  });
  await written(child, "ready");
  return {
    process: child,
    arrivals,
    bytes: () => Buffer.concat(arrivals.map((arrival) => arrival.datagram)),
    totalBytes: () => total,
  };
};

/** One slot of a schedule: datagrams due at the same moment, each to a destination's index. */
export type Slot = ReadonlyArray<{ readonly to: number; readonly datagram: Uint8Array }>;

/** A schedule as the agent's `send` reads it: per slot a u16 count, then per datagram u8 index, u16 length. */
export const encodeSchedule = (slots: ReadonlyArray<Slot>): Buffer => {
  const parts: Buffer[] = [];
  for (const slot of slots) {
    const count = Buffer.alloc(2);
    count.writeUInt16LE(slot.length);
    parts.push(count);
    for (const { to, datagram } of slot) {
      const header = Buffer.alloc(3);
      header.writeUInt8(to, 0);
      header.writeUInt16LE(datagram.length, 1);
      parts.push(header, Buffer.from(datagram));
    }
  }
  return Buffer.concat(parts);
};

/**
 * Sends `slots` from `ns` at `perMs` slots per millisecond to `destinations` ("addr:port"), through a schedule
 * file in `dir`. Resolves once the agent has started sending; `done` once it has sent everything.
 */
export const labSend = async (
  lab: Lab,
  ns: Namespace,
  file: string,
  slots: ReadonlyArray<Slot>,
  perMs: number,
  destinations: ReadonlyArray<string>,
): Promise<{ readonly process: LabProcess; readonly done: Promise<void> }> => {
  await writeFile(file, encodeSchedule(slots));
  const child = lab.agent(ns, ["send", file, String(perMs), ...destinations]);
  const done = written(child, "done", 600_000);
  // Marked as handled here: a test that never awaits it must not die of an unhandled rejection.
  done.catch(() => undefined);
  await written(child, "sending");
  return { process: child, done };
};

export interface LabService {
  readonly process: LabProcess;
  /** http://<management address>:8000 */
  readonly base: string;
  /** A request to the service's API as admin, JSON in and out. */
  readonly api: (
    path: string,
    init?: { readonly method?: string; readonly body?: unknown },
  ) => Promise<Response>;
  /** SIGTERM, and its exit code. */
  readonly stop: () => Promise<number | null>;
}

/** A service spawned in a lab namespace (`lab.spawn`), once its /api/ready at `base` answers 200 (30 s at most). */
export const readyLabService = async (
  child: ReturnType<Lab["spawn"]>,
  base: string,
  token: string,
): Promise<LabService> => {
  const api = (path: string, init: { readonly method?: string; readonly body?: unknown } = {}) =>
    fetch(`${base}${path}`, {
      method: init.method ?? "GET",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
  const deadline = Date.now() + 30_000;
  while (true) {
    if (child.child.exitCode !== null) throw new Error(`the service exited: ${child.stderr()}`);
    const ready = await fetch(`${base}/api/ready`).catch(() => undefined);
    if (ready?.status === 200) break;
    if (Date.now() > deadline) throw new Error(`the service was not ready in 30 s: ${child.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    process: child,
    base,
    api,
    stop: async () => {
      await child.stop(10_000);
      return child.child.exitCode;
    },
  };
};

/**
 * `bin/distributary serve` as a real process in `ns` (the service's host), its API on port 8000 of a
 * management veth from the root namespace, its configuration in `configDir`. Ready when /api/ready says so.
 */
export const labService = async (
  lab: Lab,
  ns: Namespace,
  configDir: string,
  env: NodeJS.ProcessEnv = {},
): Promise<LabService> => {
  const address = await lab.management(ns);
  const token = `lab-${lab.run}-admin-token-0123456789abcdef`;
  const child = lab.spawn(
    ns,
    bin,
    ["serve", "--port", "8000", "--host", address, "--config-dir", configDir],
    {
      ...process.env,
      ...env,
      DISTRIBUTARY_ADMIN_TOKEN: token,
    },
  );
  return readyLabService(child, `http://${address}:8000`, token);
};

/** The lab of a test file, as `useLab` gives it: the lab itself, a directory, and the service under test. */
export interface UsedLab extends Lab {
  /** A temporary directory for schedules and configuration, removed when the file ends. */
  readonly dir: string;
  /** `labService` in `ns`, its configuration in `dir`; stopped when the file ends, before the lab closes. */
  readonly service: (ns: Namespace, env?: NodeJS.ProcessEnv) => Promise<LabService>;
}

/**
 * The prologue of a lab test file, called inside its `describeLab`: a directory and the lab of run `id` made
 * in `beforeAll`; in `afterAll` the services stopped, the lab closed (failing if anything of it remains) and
 * the directory removed. What it returns stands for that lab, so tests read `lab.namespace(…)` and pass `lab`
 * to `labSend` and `labSink` as they would the lab `makeLab` gives.
 */
export const useLab = (id: string): UsedLab => {
  let dir: string | undefined;
  let current: Lab | undefined;
  const services: LabService[] = [];
  const lab = (): Lab => {
    if (current === undefined) throw new Error("the lab of useLab exists from beforeAll to afterAll");
    return current;
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `distributary-lab-${id}-`));
    current = await makeLab(id);
  });
  afterAll(async () => {
    try {
      for (const service of services.splice(0)) await service.stop();
      await current?.close();
    } finally {
      current = undefined;
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    }
  });
  return {
    run: id,
    get dir() {
      if (dir === undefined) throw new Error("the directory of useLab exists from beforeAll to afterAll");
      return dir;
    },
    namespace: (name) => lab().namespace(name),
    link: (a, b) => lab().link(a, b),
    bridge: (members) => lab().bridge(members),
    management: (ns) => lab().management(ns),
    spawn: (ns, command, args, env) => lab().spawn(ns, command, args, env),
    agent: (ns, args) => lab().agent(ns, args),
    loss: (from, percent) => lab().loss(from, percent),
    dropSequences: (from, port, sequences) => lab().dropSequences(from, port, sequences),
    partition: (from) => lab().partition(from),
    rate: (from, kbit, latencyMs) => lab().rate(from, kbit, latencyMs),
    close: () => lab().close(),
    service: async (ns, env) => {
      const config = join(dir ?? "", services.length === 0 ? "config" : `config-${services.length + 1}`);
      const service = await labService(lab(), ns, config, env);
      services.push(service);
      return service;
    },
  };
};

/** The common topology of the lab tests: the encoder, the service, and a receiver of its UDP output. */
export interface ThroughService {
  readonly enc: Namespace;
  readonly svc: Namespace;
  readonly rx: Namespace;
  readonly service: LabService;
  /** The sink in rx at the far end of the svc–rx link, port 7000. */
  readonly sink: LabSink;
  /** The channel's output to `sink`, as a channel's `outputs` lists it. */
  readonly udpOutput: {
    readonly id: "udp";
    readonly name: "udp";
    readonly protocol: "udp";
    readonly url: string;
  };
}

/**
 * enc, svc and rx, the service running in svc and a UDP sink in rx linked to it. The test links enc to svc
 * (directly or through namespaces of its own) as its inputs need.
 */
export const throughService = async (lab: UsedLab): Promise<ThroughService> => {
  const enc = await lab.namespace("enc");
  const svc = await lab.namespace("svc");
  const rx = await lab.namespace("rx");
  const out = await lab.link(svc, rx);
  const service = await lab.service(svc);
  const sink = await labSink(lab, rx, out.b.address, 7000);
  return {
    enc,
    svc,
    rx,
    service,
    sink,
    udpOutput: { id: "udp", name: "udp", protocol: "udp", url: `udp://${out.b.address}:7000` },
  };
};
