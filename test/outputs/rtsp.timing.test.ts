/**
 * The RTSP output against a real RTSP server (ffmpeg in listen mode, recording what it is sent), read back
 * with ffprobe: H.264 and AAC arrive, every frame from the first keyframe; the user and password in the URL
 * are shown nowhere; a server that is not there is an error in the RTMP output's words, retried.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "@effect/vitest";
import { Effect, Fiber } from "effect";
import { describe, expect } from "vitest";
import { makeOutput, type Output } from "../../src/effects/outputs/writer.ts";
import { encodeTestStream, streamFigures, videoFramesFromFirstKeyframe } from "../support/media.ts";
import { childProcesses, eventually, ffmpegRtspServer, freeTcpPort } from "../support/peers.ts";

const password = "s3cret-pass-4f9a";

const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "distributary-rtsp-test-"))),
  (path) => Effect.promise(() => rm(path, { recursive: true, force: true })),
);

/** Hands `ts` to the output as the fan-out does: seven packets at a time. */
const offerAll = (output: Output, ts: Uint8Array) => {
  for (let at = 0; at < ts.length; at += 1316) output.offer(ts.subarray(at, Math.min(at + 1316, ts.length)));
};

const ffmpegChildren = async () =>
  (await childProcesses()).filter((child) => child.command === "ffmpeg" && child.state !== "Z").length;

describe("rtsp output", () => {
  it.scopedLive(
    "an RTSP server receives H.264 and AAC, every frame from the first keyframe; the password is shown nowhere",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir;
        const sourcePath = join(dir, "source.ts");
        yield* encodeTestStream(sourcePath, 4);
        const source = yield* Effect.promise(() => readFile(sourcePath));
        // Joined 0.4 s in, in the middle of the first GOP, as a reconnect usually lands.
        const joinAt = Math.floor((source.length * 0.1) / 188) * 188;
        const sent = source.subarray(joinAt);
        const sentPath = join(dir, "sent.ts");
        yield* Effect.promise(() => writeFile(sentPath, sent));
        const expected = yield* Effect.promise(() => videoFramesFromFirstKeyframe(sentPath));
        expect(expected).toBeGreaterThanOrEqual(75);

        const server = yield* ffmpegRtspServer();
        const before = yield* Effect.promise(ffmpegChildren);
        const output = yield* makeOutput(
          `rtsp://publisher:${password}@127.0.0.1:${server.port}${server.path}`,
        );
        expect(output.status().url).toBe(`rtsp://****:****@127.0.0.1:${server.port}${server.path}`);
        const writer = yield* Effect.forkScoped(output.run);
        yield* eventually("the output's ffmpeg", async () =>
          (await ffmpegChildren()) > before ? true : undefined,
        );
        offerAll(output, sent);

        yield* eventually("the server to accept the stream", () =>
          output.status().state === "connected" ? true : undefined,
        );
        // Everything handed to ffmpeg (from the keyframe on, PAT and PMT in front): then it stops, as an
        // operator stopping the output, and sends what it still holds (the last second, for interleaving).
        // 3.6 s of stream through an ffmpeg that starts and probes slowly while the suite runs in parallel.
        yield* eventually(
          "the stream handed over",
          () =>
            output.status().queuedBytes === 0 && output.status().bytesSent > sent.length * 0.7
              ? true
              : undefined,
          // The output's figures, said if the wait times out (no password in them: below).
          { timeoutMs: 30_000, seen: () => JSON.stringify(output.status()) },
        );
        const status = output.status();
        expect(status).toMatchObject({ queueDrops: 0, reconnects: 0, errors: 0 });
        expect(status.bytesSent).toBeLessThanOrEqual(sent.length + 2 * 188);
        yield* Fiber.interrupt(writer);
        expect(output.status().state).toBe("stopped");
        expect(JSON.stringify(output.status())).not.toContain(password);
        const recorded = yield* eventually(
          `a recording with ${expected - 2} video frames and audio`,
          async () => {
            const figures = await streamFigures(server.recording);
            return figures?.video !== undefined &&
              figures.audio !== undefined &&
              figures.video.packets >= expected - 2
              ? { video: figures.video, audio: figures.audio }
              : undefined;
          },
          { timeoutMs: 20_000, intervalMs: 250 },
        );
        expect(recorded.video.codec).toBe("h264");
        expect(recorded.audio.codec).toBe("aac");
        expect(recorded.video.packets).toBeLessThanOrEqual(expected);
        expect(recorded.audio.packets).toBeGreaterThan(100);
      }),
  );

  it.scopedLive("a server that is not there: refused in words, retried, the password in none of them", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir;
      const sourcePath = join(dir, "source.ts");
      yield* encodeTestStream(sourcePath, 2);
      const source = yield* Effect.promise(() => readFile(sourcePath));
      const port = yield* freeTcpPort;
      const before = yield* Effect.promise(ffmpegChildren);
      const output = yield* makeOutput(`rtsp://publisher:${password}@127.0.0.1:${port}/live/cam`, {
        reconnect: { firstDelay: "200 millis", maxDelay: "200 millis" },
      });
      yield* Effect.forkScoped(output.run);
      yield* eventually("the output's ffmpeg", async () =>
        (await ffmpegChildren()) > before ? true : undefined,
      );
      // ffmpeg opens the destination once it has read the stream's codecs.
      offerAll(output, source);
      yield* eventually("the refusal", () => (output.status().errors >= 1 ? true : undefined), {
        timeoutMs: 15_000,
      });
      const status = output.status();
      expect(status.lastError).toBe(`connection refused by 127.0.0.1:${port} (is the RTSP server running?)`);
      expect(status.lastErrorReason).toBe("connect_refused");
      expect(status.state).toBe("reconnecting");
      expect(JSON.stringify(status)).not.toContain(password);
    }),
  );
});
