/**
 * Batched datagrams (UDP segmentation offload) reach a receiver exactly as single sends would: one datagram
 * per payload, each with its header, in order, the last one shorter.
 */
import { createSocket, type Socket } from "node:dgram";
import { afterEach, expect, it } from "vitest";
import { makeDatagramSender, segmentSends } from "../../src/effects/runtime/sockets/segmented.ts";

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

const bound = async (): Promise<Socket> => {
  const socket = createSocket("udp4");
  sockets.push(socket);
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return socket;
};

const receiver = async () => {
  const socket = await bound();
  socket.setRecvBufferSize(8 * 1024 * 1024);
  const datagrams: Buffer[] = [];
  socket.on("message", (message) => datagrams.push(message));
  return { port: socket.address().port, datagrams };
};

const payload = (n: number, length = 1316) => Buffer.alloc(length, n & 0xff);

it("the kernel cuts one send into the datagrams it carries: each arrives whole, in order, the short one last", async () => {
  const sink = await receiver();
  const socket = await bound();
  await new Promise<void>((resolve) => socket.connect(sink.port, "127.0.0.1", resolve));
  expect(segmentSends(socket, 1316)).toBeTypeOf("number");
  const sender = makeDatagramSender(socket, 1316);
  const sent = [...Array.from({ length: 100 }, (_, n) => payload(n)), payload(100, 188 * 3)];
  // All in one turn of the event loop: they leave in batches of at most 48.
  for (const datagram of sent) sender.send(datagram, null);
  await expect.poll(() => sink.datagrams.length).toBe(sent.length);
  expect(sink.datagrams.map((d) => d.length)).toEqual(sent.map((d) => d.length));
  expect(Buffer.concat(sink.datagrams).equals(Buffer.concat(sent))).toBe(true);
});

it("each datagram keeps its own header (RTP), and datagrams sent in later turns follow in order", async () => {
  const sink = await receiver();
  const socket = await bound();
  await new Promise<void>((resolve) => socket.connect(sink.port, "127.0.0.1", resolve));
  const sender = makeDatagramSender(socket, 12 + 1316);
  const header = (n: number) => Buffer.alloc(12, 0x80 + (n % 16));
  for (let turn = 0; turn < 5; turn++) {
    for (let n = turn * 10; n < turn * 10 + 10; n++) sender.send(payload(n), header(n));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await expect.poll(() => sink.datagrams.length).toBe(50);
  sink.datagrams.forEach((datagram, n) => {
    expect(datagram.equals(Buffer.concat([header(n), payload(n)])), `datagram ${n}`).toBe(true);
  });
});
