/**
 * The Node.js floor anchor of the load harness: the service's own input and output path with nothing between
 * them — the batch reader (src/effects/runtime/sockets/batch-reader.ts: recvmmsg every DISTRIBUTARY_BATCH_MS) and the
 * segmented UDP sender (src/effects/runtime/sockets/segmented.ts), on one thread, with no packet core, selector,
 * Effect runtime, API or metrics. Beside floor-forwarder.c (the same reads in C, each turn's sends gathered into
 * one sendmmsg) it splits what a forwarding thread costs into what the runtime costs and what the service adds.
 *
 *   node load-tests/floor-forwarder.ts INPUT_PORT:OUT_PORT,OUT_PORT,... [INPUT_PORT:...] ...
 *
 * Binds each input on 127.0.0.1, sends to 127.0.0.1, prints "ready" once all are bound, runs until SIGTERM.
 */
import { createSocket, type Socket } from "node:dgram";
import { DATAGRAM_PAYLOAD } from "../src/effects/outputs/queue.ts";
import { readInBatches } from "../src/effects/runtime/sockets/batch-reader.ts";
import { type DatagramSender, makeDatagramSender } from "../src/effects/runtime/sockets/segmented.ts";

const bound = (socket: Socket, port: number) =>
  new Promise<void>((done, failed) => {
    socket.once("error", failed);
    socket.bind(port, "127.0.0.1", () => done());
  });
const connected = (socket: Socket, port: number) =>
  new Promise<void>((done, failed) => {
    socket.once("error", failed);
    socket.connect(port, "127.0.0.1", () => done());
  });

const sockets: Socket[] = [];
for (const spec of process.argv.slice(2)) {
  const [input, outputs = ""] = spec.split(":");
  const senders: DatagramSender[] = [];
  for (const port of outputs.split(",").filter((text) => text !== "")) {
    const socket = createSocket("udp4");
    sockets.push(socket);
    await bound(socket, 0);
    await connected(socket, Number(port));
    senders.push(makeDatagramSender(socket, DATAGRAM_PAYLOAD));
  }
  const socket = createSocket("udp4");
  sockets.push(socket);
  await bound(socket, Number(input));
  socket.setRecvBufferSize(4 << 20);
  const forward = (datagram: Buffer) => {
    // The RTP header (with its CSRCs) is dropped; what follows goes to every output.
    const first = datagram[0] ?? 0;
    const at = datagram.length >= 12 && (first & 0xc0) === 0x80 ? 12 + 4 * (first & 0x0f) : 0;
    if (at >= datagram.length) return;
    const payload = datagram.subarray(at);
    for (const sender of senders) sender.send(payload, null);
  };
  if (readInBatches(socket, forward) === null) socket.on("message", forward);
}
// The batch reader's timer does not hold the process, and a socket read in batches is not read by Node.
const alive = setInterval(() => {}, 1 << 30);
process.stdout.write("ready\n");
process.once("SIGTERM", () => {
  clearInterval(alive);
  for (const socket of sockets) socket.close();
});
