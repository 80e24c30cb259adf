/**
 * How often a flowing input is read (src/effects/runtime/sockets/batch-reader.ts): at its channel's pace, which the
 * channel sets from its outputs. A channel whose outputs all remux (RTMP, RTSP, HLS, files) is read every
 * 40 ms, so its thread wakes 25 times a second instead of 333; one that sends TS packets as they come (UDP,
 * RTP, SRT) every 3 ms, and a change of outputs changes it live.
 */
import { Effect, Exit, Scope } from "effect";
import { afterEach, expect, it } from "vitest";
import { bindInput } from "../../src/effects/ingest/udp-receiver.ts";
import {
  batchMs,
  type ReadPace,
  readingInTurns,
  readPaceMs,
  turnLateness,
} from "../../src/effects/runtime/sockets/batch-reader.ts";
import { freeUdpPort } from "../support/peers.ts";
import { DATAGRAM_BYTES, sendPaced } from "../support/sender.ts";

const scopes: Scope.CloseableScope[] = [];
afterEach(async () => {
  for (const scope of scopes.splice(0)) await Effect.runPromise(Scope.close(scope, Exit.void));
});

it("is the input's own interval while an output sends as they come, else 40 ms or a fifth of the failover time", () => {
  expect(readPaceMs(true, 500)).toBe(batchMs);
  expect(readPaceMs(false, 500)).toBe(40);
  expect(readPaceMs(false, 150)).toBe(30);
  expect(readPaceMs(false, 60)).toBe(12);
  expect(readPaceMs(false, 10)).toBe(batchMs);
});

/** The gaps between the reads that handed on datagrams, in ms, median. */
const medianGap = (reads: ReadonlyArray<number>) => {
  const gaps = reads.slice(1).map((at, i) => at - (reads[i] as number));
  gaps.sort((a, b) => a - b);
  return gaps[Math.floor(gaps.length / 2)] ?? 0;
};

it("reads a flowing socket at its pace, and at the new one once the channel changes it", async () => {
  const port = await Effect.runPromise(freeUdpPort);
  const pace: ReadPace = { ms: readPaceMs(false, 500) };
  // One entry per read that handed on datagrams: the datagrams of one read come in one go, without a turn
  // of the event loop between them.
  let reads: number[] = [];
  let datagrams = 0;
  let inRead = false;
  const scope = await Effect.runPromise(Scope.make());
  scopes.push(scope);
  await Effect.runPromise(
    bindInput(
      { ip: "127.0.0.1", port },
      () => {
        datagrams++;
        if (inRead) return;
        inRead = true;
        reads.push(performance.now());
        queueMicrotask(() => {
          inRead = false;
        });
      },
      undefined,
      pace,
    ).pipe(Scope.extend(scope)),
  );
  // About one datagram a millisecond, for 0.6 s each time.
  const stream = Array.from({ length: 600 }, (_, i) => Buffer.alloc(DATAGRAM_BYTES, i & 0xff));

  await Effect.runPromise(sendPaced(stream, port, 1));
  await expect.poll(() => datagrams).toBe(600);
  const remuxed = medianGap(reads);

  pace.ms = readPaceMs(true, 500);
  reads = [];
  await Effect.runPromise(sendPaced(stream, port, 1));
  await expect.poll(() => datagrams).toBe(1200);
  const asTheyCome = medianGap(reads);

  expect(remuxed).toBeGreaterThanOrEqual(35);
  expect(remuxed).toBeLessThan(50);
  expect(asTheyCome).toBeLessThan(8);

  // The turns' lateness is the thread's event-loop delay (a worker reports it instead of waking for a timer
  // of its own): a loop held for 150 ms makes a turn 150 ms late.
  pace.ms = readPaceMs(false, 500);
  const sending = Effect.runPromise(sendPaced(stream, port, 1));
  await expect.poll(() => readingInTurns()).toBe(true);
  turnLateness();
  const until = performance.now() + 150;
  while (performance.now() < until) {
    // the loop held
  }
  await sending;
  await expect.poll(() => datagrams).toBe(1800);
  const late = turnLateness();
  expect(late?.max).toBeGreaterThan(120);
  expect(late?.max).toBeLessThan(400);
});
