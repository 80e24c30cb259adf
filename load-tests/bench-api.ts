/**
 * Does control-plane load disturb the data plane? One channel forwards a 7 Mbit/s stream (paced by the C
 * source of bench:fanout) to one UDP output (received by its C sink, with kernel timestamps); the benchmark
 * prints the longest silence at the output, first with no API traffic, then while 25 HTTP clients poll
 * `GET /api/channels` as fast as they are answered and 25 WebSocket clients listen, and what the API costs
 * the service: its CPU time (from /proc) under load less its CPU time streaming alone, per request answered.
 * Loopback only, bounded in time. `--root DIR` runs the service of another checkout (for a before/after
 * comparison).
 *
 *   node load-tests/bench-api.ts [--seconds 10] [--clients 25] [--root .]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { execa } from "execa";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    clients: { type: "string", default: "25" },
    root: { type: "string", default: "." },
  },
});
const SECONDS = Number(values.seconds);
const CLIENTS = Number(values.clients);
const ROOT = resolve(values.root);
const MBPS = 7;
const DATAGRAM = 1316;
const TOKEN = "bench-api-admin-token-0123456789abcdef01";
const base = 40_000 + Math.floor(Math.random() * 10_000);
const [httpPort, inputPort, outputPort] = [base, base + 1, base + 2];

const work = mkdtempSync(join(tmpdir(), "distributary-bench-api-"));
const sourcePath = join(work, "source.ts");
await execa("ffmpeg", [
  ...["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25"],
  ...[
    "-t",
    String(SECONDS + 2),
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-g",
    "50",
    "-pix_fmt",
    "yuv420p",
  ],
  ...["-b:v", `${MBPS - 0.2}M`, "-maxrate", `${MBPS - 0.2}M`, "-bufsize", `${MBPS}M`, "-muxrate", `${MBPS}M`],
  ...["-f", "mpegts", sourcePath],
]);
const sinkBinary = join(work, "udp-sink");
const sourceBinary = join(work, "udp-source");
await execa("cc", ["-O2", "-o", sinkBinary, "load-tests/udp-sink.c"]);
await execa("cc", ["-O2", "-o", sourceBinary, "load-tests/udp-source.c"]);

const service = execa(
  join(ROOT, "bin/distributary"),
  ["serve", "--port", String(httpPort), "--host", "127.0.0.1", "--config-dir", join(work, "config")],
  {
    env: { DISTRIBUTARY_ADMIN_TOKEN: TOKEN, DISTRIBUTARY_LOG_LEVEL: "warn" },
    stdout: "ignore",
    stderr: "inherit",
    reject: false,
  },
);
const api = (path: string, init: RequestInit = {}) =>
  fetch(`http://127.0.0.1:${httpPort}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
  });
for (let tries = 0; ; tries++) {
  const ready = await api("/api/health").catch(() => null);
  if (ready?.ok) break;
  if (tries > 200) throw new Error("the service did not start");
  await new Promise((done) => setTimeout(done, 100));
}
const created = await api("/api/channels", {
  method: "POST",
  body: JSON.stringify({
    name: "bench",
    rtp_ip: "127.0.0.1",
    rtp_port: inputPort,
    outputs: [{ name: "sink", protocol: "udp", url: `udp://127.0.0.1:${outputPort}` }],
  }),
});
const channel = (await created.json()) as { id: string };
await api(`/api/channels/${channel.id}/start`, { method: "POST" });

/** Streams for SECONDS; the longest silence and the 99.9th percentile gap at the output, in ms. */
const streamOnce = async () => {
  const times = join(work, "times.txt");
  const sink = execa(sinkBinary, ["-t", times, String(outputPort)], { stdout: "pipe", stderr: "inherit" });
  await new Promise<void>((ready) =>
    sink.stdout?.on("data", (chunk: Buffer) => chunk.includes("ready") && ready()),
  );
  const perSecond = (MBPS * 1e6) / (DATAGRAM * 8);
  await execa(sourceBinary, [
    sourcePath,
    String(perSecond),
    String(SECONDS),
    join(work, "sent.txt"),
    String(inputPort),
  ]);
  await new Promise((done) => setTimeout(done, 300));
  sink.kill("SIGTERM");
  await sink.catch(() => undefined);
  const arrivals = readFileSync(times, "utf8").trim().split("\n").filter(Boolean).map(BigInt);
  const gaps = arrivals
    .slice(1)
    .map((at, i) => Number(at - (arrivals[i] ?? at)) / 1e6)
    .sort((a, b) => a - b);
  return {
    datagrams: arrivals.length,
    longest: gaps.at(-1) ?? 0,
    p999: gaps[Math.floor(gaps.length * 0.999)] ?? 0,
  };
};

/** The service's CPU time so far (user + system), in ms, from /proc/<pid>/stat. */
const serviceCpuMs = () => {
  const fields = readFileSync(`/proc/${service.pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  // After "pid (comm) ": state is field 3, utime and stime are fields 14 and 15, in clock ticks of 10 ms.
  return (Number(fields[11]) + Number(fields[12])) * 10;
};

let cpuBefore = serviceCpuMs();
const quietStarted = performance.now();
const quiet = await streamOnce();
const quietCpuPerSecond = (serviceCpuMs() - cpuBefore) / ((performance.now() - quietStarted) / 1000);

// The load: HTTP clients asking in a loop, WebSocket clients listening, until the stream is done.
let running = true;
let requests = 0;
const sockets = Array.from(
  { length: CLIENTS },
  () => new WebSocket(`ws://127.0.0.1:${httpPort}/ws`, { headers: { authorization: `Bearer ${TOKEN}` } }),
);
const pollers = Array.from({ length: CLIENTS }, async () => {
  while (running) {
    const response = await api("/api/channels").catch(() => null);
    await response?.text();
    requests += 1;
  }
});
const loadStarted = performance.now();
cpuBefore = serviceCpuMs();
const loaded = await streamOnce();
const loadSeconds = (performance.now() - loadStarted) / 1000;
const apiCpuMs = serviceCpuMs() - cpuBefore - quietCpuPerSecond * loadSeconds;
const answered = requests;
running = false;
await Promise.all(pollers);
for (const socket of sockets) socket.close();

console.log(
  `api load: one channel at ${MBPS} Mbit/s to one UDP output, ${SECONDS} s each, service from ${ROOT}`,
);
console.log(
  `  no API traffic:        longest silence ${quiet.longest.toFixed(1)} ms, p99.9 gap ${quiet.p999.toFixed(2)} ms, ${quiet.datagrams} datagrams`,
);
console.log(
  `  ${CLIENTS} HTTP + ${CLIENTS} WebSocket: longest silence ${loaded.longest.toFixed(1)} ms, p99.9 gap ${loaded.p999.toFixed(2)} ms, ` +
    `${loaded.datagrams} datagrams, ${(answered / loadSeconds).toFixed(0)} requests/s`,
);
console.log(
  `  service CPU for the API:  ${((apiCpuMs / answered) * 1000).toFixed(0)} µs per request answered ` +
    `(${((apiCpuMs / 1000 / loadSeconds) * 100).toFixed(0)} % of a core; streaming alone ${(quietCpuPerSecond / 10).toFixed(1)} %)`,
);
service.kill("SIGTERM");
await service;
rmSync(work, { recursive: true, force: true });
