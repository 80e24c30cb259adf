/**
 * The load-test harness (`npm run load`): C channels × M outputs at R Mbit/s through the real service, with
 * `ffmpeg -f tee` and a GStreamer `tee` pipeline doing the same fan-out in the same run, and a JSON and a
 * markdown report under load-tests/reports/.
 *
 *   npm run load -- --channels 10 --outputs 4 --protocol udp|srt|mix --seconds 20 [--api-clients 25]
 *     [--mbps 7] [--warmup 3] [--anchors ffmpeg,gstreamer,floor,node-floor|none] [--anchor-seconds S]
 *     [--report-dir DIR] [--loss PERCENT] [--jitter MS] [--gap-every S --gap-ms MS] [--cue-every S]
 *     [--workers N] [--runtimes node,bun,deno] [--scrape-every S]
 *
 * - Load: one C process (udp-source.c, synthetic mode) plays every channel as RTP: valid TS with PAT/PMT/PCR,
 *   a video-like PID, MPEG audio and an SCTE-35 splice_insert every few seconds, paced like an encoder, with
 *   optional loss, jitter and gaps. A stamp in the first plain video packet of each datagram carries its send
 *   time, so latency is measured at the sinks wherever the bytes arrive untouched.
 * - Sinks: udp-sink.c (one process for the UDP outputs, one for what SRT peers receive) counts TS packets,
 *   continuity errors, SCTE-35 sections, latency and the longest silence on each port. SRT outputs call
 *   srt-live-transmit listeners (test/support/peers.ts) that forward to the sink.
 * - distributary: `bin/distributary serve` on a free port with a temp config dir; channels are created and
 *   started through the REST API; CPU (service and children), RSS and open files come from /proc; event-loop
 *   lag from /metrics (`nodejs_eventloop_lag_*`, DISTRIBUTARY_METRICS_AUTH=loopback) every --scrape-every
 *   seconds (5 by default: the scrapes' work counts against the service, and at one a second lowered its ratio
 *   to ffmpeg at 1 × 4 by about 0.08 (README); Prometheus scrapes every 15 s by default); REST latency from a
 *   probe once a second or, with --api-clients N, from N HTTP clients polling GET /api/channels while N
 *   WebSocket clients listen (that run comes after one without them, so that silences can be compared).
 * - Anchors: one `ffmpeg -f tee` per channel (-c copy, it remuxes) and one gst-launch-1.0 with a
 *   `udpsrc ! rtpmp2tdepay ! tee ! udpsink|srtsink` chain per channel, each with its ratio to our figure; for
 *   UDP also two floors, the service's forwarding design and nothing else, in C (floor-forwarder.c: what the
 *   kernel and machine cost) and in Node.js (floor-forwarder.ts: the service's own reader and sender).
 * - Soak: any run of 600 s or more samples RSS and open files every 10 s and reports their growth.
 * - Runtimes: `--runtimes node,bun,deno` runs the service on each (`bin/distributary --runtime R`), one after
 *   the other on the same workload, and prints their fan-out CPU, loss and latency side by side.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Effect, Exit, Scope } from "effect";
import { freeTcpPort, srtListenerPeer } from "../test/support/peers.ts";

// ---- options --------------------------------------------------------------------------------------------

const { values } = parseArgs({
  options: {
    channels: { type: "string", default: "1" },
    outputs: { type: "string", default: "4" },
    protocol: { type: "string", default: "udp" },
    seconds: { type: "string", default: "20" },
    mbps: { type: "string", default: "7" },
    warmup: { type: "string", default: "3" },
    "api-clients": { type: "string", default: "0" },
    anchors: { type: "string", default: "ffmpeg,gstreamer,floor,node-floor" },
    "anchor-seconds": { type: "string" },
    "report-dir": { type: "string", default: "load-tests/reports" },
    loss: { type: "string", default: "0" },
    jitter: { type: "string", default: "0" },
    "gap-every": { type: "string", default: "0" },
    "gap-ms": { type: "string", default: "0" },
    "cue-every": { type: "string", default: "4" },
    /** Forwarding worker threads (DISTRIBUTARY_WORKERS); the service's default when left out. */
    workers: { type: "string" },
    /** The runtimes to run the service on, one run each (bin/distributary --runtime). */
    runtimes: { type: "string", default: "node" },
    /** Seconds between two scrapes of the service's /metrics (its event-loop lag figures). */
    "scrape-every": { type: "string", default: "5" },
  },
});

const fail = (message: string): never => {
  process.stderr.write(`load: ${message}\n`);
  process.exit(2);
};
const number = (name: keyof typeof values, min: number, max: number): number => {
  const raw = values[name];
  const value = Number(raw);
  if (typeof raw !== "string" || !Number.isFinite(value) || value < min || value > max)
    return fail(`--${name} must be a number from ${min} to ${max}, got '${String(raw)}'`);
  return value;
};
const C = number("channels", 1, 200);
const M = number("outputs", 1, 16);
const SECONDS = number("seconds", 1, 86_400);
const MBPS = number("mbps", 0.5, 100);
const WARMUP = number("warmup", 0, 60);
const API_CLIENTS = number("api-clients", 0, 200);
const ANCHOR_SECONDS = values["anchor-seconds"] === undefined ? SECONDS : number("anchor-seconds", 1, 86_400);
const LOSS = number("loss", 0, 100);
const JITTER = number("jitter", 0, 10_000);
const GAP_EVERY = number("gap-every", 0, 86_400);
const GAP_MS = number("gap-ms", 0, 86_400_000);
const CUE_EVERY = number("cue-every", 0.1, 3600);
const PROTOCOL = values.protocol ?? "udp";
if (PROTOCOL !== "udp" && PROTOCOL !== "srt" && PROTOCOL !== "mix")
  fail(`--protocol must be udp, srt or mix, got '${PROTOCOL}'`);
const ANCHORS = (values.anchors ?? "")
  .split(",")
  .map((name) => name.trim())
  .filter((name) => name !== "" && name !== "none");
for (const anchor of ANCHORS)
  if (!["ffmpeg", "gstreamer", "floor", "node-floor"].includes(anchor))
    fail(`--anchors takes ffmpeg, gstreamer, floor, node-floor or none, got '${anchor}'`);
const RUNTIMES = (values.runtimes ?? "node")
  .split(",")
  .map((name) => name.trim())
  .filter((name) => name !== "");
for (const runtime of RUNTIMES)
  if (runtime !== "node" && runtime !== "bun" && runtime !== "deno")
    fail(`--runtimes takes node, bun or deno, got '${runtime}'`);
