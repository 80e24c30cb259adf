/**
 * Fan-out under load: C channels × M UDP outputs at R Mbit/s each on loopback. Prints loss, CPU per channel
 * (service plus its children), RSS and added latency p50/p99 for distributary, then the same fan-out done
 * by one `ffmpeg -f tee` per channel, and the ratios.
 *
 * With `--protocol srt` the outputs are SRT callers instead, each to an `srt-live-transmit` listener that
 * forwards to the UDP sink (the receivers' CPU is counted for neither contender; latency then includes
 * SRT's own latency window and is not reported).
 *
 *   node load-tests/bench-fanout.ts [--channels 25] [--outputs 4] [--mbps 7] [--seconds 20] [--protocol udp|srt]
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { execa, type ResultPromise } from "execa";

const { values } = parseArgs({
  options: {
    channels: { type: "string", default: "25" },
    outputs: { type: "string", default: "4" },
    mbps: { type: "string", default: "7" },
    seconds: { type: "string", default: "20" },
    protocol: { type: "string", default: "udp" },
  },
});
const SRT = values.protocol === "srt";
if (!SRT && values.protocol !== "udp") throw new Error("--protocol is udp or srt");
const C = Number(values.channels);
const M = Number(values.outputs);
const MBPS = Number(values.mbps);
const SECONDS = Number(values.seconds);
const WARMUP_MS = 3000;
const DATAGRAM = 1316;
const perSecond = (MBPS * 1e6) / (DATAGRAM * 8);
const basePort = 30_000 + Math.floor(Math.random() * 10_000);

// ---- load: real H.264 + AAC made by ffmpeg (ffmpeg -f tee must be able to probe it), sent as plain UDP TS
// datagrams to every channel, so both contenders read the same stream. It lasts the whole run: no loop.
const sourcePath = join(tmpdir(), `distributary-bench-${MBPS}M-${SECONDS}s.ts`);
if (!existsSync(sourcePath)) {
  await execa("ffmpeg", [
    ...["-hide_banner", "-loglevel", "error", "-y"],
    ...["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000"],
    ...["-t", String(WARMUP_MS / 1000 + SECONDS + 2), "-vf", "noise=alls=30:allf=t"],
    ...["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p"],
    ...["-b:v", `${MBPS - 0.2}M`, "-maxrate", `${MBPS - 0.2}M`, "-bufsize", `${MBPS}M`],
    ...["-c:a", "aac", "-b:a", "128k", "-muxrate", `${MBPS}M`, "-f", "mpegts", sourcePath],
  ]);
}
// The sinks are a small C program (load-tests/udp-sink.c): receiving 100 × 665 datagrams a second in Node
// would take a core of its own on a 2-core machine, and its pauses would show up as the service's latency.
const sinkBinary = join(tmpdir(), "distributary-udp-sink");
await execa("cc", ["-O2", "-o", sinkBinary, "load-tests/udp-sink.c"]);
const sourceBinary = join(tmpdir(), "distributary-udp-source");
await execa("cc", ["-O2", "-o", sourceBinary, "load-tests/udp-source.c"]);

interface SinkCounts {
  readonly datagrams: number;
  readonly bytes: number;
}
interface Sinks {
  readonly counts: () => Promise<SinkCounts>;
  /** Stops the sinks; returns the kernel arrival times (CLOCK_REALTIME ns) on the timed port. */
  readonly close: () => Promise<ReadonlyArray<bigint>>;
}
const openSinks = async (ports: ReadonlyArray<number>, timedPort: number): Promise<Sinks> => {
  const timesPath = join(tmpdir(), `distributary-bench-times-${process.pid}.txt`);
  const ordered = [timedPort, ...ports.filter((port) => port !== timedPort)];
  const sink = execa(sinkBinary, ["-t", timesPath, ...ordered.map(String)], {
    stdout: "pipe",
    stderr: "inherit",
  });
  let buffered = "";
  const waiters: Array<(text: string) => void> = [];
  sink.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    let end = buffered.indexOf("end\n");
    while (end >= 0) {
      const report = buffered.slice(0, end);
      buffered = buffered.slice(end + 4);
      waiters.shift()?.(report);
      end = buffered.indexOf("end\n");
    }
  });
  await new Promise<void>((ready) =>
    sink.stdout?.on("data", (chunk: Buffer) => chunk.includes("ready") && ready()),
  );
  const counts = async (): Promise<SinkCounts> => {
    const report = new Promise<string>((resolve) => waiters.push(resolve));
    sink.kill("SIGUSR1");
    let datagrams = 0;
    let bytes = 0;
    for (const line of (await report).split("\n")) {
      // "port datagrams bytes ..." per port; the sink's "latency ..." line is not a port's
      const [port, d, b] = line.trim().split(" ");
      if (b !== undefined && /^\d+$/.test(port ?? "")) {
        datagrams += Number(d);
        bytes += Number(b);
      }
    }
    return { datagrams, bytes };
  };
  return {
    counts,
    close: async () => {
      sink.kill("SIGTERM");
      await sink.catch(() => undefined);
      const times = readFileSync(timesPath, "utf8").trim().split("\n").filter(Boolean).map(BigInt);
      rmSync(timesPath, { force: true });
      return times;
    },
  };
};

