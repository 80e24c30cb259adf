/**
 * `node load-tests/bench-segmented.ts` — the CPU a UDP output spends per 1316-byte datagram, sent one by
 * one (`socket.send` each) or batched through UDP segmentation offload (src/effects/runtime/sockets/segmented.ts), as
 * the fan-out does in one turn of the event loop. A receiver in another process drains the datagrams, so only
 * the sending side is measured.
 *
 *   node load-tests/bench-segmented.ts [--datagrams 200000] [--batch 8]
 */
import { spawn } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { parseArgs } from "node:util";
import { makeDatagramSender } from "../src/effects/runtime/sockets/segmented.ts";

const { values } = parseArgs({
  options: { datagrams: { type: "string", default: "200000" }, batch: { type: "string", default: "8" } },
});
const N = Number(values.datagrams);
const BATCH = Number(values.batch);

const receiver = spawn(
  process.execPath,
  [
    "-e",
    `const s = require("node:dgram").createSocket("udp4"); let n = 0;
     s.on("message", () => n++);
     s.bind(0, "127.0.0.1", () => { s.setRecvBufferSize(64 << 20); console.log(s.address().port); });
     process.stdin.on("data", () => { console.log(n); process.exit(0); });`,
  ],
  { stdio: ["pipe", "pipe", "inherit"] },
);
const lines: string[] = [];
receiver.stdout.on("data", (chunk) => lines.push(...String(chunk).trim().split("\n")));
const nextLine = async () => {
  const seen = lines.length;
  while (lines.length === seen) await new Promise((resolve) => setTimeout(resolve, 10));
  return lines.at(-1) ?? "";
};
const port = Number(await nextLine());

const connected = async (): Promise<Socket> => {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  await new Promise<void>((resolve) => socket.connect(port, "127.0.0.1", resolve));
  return socket;
};

const datagram = Buffer.alloc(1316, 0x47);
const measure = async (name: string, send: (datagram: Buffer) => void) => {
  const started = process.cpuUsage();
  // BATCH datagrams a turn, as a busy input delivers several per turn; a pause now and then lets the
  // receiver keep up.
  for (let sent = 0; sent < N; sent += BATCH) {
    for (let i = 0; i < BATCH; i++) send(datagram);
    await new Promise((resolve) => setImmediate(resolve));
    if (sent % (BATCH * 256) === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const used = process.cpuUsage(started);
  process.stdout.write(
    `${name.padEnd(44)} ${((used.user + used.system) / N).toFixed(2)} µs of CPU per datagram\n`,
  );
};

process.stdout.write(
  `${N} datagrams of 1316 bytes to a receiver on loopback, ${BATCH} per turn of the event loop\n`,
);
const single = await connected();
await measure("one send per datagram", (d) => single.send(d));
const batched = await connected();
const sender = makeDatagramSender(batched, 1316);
await measure("batched (UDP_SEGMENT)", (d) => sender.send(d, null));
receiver.stdin.write("\n");
process.stdout.write(`received ${await nextLine()} of ${2 * N}\n`);
single.close();
batched.close();
