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
import { parseArgs } from "node:util";
import { describeTimes, startBenchService, TOKEN, timeIt } from "./bench-service.ts";

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

const service = await startBenchService(CHANNELS);
const readModel = service.readModel;

console.log(`status: ${CHANNELS} running channels × 2 inputs × 4 UDP outputs, ${CLIENTS} WebSocket clients`);
const snapshot = await timeIt(500, () => service.run(readModel.refresh));
console.log(
  `  one snapshot of every channel (each tick):   ${describeTimes(snapshot, "µs")}   (goal < 1000 µs)`,
);
const detail = await timeIt(200, () => service.run(readModel.detail("bench-0")));
console.log(`  detail of one channel (PID tables, on ask):  ${describeTimes(detail, "µs")}`);

const quiet = await timeIt(200, async () => (await service.api("/api/channels")).text());
console.log(`  GET /api/channels, no WebSocket clients:     ${describeTimes(quiet, "ms")}`);

const sockets: WebSocket[] = [];
let messages = 0;
for (let i = 0; i < CLIENTS; i++) {
  const socket = new WebSocket(`ws://127.0.0.1:${service.port}/ws`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
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
  await (await service.api("/api/channels")).text();
  busy.push(performance.now() - one);
  await new Promise((resolve) => setTimeout(resolve, 20));
}
const elapsed = (performance.now() - started) / 1000;
const built = readModel.current().seq - seqBefore;
console.log(`  GET /api/channels, ${CLIENTS} WebSocket clients:    ${describeTimes(busy, "ms")}`);
console.log(
  `  snapshots built in ${elapsed.toFixed(1)} s: ${built} (${(built / elapsed).toFixed(2)}/s, shared by ${CLIENTS} clients` +
    ` and ${busy.length} GETs); WebSocket messages: ${messages - messagesBefore}`,
);

for (const socket of sockets) socket.close();
await service.stop();
process.exit(0);
