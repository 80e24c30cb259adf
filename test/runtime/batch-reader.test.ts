/**
 * Input datagrams read in batches (src/effects/runtime/sockets/batch-reader.ts) through the input's own binding
 * (bindInput): what a sender puts on the wire arrives whole, in order, with its sender, however the reads
 * are batched; what cannot be TS over UDP is not passed off as whole; closing gives the port back.
 */
import { execFileSync } from "node:child_process";
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { Cause, ConfigProvider, Effect, Exit, Layer, Scope } from "effect";
import { afterEach, expect, it } from "vitest";
import { CoreStatus, PacketCore } from "../../src/core/packet-core.ts";
import { Channels } from "../../src/effects/channel/channels.ts";
import { bindInput } from "../../src/effects/ingest/udp-receiver.ts";
import { batchMs, type ReadInto, readInBatches } from "../../src/effects/runtime/sockets/batch-reader.ts";
import { freeUdpPort } from "../support/peers.ts";
import { TsGenerator } from "../support/ts-generator.ts";

interface Received {
  readonly bytes: Buffer;
  readonly sender: RemoteInfo;
}

const scopes: Scope.CloseableScope[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const scope of scopes.splice(0)) await Effect.runPromise(Scope.close(scope, Exit.void));
  for (const socket of sockets.splice(0)) socket.close();
});

/** An input bound on `ip`; with `into`, its reads land where `into` says and go to it whole. */
const listen = async (ip: string, into?: ReadInto) => {
  const port = await Effect.runPromise(freeUdpPort);
  const received: Received[] = [];
  const scope = await Effect.runPromise(Scope.make());
  scopes.push(scope);
  await Effect.runPromise(
    // The bytes are a view into memory the reader reuses: keep a copy, as the channel does.
    bindInput(
      { ip, port },
      (datagram, sender) => received.push({ bytes: Buffer.from(datagram), sender: { ...sender } }),
      undefined,
      undefined,
      into,
    ).pipe(Scope.extend(scope)),
  );
  return { port, received, scope };
};

const sender = async (type: "udp4" | "udp6", address: string) => {
  const socket = createSocket(type);
  sockets.push(socket);
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  return socket;
};

const send = (socket: Socket, datagram: Uint8Array, port: number, address: string) =>
  new Promise<void>((resolve, reject) =>
    socket.send(datagram, port, address, (error) => (error ? reject(error) : resolve())),
  );

const datagram = (n: number, length = 1316) => Buffer.alloc(length, n & 0xff).fill(n >> 8, 0, 1);

it("is what reads an input on Node.js, waiting at most its interval (3 ms unless set)", async () => {
  expect(batchMs).toBe(3);
  const socket = await sender("udp4", "127.0.0.1");
  const stop = readInBatches(socket, () => {});
  expect(stop).toBeTypeOf("function");
  stop?.();
});

