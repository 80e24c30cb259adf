import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, layer } from "@effect/vitest";
import { Effect, Fiber, Layer } from "effect";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import { Channels, OutputDefaults } from "../../src/effects/channel/channels.ts";
import { encodeTestStream, probeMedia } from "../support/media.ts";
import { childProcesses, eventually, freeUdpPort, nginxRtmp, udpSink } from "../support/peers.ts";
import { asRtp, chunkTs, sendPaced } from "../support/sender.ts";

// Small queues, so that a destination that stops taking data shows drops within seconds.
const services = Channels.Test.pipe(Layer.provide(Layer.succeed(OutputDefaults, { queueBytes: 256 * 1024 })));

// No output has a child here: RTMP and SRT run in process (ffmpeg would be RTSP's), none of either may appear.
const outputChildren = async () =>
  (await childProcesses()).filter(
    (child) => child.command === "ffmpeg" || child.command.startsWith("srt-live-trans"),
  );

layer(services, { excludeTestServices: true })(
  "one channel, healthy and broken destinations side by side",
  (it) => {
    it.scoped(
      "dead, lonely and stuck destinations drop on their own queues; UDP and RTMP outputs beside them are intact",
      () =>
        Effect.gen(function* () {
          const channels = yield* Channels;
          const dir = yield* Effect.acquireRelease(
            Effect.promise(() => mkdtemp(join(tmpdir(), "distributary-isolation-"))),
            (path) => Effect.promise(() => rm(path, { recursive: true, force: true })),
          );
          // Eight seconds of real H.264 + AAC at about 10 Mbit/s: enough to fill every buffer of a stuck path.
          yield* encodeTestStream(join(dir, "source.ts"), 8, "10M");
          const ts = yield* Effect.promise(() => readFile(join(dir, "source.ts")));

          const sink = yield* udpSink;
          const healthyRtmp = yield* nginxRtmp;
          const stuckRtmp = yield* nginxRtmp;
          const nobodyListens = yield* freeUdpPort;
          const nobodyCalls = yield* freeUdpPort;
          const inputPort = yield* freeUdpPort;
          yield* channels.start({
            id: ChannelId.make("mixed"),
            name: "mixed",
            primary: { ip: "127.0.0.1", port: inputPort },
            backup: null,
            outputs: [
              { id: OutputId.make("udp"), name: "udp", url: `udp://127.0.0.1:${sink.port}`, enabled: true },
              {
                id: OutputId.make("rtmp"),
                name: "rtmp",
                url: `rtmp://127.0.0.1:${healthyRtmp.port}/live/key1`,
                enabled: true,
              },
              {
                id: OutputId.make("stuck"),
                name: "stuck",
                url: `rtmp://127.0.0.1:${stuckRtmp.port}/live/key2`,
                enabled: true,
              },
              {
                id: OutputId.make("down"),
                name: "down",
                url: `srt://127.0.0.1:${nobodyListens}?mode=caller`,
                enabled: true,
              },
              {
                id: OutputId.make("lonely"),
                name: "lonely",
                url: `srt://127.0.0.1:${nobodyCalls}?mode=listener`,
                enabled: true,
              },
            ],
          });
          const status = (id: string) =>
            Effect.map(channels.status(ChannelId.make("mixed")), (channel) =>
              channel?.outputs.find((output) => output.id === id),
            );
          const statusNow = (id: string) => Effect.runPromise(status(id));

          const sending = yield* Effect.fork(sendPaced(asRtp(chunkTs(ts)), inputPort));
          yield* eventually("the stuck RTMP output to connect", () =>
            statusNow("stuck").then((output) => (output?.state === "connected" ? true : undefined)),
          );
          // The server stops reading: nginx is frozen with its connection open.
          process.kill(stuckRtmp.pid ?? 0, "SIGSTOP");
          yield* Effect.addFinalizer(() => Effect.sync(() => process.kill(stuckRtmp.pid ?? 0, "SIGCONT")));

          yield* Fiber.join(sending);

          yield* eventually("UDP output complete", () => (sink.totalBytes() >= ts.length ? true : undefined));
          expect(Buffer.compare(sink.bytes(), ts)).toBe(0);
          expect((yield* status("udp"))?.queueDrops).toBe(0);
          // An RTMP output drops whole frames, and counts them as such.
          yield* eventually("the stuck output to drop and count", () =>
            statusNow("stuck").then((output) => ((output?.rtmp?.framesDropped ?? 0) > 0 ? true : undefined)),
          );
          // Outputs that never had a peer let data go without counting it as dropped: nobody was losing it.
          for (const id of ["down", "lonely"])
            expect(yield* status(id)).toMatchObject({ queueDrops: 0, bytesSent: 0 });
          expect((yield* status("down"))?.state).not.toBe("connected");
          expect((yield* status("down"))?.lastError).toMatch(/127\.0\.0\.1/);

          // SRT outputs run in process: no child of theirs, and the listener keeps waiting for a caller.
          expect((yield* status("lonely"))?.state).toBe("connecting");

          // Removing one output closes its connection (nginx ends the FLV); no child ran for either.
          expect(yield* Effect.promise(outputChildren)).toEqual([]);
          expect(yield* status("rtmp")).toMatchObject({ queueDrops: 0, reconnects: 0 });
          expect((yield* status("rtmp"))?.rtmp?.framesDropped).toBe(0);
          yield* channels.removeOutput(ChannelId.make("mixed"), OutputId.make("rtmp"));
          const recording = yield* eventually(
            "the healthy RTMP server's recording of the whole stream",
            async () => {
              const [file] = await healthyRtmp.recordings();
              const info = file === undefined ? undefined : await probeMedia(file);
              return info !== undefined && info.duration >= 7.8 ? info : undefined;
            },
            { timeoutMs: 20_000, intervalMs: 250 },
          );
          expect(recording.codecs).toEqual(["aac", "h264"]);
          expect(recording.duration).toBeLessThan(8.6);

          yield* channels.stop(ChannelId.make("mixed"));
          expect(yield* Effect.promise(outputChildren)).toEqual([]);
        }),
      90_000,
    );
  },
);
