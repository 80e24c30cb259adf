/**
 * A move's cut (src/effects/channel/workers/worker.ts): the old copy reads what its input sockets still hold,
 * sends it, and says "done" in the shared word; from that moment the new copy, on another thread, sends. So
 * whatever the cut read must have left the old thread before `cut` returns, even when this thread had work
 * waiting for the end of its turn already (an output that queued outside a read turn): otherwise the new copy's
 * first datagram could reach the destination before the old copy's last. Here another thread sends the old
 * copy's last datagrams while this thread is blocked, and the new copy's first right after the cut, before
 * this thread's event loop runs again.
 */
import { createSocket } from "node:dgram";
import { Worker } from "node:worker_threads";
import { expect, it } from "@effect/vitest";
import { Effect } from "effect";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import { startChannel } from "../../src/effects/channel/channel.ts";
import { atEndOfTurn } from "../../src/effects/runtime/timers/end-of-turn.ts";
import { eventually, freeUdpPort, udpSink } from "../support/peers.ts";
import { chunkTs } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

/**
 * Word 0: what this thread asks (1: send the old copy's last, 2: send the new copy's first); word 1: what the
 * sender did; word 2: 1 once the sender is up.
 */
const GO = 0;
const SENT = 1;
const UP = 2;

/** A thread that sends, when asked, `last` to the input port, then `first` to the output's destination. */
const sender = (
  shared: SharedArrayBuffer,
  last: ReadonlyArray<Uint8Array>,
  first: Uint8Array,
  ports: number[],
) =>
  new Worker(
    `const { workerData } = require("node:worker_threads");
     const { createSocket } = require("node:dgram");
     const { shared, last, first, ports: [input, output] } = workerData;
     const word = new Int32Array(shared);
     const socket = createSocket("udp4");
     const sendAll = (datagrams, port, then) => {
       let left = datagrams.length;
       for (const datagram of datagrams) socket.send(datagram, port, "127.0.0.1", () => { if (--left === 0) then(); });
     };
     const said = () => { Atomics.store(word, ${SENT}, Atomics.load(word, ${GO})); Atomics.notify(word, ${SENT}); };
     const wait = (value, then) => {
       const waiting = Atomics.waitAsync(word, ${GO}, value);
       if (!waiting.async) return then();
       waiting.value.then(then);
     };
     // Bound, the socket keeps this thread's event loop alive while it waits (a wait alone does not).
     socket.bind(0, "127.0.0.1", () => {
       Atomics.store(word, ${UP}, 1);
       Atomics.notify(word, ${UP});
       wait(0, () => sendAll(last, input, () => { said(); wait(1, () => sendAll([first], output, said)); }));
     });`,
    { eval: true, workerData: { shared, last, first, ports } },
  );

/**
 * Asks the sender for step `step` and blocks this thread (its event loop too) until it is done: the test
 * fails, rather than hangs, if that takes 10 s.
 */
const blockUntilSent = (word: Int32Array, step: number) => {
  Atomics.store(word, GO, step);
  Atomics.notify(word, GO);
  const deadline = Date.now() + 10_000;
  while (Atomics.load(word, SENT) !== step) {
    if (Date.now() > deadline) throw new Error(`the sending thread did not do step ${step} within 10 s`);
    Atomics.wait(word, SENT, Atomics.load(word, SENT), 100);
  }
};

it.live(
  "a cut sends what it read before it returns, so the new copy's first datagram comes after the old copy's last",
  () =>
    Effect.gen(function* () {
      const sink = yield* udpSink;
      const input = yield* freeUdpPort;
      const channel = yield* startChannel({
        id: ChannelId.make("cut-order"),
        name: "cut order",
        primary: { ip: "127.0.0.1", port: input },
        backup: null,
        outputs: [
          { id: OutputId.make("out"), name: "out", url: `udp://127.0.0.1:${sink.port}`, enabled: true },
        ],
      });
      const ts = new TsGenerator({ seed: 65, bitrate: 2_000_000 }).packets(7 * 40);
      const datagrams = chunkTs(ts);
      const flowing = datagrams.slice(0, 20);
      const last = datagrams.slice(20, 30);
      // The new copy's first datagram: the stream's next, as the new copy would send it.
      const first = datagrams[30] as Uint8Array;
      const shared = new SharedArrayBuffer(12);
      const word = new Int32Array(shared);
      const thread = sender(shared, last, first, [input, sink.port]);
      yield* Effect.addFinalizer(() => Effect.promise(() => thread.terminate()));
      const up = Atomics.waitAsync(word, UP, 0, 10_000);
      if (up.async) yield* Effect.promise(() => up.value);
      expect(Atomics.load(word, UP)).toBe(1);

      // The stream flows through the old copy first: its socket is read in turns.
      const feeder = yield* Effect.acquireRelease(
        Effect.sync(() => createSocket("udp4")),
        (socket) => Effect.sync(() => socket.close()),
      );
      for (const datagram of flowing) feeder.send(datagram, input, "127.0.0.1");
      yield* eventually("the stream to flow", () =>
        sink.datagrams.length === flowing.length ? true : undefined,
      );

      // In one task of this thread, as the old copy's thread runs its cut: the last datagrams wait in the
      // input socket, something already waits for the end of this turn, and the cut reads and sends.
      blockUntilSent(word, 1);
      atEndOfTurn(() => {});
      expect(channel.cut()).toBe(true);
      // "Done": the new copy's thread sends at once.
      blockUntilSent(word, 2);

      yield* eventually("every datagram at the output", () =>
        sink.datagrams.length === flowing.length + last.length + 1 ? true : undefined,
      );
      expect(sink.datagrams.findIndex((d) => d.equals(first))).toBe(flowing.length + last.length);
      expect(sink.bytes().equals(Buffer.concat([...flowing, ...last, first]))).toBe(true);
    }).pipe(Effect.scoped),
  30_000,
);