it("hands on a burst of 500 datagrams whole, in order, with their sender, in batches", async () => {
  const input = await listen("127.0.0.1");
  const from = await sender("udp4", "127.0.0.1");
  const sent = Array.from({ length: 500 }, (_, n) => datagram(n, n % 50 === 0 ? 188 : 1316));
  let turns = 0;
  let last = -1;
  // Counts the turns of the event loop in which datagrams arrived.
  const counting = setInterval(() => {
    if (input.received.length !== last) turns += 1;
    last = input.received.length;
  }, 0);
  for (const [n, bytes] of sent.entries()) {
    from.send(bytes, input.port, "127.0.0.1");
    if (n % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await expect.poll(() => input.received.length).toBe(sent.length);
  clearInterval(counting);
  expect(Buffer.concat(input.received.map((r) => r.bytes)).equals(Buffer.concat(sent))).toBe(true);
  const port = from.address().port;
  expect(input.received.every((r) => r.sender.address === "127.0.0.1" && r.sender.port === port)).toBe(true);
  expect(input.received.every((r) => r.sender.family === "IPv4")).toBe(true);
  expect(turns).toBeLessThan(sent.length / 10);
});

it("lands a read in a packet core's slots and hands it on whole: in order, byte-exact, strangers asked about", async () => {
  const core = PacketCore.load();
  const good = await sender("udp4", "127.0.0.1");
  const stranger = await sender("udp4", "127.0.0.1");
  const runs: Buffer[] = [];
  const asked: number[] = [];
  let reads = 0;
  const { port, received } = await listen("127.0.0.1", {
    slots: core.readSlots,
    run: (count, senderAt) => {
      reads += 1;
      const now = performance.now();
      let slot = core.pushMany(0, count, now);
      while (slot < count) {
        const from = senderAt(slot)?.port ?? 0;
        asked.push(from);
        if (from === good.address().port) {
          core.trustSender(slot);
          slot = core.pushMany(slot, count, now);
        } else {
          core.rejectSlot(slot, CoreStatus.SenderNotAllowed);
          slot = core.pushMany(slot + 1, count, now);
        }
      }
      runs.push(Buffer.from(core.uniformRun() ?? []));
      return true;
    },
  });
  const generator = new TsGenerator({ seed: 9 });
  const sent = Array.from({ length: 400 }, () => generator.datagram());
  for (const [n, bytes] of sent.entries()) {
    good.send(bytes, port, "127.0.0.1");
    if (n % 80 === 40) stranger.send(generator.datagram(), port, "127.0.0.1");
    if (n % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const total = sent.length * 1316;
  await expect.poll(() => runs.reduce((sum, run) => sum + run.length, 0)).toBe(total);
  expect(Buffer.concat(runs).equals(Buffer.concat(sent))).toBe(true);
  // Not one datagram came one by one.
  expect(received).toEqual([]);
  // Read in batches: far fewer calls than datagrams.
  expect(reads).toBeLessThan(sent.length / 4);
  // The good sender was asked about once; each of the stranger's five datagrams was, and refused.
  expect(asked.filter((from) => from === good.address().port)).toHaveLength(1);
  expect(asked.filter((from) => from === stranger.address().port)).toHaveLength(5);
  expect(core.counters().rejected.senderNotAllowed).toBe(5);
});

it("tells two senders apart datagram by datagram", async () => {
  const input = await listen("127.0.0.1");
  const one = await sender("udp4", "127.0.0.1");
  const two = await sender("udp4", "127.0.0.2");
  for (let n = 0; n < 40; n++) await send(n % 2 === 0 ? one : two, datagram(n), input.port, "127.0.0.1");
  await expect.poll(() => input.received.length).toBe(40);
  expect(input.received.map((r) => `${r.sender.address}:${r.sender.port}`)).toEqual(
    Array.from({ length: 40 }, (_, n) =>
      n % 2 === 0 ? `127.0.0.1:${one.address().port}` : `127.0.0.2:${two.address().port}`,
    ),
  );
  expect(input.received.map((r) => r.bytes[1])).toEqual(Array.from({ length: 40 }, (_, n) => n & 0xff));
});

it("reads IPv6 inputs and names IPv6 senders as node:dgram does", async () => {
  const input = await listen("::1");
  const from = await sender("udp6", "::1");
  await send(from, datagram(7), input.port, "::1");
  await expect.poll(() => input.received.length).toBe(1);
  expect(input.received[0]?.sender).toMatchObject({
    address: "::1",
    family: "IPv6",
    port: from.address().port,
  });
  expect(input.received[0]?.bytes.equals(datagram(7))).toBe(true);
});

it("hands on a datagram too big to be TS over UDP as one byte, never as a cut that looks whole", async () => {
  const input = await listen("127.0.0.1");
  const from = await sender("udp4", "127.0.0.1");
  await send(from, Buffer.alloc(188 * 50, 0x47), input.port, "127.0.0.1");
  await send(from, datagram(1), input.port, "127.0.0.1");
  await expect.poll(() => input.received.length).toBe(2);
  expect(input.received.map((r) => r.bytes.length)).toEqual([1, 1316]);
});

it("reads all the kernel still holds for the socket as it closes, more than a turn reads", async () => {
  const input = await listen("127.0.0.1");
  // A sender in another process fills the socket while this thread is held (execFileSync), as a thread that
  // runs late is: nothing is read until the close. A turn reads 16 calls of 64 datagrams at most. As many as
  // the socket's receive buffer holds (the input asks for 8 MiB; net.core.rmem_max caps it), up to 2,000: on
  // a machine left at the kernel's default cap that is fewer than a turn reads, and only "all" is shown.
  const probe = createSocket("udp4");
  sockets.push(probe);
  await new Promise<void>((resolve) => probe.bind(0, "127.0.0.1", resolve));
  probe.setRecvBufferSize(8 * 1024 * 1024);
  const count = Math.min(2000, Math.floor(probe.getRecvBufferSize() / 1280));
  execFileSync(process.execPath, [
    "-e",
    `const s = require("node:dgram").createSocket("udp4");
     const send = (n) => n === ${count} ? s.close() : s.send(Buffer.alloc(188, n % 251).fill(n >> 8, 0, 1).fill(n & 0xff, 1, 2), ${input.port}, "127.0.0.1", () => send(n + 1));
     send(0);`,
  ]);
  await Effect.runPromise(Scope.close(input.scope, Exit.void));
  expect(input.received.length).toBe(count);
  expect(input.received.map((r) => r.bytes.readUInt16BE(0))).toEqual(
    Array.from({ length: count }, (_, n) => n),
  );
});

it("after the input closes: no more datagrams reach it and the port can be bound again", async () => {
  const input = await listen("127.0.0.1");
  const from = await sender("udp4", "127.0.0.1");
  await send(from, datagram(1), input.port, "127.0.0.1");
  await expect.poll(() => input.received.length).toBe(1);
  await Effect.runPromise(Scope.close(input.scope, Exit.void));
  const again = createSocket("udp4");
  sockets.push(again);
  const heard: Buffer[] = [];
  again.on("message", (message) => heard.push(message));
  await new Promise<void>((resolve) => again.bind(input.port, "127.0.0.1", resolve));
  await send(from, datagram(2), input.port, "127.0.0.1");
  await expect.poll(() => heard.length).toBe(1);
  expect(input.received).toHaveLength(1);
});

it.each([
  ["DISTRIBUTARY_BATCH_MS", "25", "from 0 (read each datagram as it comes) to 20"],
  ["DISTRIBUTARY_BATCH_MS", "-1", "from 0 (read each datagram as it comes) to 20"],
  ["DISTRIBUTARY_BATCH_MS", "abc", "DISTRIBUTARY_BATCH_MS"],
  [
    "DISTRIBUTARY_BATCH_MS_REMUXED",
    "150",
    "DISTRIBUTARY_BATCH_MS_REMUXED must be a number of milliseconds from 0 to 100",
  ],
])("%s=%s stops the start, saying what is wrong", async (name, value, words) => {
  const settings = Layer.setConfigProvider(ConfigProvider.fromMap(new Map([[name, value]])));
  const exit = await Effect.runPromiseExit(
    Effect.scoped(Layer.build(Channels.Test.pipe(Layer.provide(settings)))),
  );
  expect(Exit.isFailure(exit)).toBe(true);
  if (Exit.isFailure(exit)) expect(Cause.pretty(exit.cause)).toContain(words);
});
