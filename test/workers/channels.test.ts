/**
 * Channels on forwarding workers, seen from outside: a worker killed mid-stream comes back with its channels
 * and their outputs resume (the other worker's channel never notices); a channel moved between workers while
 * its stream flows delivers every byte once, in order; a second thread starts only when it is needed; closing
 * the supervisor leaves no worker thread, no socket on an input port and no child process.
 */
import { createSocket } from "node:dgram";
import { readdirSync, readFileSync } from "node:fs";
import { expect, it } from "@effect/vitest";
import { ConfigProvider, Effect, Fiber, Layer, ManagedRuntime, Stream } from "effect";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import type { ChannelEvent } from "../../src/domain/events/events.ts";
import type { ChannelsService } from "../../src/effects/channel/channel-types.ts";
import { Channels } from "../../src/effects/channel/channels.ts";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { analyse } from "../support/analyse.ts";
import { childProcesses, eventually, freeTcpPort, freeUdpPort, udpSink } from "../support/peers.ts";
import { asRtp, chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const withWorkers = (count: number) =>
  Channels.Test.pipe(
    Layer.provide(
      Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["DISTRIBUTARY_WORKERS", `${count}`]]))),
    ),
  );

/** Seconds of generated TS at `mbps`, as RTP datagrams paced like an encoder. */
const stream = (seed: number, seconds: number, mbps: number) => {
  const ts = new TsGenerator({ seed, bitrate: mbps * 1_000_000 }).packets(
    Math.round((seconds * mbps * 1_000_000) / (188 * 8)),
  );
  const datagrams = asRtp(chunkTs(ts));
  return { ts, datagrams, perMs: datagrams.length / (seconds * 1000) };
};

const udpChannel = (id: string, input: number, outputs: ReadonlyArray<[string, string]>) => ({
  id: ChannelId.make(id),
  name: id,
  primary: { ip: "127.0.0.1", port: input },
  backup: null,
  outputs: outputs.map(([outputId, url]) => ({
    id: OutputId.make(outputId),
    name: outputId,
    url,
    enabled: true,
  })),
});

const workerThreads = () =>
  readdirSync("/proc/self/task").filter((task) =>
    readFileSync(`/proc/self/task/${task}/comm`, "utf8").startsWith("forwarding-"),
  ).length;

it.live(
  "a worker killed mid-stream is restarted with its channels; their outputs resume and the other worker's channel is untouched",
  () =>
    Effect.gen(function* () {
      const channels = yield* Channels;
      const bus = yield* EventBus;
      const events: ChannelEvent[] = [];
      yield* Effect.forkScoped(
        bus.stream.pipe(Stream.runForEach((event) => Effect.sync(() => events.push(event)))),
      );
      const [victimSink, bystanderSink] = [yield* udpSink, yield* udpSink];
      const [victimPort, bystanderPort] = [yield* freeUdpPort, yield* freeUdpPort];
      yield* channels.start(
        udpChannel("victim", victimPort, [["out", `udp://127.0.0.1:${victimSink.port}`]]),
      );
      yield* channels.start(
        udpChannel("bystander", bystanderPort, [["out", `udp://127.0.0.1:${bystanderSink.port}`]]),
      );
      // Both start on worker 0, which has room; the bystander is moved to worker 1, started for it.
      const victimWorker = channels.placement(ChannelId.make("victim"));
      expect(victimWorker).toBe(0);
      yield* channels.move(ChannelId.make("bystander"), 1);
      expect(channels.placement(ChannelId.make("bystander"))).toBe(1);

      const victim = stream(1, 6, 2);
      const bystander = stream(2, 6, 2);
      const sending = yield* Effect.fork(
        Effect.all(
          [
            sendPaced(victim.datagrams, victimPort, victim.perMs),
            sendPaced(bystander.datagrams, bystanderPort, bystander.perMs),
          ],
          {
            concurrency: "unbounded",
          },
        ),
      );
      yield* eventually("the victim's output to flow", () =>
        victimSink.totalBytes() > 100_000 ? true : undefined,
      );
      yield* channels.killWorker(victimWorker ?? 0);
      const restarted = yield* eventually("the worker_restarted event", () =>
        events.find((event) => event.type === "worker_restarted"),
      );
      expect(restarted).toMatchObject({ worker: victimWorker, channels: ["victim"] });
      yield* eventually("the victim to run again", () =>
        channels.state(ChannelId.make("victim")) === "running" ? true : undefined,
      );
      const resumedAt = victimSink.totalBytes();
      yield* eventually("the victim's output to resume", () =>
        victimSink.totalBytes() > resumedAt + 100_000 ? true : undefined,
      );
      yield* Fiber.join(sending);
      yield* eventually("the bystander's whole stream", () =>
        bystanderSink.totalBytes() >= bystander.ts.length ? true : undefined,
      );
      // The other worker's channel lost nothing; the victim's output resumed on the stream's own packets.
      expect(bystanderSink.bytes().equals(Buffer.from(bystander.ts))).toBe(true);
      expect(Buffer.from(victim.ts).includes(victimSink.bytes().subarray(-188 * 700))).toBe(true);
      expect(channels.workers().map((worker) => [worker.index, worker.restarts])).toEqual([
        [0, 1],
        [1, 0],
      ]);
      expect(
        events.filter((event) => event.type === "channel_started").map((event) => event.channel),
      ).toEqual(["victim", "bystander", "victim"]);
    }).pipe(Effect.scoped, Effect.provide(withWorkers(2))),
  60_000,
);