interface Process {
  readonly pid: number;
}
/** utime+stime of a process and of its live children, in seconds, and their summed RSS in bytes. */
const usage = (pids: ReadonlyArray<number>) => {
  const tick = 100; // USER_HZ on Linux
  let cpu = 0;
  let rss = 0;
  const all = new Set<number>(pids);
  for (const pid of pids) {
    try {
      for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/)) {
        if (child !== "") all.add(Number(child));
      }
    } catch {}
  }
  for (const pid of all) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      cpu += (Number(fields[11]) + Number(fields[12])) / tick;
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      rss += Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    } catch {}
  }
  return { cpu, rss };
};

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

interface Result {
  readonly name: string;
  readonly sentDatagrams: number;
  readonly receivedDatagrams: number;
  readonly expectedBytes: number;
  readonly receivedBytes: number;
  readonly cpuPerChannel: number;
  readonly rss: number;
  readonly latency: { p50: number; p99: number } | null;
}

const run = async (
  name: string,
  start: (inputs: number[], outputs: number[][]) => Promise<ReadonlyArray<Process>>,
  measureLatency: boolean,
): Promise<Result> => {
  const inputs = Array.from({ length: C }, (_, c) => basePort + c * (M + 1));
  const outputs = inputs.map((input) => Array.from({ length: M }, (_, o) => input + 1 + o));
  const timedPort = outputs[0]?.[0] ?? 0;
  const sinks = await openSinks(outputs.flat(), timedPort);
  const processes = await start(inputs, outputs);
  // The source paces like an encoder, in C: a Node sender's own pauses would come out as catch-up bursts that
  // the service then has to queue, and show up as its latency.
  const sentTimesPath = join(tmpdir(), `distributary-bench-sent-${process.pid}.txt`);
  const source = execa(
    sourceBinary,
    [sourcePath, String(perSecond), String(WARMUP_MS / 1000 + SECONDS), sentTimesPath, ...inputs.map(String)],
    { stdout: "pipe", stderr: "inherit" },
  );
  await new Promise<void>((started) =>
    source.stdout?.on("data", (chunk: Buffer) => chunk.includes("started") && started()),
  );
  await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
  const before = usage(processes.map((p) => p.pid));
  const measureStart = performance.now();
  const sentReport = await source;
  const sent = Number(/sent (\d+)/.exec(String(sentReport.stdout))?.[1] ?? 0);
  const windowSeconds = (performance.now() - measureStart) / 1000;
  const after = usage(processes.map((p) => p.pid));
  // Let the datagrams still in flight land before counting.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const received = await sinks.counts();
  const arrivals = await sinks.close();
  const sentAt = readFileSync(sentTimesPath, "utf8").trim().split("\n").filter(Boolean).map(BigInt);
  rmSync(sentTimesPath, { force: true });
  const latencies = arrivals
    .slice(0, sentAt.length)
    .map((at, i) => Number(at - (sentAt[i] ?? at)) / 1e6)
    .sort((a, b) => a - b);
  return {
    name,
    sentDatagrams: sent * C * M,
    receivedDatagrams: received.datagrams,
    expectedBytes: sent * C * M * DATAGRAM,
    receivedBytes: received.bytes,
    cpuPerChannel: ((after.cpu - before.cpu) / windowSeconds / C) * 100,
    rss: after.rss,
    latency:
      measureLatency && latencies.length > 0
        ? { p50: percentile(latencies, 50), p99: percentile(latencies, 99) }
        : null,
  };
};

const children: ResultPromise[] = [];