if (RUNTIMES.length === 0) fail("--runtimes needs at least one of node, bun, deno");
const REPORT_DIR = resolve(values["report-dir"] ?? "load-tests/reports");
const SOAK = SECONDS >= 600;
const SAMPLE_MS = SOAK ? 10_000 : 1_000;
const SCRAPE_MS = number("scrape-every", 1, 60) * 1000;
const ROOT = resolve(import.meta.dirname, "..");

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0
    ? null
    : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? null);
const round = (value: number | null, digits = 2) =>
  value === null || !Number.isFinite(value) ? null : Number(value.toFixed(digits));

// ---- layout: ports ------------------------------------------------------------------------------------

type Protocol = "udp" | "srt";
interface OutputPlan {
  readonly protocol: Protocol;
  /** where the sink listens (for SRT: where the srt-live-transmit peer forwards to) */
  readonly sink: number;
  /** the SRT peer's listener port */
  readonly srt: number;
}
interface ChannelPlan {
  readonly input: number;
  readonly outputs: ReadonlyArray<OutputPlan>;
}

/**
 * A block of consecutive free UDP ports on 127.0.0.1, below the ephemeral range (ffmpeg's RTP input also takes
 * the port after its own, for RTCP). Each is bound once to check it, then released.
 */
const freePortBlock = async (size: number): Promise<number> => {
  const bind = (port: number) =>
    new Promise<Socket | null>((done) => {
      const socket = createSocket("udp4");
      socket.once("error", () => done(null));
      socket.bind(port, "127.0.0.1", () => done(socket));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const start = 20_000 + 2 * Math.floor(Math.random() * ((32_000 - 20_000 - size) / 2));
    const held: Socket[] = [];
    let ok = true;
    for (let port = start; port < start + size; port++) {
      const socket = await bind(port);
      if (socket === null) {
        ok = false;
        break;
      }
      held.push(socket);
    }
    await Promise.all(held.map((socket) => new Promise<void>((done) => socket.close(() => done()))));
    if (ok) return start;
  }
  return fail(`no block of ${size} free UDP ports between 20000 and 32000`);
};

const protocolOf = (output: number): Protocol =>
  PROTOCOL === "mix" ? (output < Math.ceil(M / 2) ? "udp" : "srt") : PROTOCOL === "srt" ? "srt" : "udp";

const stride = 2 + 2 * M;
const base = await freePortBlock(C * stride);
const plan: ReadonlyArray<ChannelPlan> = Array.from({ length: C }, (_, c) => {
  const input = base + c * stride;
  return {
    input,
    outputs: Array.from({ length: M }, (_, o) => ({
      protocol: protocolOf(o),
      sink: input + 2 + 2 * o,
      srt: input + 3 + 2 * o,
    })),
  };
});
const outputsOf = (protocol: Protocol) =>
  plan.flatMap((channel) => channel.outputs.filter((o) => o.protocol === protocol));
const outputCount = (protocol: Protocol) => outputsOf(protocol).length / C;

// ---- the C helpers -------------------------------------------------------------------------------------

const work = mkdtempSync(join(tmpdir(), "distributary-load-"));
const sinkBinary = join(work, "udp-sink");
const sourceBinary = join(work, "udp-source");
execFileSync("cc", ["-O2", "-o", sinkBinary, join(ROOT, "load-tests/udp-sink.c")]);
execFileSync("cc", ["-O2", "-o", sourceBinary, join(ROOT, "load-tests/udp-source.c")]);
const floorBinary = join(work, "floor-forwarder");
if (ANCHORS.includes("floor"))
  execFileSync("cc", ["-O2", "-o", floorBinary, join(ROOT, "load-tests/floor-forwarder.c")]);

const children = new Set<ChildProcess>();
const started = (command: string, args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv) => {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...(env ? { env } : {}) });
  children.add(child);
  child.once("exit", () => children.delete(child));
  // keep stdout flowing (a full pipe would stall the child); readers attach their own listener right away
  child.stdout?.on("data", () => undefined);
  let tail = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-2000);
  });
  return { child, tail: () => tail };
};
const ended = (child: ChildProcess) =>
  new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done();
    else child.once("exit", () => done());
  });
const stop = async (child: ChildProcess) => {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await ended(child);
  clearTimeout(timer);
};
// Ctrl-C or a SIGTERM still stops every child started here (the exit handler below runs)
process.once("SIGINT", () => process.exit(130));
process.once("SIGTERM", () => process.exit(143));
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
});

/** Lines from a child's stdout, handed out as blocks that end with a line starting with `end`. */
const blocks = (child: ChildProcess, end: string) => {
  let buffered = "";
  const waiting: Array<(block: string) => void> = [];
  const ready: string[] = [];
  child.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    for (;;) {
      const at = buffered.search(new RegExp(`^${end}.*$`, "m"));
      if (at < 0) break;
      const close = buffered.indexOf("\n", at);
      if (close < 0) break;
      const block = buffered.slice(0, close + 1);
      buffered = buffered.slice(close + 1);
      const waiter = waiting.shift();
      if (waiter) waiter(block);
      else ready.push(block);
    }
  });
  return () =>
    new Promise<string>((done) => {
      const next = ready.shift();
      if (next !== undefined) done(next);
      else waiting.push(done);
    });
};

interface PortCounts {
  readonly port: number;
  readonly datagrams: number;
  readonly packets: number;
  readonly ccErrors: number;
  readonly cues: number;
  readonly stamps: number;
  readonly longestSilenceUs: number;
}
interface SinkReport {
  readonly ports: ReadonlyArray<PortCounts>;
  readonly latency: { count: number; p50Us: number; p99Us: number; maxUs: number } | null;
}
const parseSink = (text: string): SinkReport => {
  const ports: PortCounts[] = [];
  let latency: SinkReport["latency"] = null;
  for (const line of text.split("\n")) {
    const fields = line.trim().split(" ");
    if (fields[0] === "latency") {
      const [count, p50Us, p99Us, maxUs] = fields.slice(1).map(Number);
      if (count !== undefined && count > 0)
        latency = { count, p50Us: p50Us ?? 0, p99Us: p99Us ?? 0, maxUs: maxUs ?? 0 };
    } else if (/^\d+$/.test(fields[0] ?? "") && fields.length >= 8) {
      const [port, datagrams, , packets, ccErrors, cues, stamps, longestSilenceUs] = fields.map(Number);
      ports.push({
        port: port ?? 0,
        datagrams: datagrams ?? 0,
        packets: packets ?? 0,
        ccErrors: ccErrors ?? 0,
        cues: cues ?? 0,
        stamps: stamps ?? 0,
        longestSilenceUs: longestSilenceUs ?? 0,
      });
    }
  }
  return { ports, latency };
};

