/**
 * The scheduling forwarding threads run at, read from /proc as `chrt -p` and `ps` would: nice −10 (`high`) by
 * default and real-time (SCHED_RR 10) when asked for, for the forwarding threads alone, the main thread and
 * libsrt's threads as ordinary ones; without the right to it, the next level down, with a warning that says
 * why; `normal` when asked for; an unknown value refused at start. /metrics says what each worker got. And a
 * worker with nothing to forward sleeps: its loop-delay timer runs only while its channels receive datagrams.
 */
import { createSocket } from "node:dgram";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort } from "../support/app.ts";
import { type ServiceProcess, servicePort, spawnService } from "../support/service.ts";

const TOKEN = "priority-test-admin-token-0123456789";
const SCHED_OTHER = 0;
const SCHED_RR = 2;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "distributary-priority-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface ThreadScheduling {
  readonly name: string;
  readonly nice: number;
  readonly rtPriority: number;
  readonly policy: number;
}

/** Every thread of `pid`: its name, nice value, real-time priority and policy (fields 19, 40, 41 of stat). */
const threadsOf = async (pid: number): Promise<ThreadScheduling[]> => {
  const threads: ThreadScheduling[] = [];
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, "utf8").catch(() => "");
    if (stat === "") continue;
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const field = (n: number) => Number(fields[n - 3]);
    threads.push({ name, nice: field(19), rtPriority: field(40), policy: field(41) });
  }
  return threads;
};

const start = async (
  name: string,
  options: { readonly env?: NodeJS.ProcessEnv; readonly wrapper?: ReadonlyArray<string> } = {},
) => {
  const port = await servicePort();
  const server = spawnService({
    port,
    wrapper: options.wrapper,
    after: ["--host", "127.0.0.1", "--config-dir", join(dir, name)],
    env: {
      ...process.env,
      DISTRIBUTARY_ADMIN_TOKEN: TOKEN,
      DISTRIBUTARY_METRICS_AUTH: "loopback",
      DISTRIBUTARY_WORKERS: "2",
      // Both threads from the start, channels spread by count: two threads to read, one channel on each.
      DISTRIBUTARY_WORKER_BUSY_PERCENT: "0",
      ...options.env,
    },
  });
  return server;
};

/** Creates a channel through the API (the original API's body) and starts it. */
const startChannel = async (server: ServiceProcess, body: Record<string, unknown>) => {
  const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  const created = await fetch(`${server.base}/api/channels`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
  });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  expect((await fetch(`${server.base}/api/channels/${id}/start`, { method: "POST", headers })).ok).toBe(true);
};

const stop = async (server: ServiceProcess) => {
  server.process.kill("SIGTERM");
  expect(await server.exited).toBe(0);
};

/** The worker scheduling /metrics reports once both workers are up, and then the threads as they run. */
const forwarding = async (server: ServiceProcess) => {
  // A worker is reported once it has set its scheduling (its first act), so the threads are read after.
  const metrics = await eventually("both workers in /metrics", async () => {
    const text = await (await fetch(`${server.base}/metrics`)).text();
    const lines = text.split("\n").filter((line) => line.startsWith("distributary_worker_scheduling_info{"));
    return lines.length === 2 ? lines.sort() : undefined;
  });
  // The wrapper (setpriv, prlimit) execs the service: the same pid.
  const threads = await threadsOf(server.process.pid ?? 0);
  expect(threads.filter((thread) => thread.name.startsWith("forwarding-"))).toHaveLength(2);
  return {
    workers: threads.filter((thread) => thread.name.startsWith("forwarding-")),
    others: threads.filter((thread) => !thread.name.startsWith("forwarding-")),
    metrics,
  };
};

const info = (priority: string) => [
  `distributary_worker_scheduling_info{worker="0",priority="${priority}"} 1`,
  `distributary_worker_scheduling_info{worker="1",priority="${priority}"} 1`,
];

// CAP_SYS_NICE taken away, as a service under an ordinary user has it: no real-time policy, no lower nice.
const withoutSysNice = ["setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice", "--"];

