import { createSocket } from "node:dgram";
import { expect, layer } from "@effect/vitest";
import { Effect } from "effect";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import { Channels } from "../../src/effects/channel/channels.ts";
import { eventually, freeUdpPort } from "../support/peers.ts";
import { asRtp, chunkTs } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

layer(Channels.Test, { excludeTestServices: true })("latency through a channel", (it) => {
  it.scoped(
    "the first byte leaves a UDP output within 100 ms of the first input packet, with no probing",
    () =>
      Effect.gen(function* () {
        const channels = yield* Channels;
        const inputPort = yield* freeUdpPort;
        const arrivals: number[] = [];
        const sink = yield* Effect.acquireRelease(
          Effect.async<ReturnType<typeof createSocket>>((resume) => {
            const socket = createSocket("udp4");
            socket.on("message", () => arrivals.push(performance.now()));
            socket.bind(0, "127.0.0.1", () => resume(Effect.succeed(socket)));
          }),
          (socket) => Effect.sync(() => socket.close()),
        );
        yield* channels.start({
          id: ChannelId.make("latency"),
          name: "latency",
          primary: { ip: "127.0.0.1", port: inputPort },
          backup: null,
          outputs: [
            {
              id: OutputId.make("udp"),
              name: "udp",
              url: `udp://127.0.0.1:${sink.address().port}`,
              enabled: true,
            },
          ],
        });
        yield* eventually("output ready", () =>
          Effect.runPromise(channels.status(ChannelId.make("latency"))).then((status) =>
            status?.outputs[0]?.state === "connected" ? true : undefined,
          ),
        );

        const generator = new TsGenerator({ seed: 5, bitrate: 5_000_000 });
        const datagrams = asRtp(chunkTs(generator.packets(7 * 1000)));
        const sender = createSocket("udp4");
        const sentAt: number[] = [];
        // One datagram every 2 ms (about 5 Mbit/s), each stamped as it leaves the sender.
        yield* Effect.async<void>((resume) => {
          let next = 0;
          const tick = () => {
            const datagram = datagrams[next++];
            if (datagram === undefined) return sender.close(() => resume(Effect.void));
            sentAt.push(performance.now());
            sender.send(datagram, inputPort, "127.0.0.1", () => setTimeout(tick, 2));
          };
          tick();
        });
        yield* eventually("every datagram out", () =>
          arrivals.length >= datagrams.length ? true : undefined,
        );

        const firstByteMs = (arrivals[0] ?? Number.POSITIVE_INFINITY) - (sentAt[0] ?? 0);
        const added = arrivals.map((at, i) => at - (sentAt[i] ?? at)).sort((x, y) => x - y);
        console.log(
          `input→UDP output: first byte after ${firstByteMs.toFixed(2)} ms; added latency p50 ${percentile(added, 50).toFixed(3)} ms, p99 ${percentile(added, 99).toFixed(3)} ms, max ${percentile(added, 100).toFixed(3)} ms over ${added.length} datagrams`,
        );
        expect(firstByteMs).toBeLessThan(100);
        expect(arrivals).toHaveLength(datagrams.length);
      }),
    30_000,
  );
});