interface Sink {
  readonly report: () => Promise<SinkReport>;
  readonly restartWindow: () => void;
  readonly close: () => Promise<SinkReport>;
}
const openSink = async (ports: ReadonlyArray<number>): Promise<Sink | null> => {
  if (ports.length === 0) return null;
  const { child, tail } = started(sinkBinary, ports.map(String));
  const next = blocks(child, "(ready|end)");
  const first = await Promise.race([next(), ended(child).then(() => "")]);
  if (!first.includes("ready")) throw new Error(`udp-sink did not start: ${tail()}`);
  const report = async () => {
    const answer = next();
    child.kill("SIGUSR1");
    return parseSink(await answer);
  };
  return {
    report,
    restartWindow: () => child.kill("SIGUSR2"),
    close: async () => {
      const answer = next();
      child.kill("SIGTERM");
      const text = await answer;
      await ended(child);
      return parseSink(text);
    },
  };
};

interface SourceCounts {
  readonly channels: ReadonlyArray<{ packets: number; cues: number }>;
}
const parseSource = (text: string): SourceCounts => {
  const channels: Array<{ packets: number; cues: number }> = [];
  for (const match of text.matchAll(/^channel (\d+) datagrams (\d+) packets (\d+) cues (\d+)$/gm))
    channels[Number(match[1])] = { packets: Number(match[3]), cues: Number(match[4]) };
  return { channels };
};
const startSource = async (seconds: number) => {
  const args = ["-s", "-r", "-m", String(MBPS), "-d", String(seconds), "-c", String(CUE_EVERY)];
  if (LOSS > 0) args.push("-l", String(LOSS));
  if (JITTER > 0) args.push("-j", String(JITTER));
  if (GAP_EVERY > 0 && GAP_MS > 0) args.push("-g", String(GAP_EVERY), "-G", String(GAP_MS));
  const { child, tail } = started(sourceBinary, [...args, ...plan.map((channel) => String(channel.input))]);
  const next = blocks(child, "(started|sent)");
  const first = await Promise.race([next(), ended(child).then(() => "")]);
  if (!first.includes("started")) throw new Error(`udp-source did not start: ${tail()}`);
  // the last block, printed as it ends, once its output is closed (SIGUSR1 blocks are taken by counts())
  const closed = new Promise<void>((done) => child.once("close", () => done()));
  const done = closed.then(async () => parseSource(await next()));
  return {
    counts: async () => {
      const answer = next();
      child.kill("SIGUSR1");
      return parseSource(await answer);
    },
    done,
    child,
  };
};

// ---- /proc ---------------------------------------------------------------------------------------------

/** `root` and every process below it (children of any of its threads), from /proc. */
const processTree = (root: number): number[] => {
  const all: number[] = [];
  const visit = (pid: number) => {
    all.push(pid);
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      return;
    }
    for (const task of tasks) {
      try {
        for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim().split(/\s+/))
          if (child !== "") visit(Number(child));
      } catch {}
    }
  };
  visit(root);
  return all;
};
interface Usage {
  readonly cpuSeconds: number;
  readonly rss: number;
  readonly fds: number;
  readonly processes: number;
}
/** utime+stime, RSS and open files of the processes given and everything below them. */
const usage = (roots: ReadonlyArray<number>): Usage => {
  let cpuSeconds = 0;
  let rss = 0;
  let fds = 0;
  let processes = 0;
  for (const pid of roots.flatMap(processTree)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      cpuSeconds += (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ
      rss += Number(fields[21]) * 4096;
      fds += readdirSync(`/proc/${pid}/fd`).length;
      processes += 1;
    } catch {}
  }
  return { cpuSeconds, rss, fds, processes };
};
/** Whether something has bound UDP `port` (from /proc/net/udp). */
const udpBound = (port: number) => {
  // "  sl  local_address rem_address ...": the slot number is right-aligned, so trim before splitting
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return readFileSync("/proc/net/udp", "utf8")
    .split("\n")
    .some((line) => line.trim().split(/\s+/)[1]?.endsWith(suffix) === true);
};

// ---- contenders ----------------------------------------------------------------------------------------

interface Running {
  readonly pids: () => ReadonlyArray<number>;
  readonly stop: () => Promise<void>;
  /** the service only: its HTTP address and tokens */
  readonly service?: Service;
}
interface Service {
  readonly base: string;
  readonly admin: string;
  readonly viewerTokens: (count: number) => Promise<ReadonlyArray<string>>;
}
interface Contender {
  readonly name: string;
  readonly start: () => Promise<Running>;
}

const eventually = async (
  what: string | (() => string),
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await sleep(100);
  }
};

/** Ours on `runtime`; named plain "distributary" on Node.js alone, as in the reports before runtimes. */
const distributaryOn = (runtime: string): Contender => ({
  name: RUNTIMES.length === 1 && runtime === "node" ? "distributary" : `distributary (${runtime})`,
  start: async () => {
    const port = await Effect.runPromise(freeTcpPort);
    const admin = randomBytes(24).toString("base64url");
    const { child, tail } = started(
      join(ROOT, "bin/distributary"),
      [
        "--runtime",
        runtime,
        "serve",
        "--port",
        String(port),
        "--host",
        "127.0.0.1",
        "--config-dir",
        mkdtempSync(join(work, "config-")),
      ],
      {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        // The service's settings given to the harness (DISTRIBUTARY_BATCH_MS, DISTRIBUTARY_UDP_SENDER, ...) to
        // compare them, and DISTRIBUTARY_NODE_OPTIONS as the service's NODE_OPTIONS (to profile it: --cpu-prof,
        // --perf-basic-prof); the ones below are the harness's own.
        ...Object.fromEntries(
          Object.entries(process.env).filter(([name]) => name.startsWith("DISTRIBUTARY_")),
        ),
        ...(process.env.DISTRIBUTARY_NODE_OPTIONS
          ? { NODE_OPTIONS: process.env.DISTRIBUTARY_NODE_OPTIONS }
          : {}),
        DISTRIBUTARY_ADMIN_TOKEN: admin,
        DISTRIBUTARY_LOG_LEVEL: "warn",
        DISTRIBUTARY_METRICS_AUTH: "loopback",
        ...(values.workers === undefined ? {} : { DISTRIBUTARY_WORKERS: values.workers }),
      },
    );
    const base = `http://127.0.0.1:${port}`;
    const api = async (path: string, init: RequestInit = {}) => {
      const response = await fetch(`${base}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${response.status} ${text}`);
      return JSON.parse(text) as Record<string, unknown>;
    };
    await eventually(`the service to answer (${tail()})`, async () => {
      if (child.exitCode !== null) throw new Error(`the service ended: ${tail()}`);
      return (await fetch(`${base}/api/health`).catch(() => null))?.ok === true;
    });
    for (const [c, channel] of plan.entries()) {
      const created = await api("/api/channels", {
        method: "POST",
        body: JSON.stringify({
          name: `load ${c}`,
          rtp_ip: "127.0.0.1",
          rtp_port: channel.input,
          outputs: channel.outputs.map((output, o) => ({
            name: `out ${o}`,
            protocol: output.protocol,
            url:
              output.protocol === "udp"
                ? `udp://127.0.0.1:${output.sink}`
                : `srt://127.0.0.1:${output.srt}?mode=caller`,
          })),
        }),
      });
      await api(`/api/channels/${String(created.id)}/start`, { method: "POST" });
    }
    await eventually("every output to run", async () => {
      const { channels } = (await api("/api/channels")) as {
        channels?: ReadonlyArray<{ outputs: ReadonlyArray<{ status: string }> }>;
      };
      const all = (channels ?? []).flatMap((channel) => channel.outputs);
      return all.length === C * M && all.every((output) => output.status === "running");
    });
    return {
      pids: () => [child.pid ?? 0],
      stop: () => stop(child),
      service: {
        base,
        admin,
        viewerTokens: async (count) => {
          const tokens: string[] = [];
          for (let i = 0; i < count; i++) {
            const created = await api("/api/tokens", {
              method: "POST",
              body: JSON.stringify({ name: `load-viewer-${i}`, role: "viewer" }),
            });
            tokens.push(String(created.token));
          }
          return tokens;
        },
      },
    };
  },
});