describe("forwarding thread scheduling", () => {
  it("asked for `realtime`, the forwarding threads alone run SCHED_RR 10; the main thread and libsrt's threads stay ordinary", async () => {
    const server = await start("realtime", { env: { DISTRIBUTARY_FORWARDING_PRIORITY: "realtime" } });
    try {
      await server.ready();
      // An SRT listener output: libsrt starts its threads from a forwarding thread, and they must not inherit.
      const srtPort = await freeUdpPort();
      await startChannel(server, {
        name: "srt",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        outputs: [{ name: "srt", protocol: "srt", url: `srt://127.0.0.1:${srtPort}?mode=listener` }],
      });
      await eventually("libsrt's threads", async () =>
        (await threadsOf(server.process.pid ?? 0)).some((thread) => thread.name.startsWith("SRT:"))
          ? true
          : undefined,
      );

      const { workers, others, metrics } = await forwarding(server);
      for (const worker of workers) expect(worker).toMatchObject({ policy: SCHED_RR, rtPriority: 10 });
      expect(others.some((thread) => thread.name.startsWith("SRT:"))).toBe(true);
      for (const thread of others)
        expect(thread, thread.name).toMatchObject({ policy: SCHED_OTHER, nice: 0 });
      expect(metrics).toEqual(info("realtime"));
      expect(server.output()).toContain("forwarding worker 0 runs at realtime priority");
    } finally {
      await stop(server);
    }
  });

  it("without CAP_SYS_NICE the threads run as ordinary ones, and the log says what was refused and why", async () => {
    const server = await start("refused", {
      wrapper: withoutSysNice,
      env: { DISTRIBUTARY_FORWARDING_PRIORITY: "realtime" },
    });
    try {
      await server.ready();
      const { workers, metrics } = await forwarding(server);
      for (const worker of workers) expect(worker).toMatchObject({ policy: SCHED_OTHER, nice: 0 });
      expect(metrics).toEqual(info("normal"));
      const output = server.output();
      expect(output).toContain("forwarding worker 0 runs at normal priority, not realtime");
      expect(output).toContain("real-time scheduling (SCHED_RR 10) was not permitted");
      expect(output).toContain("nice -10 was not permitted");
    } finally {
      await stop(server);
    }
  });

  it("by default (`high`) the forwarding threads alone run at nice −10; `normal` leaves them be", async () => {
    for (const [priority, nice] of [
      ["high", -10],
      ["normal", 0],
    ] as const) {
      const env: Record<string, string> =
        priority === "high" ? {} : { DISTRIBUTARY_FORWARDING_PRIORITY: priority };
      const server = await start(priority, { env });
      try {
        await server.ready();
        const { workers, others, metrics } = await forwarding(server);
        for (const worker of workers) expect(worker).toMatchObject({ policy: SCHED_OTHER, nice });
        for (const thread of others)
          expect(thread, thread.name).toMatchObject({ policy: SCHED_OTHER, nice: 0 });
        expect(metrics).toEqual(info(priority));
      } finally {
        await stop(server);
      }
    }
  });

  it("a worker whose channels have no input sleeps (woken once a second for the sync); one that forwards measures its loop", async () => {
    const server = await start("idle");
    try {
      await server.ready();
      await forwarding(server);
      const pid = server.process.pid ?? 0;
      /** Each forwarding thread's wake-ups (voluntary context switches) over `ms`. */
      const wakeups = async (ms: number) => {
        const read = async () => {
          const counts = new Map<string, number>();
          for (const tid of await readdir(`/proc/${pid}/task`)) {
            const status = await readFile(`/proc/${pid}/task/${tid}/status`, "utf8").catch(() => "");
            const name = /^Name:\s*(\S+)/m.exec(status)?.[1] ?? "";
            const switches = Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1]);
            if (name.startsWith("forwarding-")) counts.set(name, switches);
          }
          return counts;
        };
        const before = await read();
        await new Promise((resolve) => setTimeout(resolve, ms));
        const after = await read();
        return Object.fromEntries([...after].map(([name, n]) => [name, n - (before.get(name) ?? n)]));
      };
      // A started channel with no input on each worker: a 20 ms loop-delay timer would wake each thread 150
      // times in 3 s.
      const inputs: number[] = [];
      for (const name of ["quiet-0", "quiet-1"]) {
        const input = await freeUdpPort();
        inputs.push(input);
        await startChannel(server, { name, rtp_ip: "127.0.0.1", rtp_port: input, outputs: [] });
      }
      await eventually("a channel on each worker", async () => {
        const text = await (await fetch(`${server.base}/metrics`)).text();
        return text.includes('distributary_worker_channels{worker="0"} 1') &&
          text.includes('distributary_worker_channels{worker="1"} 1')
          ? true
          : undefined;
      });
      const idle = await wakeups(3000);
      expect(Object.keys(idle)).toHaveLength(2);
      for (const [name, count] of Object.entries(idle)) expect(count, name).toBeLessThan(30);
      const delays = async () =>
        (await (await fetch(`${server.base}/metrics`)).text())
          .split("\n")
          .filter((line) =>
            line.startsWith('distributary_worker_event_loop_delay_seconds{worker="0",quantile="1"}'),
          )
          .map((line) => Number(line.slice(line.lastIndexOf(" ") + 1)));
      expect(await delays()).toEqual([0]);

      // Datagrams into both channels: the workers forward, and measure their loops again.
      const sender = createSocket("udp4");
      const datagram = Buffer.alloc(1316, 0xff);
      for (let at = 0; at < 1316; at += 188) datagram.writeUInt32BE(0x471fff10, at);
      const timer = setInterval(() => {
        for (const input of inputs) sender.send(datagram, input, "127.0.0.1");
      }, 5);
      try {
        await eventually("worker 0 to report its loop delay", async () =>
          ((await delays())[0] ?? 0) > 0 ? true : undefined,
        );
      } finally {
        clearInterval(timer);
        sender.close();
      }
    } finally {
      await stop(server);
    }
  });

  it("an unknown DISTRIBUTARY_FORWARDING_PRIORITY stops the start with the values it takes", async () => {
    const server = await start("unknown", { env: { DISTRIBUTARY_FORWARDING_PRIORITY: "urgent" } });
    expect(await server.exited).not.toBe(0);
    expect(server.output()).toContain(
      "DISTRIBUTARY_FORWARDING_PRIORITY must be one of realtime, high, normal",
    );
  });
});
