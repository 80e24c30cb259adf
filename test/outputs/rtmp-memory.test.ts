/**
 * A destination that stops reading never grows the heap without limit: its RTMP output's queue stays within
 * its size (or a second of stream, whichever is more, plus the frame that crossed it), the socket's buffer
 * within its mark, and the memory the process holds (collected before each reading) stops growing once they
 * are full, however long the stream goes on. The bound is stated in docs/benchmarks.md.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { it } from "@effect/vitest";
import { Effect } from "effect";
import { describe, expect } from "vitest";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import { startChannel } from "../../src/effects/channel/channel.ts";
import { encodeTestStream } from "../support/media.ts";
import { eventually } from "../support/peers.ts";
import { tempDir, testReceiver } from "../support/rtmp-peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";

const INPUT = 28901;
const RECEIVER = 28902;
const QUEUE_BYTES = 1024 * 1024;
const SECONDS = 24;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
/** What the process holds once collected: the JS heap and every ArrayBuffer (the frames' bytes). */
const held = () => {
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
};

describe("an RTMP destination that stops reading", () => {
  it.scopedLive(
    "keeps its output's queue and the process's memory bounded for the whole stream",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir("distributary-rtmp-memory-");
        const path = join(dir, "in.ts");
        yield* encodeTestStream(path, SECONDS, "8M");
        const ts = yield* Effect.promise(() => readFile(path));
        const receiver = yield* testReceiver(RECEIVER);
        const channel = yield* startChannel(
          {
            id: ChannelId.make("rtmp-memory"),
            name: "rtmp memory",
            primary: { ip: "127.0.0.1", port: INPUT },
            backup: null,
            outputs: [
              {
                id: OutputId.make("stalled"),
                name: "stalled",
                url: `rtmp://127.0.0.1:${RECEIVER}/live/stalled`,
                enabled: true,
              },
            ],
          },
          { outputs: { queueBytes: QUEUE_BYTES } },
        );
        const status = () => {
          const found = channel.summary().outputs.find((o) => o.id === "stalled");
          if (found === undefined) throw new Error("no output");
          return found;
        };
        const datagrams = chunkTs(ts);
        const second = Math.floor(datagrams.length / SECONDS);
        yield* sendPaced(datagrams.slice(0, second), INPUT, 0.8);
        yield* eventually("the output to connect", () => (status().state === "connected" ? true : undefined));
        receiver.pause(true);
        // A quarter of the stream fills the queue and the socket; the rest must leave the memory where it is.
        const quarter = Math.floor((datagrams.length - second) / 4);
        let queuedMax = 0;
        const readings: number[] = [];
        for (let part = 0; part < 4; part++) {
          const from = second + part * quarter;
          yield* sendPaced(datagrams.slice(from, part === 3 ? datagrams.length : from + quarter), INPUT, 1.5);
          queuedMax = Math.max(queuedMax, status().queuedBytes);
          readings.push(held());
        }
        const sent = status().rtmp;
        expect(sent?.framesDropped).toBeGreaterThan(0);
        // The queue: its size, or a second of this 8 Mbit/s stream if that is more, and the frame that crossed it.
        expect(queuedMax).toBeGreaterThan(QUEUE_BYTES / 2);
        expect(queuedMax).toBeLessThanOrEqual(1.5 * 1024 * 1024);
        // Each quarter after the first brought 4.5 s of stream (4.5 MB); the memory held grew by far less.
        const [first = 0, , , last = 0] = readings;
        const streamBytes = ts.length / 4;
        expect(streamBytes).toBeGreaterThan(4 * 1024 * 1024);
        expect(last - first).toBeLessThan(2 * 1024 * 1024);
        // Reading again, the receiver gets every frame the output sent; the queue empties.
        receiver.pause(false);
        yield* eventually("the queue to empty", () => (status().queuedBytes === 0 ? true : undefined));
      }),
    120_000,
  );
});