it.live(
  "a channel moved between workers while its stream flows delivers every byte once, in order, at each output",
  () =>
    Effect.gen(function* () {
      const channels = yield* Channels;
      // Two outputs, as the load harness's channels have four: a move's new copy makes them before its input
      // takes the stream, and each must still get what was held for it.
      const sink = yield* udpSink;
      const other = yield* udpSink;
      const input = yield* freeUdpPort;
      const id = ChannelId.make("mover");
      yield* channels.start(
        udpChannel("mover", input, [
          ["out", `udp://127.0.0.1:${sink.port}`],
          ["other", `udp://127.0.0.1:${other.port}`],
        ]),
      );
      const first = channels.placement(id) ?? 0;
      const { ts, datagrams, perMs } = stream(3, 6, 4);
      const sending = yield* Effect.fork(sendPaced(datagrams, input, perMs));
      // Back and forth, each while datagrams flow.
      let expected = first;
      for (const threshold of [0.2, 0.45, 0.7]) {
        yield* eventually("the stream to flow", () =>
          sink.totalBytes() > ts.length * threshold ? true : undefined,
        );
        expected = expected === 0 ? 1 : 0;
        yield* channels.move(id, expected);
        expect(channels.placement(id)).toBe(expected);
      }
      yield* Fiber.join(sending);
      for (const each of [sink, other]) {
        yield* eventually("the whole stream", () => (each.totalBytes() >= ts.length ? true : undefined));
        const received = each.bytes();
        expect(received.length).toBe(ts.length);
        expect(received.equals(Buffer.from(ts))).toBe(true);
        expect(analyse(received).ccErrors).toBe(0);
      }
      expect(
        channels
          .workers()
          .map((worker) => worker.channels)
          .sort(),
      ).toEqual([0, 1]);
    }).pipe(Effect.scoped, Effect.provide(withWorkers(2))),
  60_000,
);

it.live(
  "closing the supervisor leaves no worker thread, no input socket and no child process",
  () =>
    Effect.gen(function* () {
      // RTSP outputs have an ffmpeg child (RTMP runs in process); nobody needs to listen for it to start.
      const rtspPort = yield* freeTcpPort;
      const sink = yield* udpSink;
      const inputs = [yield* freeUdpPort, yield* freeUdpPort];
      const runtime = ManagedRuntime.make(withWorkers(2));
      const channels: ChannelsService = yield* Effect.promise(() => runtime.runPromise(Channels));
      for (const [index, port] of inputs.entries())
        yield* Effect.promise(() =>
          runtime.runPromise(
            channels.start(
              udpChannel(`c${index}`, port, [
                ["udp", `udp://127.0.0.1:${sink.port}`],
                ["rtsp", `rtsp://127.0.0.1:${rtspPort}/live/c${index}`],
              ]),
            ),
          ),
        );
      // One thread until a second is needed: a move to worker 1 starts it.
      expect(workerThreads()).toBe(1);
      yield* Effect.promise(() => runtime.runPromise(channels.move(ChannelId.make("c1"), 1)));
      expect(workerThreads()).toBe(2);
      const { datagrams, perMs } = stream(4, 4, 2);
      const sending = yield* Effect.fork(sendPaced(datagrams, inputs[0] ?? 0, perMs));
      const ffmpegChildren = () =>
        childProcesses().then((children) => children.filter((child) => child.command === "ffmpeg"));
      yield* eventually("ffmpeg children for the RTSP outputs", () =>
        ffmpegChildren().then((children) => (children.length >= 2 ? children : undefined)),
      );
      yield* Fiber.join(sending);

      yield* Effect.promise(() => runtime.dispose());
      expect(workerThreads()).toBe(0);
      expect(yield* Effect.promise(ffmpegChildren)).toEqual([]);
      // Each input port can be bound again, alone (no SO_REUSEPORT): nothing of ours holds it.
      for (const port of inputs) {
        const bound = yield* Effect.async<boolean>((resume) => {
          const socket = createSocket("udp4");
          socket.once("error", () => resume(Effect.succeed(false)));
          socket.bind(port, "127.0.0.1", () => socket.close(() => resume(Effect.succeed(true))));
        });
        expect(bound, `port ${port}`).toBe(true);
      }
    }).pipe(Effect.scoped),
  60_000,
);