/** SRT: the listener port in front of a sink port. */
const srtPortFor = (sinkPort: number) => sinkPort + 10_000;
/** SRT: one srt-live-transmit listener per output, forwarding to its sink; waits until all are bound. */
const startSrtReceivers = async (sinkPorts: ReadonlyArray<number>) => {
  for (const port of sinkPorts) {
    children.push(
      execa(
        "srt-live-transmit",
        ["-q", `srt://127.0.0.1:${srtPortFor(port)}?mode=listener`, `udp://127.0.0.1:${port}`],
        { stdin: "ignore", stdout: "ignore", stderr: "ignore" },
      ),
    );
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
};

const stopAll = async () => {
  for (const child of children.splice(0)) {
    child.kill("SIGTERM");
    await child.catch(() => undefined);
  }
};

let loopDelay = "event loop delay not reported";
let srtFigures: string | null = null;
const distributary = await run(
  "distributary",
  async (inputs, outputs) => {
    if (SRT) await startSrtReceivers(outputs.flat());
    const plan = {
      channels: inputs.map((input, c) => ({
        input,
        outputs: (outputs[c] ?? []).map((port) => (SRT ? `srt://127.0.0.1:${srtPortFor(port)}` : port)),
      })),
    };
    // The V8 flag bin/distributary runs the service with.
    const nodeFlags = ["--max-semi-space-size=1"];
    const service = execa(
      process.execPath,
      [...nodeFlags, "load-tests/fanout-service.ts", JSON.stringify(plan)],
      {
        stdout: "pipe",
        stderr: "inherit",
      },
    );
    children.push(service);
    await new Promise<void>((ready) =>
      service.stdout?.on("data", (chunk: Buffer) => {
        if (chunk.includes("ready")) ready();
        const delay = /event loop delay [^\n]*/.exec(chunk.toString());
        if (delay !== null) loopDelay = delay[0];
        const srt = /SRT retransmits [^\n]*/.exec(chunk.toString());
        if (srt !== null) srtFigures = srt[0];
      }),
    );
    if (SRT) await new Promise((resolve) => setTimeout(resolve, 1000));
    return [{ pid: service.pid ?? 0 }];
  },
  !SRT,
);
await stopAll();

const ffmpeg = await run(
  "ffmpeg -f tee",
  async (inputs, outputs) => {
    if (SRT) await startSrtReceivers(outputs.flat());
    const started = inputs.map((input, c) => {
      const tee = (outputs[c] ?? [])
        .map((port) =>
          SRT
            ? `[f=mpegts]srt://127.0.0.1:${srtPortFor(port)}?mode=caller`
            : `[f=mpegts]udp://127.0.0.1:${port}?pkt_size=1316`,
        )
        .join("|");
      const child = execa(
        "ffmpeg",
        [
          ...["-hide_banner", "-nostats", "-loglevel", "error"],
          ...["-f", "mpegts", "-i", `udp://127.0.0.1:${input}?fifo_size=1000000&overrun_nonfatal=1`],
          ...["-map", "0", "-c", "copy", "-f", "tee", tee],
        ],
        { stdin: "ignore", stdout: "ignore", stderr: "ignore" },
      );
      children.push(child);
      return { pid: child.pid ?? 0 };
    });
    // ffmpeg binds its input socket once it has started; give every process time to get there.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return started;
  },
  false,
);
await stopAll();

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const line = (r: Result, remuxed: boolean) => {
  const loss = (1 - r.receivedDatagrams / r.sentDatagrams) * 100;
  const delivered = (r.receivedBytes / r.expectedBytes) * 100;
  // ffmpeg re-packetises what it copies, so its datagrams cannot be matched one for one with those sent.
  const delivery = remuxed
    ? `TS bytes delivered ${delivered.toFixed(2)} % of those sent (datagrams re-cut by the remuxer)`
    : `sent ${r.sentDatagrams}, received ${r.receivedDatagrams} (loss ${loss.toFixed(3)} %), TS bytes delivered ${delivered.toFixed(2)} %`;
  const latency =
    r.latency === null
      ? SRT
        ? "n/a (SRT: includes its latency window)"
        : "n/a (remuxed: packets cannot be matched)"
      : `p50 ${r.latency.p50.toFixed(3)} ms, p99 ${r.latency.p99.toFixed(3)} ms`;
  return [
    `${r.name}:`,
    `  delivery    ${delivery}`,
    `  CPU         ${r.cpuPerChannel.toFixed(2)} % of one core per channel (service and its children)`,
    `  RSS         ${mb(r.rss)} in all`,
    `  latency     ${latency}`,
  ].join("\n");
};
console.log(
  `fan-out: ${C} channels × ${M} ${SRT ? "SRT" : "UDP"} outputs at ${MBPS} Mbit/s, ${SECONDS} s measured after ${WARMUP_MS / 1000} s warm-up`,
);
console.log(line(distributary, false));
console.log(`  service     ${loopDelay}`);
if (srtFigures !== null) console.log(`  SRT links   ${srtFigures}`);
console.log(line(ffmpeg, true));
console.log(
  `ratio ffmpeg/distributary: CPU ${(ffmpeg.cpuPerChannel / distributary.cpuPerChannel).toFixed(2)}×, RSS ${(ffmpeg.rss / distributary.rss).toFixed(2)}×`,
);