const ffmpegTee: Contender = {
  name: "ffmpeg -f tee",
  start: async () => {
    const runs = plan.map((channel) => {
      const tee = channel.outputs
        .map((output) =>
          output.protocol === "udp"
            ? `[f=mpegts]udp://127.0.0.1:${output.sink}?pkt_size=1316`
            : `[f=mpegts]srt://127.0.0.1:${output.srt}?mode=caller&pkt_size=1316`,
        )
        .join("|");
      return started("ffmpeg", [
        ...["-hide_banner", "-nostats", "-loglevel", "fatal", "-probesize", "1000000"],
        ...["-i", `rtp://127.0.0.1:${channel.input}?fifo_size=1000000&overrun_nonfatal=1`],
        ...["-map", "0", "-c", "copy", "-f", "tee", tee],
      ]);
    });
    const processes = runs.map((run) => run.child);
    await eventually(
      () =>
        `every ffmpeg to bind its input (unbound: ${plan
          .filter((channel) => !udpBound(channel.input))
          .map((channel) => channel.input)
          .join(", ")}; ${runs.map((run) => run.tail()).join(" | ")})`,
      () => {
        const gone = runs.find((run) => run.child.exitCode !== null);
        if (gone !== undefined) throw new Error(`ffmpeg ended: ${gone.tail()}`);
        return plan.every((channel) => udpBound(channel.input));
      },
      30_000,
    );
    return {
      pids: () => processes.map((child) => child.pid ?? 0),
      stop: async () => {
        await Promise.all(processes.map(stop));
      },
    };
  },
};

const gstreamerTee: Contender = {
  name: "GStreamer tee",
  start: async () => {
    const chains = plan.flatMap((channel, c) => [
      "udpsrc",
      "address=127.0.0.1",
      `port=${channel.input}`,
      "buffer-size=4194304",
      "caps=application/x-rtp,media=video,clock-rate=90000,encoding-name=MP2T,payload=33",
      "!",
      "rtpmp2tdepay",
      "!",
      "tee",
      `name=t${c}`,
      ...channel.outputs.flatMap((output) => [
        `t${c}.`,
        "!",
        ...(output.protocol === "udp"
          ? ["udpsink", "host=127.0.0.1", `port=${output.sink}`]
          : ["srtsink", `uri=srt://127.0.0.1:${output.srt}?mode=caller`, "wait-for-connection=false"]),
        "sync=false",
        "async=false",
      ]),
    ]);
    const { child, tail } = started("gst-launch-1.0", ["-q", ...chains]);
    await eventually(
      `gst-launch-1.0 to bind its inputs (${tail()})`,
      () => {
        if (child.exitCode !== null) throw new Error(`gst-launch-1.0 ended: ${tail()}`);
        return plan.every((channel) => udpBound(channel.input));
      },
      30_000,
    );
    return { pids: () => [child.pid ?? 0], stop: () => stop(child) };
  },
};

/**
 * The floors: the service's forwarding design with nothing else, so that each figure can be set against what
 * the kernel and the machine alone cost at the same latency budget (`floor`: load-tests/floor-forwarder.c,
 * recvmmsg every DISTRIBUTARY_BATCH_MS and one segmented send per output) and against what Node.js adds to that
 * (`node-floor`: load-tests/floor-forwarder.ts, the service's own batch reader and segmented sender on one
 * thread, no packet core, selector, Effect, API or metrics). UDP outputs only.
 */
const floorForwarder = (name: string, command: string, args: ReadonlyArray<string>): Contender => ({
  name,
  start: async () => {
    const specs = plan.map(
      (channel) => `${channel.input}:${channel.outputs.map((output) => output.sink).join(",")}`,
    );
    const { child, tail } = started(command, [...args, ...specs]);
    await eventually(
      `${name} to bind its inputs (${tail()})`,
      () => {
        if (child.exitCode !== null) throw new Error(`${name} ended: ${tail()}`);
        return plan.every((channel) => udpBound(channel.input));
      },
      30_000,
    );
    return { pids: () => [child.pid ?? 0], stop: () => stop(child) };
  },
});
const cFloor = floorForwarder("C floor", floorBinary, [process.env.DISTRIBUTARY_BATCH_MS ?? "3"]);
const nodeFloor = floorForwarder("Node.js floor", process.execPath, [
  "--max-semi-space-size=1",
  join(ROOT, "load-tests/floor-forwarder.ts"),
]);

// ---- one measured run ----------------------------------------------------------------------------------

