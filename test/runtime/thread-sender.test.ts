/**
 * The thread's one socket for its plain UDP outputs (src/effects/runtime/sockets/thread-sender.ts), on real sockets:
 * the turn's batches to several destinations leave from one port the inputs know as the service's own, each
 * cut into datagrams of 7 TS packets; a message the kernel refuses goes through the output's own path; a turn
 * batch that fills up mid-turn sends what it handed out before it writes its memory again; on a fleet node, a
 * turn the thread stalled in past the staleness limit sends nothing of what it read.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { afterEach, expect, it } from "vitest";
import { isOwnPort } from "../../src/effects/runtime/sockets/own-ports.ts";
import { MAX_BATCH_BYTES, makeDatagramSender } from "../../src/effects/runtime/sockets/segmented.ts";
import {
  inReadTurn,
  setStaleAfter,
  takeDroppedMidTurn,
} from "../../src/effects/runtime/sockets/send-gates.ts";
import { SEGMENT_BYTES, threadDestination } from "../../src/effects/runtime/sockets/thread-sender.ts";
import { makeTurnBatch } from "../../src/effects/runtime/sockets/turn-batch.ts";
import { asOneTurn } from "../../src/effects/runtime/timers/end-of-turn.ts";
import { eventually } from "../support/app.ts";

const payload = (packets: number, seed: number) => {
  const bytes = Buffer.alloc(packets * 188);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (seed * 31 + i) & 0xff;
  for (let p = 0; p < packets; p++) bytes[p * 188] = 0x47;
  return bytes;
};

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

/** A receiver on loopback that keeps each datagram and where it came from. */
const receiver = async () => {
  const socket = createSocket("udp4");
  sockets.push(socket);
  const received: Array<{ datagram: Buffer; from: RemoteInfo }> = [];
  socket.on("message", (datagram, from) => received.push({ datagram, from }));
  const port = await new Promise<number>((done) =>
    socket.bind(0, "127.0.0.1", () => done(socket.address().port)),
  );
  return { port, received };
};

/** A node:dgram socket connected to `port`, as a UDP output holds one. */
const connected = async (port: number) => {
  const socket = createSocket("udp4");
  sockets.push(socket);
  await new Promise<void>((done) => socket.bind(0, "127.0.0.1", () => done()));
  await new Promise<void>((done) => socket.connect(port, "127.0.0.1", () => done()));
  return socket;
};

it("sends the turn's batches to every destination from one port marked as the service's own", async () => {
  const [a, b] = [await receiver(), await receiver()];
  const senders = [
    makeDatagramSender(await connected(a.port), SEGMENT_BYTES, { address: "127.0.0.1", port: a.port }),
    makeDatagramSender(await connected(b.port), SEGMENT_BYTES, { address: "127.0.0.1", port: b.port }),
  ];
  const datagrams = [payload(7, 1), payload(7, 2), payload(3, 3), payload(7, 4), payload(7, 5)];
  // The kernel cuts each batch into datagrams of 7 packets; only the last of a batch may be shorter.
  const first = Buffer.concat(datagrams.slice(0, 3));
  const second = Buffer.concat(datagrams.slice(3));
  // The batch's memory is longer than what is sent: only `length` bytes leave.
  const memory = Buffer.concat([first, Buffer.alloc(700)]);
  asOneTurn(() => {
    for (const sender of senders) sender.sendBatch?.(memory, first.length);
    for (const sender of senders) sender.sendBatch?.(second, second.length);
  });
  await eventually("every datagram at both", () =>
    a.received.length >= 5 && b.received.length >= 5 ? true : undefined,
  );
  for (const { received } of [a, b]) expect(received.map(({ datagram }) => datagram)).toEqual(datagrams);
  const ports = new Set([...a.received, ...b.received].map(({ from }) => from.port));
  expect(ports.size).toBe(1);
  const [port] = [...ports] as [number];
  expect(isOwnPort(port)).toBe(true);
  for (const sender of senders) sender.close();
  expect(isOwnPort(port)).toBe(false);
});

