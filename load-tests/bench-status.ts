/**
 * What status costs the event loop: the service's own services in this process (memory store), 50 running
 * channels with a primary and a backup input and 4 UDP outputs each, a little traffic on every input so the
 * counters move. Measures
 *   1. one read-model snapshot of all channels (what every tick costs), and the detail of one channel;
 *   2. `GET /api/channels` while 25 WebSocket clients are connected, and how many snapshots were built
 *      meanwhile — one per tick, shared by every client, however many there are.
 *
 *   node load-tests/bench-status.ts [--channels 50] [--clients 25] [--seconds 10]
 */
import { createSocket } from "node:dgram";
import { parseArgs } from "node:util";
import { Layer, Logger, LogLevel, ManagedRuntime, Scope } from "effect";
import { Control } from "../src/effects/control.ts";
import { ReadModel } from "../src/effects/read-model.ts";
import { ServicesTest } from "../src/effects/services.ts";
import { makeApp } from "../src/http/app.ts";
import { listen } from "../src/http/server.ts";
import { chunkTs } from "../test/support/sender.ts";
import { TsGenerator } from "../test/support/ts-generator.ts";

const { values } = parseArgs({
  options: {
    channels: { type: "string", default: "50" },
    clients: { type: "string", default: "25" },
    seconds: { type: "string", default: "10" },
  },
});
const CHANNELS = Number(values.channels);
const CLIENTS = Number(values.clients);
const SECONDS = Number(values.seconds);
const TOKEN = "bench-status-admin-token-0123456789abcdef";

const layer = ServicesTest(TOKEN).pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.Error)));
const runtime = ManagedRuntime.make(layer);
const scope = await runtime.runPromise(Scope.make());
const handle = await runtime.runPromise(Scope.extend(makeApp(), scope));
const server = await runtime.runPromise(
  Scope.extend(listen(handle.app, { port: 0, hostname: "127.0.0.1" }), scope),
);
handle.injectWebSocket(server);
const address = server.address();
const port = typeof address === "object" && address !== null ? address.port : 0;
const api = (path: string, init: RequestInit = {}) =>
  fetch(`http://127.0.0.1:${port}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
  });

const freePort = () =>
  new Promise<number>((resolve) => {
    const socket = createSocket("udp4");
    socket.bind(0, "127.0.0.1", () => {
      const { port: free } = socket.address();
      socket.close(() => resolve(free));
    });
  });

// A sink for every output, so the sockets stay healthy.
const sink = createSocket("udp4");
await new Promise<void>((resolve) => sink.bind(0, "127.0.0.1", () => resolve()));
const sinkPort = sink.address().port;

const inputs: number[] = [];
for (let c = 0; c < CHANNELS; c++) {
  const [primary, backup] = [await freePort(), await freePort()];
  inputs.push(primary, backup);
  const response = await api("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      id: `status-${c}`,
      name: `Status ${c}`,
      rtp_ip: "127.0.0.1",
      rtp_port: primary,
      backup_rtp_ip: "127.0.0.1",
      backup_rtp_port: backup,
      outputs: [0, 1, 2, 3].map((o) => ({
        name: `out ${o}`,
        protocol: "udp",
        url: `udp://127.0.0.1:${sinkPort}`,
      })),
    }),
  });
  if (response.status !== 201)
    throw new Error(`creating a channel: ${response.status} ${await response.text()}`);
  const started = await api(`/api/channels/status-${c}/start`, { method: "POST" });
  if (started.status !== 200)
    throw new Error(`starting a channel: ${started.status} ${await started.text()}`);
}

// A trickle of TS on every input (20 datagrams a second each), so counters and bitrates are real.
const source = createSocket("udp4");
const datagrams = chunkTs(new TsGenerator({ seed: 5, bitrate: 2_000_000 }).packets(7 * 500));
let next = 0;
const trickle = setInterval(() => {
  const datagram = datagrams[next++ % datagrams.length] as Uint8Array;
  for (const input of inputs) source.send(datagram, input, "127.0.0.1");
}, 50);

const readModel = await runtime.runPromise(ReadModel);
await runtime.runPromise(Control);
await new Promise((resolve) => setTimeout(resolve, 1500));

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
const describe = (samples: number[], unit: "µs" | "ms") => {
  const sorted = [...samples].sort((a, b) => a - b);
  const scale = unit === "µs" ? 1000 : 1;
  const mean = samples.reduce((sum, value) => sum + value, 0) / samples.length;
  const show = (ms: number) => (ms * scale).toFixed(unit === "µs" ? 0 : 2);
  return `mean ${show(mean)} ${unit}, p50 ${show(percentile(sorted, 50))} ${unit}, p99 ${show(percentile(sorted, 99))} ${unit}`;
};

const timeIt = async (times: number, run: () => Promise<unknown>) => {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    await run();
    samples.push(performance.now() - start);
  }
  return samples;
};

console.log(`status: ${CHANNELS} running channels × 2 inputs × 4 UDP outputs, ${CLIENTS} WebSocket clients`);
const snapshot = await timeIt(500, () => runtime.runPromise(readModel.refresh));
console.log(`  one snapshot of every channel (each tick):   ${describe(snapshot, "µs")}   (goal < 1000 µs)`);
const detail = await timeIt(200, () => runtime.runPromise(readModel.detail("status-0")));
console.log(`  detail of one channel (PID tables, on ask):  ${describe(detail, "µs")}`);

const quiet = await timeIt(200, async () => (await api("/api/channels")).text());
console.log(`  GET /api/channels, no WebSocket clients:     ${describe(quiet, "ms")}`);

const sockets: WebSocket[] = [];
let messages = 0;
for (let i = 0; i < CLIENTS; i++) {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${TOKEN}`);
  socket.onmessage = () => {
    messages += 1;
  };
  sockets.push(socket);
}
await new Promise((resolve) => setTimeout(resolve, 1000));
const seqBefore = readModel.current().seq;
const messagesBefore = messages;
const started = performance.now();
const busy: number[] = [];
while (performance.now() - started < SECONDS * 1000) {
  const one = performance.now();
  await (await api("/api/channels")).text();
  busy.push(performance.now() - one);
  await new Promise((resolve) => setTimeout(resolve, 20));
}
const elapsed = (performance.now() - started) / 1000;
const built = readModel.current().seq - seqBefore;
console.log(`  GET /api/channels, ${CLIENTS} WebSocket clients:    ${describe(busy, "ms")}`);
console.log(
  `  snapshots built in ${elapsed.toFixed(1)} s: ${built} (${(built / elapsed).toFixed(2)}/s, shared by ${CLIENTS} clients` +
    ` and ${busy.length} GETs); WebSocket messages: ${messages - messagesBefore}`,
);

for (const socket of sockets) socket.close();
clearInterval(trickle);
source.close();
sink.close();
await runtime.runPromise(Scope.close(scope, { _tag: "Success", value: undefined } as never));
await runtime.dispose();
process.exit(0);