interface LagSample {
  readonly series: string;
  readonly p99: number;
  readonly max: number;
}
const scrapeLag = async (base: string): Promise<ReadonlyArray<LagSample>> => {
  const text = await (await fetch(`${base}/metrics`)).text();
  const bySeries = new Map<string, { p99: number; max: number }>();
  for (const match of text.matchAll(/^(\w*eventloop_lag)_(p99|max)_seconds(\{[^}]*\})? (\S+)$/gm)) {
    const series = `${match[1]}${match[3] ?? ""}`;
    const entry = bySeries.get(series) ?? { p99: 0, max: 0 };
    entry[match[2] === "p99" ? "p99" : "max"] = Number(match[4]) * 1000;
    bySeries.set(series, entry);
  }
  // Each forwarding worker's own loop: `distributary_worker_event_loop_delay_seconds{worker,quantile}`, named
  // with the scheduling the worker runs at (`distributary_worker_scheduling_info`).
  const scheduling = new Map(
    [...text.matchAll(/^distributary_worker_scheduling_info\{worker="(\d+)",priority="(\w+)"\} 1$/gm)].map(
      (match) => [match[1], match[2]],
    ),
  );
  for (const match of text.matchAll(
    /^distributary_worker_event_loop_delay_seconds\{worker="(\d+)",quantile="([^"]+)"\} (\S+)$/gm,
  )) {
    const priority = scheduling.get(match[1] ?? "");
    const series = `worker ${match[1]}${priority === undefined ? "" : ` (${priority})`}`;
    const entry = bySeries.get(series) ?? { p99: 0, max: 0 };
    entry[match[2] === "0.99" ? "p99" : "max"] = Number(match[3]) * 1000;
    bySeries.set(series, entry);
  }
  return [...bySeries].map(([series, { p99, max }]) => ({ series, p99, max }));
};

interface ApiLoad {
  readonly stop: () => Promise<{ requests: number; durations: number[] }>;
}
const driveApi = async (service: Service, clients: number): Promise<ApiLoad> => {
  // 20 WebSockets a token is the service's limit: viewer tokens for the sockets, 20 to each.
  const tokens = await service.viewerTokens(Math.ceil(clients / 20));
  const sockets = Array.from(
    { length: clients },
    (_, i) => new WebSocket(`${service.base.replace("http", "ws")}/ws?token=${tokens[Math.floor(i / 20)]}`),
  );
  let running = true;
  const durations: number[] = [];
  const pollers = Array.from({ length: clients }, async () => {
    while (running) {
      const at = performance.now();
      const response = await fetch(`${service.base}/api/channels`, {
        headers: { authorization: `Bearer ${service.admin}` },
      }).catch(() => null);
      await response?.arrayBuffer();
      durations.push(performance.now() - at);
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(pollers);
      for (const socket of sockets) socket.close();
      return { requests: durations.length, durations };
    },
  };
};

interface Measured {
  readonly name: string;
  readonly apiClients: number;
  readonly windowSeconds: number;
  readonly source: { readonly whole: SourceCounts; readonly windowStart: SourceCounts };
  /** at the window's start and end (as the generator ends), and once everything in flight has landed */
  readonly sinks: Record<
    Protocol,
    { readonly start: SinkReport; readonly windowEnd: SinkReport; readonly end: SinkReport } | null
  >;
  readonly cpuSeconds: number;
  readonly usageStart: Usage;
  readonly usageEnd: Usage;
  readonly samples: ReadonlyArray<{ at: number; rss: number; fds: number }>;
  readonly lag: ReadonlyArray<LagSample>;
  readonly rest: { requests: number; durations: number[] } | null;
  readonly loadAverage: ReadonlyArray<number>;
}

const measure = async (contender: Contender, seconds: number, apiClients: number): Promise<Measured> => {
  process.stderr.write(
    `load: ${contender.name}${apiClients > 0 ? ` + ${apiClients} API clients` : ""}, ${seconds} s\n`,
  );
  const scope = Effect.runSync(Scope.make());
  try {
    for (const output of outputsOf("srt"))
      await Effect.runPromise(
        Scope.extend(srtListenerPeer({ port: output.srt, forwardTo: output.sink }), scope),
      );
    const udpSink = await openSink(outputsOf("udp").map((output) => output.sink));
    const srtSink = await openSink(outputsOf("srt").map((output) => output.sink));
    const sinks = [udpSink, srtSink].filter((sink) => sink !== null);
    // Each contender knows it is ready when something has bound its input ports: nothing may hold them before
    // it starts (a contender before it still going away would pass for it).
    await eventually(
      "the input ports to be free before the next contender",
      () => !plan.some((channel) => udpBound(channel.input)),
      30_000,
    );
    const running = await contender.start();
    const source = await startSource(WARMUP + seconds);
    await sleep(WARMUP * 1000);
    for (const sink of sinks) sink.restartWindow();
    const windowStart = await source.counts();
    const udpStart = await udpSink?.report();
    const srtStart = await srtSink?.report();
    const usageStart = usage(running.pids());
    const startedAt = performance.now();
    const samples: Array<{ at: number; rss: number; fds: number }> = [];
    const lag: LagSample[] = [];
    const probes: number[] = [];
    const api =
      running.service !== undefined && apiClients > 0 ? await driveApi(running.service, apiClients) : null;
    let sampling = true;
    let scrapedAt = Number.NEGATIVE_INFINITY;
    const sampler = (async () => {
      while (sampling) {
        const now = usage(running.pids());
        samples.push({ at: (performance.now() - startedAt) / 1000, rss: now.rss, fds: now.fds });
        if (running.service !== undefined) {
          // Half a sample of slack: the samples drift by the time each takes, and a scrape is not put off a whole one.
          if (performance.now() - scrapedAt >= SCRAPE_MS - SAMPLE_MS / 2) {
            scrapedAt = performance.now();
            lag.push(...(await scrapeLag(running.service.base).catch(() => [])));
          }
          if (api === null) {
            const at = performance.now();
            const response = await fetch(`${running.service.base}/api/channels`, {
              headers: { authorization: `Bearer ${running.service.admin}` },
            }).catch(() => null);
            await response?.arrayBuffer();
            probes.push(performance.now() - at);
          }
        }
        await sleep(SAMPLE_MS);
      }
    })();
    const whole = await source.done;
    const usageEnd = usage(running.pids());
    const windowSeconds = (performance.now() - startedAt) / 1000;
    // read at the same moments as the generator's counts, so that what is in flight is left out at both ends
    const udpWindowEnd = await udpSink?.report();
    const srtWindowEnd = await srtSink?.report();
    sampling = false;
    await sampler;
    const rest =
      api !== null
        ? await api.stop()
        : running.service
          ? { requests: probes.length, durations: probes }
          : null;
    // what is still in flight lands before the sinks are read
    await sleep(1000);
    const udpEnd = await udpSink?.close();
    const srtEnd = await srtSink?.close();
    await running.stop();
    return {
      name: contender.name,
      apiClients: api === null ? 0 : apiClients,
      windowSeconds,
      source: { whole, windowStart },
      sinks: {
        udp:
          udpStart && udpWindowEnd && udpEnd
            ? { start: udpStart, windowEnd: udpWindowEnd, end: udpEnd }
            : null,
        srt:
          srtStart && srtWindowEnd && srtEnd
            ? { start: srtStart, windowEnd: srtWindowEnd, end: srtEnd }
            : null,
      },
      cpuSeconds: usageEnd.cpuSeconds - usageStart.cpuSeconds,
      usageStart,
      usageEnd,
      samples,
      lag,
      rest,
      loadAverage: loadavg(),
    };
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void));
  }
};

