import { createServer, type Socket } from "node:net";
import { it } from "@effect/vitest";
import { Effect } from "effect";
import { describe, expect } from "vitest";
import { makeOutput } from "../../src/effects/outputs/writer.ts";
import { eventually, freeTcpPort, freeUdpPort, udpSink } from "../support/peers.ts";
import { TsGenerator } from "../support/ts-generator.ts";

/** A TCP server that accepts connections and never reads or answers: a stuck RTMP destination. */
const stuckServer = Effect.acquireRelease(
  Effect.gen(function* () {
    const port = yield* freeTcpPort;
    const sockets: Array<Socket> = [];
    const server = createServer((socket) => {
      socket.pause();
      sockets.push(socket);
    });
    yield* Effect.async<void>((resume) => {
      server.listen(port, "127.0.0.1", () => resume(Effect.void));
    });
    return { port, server, sockets };
  }),
  ({ server, sockets }) =>
    Effect.async<void>((resume) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resume(Effect.void));
    }),
);

describe("output isolation", () => {
  it.scopedLive(
    "a down SRT destination and a stuck RTMP server neither block offer nor slow a UDP output",
    () =>
      Effect.gen(function* () {
        const sink = yield* udpSink;
        const stuck = yield* stuckServer;
        const nobody = yield* freeUdpPort;
        const small = { queueBytes: 64 * 1316 };
        const udp = yield* makeOutput(`udp://127.0.0.1:${sink.port}`);
        const srt = yield* makeOutput(`srt://127.0.0.1:${nobody}`, small);
        const rtmp = yield* makeOutput(`rtmp://127.0.0.1:${stuck.port}/live/key`, small);
        const outputs = [udp, srt, rtmp];
        for (const output of outputs) yield* Effect.forkScoped(output.run);
        yield* eventually("udp connected", () => (udp.status().state === "connected" ? true : undefined));

        const generator = new TsGenerator({ seed: 31 });
        let slowestOfferMs = 0;
        let total = 0;
        for (let burst = 0; burst < 100; burst++) {
          for (let i = 0; i < 20; i++) {
            const chunk = generator.datagram();
            total += chunk.length;
            const before = performance.now();
            for (const output of outputs) output.offer(chunk);
            slowestOfferMs = Math.max(slowestOfferMs, performance.now() - before);
          }
          yield* Effect.sleep("5 millis");
        }
        // A blocked offer would last as long as the stuck destination (seconds); a few milliseconds are the
        // scheduler on a loaded machine. 50 ms tells the two apart without flaking.
        expect(slowestOfferMs).toBeLessThan(50);
        yield* eventually("every byte at the UDP sink", () =>
          sink.totalBytes() >= total ? true : undefined,
        );
        expect(udp.status().queueDrops).toBe(0);
        // The two others hold at most their queue; never connected, they count nothing sent and nothing dropped.
        for (const output of [srt, rtmp]) {
          expect(output.status().queuedBytes).toBeLessThanOrEqual(64 * 1316);
          expect(output.status()).toMatchObject({ bytesSent: 0, queueDrops: 0 });
          expect(output.status().state).not.toBe("connected");
        }
      }),
  );
});
