/**
 * The RTMP output against nginx-rtmp recording what it receives, the recordings read back with ffprobe:
 * every frame from the first keyframe, audio and video starting together, live video (never what queued
 * while the server was away) after a reconnect, and a refused stream key told from a wrong application.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "@effect/vitest";
import { Effect, Fiber } from "effect";
import { describe, expect } from "vitest";
import { makeOutput, type Output } from "../../src/effects/outputs/writer.ts";
import { encodeTestStream, streamFigures, videoFramesFromFirstKeyframe } from "../support/media.ts";
import { childProcesses, eventually, freeTcpPort, nginxRtmp, nginxRtmpServer } from "../support/peers.ts";

const streamKey = "secret-key-4f9a";

const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "distributary-rtmp-"))),
  (path) => Effect.promise(() => rm(path, { recursive: true, force: true })),
);

/** An encoded test stream (H.264 + AAC in TS, a keyframe every second) and its bytes. */
const testStream = (dir: string, name: string, seconds: number, size = "640x360") =>
  Effect.gen(function* () {
    const path = join(dir, name);
    yield* encodeTestStream(path, seconds, "1M", size);
    const bytes = yield* Effect.promise(() => readFile(path));
    return { path, bytes };
  });

/** Hands `ts` to the output as the fan-out does: seven packets at a time. */
const offerAll = (output: Output, ts: Uint8Array) => {
  for (let at = 0; at < ts.length; at += 1316) output.offer(ts.subarray(at, Math.min(at + 1316, ts.length)));
};

/** The output's ffmpeg children are running (each attempt drops what queued before it, then spawns one). */
const ffmpegRunning = (count = 1) =>
  eventually(`${count} ffmpeg child(ren)`, async () =>
    (await childProcesses()).filter((child) => child.command === "ffmpeg" && child.state !== "Z").length >=
    count
      ? true
      : undefined,
  );

/** The one recording's figures once its video holds at least `frames` frames. */
const recordingWith = (recordings: () => Promise<ReadonlyArray<string>>, frames: number) =>
  eventually(
    `a recording with ${frames} video frames`,
    async () => {
      const files = await recordings();
      if (files.length !== 1 || files[0] === undefined) return undefined;
      const figures = await streamFigures(files[0]);
      return figures?.video !== undefined && figures.audio !== undefined && figures.video.packets >= frames
        ? { video: figures.video, audio: figures.audio }
        : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 250 },
  );