// ---- figures -------------------------------------------------------------------------------------------

const sum = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0);

/**
 * A soak's RSS growth once warm: the first sixth of the run is warm-up (5 minutes of a 30-minute soak: heaps
 * growing to their working size, buffer pools, JIT), then the median RSS of the last sixth against the median
 * of the sixth right after the warm-up, in percent. Medians, so that one sample caught before a GC does not
 * decide it; a leak shows as a later median above the earlier one.
 */
const soakGrowth = (samples: ReadonlyArray<{ at: number; rss: number }>): number | null => {
  const end = samples.at(-1)?.at ?? 0;
  const sixth = end / 6;
  const median = (from: number, to: number) => {
    const values = samples
      .filter((sample) => sample.at >= from && sample.at <= to)
      .map((sample) => sample.rss)
      .sort((a, b) => a - b);
    return values.length === 0 ? null : (values[Math.floor(values.length / 2)] ?? null);
  };
  const early = median(sixth, 2 * sixth);
  const late = median(end - sixth, end);
  return early === null || late === null || early <= 0 ? null : ((late - early) / early) * 100;
};

const figures = (run: Measured) => {
  const remuxed = run.name === ffmpegTee.name;
  const perProtocol = (protocol: Protocol) => {
    const sink = run.sinks[protocol];
    if (sink === null) return null;
    const outputs = outputCount(protocol);
    const sentWhole = sum(run.source.whole.channels.map((c) => c.packets)) * outputs;
    const sentWindow =
      (sum(run.source.whole.channels.map((c) => c.packets)) -
        sum(run.source.windowStart.channels.map((c) => c.packets))) *
      outputs;
    const cuesSent = sum(run.source.whole.channels.map((c) => c.cues)) * outputs;
    const receivedWhole = sum(sink.end.ports.map((p) => p.packets));
    const receivedWindow =
      sum(sink.windowEnd.ports.map((p) => p.packets)) - sum(sink.start.ports.map((p) => p.packets));
    const latency = sink.end.latency;
    return {
      outputs: outputs * C,
      packets_sent: sentWhole,
      packets_received: receivedWhole,
      // a remuxer re-cuts the TS, so its packets cannot be counted against those sent: see delivered_in_window
      packets_lost: remuxed ? null : Math.max(0, sentWhole - receivedWhole),
      loss_percent: round(
        remuxed || sentWhole === 0 ? null : (Math.max(0, sentWhole - receivedWhole) / sentWhole) * 100,
        4,
      ),
      delivered_in_window_percent: round(sentWindow === 0 ? 0 : (receivedWindow / sentWindow) * 100, 2),
      continuity_errors: sum(sink.end.ports.map((p) => p.ccErrors)),
      cues_sent: cuesSent,
      cues_received: sum(sink.end.ports.map((p) => p.cues)),
      latency_ms:
        latency === null
          ? null
          : {
              samples: latency.count,
              p50: round(latency.p50Us / 1000, 3),
              p99: round(latency.p99Us / 1000, 3),
              max: round(latency.maxUs / 1000, 3),
            },
      longest_silence_ms: round(Math.max(0, ...sink.end.ports.map((p) => p.longestSilenceUs)) / 1000, 1),
    };
  };
  const streams = C * M;
  const cpuPercent = (run.cpuSeconds / run.windowSeconds) * 100;
  const mainLag = run.lag.filter((sample) => sample.series === "nodejs_eventloop_lag");
  const lagSeries = [...new Set(run.lag.map((sample) => sample.series))].map((series) => {
    const of = run.lag.filter((sample) => sample.series === series);
    const p99s = of.map((sample) => sample.p99).sort((a, b) => a - b);
    return {
      series,
      samples: of.length,
      p99_median_ms: round(percentile(p99s, 50), 1),
      p99_worst_ms: round(p99s.at(-1) ?? null, 1),
      max_ms: round(Math.max(0, ...of.map((sample) => sample.max)), 1),
    };
  });
  const first = run.samples[0];
  const last = run.samples.at(-1);
  const warmGrowth = soakGrowth(run.samples);
  const durations = [...(run.rest?.durations ?? [])].sort((a, b) => a - b);
  return {
    contender: run.name,
    api_clients: run.apiClients,
    window_seconds: round(run.windowSeconds, 1),
    processes: run.usageEnd.processes,
    udp: perProtocol("udp"),
    srt: perProtocol("srt"),
    cpu: {
      percent_of_a_core: round(cpuPercent, 1),
      per_channel_percent: round(cpuPercent / C, 3),
      per_output_stream_percent: round(cpuPercent / streams, 3),
    },
    rss_mib: round(run.usageEnd.rss / 1048576, 1),
    rss_growth_percent:
      first && last && first.rss > 0 ? round(((last.rss - first.rss) / first.rss) * 100, 2) : null,
    // a soak's figure: what RSS did once the heaps, pools and JIT had settled (see soakGrowth)
    rss_growth_after_warmup_percent: warmGrowth === null ? null : round(warmGrowth, 2),
    open_files: { start: run.usageStart.fds, end: run.usageEnd.fds },
    event_loop_lag: mainLag.length === 0 ? null : lagSeries,
    rest:
      run.rest === null
        ? null
        : {
            requests: run.rest.requests,
            per_second: round(run.rest.requests / run.windowSeconds, 1),
            p50_ms: round(percentile(durations, 50), 2),
            p99_ms: round(percentile(durations, 99), 2),
          },
    samples: SOAK
      ? run.samples.map((s) => ({ at_s: round(s.at, 0), rss_mib: round(s.rss / 1048576, 1), fds: s.fds }))
      : undefined,
    load_average_after: run.loadAverage.map((value) => round(value, 2)),
  };
};
type Figures = ReturnType<typeof figures>;

// ---- the run -------------------------------------------------------------------------------------------

