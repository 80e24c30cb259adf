/**
 * A channel's turn batch (src/effects/runtime/sockets/turn-batch.ts): the payloads of one turn gathered once and handed
 * whole to every sink, ending early where the kernel's segmentation needs it; and a UDP sender that sends such
 * a batch as it is (segmented.ts `sendBatch`), received as datagrams of 7 TS packets on a real socket.
 */
import { createSocket, type Socket } from "node:dgram";
import { expect, it } from "vitest";
import { MAX_BATCH_BYTES, makeDatagramSender } from "../../src/effects/runtime/sockets/segmented.ts";
import { SEGMENT_BYTES } from "../../src/effects/runtime/sockets/thread-sender.ts";
import { makeTurnBatch } from "../../src/effects/runtime/sockets/turn-batch.ts";
import { asOneTurn } from "../../src/effects/runtime/timers/end-of-turn.ts";
import { eventually } from "../support/app.ts";

const payload = (packets: number, seed: number) => {
  const bytes = new Uint8Array(packets * 188);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (seed * 31 + i) & 0xff;
  for (let p = 0; p < packets; p++) bytes[p * 188] = 0x47;
  return bytes;
};

/** A sink that keeps a copy of each batch it is handed (the memory is the batch's own, reused after). */
const recorder = () => {
  const batches: Buffer[] = [];
  return {
    batches,
    sink: (batch: Buffer, length: number) => batches.push(Buffer.from(batch.subarray(0, length))),
  };
};

it("hands every sink the turn's payloads once, at the end of the turn, in order", () => {
  let changes = 0;
  const batch = makeTurnBatch(() => {
    changes += 1;
  });
  const [a, b] = [recorder(), recorder()];
  batch.sinks = [a.sink, b.sink];
  const sent = [payload(7, 1), payload(7, 2), payload(7, 3)];
  asOneTurn(() => {
    for (const each of sent) batch.add(each);
    expect(a.batches).toEqual([]);
  });
  expect(a.batches).toEqual([Buffer.concat(sent)]);
  expect(b.batches).toEqual(a.batches);
  expect(changes).toBe(0);

  // A change flushes what waits to the sinks of before, then tells the owner.
  asOneTurn(() => {
    batch.add(payload(7, 4));
    batch.sinks = [a.sink];
    batch.changed();
    expect(changes).toBe(1);
    batch.sinks = [b.sink];
    batch.add(payload(7, 5));
  });
  expect(a.batches.at(-1)).toEqual(Buffer.from(payload(7, 4)));
  expect(b.batches.at(-1)).toEqual(Buffer.from(payload(7, 5)));
});

it("ends a batch after a short payload, cuts a long one into datagrams, and sends a full batch at once", () => {
  const batch = makeTurnBatch(() => {});
  const out = recorder();
  batch.sinks = [out.sink];
  asOneTurn(() => {
    batch.add(payload(7, 1));
    // Three packets: the kernel may cut only the last datagram short, so the batch leaves with it.
    batch.add(payload(3, 2));
    expect(out.batches).toEqual([Buffer.concat([payload(7, 1), payload(3, 2)])]);
    // Ten packets: 7 + 3, the second short again.
    batch.add(payload(10, 3));
    expect(out.batches[1]).toEqual(Buffer.from(payload(10, 3)));
  });
  expect(out.batches).toHaveLength(2);

  const full = MAX_BATCH_BYTES / SEGMENT_BYTES;
  asOneTurn(() => {
    for (let i = 0; i < full; i++) batch.add(payload(7, 10 + i));
    expect(out.batches).toHaveLength(3);
    expect(out.batches[2]?.length).toBe(MAX_BATCH_BYTES);
    batch.add(payload(7, 99));
  });
  expect(out.batches[3]).toEqual(Buffer.from(payload(7, 99)));
});

it("sends nothing without sinks", () => {
  const batch = makeTurnBatch(() => {});
  asOneTurn(() => batch.add(payload(7, 1)));
  const out = recorder();
  batch.sinks = [out.sink];
  asOneTurn(() => batch.add(payload(7, 2)));
  expect(out.batches).toEqual([Buffer.from(payload(7, 2))]);
});

const bound = (socket: Socket) =>
  new Promise<number>((done) => socket.bind(0, "127.0.0.1", () => done(socket.address().port)));

it("a UDP sender sends a shared batch as datagrams of 7 TS packets, after what it held of its own", async () => {
  const receiver = createSocket("udp4");
  const sender = createSocket("udp4");
  try {
    const received: Buffer[] = [];
    receiver.on("message", (datagram) => received.push(datagram));
    const port = await bound(receiver);
    await bound(sender);
    await new Promise<void>((done) => sender.connect(port, "127.0.0.1", () => done()));
    const datagrams = makeDatagramSender(sender, SEGMENT_BYTES);
    expect(datagrams.sendBatch).not.toBeNull();
    const own = payload(7, 1);
    const shared = Buffer.concat([payload(7, 2), payload(7, 3), payload(2, 4)]);
    asOneTurn(() => {
      datagrams.send(own, null);
      datagrams.sendBatch?.(Buffer.concat([shared, Buffer.alloc(500)]), shared.length);
    });
    await eventually("four datagrams", () => (received.length >= 4 ? true : undefined));
    expect(received).toEqual(
      [own, payload(7, 2), payload(7, 3), payload(2, 4)].map((bytes) => Buffer.from(bytes)),
    );
  } finally {
    receiver.close();
    sender.close();
  }
});

it("takes a packet core's run whole: after what waits, full batches at once, the rest at the end of the turn", () => {
  const batch = makeTurnBatch(() => {});
  const out = recorder();
  batch.sinks = [out.sink];
  const full = MAX_BATCH_BYTES / SEGMENT_BYTES;
  const first = payload(7, 1);
  // A run of a batch and a half of 7-packet datagrams, after one payload already waiting.
  const run = Buffer.concat(Array.from({ length: full + full / 2 }, (_, i) => payload(7, 2 + i)));
  asOneTurn(() => {
    batch.add(first);
    batch.addRun(run);
    expect(out.batches.map((each) => each.length)).toEqual([MAX_BATCH_BYTES]);
  });
  expect(out.batches.map((each) => each.length)).toEqual([
    MAX_BATCH_BYTES,
    run.length + first.length - MAX_BATCH_BYTES,
  ]);
  expect(Buffer.concat(out.batches)).toEqual(Buffer.concat([first, run]));
  // Each batch is whole 7-packet datagrams: the kernel cuts it without a short one in the middle.
  for (const each of out.batches) expect(each.length % SEGMENT_BYTES).toBe(0);
});