describe("rtmp output", () => {
  it.scopedLive(
    "joined in the middle of a GOP, the recording holds every frame from the next keyframe, audio and video together",
    () =>
      Effect.gen(function* () {
        const server = yield* nginxRtmp;
        const dir = yield* tempDir;
        const source = yield* testStream(dir, "source.ts", 6);
        // 0.4 s in: the middle of the first GOP (a keyframe every second), as a reconnect usually lands.
        const joinAt = Math.floor((source.bytes.length * 0.4) / 6 / 188) * 188;
        const sent = source.bytes.subarray(joinAt);
        const sentPath = join(dir, "sent.ts");
        yield* Effect.promise(() => writeFile(sentPath, sent));
        const expected = yield* Effect.promise(() => videoFramesFromFirstKeyframe(sentPath));
        expect(expected).toBeGreaterThanOrEqual(125);

        const output = yield* makeOutput(`rtmp://127.0.0.1:${server.port}/live/${streamKey}`);
        expect(output.status().url).toBe(`rtmp://127.0.0.1:${server.port}/live/****`);
        const writer = yield* Effect.forkScoped(output.run);
        yield* ffmpegRunning();
        offerAll(output, sent);

        yield* eventually("ffmpeg to publish", () =>
          output.status().state === "connected" ? true : undefined,
        );
        // ffmpeg keeps the last frame or two until more input comes: everything before them must be there.
        const recorded = yield* recordingWith(server.recordings, expected - 2);
        expect(recorded.video.codec).toBe("h264");
        expect(recorded.audio.codec).toBe("aac");
        expect(recorded.video.packets).toBeLessThanOrEqual(expected);
        expect(Math.abs(recorded.video.startTime - recorded.audio.startTime)).toBeLessThan(0.1);

        const status = output.status();
        expect(status).toMatchObject({ queueDrops: 0, reconnects: 0, errors: 0 });
        // From the keyframe on, plus the PAT and PMT put in front of it: at most the bytes offered.
        expect(status.bytesSent).toBe(status.packetsSent * 188);
        expect(status.bytesSent).toBeGreaterThan(sent.length * 0.7);
        expect(status.bytesSent).toBeLessThanOrEqual(sent.length + 2 * 188);
        yield* Fiber.interrupt(writer);
        expect(output.status().state).toBe("stopped");
        expect(JSON.stringify(output.status())).not.toContain(streamKey);
      }),
  );

  it.scopedLive(
    "after a reconnect the recording starts with live video, not what queued while the server was away",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir;
        // What queues during the outage is 320 pixels wide; what comes after the server is back, 640.
        const stale = yield* testStream(dir, "stale.ts", 3, "320x180");
        const live = yield* testStream(dir, "live.ts", 4);
        const liveFrames = yield* Effect.promise(() => videoFramesFromFirstKeyframe(live.path));

        const port = yield* freeTcpPort;
        const output = yield* makeOutput(`rtmp://127.0.0.1:${port}/live/${streamKey}`, {
          reconnect: { firstDelay: "2 seconds", maxDelay: "2 seconds" },
        });
        yield* Effect.forkScoped(output.run);
        yield* ffmpegRunning();
        offerAll(output, stale.bytes);
        yield* eventually("the first attempt to be refused", () =>
          output.status().lastErrorReason === "connect_refused" ? true : undefined,
        );
        // The server is away: this queues.
        offerAll(output, stale.bytes);
        expect(output.status().queuedBytes).toBeGreaterThanOrEqual(stale.bytes.length);
        const server = yield* nginxRtmpServer({ port });
        yield* eventually("the next attempt to take the queue", () =>
          output.status().reconnects === 1 && output.status().queuedBytes === 0 ? true : undefined,
        );
        offerAll(output, live.bytes);

        yield* eventually("ffmpeg to publish", () =>
          output.status().state === "connected" ? true : undefined,
        );
        const recorded = yield* recordingWith(server.recordings, liveFrames - 2);
        expect(recorded.video.width).toBe(640);
        expect(recorded.video.packets).toBeLessThanOrEqual(liveFrames);
        expect(Math.abs(recorded.video.startTime - recorded.audio.startTime)).toBeLessThan(0.1);
        // Never connected before, so what it let go is not counted as dropped; one failure, one reconnect.
        expect(output.status()).toMatchObject({
          queueDrops: 0,
          errors: 1,
          reconnects: 1,
          state: "connected",
        });
      }),
  );

  it.scopedLive(
    "a stream key refused by the server is told from a wrong application name; neither counts a byte sent",
    () =>
      Effect.gen(function* () {
        // nginx-rtmp asks this server before each publish: 403 refuses it, as a key check does.
        const refuser = yield* Effect.acquireRelease(
          Effect.async<ReturnType<typeof createServer>>((resume) => {
            const http = createServer((_request, response) => {
              response.writeHead(403).end();
            });
            http.listen(0, "127.0.0.1", () => resume(Effect.succeed(http)));
          }),
          (http) => Effect.async<void>((resume) => void http.close(() => resume(Effect.void))),
        );
        const address = refuser.address();
        const httpPort = typeof address === "object" && address !== null ? address.port : 0;
        const server = yield* nginxRtmpServer({ onPublish: `http://127.0.0.1:${httpPort}/publish` });
        const dir = yield* tempDir;
        const source = yield* testStream(dir, "source.ts", 2);

        const once = { reconnect: { firstDelay: "30 seconds" } } as const;
        const wrongKey = yield* makeOutput(`rtmp://127.0.0.1:${server.port}/live/${streamKey}`, once);
        const wrongApp = yield* makeOutput(`rtmp://127.0.0.1:${server.port}/nope/${streamKey}`, once);
        yield* Effect.forkScoped(wrongKey.run);
        yield* Effect.forkScoped(wrongApp.run);
        yield* ffmpegRunning(2);
        offerAll(wrongKey, source.bytes);
        offerAll(wrongApp, source.bytes);

        for (const output of [wrongKey, wrongApp])
          yield* eventually("the attempt to fail", () => output.status().lastError ?? undefined, {
            timeoutMs: 15_000,
          });
        const key = wrongKey.status();
        const app = wrongApp.status();
        expect(key.lastError).toContain("the server refused the stream key");
        expect(key.lastError).toContain(`RTMP server at 127.0.0.1:${server.port}`);
        expect(key.lastErrorReason).toBe("auth_rejected");
        expect(app.lastError).toBe(
          `the RTMP server at 127.0.0.1:${server.port} refused the application "nope": check the application name in the URL`,
        );
        for (const status of [key, app]) {
          // Nothing was accepted by the server: nothing was sent, whatever ffmpeg read.
          expect(status).toMatchObject({ bytesSent: 0, packetsSent: 0, state: "reconnecting", errors: 1 });
          expect(Number.isInteger(status.queueDrops)).toBe(true);
          expect(JSON.stringify(status)).not.toContain(streamKey);
        }
      }),
  );

  it.scopedLive("a server that is not there is reported as refused, without the key", () =>
    Effect.gen(function* () {
      const port = yield* freeTcpPort;
      const output = yield* makeOutput(`rtmp://127.0.0.1:${port}/live/${streamKey}`);
      yield* Effect.forkScoped(output.run);
      yield* ffmpegRunning();
      // ffmpeg connects once it has probed about a second of real H.264 and AAC.
      const dir = yield* tempDir;
      const source = yield* testStream(dir, "source.ts", 2);
      offerAll(output, source.bytes);
      const message = yield* eventually("an error", () => output.status().lastError ?? undefined);
      expect(message).toBe(`connection refused by 127.0.0.1:${port} (is the RTMP server running?)`);
      expect(output.status()).toMatchObject({ lastErrorReason: "connect_refused", bytesSent: 0 });
    }),
  );
});