const loadBefore = loadavg();
const startedAt = new Date();
const runs: Measured[] = [];
for (const runtime of RUNTIMES) {
  const ourService = distributaryOn(runtime);
  runs.push(await measure(ourService, SECONDS, 0));
  if (API_CLIENTS > 0) runs.push(await measure(ourService, SECONDS, API_CLIENTS));
}
if (ANCHORS.includes("ffmpeg")) runs.push(await measure(ffmpegTee, ANCHOR_SECONDS, 0));
if (ANCHORS.includes("gstreamer")) runs.push(await measure(gstreamerTee, ANCHOR_SECONDS, 0));
for (const [anchor, contender] of [
  ["floor", cFloor],
  ["node-floor", nodeFloor],
] as const)
  if (ANCHORS.includes(anchor)) {
    if (PROTOCOL === "udp") runs.push(await measure(contender, ANCHOR_SECONDS, 0));
    else process.stderr.write(`load: the ${anchor} anchor forwards UDP only; left out of this run\n`);
  }
const results = runs.map(figures);
const ours = results[0] as Figures;
/** anchor ÷ ours to two decimals, or two significant digits below 0.1 (1 MiB against 240 is 0.005×, not 0×). */
const ratio = (anchor: number | null | undefined, our: number | null | undefined) => {
  if (anchor === null || anchor === undefined || our === null || our === undefined || our === 0) return null;
  const value = anchor / our;
  return value >= 0.1 ? round(value, 2) : Number(value.toPrecision(2));
};
const isOurs = (r: Figures) => r.contender.startsWith("distributary");
const anchors = results.filter((r) => !isOurs(r));
const withRatios = results.map((r) =>
  isOurs(r)
    ? r
    : {
        ...r,
        ratio_to_distributary: {
          cpu: ratio(r.cpu.percent_of_a_core, ours.cpu.percent_of_a_core),
          rss: ratio(r.rss_mib, ours.rss_mib),
        },
      },
);
const loaded = results.find((r) => r.api_clients > 0 && r.contender === ours.contender);
const silence = (r: Figures | undefined) => r?.udp?.longest_silence_ms ?? r?.srt?.longest_silence_ms ?? null;
const ffmpegResult = anchors.find((r) => r.contender === "ffmpeg -f tee");
const goals = [
  {
    goal: "zero packets lost",
    value: (ours.udp?.packets_lost ?? 0) + (ours.srt?.packets_lost ?? 0),
    met: (ours.udp?.packets_lost ?? 0) + (ours.srt?.packets_lost ?? 0) === 0,
  },
  {
    goal: "CPU per output stream at or below ffmpeg -f tee's",
    value: ours.cpu.per_output_stream_percent,
    met:
      ffmpegResult === undefined
        ? null
        : (ours.cpu.per_output_stream_percent ?? 0) <= (ffmpegResult.cpu.per_output_stream_percent ?? 0),
  },
  {
    goal: "UDP p99 added latency under 5 ms",
    value: ours.udp?.latency_ms?.p99 ?? null,
    met: ours.udp?.latency_ms ? (ours.udp.latency_ms.p99 ?? 0) < 5 : null,
  },
  {
    goal: "UDP max added latency under 20 ms",
    value: ours.udp?.latency_ms?.max ?? null,
    met: ours.udp?.latency_ms ? (ours.udp.latency_ms.max ?? 0) < 20 : null,
  },
  {
    goal: "longest output silence with API clients within 20 ms of the run without",
    value: loaded === undefined ? null : round((silence(loaded) ?? 0) - (silence(ours) ?? 0), 1),
    met: loaded === undefined ? null : (silence(loaded) ?? 0) - (silence(ours) ?? 0) <= 20,
  },
  {
    goal: "RSS growth under 5 % (a soak: --seconds 1800)",
    value: SOAK ? ours.rss_growth_after_warmup_percent : ours.rss_growth_percent,
    met: SOAK ? (ours.rss_growth_after_warmup_percent ?? 0) < 5 : null,
  },
];

// The forwarding settings given in the environment are part of what was run (the floors follow the batch too);
// named one by one, so that no token or other secret of the environment reaches a report.
const settings = Object.entries(process.env)
  .filter(([name]) =>
    /^DISTRIBUTARY_(BATCH_MS|BATCH_READ|WORKERS|FORWARDING_PRIORITY|UDP_GSO|UDP_SENDER|RUNTIME)$/.test(name),
  )
  .map(([name, value]) => `${name}=${String(value)} `)
  .join("");
const command = `${settings}npm run load -- ${process.argv.slice(2).join(" ")}`.trim();
const report = {
  command,
  started_at: startedAt.toISOString(),
  host: {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? "unknown",
    load_average_before: loadBefore.map((value) => round(value, 2)),
    node: process.version,
  },
  workload: {
    channels: C,
    outputs_per_channel: M,
    protocol: PROTOCOL,
    outputs: { udp: outputsOf("udp").length, srt: outputsOf("srt").length },
    mbps: MBPS,
    seconds: SECONDS,
    anchor_seconds: ANCHOR_SECONDS,
    warmup_seconds: WARMUP,
    api_clients: API_CLIENTS,
    cue_every_seconds: CUE_EVERY,
    runtimes: RUNTIMES,
    forwarding_workers: values.workers === undefined ? "default (one per core)" : Number(values.workers),
    faults: { loss_percent: LOSS, jitter_ms: JITTER, gap_every_seconds: GAP_EVERY, gap_ms: GAP_MS },
    input: "RTP (payload type 33), 7 TS packets a datagram",
  },
  results: withRatios,
  goals,
  notes: [
    "CPU is utime+stime of each contender's processes and their children (srt-live-transmit for our SRT outputs) over the measured window, as a share of one core.",
    "Latency is the sink's kernel receive time less the send time stamped in the datagram by the generator: SRT figures include SRT's own latency buffer (120 ms by default).",
    "ffmpeg remuxes (-c copy): its TS packets are re-cut, so its loss is given as TS packets delivered in the window, latency only where a stamp survived intact, and SCTE-35 leaves it as PES private data, not as sections.",
    `Event-loop lag is read from /metrics every ${SCRAPE_MS / 1000} s (the main thread's figure covers the time since the scrape before, each worker's is the worst second of the last 15 s): prom-client's monitor runs at 20 ms resolution, so its figures include those 20 ms.`,
  ],
};

const name = `${startedAt.toISOString().replace(/[:.]/g, "-").slice(0, 19)}-${C}x${M}-${PROTOCOL}${API_CLIENTS > 0 ? `-api${API_CLIENTS}` : ""}${SOAK ? "-soak" : ""}`;
mkdirSync(REPORT_DIR, { recursive: true });
const jsonPath = join(REPORT_DIR, `${name}.json`);
writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);

