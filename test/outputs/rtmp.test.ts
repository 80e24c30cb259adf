/**
 * The RTMP output, in process, against real receivers: nginx-rtmp and node-media-server recording FLV, ffmpeg
 * listening, RTMPS through nginx's TLS front with the output's CA file. What they received is read with
 * ffprobe and compared with the input's access units (timing, key flags, decoded pictures, AAC frame sizes).
 * No ffmpeg runs for the output while it streams.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { it } from "@effect/vitest";
import { Effect, Fiber } from "effect";
import { describe, expect } from "vitest";
import { makeOutput } from "../../src/effects/outputs/writer.ts";
import { eventually, nginxRtmpServer } from "../support/peers.ts";
import {
  bframeStream,
  expectSameAccessUnits,
  flvVideoTags,
  hevcAnnexB,
  noFfmpegRunning,
  pictures,
  play,
  recordingWith,
} from "../support/rtmp-media.ts";
import {
  ffmpegRtmpListener,
  nodeMediaServer,
  selfSignedCa,
  tempDir,
  tlsFront,
} from "../support/rtmp-peers.ts";

const streamKey = "secret-key-4f9a";

describe("rtmp output", () => {
  it.scopedLive("nginx-rtmp records the input's access units from a keyframe on, and no ffmpeg runs", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir("distributary-rtmp-");
      const input = join(dir, "in.ts");
      bframeStream(input, 4);
      const ts = yield* Effect.promise(() => readFile(input));
      const server = yield* nginxRtmpServer({ port: 18601 });
      const output = yield* makeOutput(`rtmp://127.0.0.1:${server.port}/live/${streamKey}`);
      expect(output.status().url).toBe(`rtmp://127.0.0.1:${server.port}/live/****`);
      const writer = yield* Effect.forkScoped(output.run);
      // Joined 0.4 s in: the middle of a GOP.
      const joinAt = Math.floor((ts.length * 0.1) / 188) * 188;
      const playing = yield* Effect.forkScoped(play(output, ts.subarray(joinAt), 4));
      yield* eventually("connected", () => (output.status().state === "connected" ? true : undefined));
      expect(yield* noFfmpegRunning).toEqual([]);
      yield* Fiber.join(playing);
      const recorded = yield* recordingWith(server.recordings, 60);
      yield* Fiber.interrupt(writer);
      expectSameAccessUnits(input, recorded, 60);
      const status = output.status();
      expect(status.rtmp).toMatchObject({ framesDropped: 0, cuesSent: 0, cues: "off" });
      expect(status.rtmp?.framesSent).toBeGreaterThan(150);
      expect(status.bytesSent).toBeGreaterThan(0);
      expect(JSON.stringify(status)).not.toContain(streamKey);
    }),
  );

  it.scopedLive("ffmpeg listening for RTMP gets the same access units", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir("distributary-rtmp-");
      const input = join(dir, "in.ts");
      bframeStream(input, 4);
      const ts = yield* Effect.promise(() => readFile(input));
      const file = join(dir, "got.flv");
      const listener = yield* ffmpegRtmpListener(18602, file);
      const output = yield* makeOutput("rtmp://127.0.0.1:18602/live/key");
      const writer = yield* Effect.forkScoped(output.run);
      yield* play(output, ts, 4);
      yield* eventually("the frames sent", () =>
        (output.status().rtmp?.framesSent ?? 0) > 150 ? true : undefined,
      );
      yield* Fiber.interrupt(writer);
      yield* listener.exit;
      expectSameAccessUnits(input, file, 60);
    }),
  );

  it.scopedLive("node-media-server records the same access units", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir("distributary-rtmp-");
      const input = join(dir, "in.ts");
      bframeStream(input, 4);
      const ts = yield* Effect.promise(() => readFile(input));
      const nms = yield* nodeMediaServer(18603, 18604, dir);
      const output = yield* makeOutput(`rtmp://127.0.0.1:18603/live/${streamKey}`);
      const writer = yield* Effect.forkScoped(output.run);
      yield* play(output, ts, 4);
      yield* eventually("connected", () => (output.status().state === "connected" ? true : undefined));
      const recorded = yield* recordingWith(nms.recordings, 60);
      yield* Fiber.interrupt(writer);
      expectSameAccessUnits(input, recorded, 60);
    }),
  );

  it.scopedLive(
    "node-media-server records HEVC sent as Enhanced RTMP, which decodes to the same pictures",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir("distributary-rtmp-hevc-");
        const input = join(dir, "in.ts");
        bframeStream(input, 4, "libx265");
        const ts = yield* Effect.promise(() => readFile(input));
        const nms = yield* nodeMediaServer(18630, 18631, dir);
        const output = yield* makeOutput(`rtmp://127.0.0.1:18630/live/${streamKey}?hevc=1`);
        const writer = yield* Effect.forkScoped(output.run);
        yield* play(output, ts, 4);
        const file = yield* eventually("a recording", () => nms.recordings().then((files) => files[0]));
        yield* Effect.sleep("500 millis");
        const sent = output.status().rtmp?.framesSent ?? 0;
        yield* Fiber.interrupt(writer);
        // ffmpeg 5.1 reads no E-RTMP: our own reader takes the tags out, and ffmpeg decodes them as Annex B.
        const tags = flvVideoTags(yield* Effect.promise(() => readFile(file)));
        const [header, ...frames] = tags;
        expect(header?.[0]).toBe(0x90);
        expect(Buffer.from(header?.subarray(1, 5) ?? []).toString()).toBe("hvc1");
        expect(frames.length).toBeGreaterThan(60);
        // The frames sent counted audio too: the recording holds fewer video frames than that.
        expect(frames.length).toBeLessThan(sent);
        const rebuilt = join(dir, "rebuilt.hevc");
        yield* Effect.promise(() => writeFile(rebuilt, hevcAnnexB(header ?? new Uint8Array(0), frames)));
        const want = pictures(input);
        const have = pictures(rebuilt);
        expect(have.length).toBe(frames.length);
        const first = want.indexOf(have[0] ?? "");
        expect(first).toBeGreaterThanOrEqual(0);
        expect(have.slice(0, -2)).toEqual(want.slice(first, first + have.length - 2));
      }),
  );

  it.scopedLive(
    "RTMPS through a TLS front: the CA file given is trusted, and without it the certificate is refused",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir("distributary-rtmps-");
        const input = join(dir, "in.ts");
        bframeStream(input, 4);
        const ts = yield* Effect.promise(() => readFile(input));
        const cert = selfSignedCa(dir);
        const server = yield* nginxRtmpServer({ port: 18605 });
        yield* tlsFront(18606, server.port, dir, cert);

        const untrusted = yield* makeOutput(`rtmps://localhost:18606/live/${streamKey}`, {
          reconnect: { firstDelay: "30 seconds" },
        });
        yield* Effect.forkScoped(untrusted.run);
        const output = yield* makeOutput(`rtmps://localhost:18606/live/${streamKey}?ca=${cert.ca}`);
        expect(output.status().url).toBe(`rtmps://localhost:18606/live/****?ca=${cert.ca}`);
        yield* Effect.forkScoped(output.run);
        yield* Effect.forkScoped(play(untrusted, ts, 4));
        yield* play(output, ts, 4);
        const recorded = yield* recordingWith(server.recordings, 60);
        expectSameAccessUnits(input, recorded, 60);
        const refused = yield* eventually(
          "the untrusted attempt to fail",
          () => untrusted.status().lastError ?? undefined,
        );
        expect(refused).toContain("the TLS handshake with localhost:18606 failed");
        expect(refused).not.toContain(streamKey);
        expect(untrusted.status().rtmp?.framesSent).toBe(0);
      }),
  );

  it.scopedLive("a refused stream key is told from a wrong application name", () =>
    Effect.gen(function* () {
      const { createServer } = yield* Effect.promise(() => import("node:http"));
      const http = createServer((_request, response) => void response.writeHead(403).end());
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => void http.listen(18607, "127.0.0.1", () => resume(Effect.void))),
        () => Effect.async<void>((resume) => void http.close(() => resume(Effect.void))),
      );
      const server = yield* nginxRtmpServer({ port: 18608, onPublish: "http://127.0.0.1:18607/publish" });
      const dir = yield* tempDir("distributary-rtmp-");
      const input = join(dir, "in.ts");
      bframeStream(input, 2);
      const ts = yield* Effect.promise(() => readFile(input));
      const once = { reconnect: { firstDelay: "30 seconds" } } as const;
      const wrongKey = yield* makeOutput(`rtmp://127.0.0.1:${server.port}/live/${streamKey}`, once);
      const wrongApp = yield* makeOutput(`rtmp://127.0.0.1:${server.port}/nope/${streamKey}`, once);
      yield* Effect.forkScoped(wrongKey.run);
      yield* Effect.forkScoped(wrongApp.run);
      yield* Effect.forkScoped(play(wrongKey, ts, 2));
      yield* Effect.forkScoped(play(wrongApp, ts, 2));
      for (const output of [wrongKey, wrongApp])
        yield* eventually("the attempt to fail", () => output.status().lastError ?? undefined, {
          timeoutMs: 15_000,
        });
      expect(wrongKey.status().lastError).toContain("the server refused the stream key");
      expect(wrongKey.status().lastErrorReason).toBe("auth_rejected");
      expect(wrongApp.status().lastError).toBe(
        `the RTMP server at 127.0.0.1:${server.port} refused the application "nope": check the application name in the URL`,
      );
      for (const status of [wrongKey.status(), wrongApp.status()]) {
        expect(status).toMatchObject({ bytesSent: 0, state: "reconnecting", errors: 1 });
        expect(JSON.stringify(status)).not.toContain(streamKey);
      }
    }),
  );

  it.scopedLive("a server that is not there is reported as refused, without the key", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir("distributary-rtmp-");
      const input = join(dir, "in.ts");
      bframeStream(input, 2);
      const ts = yield* Effect.promise(() => readFile(input));
      const output = yield* makeOutput(`rtmp://127.0.0.1:18609/live/${streamKey}`);
      yield* Effect.forkScoped(output.run);
      yield* Effect.forkScoped(play(output, ts, 2));
      const message = yield* eventually("an error", () => output.status().lastError ?? undefined);
      expect(message).toBe("connection refused by 127.0.0.1:18609 (is the RTMP server running?)");
      expect(output.status()).toMatchObject({ lastErrorReason: "connect_refused", bytesSent: 0 });
    }),
  );
});