it("sends a message the kernel refuses through the output's own path; the turn's others still leave", async () => {
  const a = await receiver();
  const direct: Buffer[] = [];
  const good = threadDestination("127.0.0.1", a.port, () => {
    throw new Error("a message to a listening port went the direct way");
  });
  // Without SO_BROADCAST the kernel refuses a send to the broadcast address (EACCES).
  const refused = threadDestination("255.255.255.255", 9, (batch, length) =>
    direct.push(Buffer.from(batch.subarray(0, length))),
  );
  expect(good).not.toBeNull();
  expect(refused).not.toBeNull();
  const [before, kept, after] = [payload(7, 1), payload(7, 2), payload(7, 3)];
  asOneTurn(() => {
    good?.send(before, before.length);
    refused?.send(kept, kept.length);
    good?.send(after, after.length);
  });
  expect(direct).toEqual([kept]);
  await eventually("both datagrams", () => (a.received.length >= 2 ? true : undefined));
  expect(a.received.map(({ datagram }) => datagram)).toEqual([before, after]);
  good?.close();
  refused?.close();
});

it("a turn batch that fills up mid-turn sends what it handed out before writing its memory again", async () => {
  const a = await receiver();
  const sender = makeDatagramSender(await connected(a.port), SEGMENT_BYTES, {
    address: "127.0.0.1",
    port: a.port,
  });
  const batch = makeTurnBatch(() => {});
  batch.sinks = [(memory, length) => sender.sendBatch?.(memory, length)];
  // One batch and a half in one turn: the first leaves full, mid-turn, and the memory takes the rest.
  const payloads = Array.from({ length: (MAX_BATCH_BYTES / SEGMENT_BYTES) * 1.5 }, (_, i) => payload(7, i));
  asOneTurn(() => {
    for (const each of payloads) batch.add(each);
  });
  await eventually("every datagram", () => (a.received.length >= payloads.length ? true : undefined));
  expect(a.received.map(({ datagram }) => datagram)).toEqual(payloads);
  sender.close();
});

it("on a fleet node, a turn the thread stalled in past the staleness limit sends none of it; the next turn sends", async () => {
  const [a, b] = [await receiver(), await receiver()];
  // One output through the thread's socket (whole datagrams of 7 packets), one with its own batch (RTP-like:
  // a header before each datagram's packets).
  const threaded = makeDatagramSender(await connected(a.port), SEGMENT_BYTES, {
    address: "127.0.0.1",
    port: a.port,
  });
  const own = makeDatagramSender(await connected(b.port), SEGMENT_BYTES + 12, null);
  const header = Buffer.alloc(12, 0x80);
  const turn = (seed: number, stallMs: number) =>
    inReadTurn(() =>
      asOneTurn(() => {
        threaded.sendBatch?.(payload(7, seed), 7 * 188);
        own.send(payload(7, seed), header);
        // The thread held in the middle of its turn, after its reads and before its sends (a SIGSTOP).
        const until = performance.now() + stallMs;
        while (performance.now() < until);
      }),
    );
  setStaleAfter(50);
  try {
    takeDroppedMidTurn();
    turn(1, 80);
    expect(takeDroppedMidTurn()).toBe(2);
    turn(2, 0);
    await eventually("the second turn's datagram at both", () =>
      a.received.length >= 1 && b.received.length >= 1 ? true : undefined,
    );
    // Each got the second turn's alone: the stalled turn's would have come first, on the same path.
    expect(a.received.map(({ datagram }) => datagram)).toEqual([payload(7, 2)]);
    expect(b.received.map(({ datagram }) => datagram)).toEqual([Buffer.concat([header, payload(7, 2)])]);
    expect(takeDroppedMidTurn()).toBe(0);
  } finally {
    setStaleAfter(0);
    threaded.close();
    own.close();
  }
});