// ---- markdown ------------------------------------------------------------------------------------------

const show = (value: number | null | undefined, unit = "") =>
  value === null || value === undefined ? "n/a" : `${value}${unit}`;
const withRatio = (r: Figures, pick: (r: Figures) => number | null | undefined, unit = "") => {
  const value = pick(r);
  if (isOurs(r) || value === null || value === undefined) return show(value, unit);
  const x = ratio(value, pick(ours));
  return `${show(value, unit)} (${x === null ? "n/a" : `${x}×`})`;
};
type Row = [string, (r: Figures) => string];
const protocolRows = (protocol: Protocol): Row[] =>
  outputsOf(protocol).length === 0
    ? []
    : [
        [
          `${protocol.toUpperCase()} TS packets lost (whole run)`,
          (r) =>
            r[protocol]?.packets_lost === null
              ? "n/a (remuxed)"
              : `${show(r[protocol]?.packets_lost)} of ${show(r[protocol]?.packets_sent)}`,
        ],
        [
          `${protocol.toUpperCase()} TS packets delivered in the window`,
          (r) => show(r[protocol]?.delivered_in_window_percent, " %"),
        ],
        [`${protocol.toUpperCase()} continuity errors`, (r) => show(r[protocol]?.continuity_errors)],
        [
          `${protocol.toUpperCase()} SCTE-35 cues received / sent`,
          (r) => `${show(r[protocol]?.cues_received)} / ${show(r[protocol]?.cues_sent)}`,
        ],
        [
          `${protocol.toUpperCase()} latency p50 / p99 / max`,
          (r) => {
            const l = r[protocol]?.latency_ms;
            return l ? `${l.p50} / ${l.p99} / ${l.max} ms (${l.samples} stamps)` : "n/a";
          },
        ],
        [
          `${protocol.toUpperCase()} longest silence at an output`,
          (r) => show(r[protocol]?.longest_silence_ms, " ms"),
        ],
      ];
const rows: Row[] = [
  ...protocolRows("udp"),
  ...protocolRows("srt"),
  ["CPU, % of one core (ratio to ours)", (r) => withRatio(r, (x) => x.cpu.percent_of_a_core, " %")],
  ["CPU per channel", (r) => withRatio(r, (x) => x.cpu.per_channel_percent, " %")],
  ["CPU per output stream", (r) => withRatio(r, (x) => x.cpu.per_output_stream_percent, " %")],
  ["RSS (ratio to ours)", (r) => withRatio(r, (x) => x.rss_mib, " MiB")],
  ["RSS growth in the window", (r) => show(r.rss_growth_percent, " %")],
  ...(SOAK
    ? ([
        [
          "RSS growth once warm (median of the last sixth against the second)",
          (r) => show(r.rss_growth_after_warmup_percent, " %"),
        ],
      ] as Row[])
    : []),
  ["open files start → end", (r) => `${r.open_files.start} → ${r.open_files.end}`],
  ["processes", (r) => String(r.processes)],
  [
    `event-loop lag p99 (median / worst of the ${SCRAPE_MS / 1000}-s scrapes), max`,
    (r) =>
      r.event_loop_lag === null
        ? "n/a"
        : r.event_loop_lag
            .map((s) => `${s.series}: ${s.p99_median_ms} / ${s.p99_worst_ms} ms, max ${s.max_ms} ms`)
            .join("; "),
  ],
  [
    "REST GET /api/channels p50 / p99",
    (r) =>
      r.rest === null
        ? "n/a"
        : `${r.rest.p50_ms} / ${r.rest.p99_ms} ms (${r.rest.requests} requests, ${r.rest.per_second}/s)`,
  ],
  ["load average after", (r) => r.load_average_after.join(", ")],
];
const headers = results.map((r) =>
  r.api_clients > 0 ? `${r.contender} + ${r.api_clients} API clients` : r.contender,
);
// One line per runtime (the runs without API clients): what the runtimes issue asks to compare.
const runtimeLines = results
  .filter((r) => isOurs(r) && r.api_clients === 0)
  .map((r) => {
    const lost = (r.udp?.packets_lost ?? 0) + (r.srt?.packets_lost ?? 0);
    const sent = (r.udp?.packets_sent ?? 0) + (r.srt?.packets_sent ?? 0);
    const latency = (protocol: Protocol) => {
      const l = r[protocol]?.latency_ms;
      return l ? `${protocol.toUpperCase()} latency p50 ${l.p50} / p99 ${l.p99} / max ${l.max} ms` : null;
    };
    return `${`${r.contender}:`.padEnd(22)} ${[
      `CPU ${show(r.cpu.per_output_stream_percent, " %")} of a core per output stream (${show(r.cpu.percent_of_a_core, " %")} in all)`,
      `lost ${lost} of ${sent} TS packets (${show(round(sent === 0 ? null : (lost / sent) * 100, 4), " %")})`,
      ...[latency("udp"), latency("srt")].filter((line) => line !== null),
    ].join(", ")}`;
  });
const markdown = [
  `# Load: ${C} channels × ${M} outputs (${PROTOCOL}) at ${MBPS} Mbit/s`,
  "",
  `\`${command}\` — ${startedAt.toISOString()}, ${SECONDS} s measured after ${WARMUP} s warm-up` +
    (ANCHORS.length > 0 ? ` (anchors ${ANCHOR_SECONDS} s)` : "") +
    `; ${report.host.cpus} × ${report.host.cpu_model}; load average before ${report.host.load_average_before.join(", ")}`,
  "",
  `| | ${headers.join(" | ")} |`,
  `| --- | ${headers.map(() => "---").join(" | ")} |`,
  ...rows.map(([label, cell]) => `| ${label} | ${results.map(cell).join(" | ")} |`),
  "",
  ...(RUNTIMES.length > 1 || RUNTIMES[0] !== "node"
    ? ["## Runtimes (fan-out without API clients)", "", "```", ...runtimeLines, "```", ""]
    : []),
  "## Goals (distributary)",
  "",
  ...goals.map((g) => `- ${g.met === null ? "–" : g.met ? "✓" : "✗"} ${g.goal}: ${show(g.value)}`),
  "",
  ...report.notes.map((note) => `- ${note}`),
  "",
].join("\n");
const markdownPath = join(REPORT_DIR, `${name}.md`);
writeFileSync(markdownPath, markdown);
process.stdout.write(`${markdown}\nreport: ${jsonPath}\n        ${markdownPath}\n`);
