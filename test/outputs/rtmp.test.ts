import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "@effect/vitest";
import { Effect, Fiber } from "effect";
import { describe, expect } from "vitest";
import { makeOutput } from "../../src/effects/outputs/writer.ts";
import { encodeTestStream, probeMedia } from "../support/media.ts";
import { eventually, freeTcpPort, nginxRtmp } from "../support/peers.ts";

const streamKey = "secret-key-4f9a";

describe("rtmp output", () => {
  it.scopedLive("nginx-rtmp records H.264 and AAC of about the duration sent", () =>
    Effect.gen(function* () {
      const server = yield* nginxRtmp;
      const source = join(server.recordDir, "..", "source.ts");
      yield* encodeTestStream(source, 4);
      const ts = yield* Effect.promise(() => readFile(source));
      expect(ts.length % 188).toBe(0);

      const output = yield* makeOutput(`rtmp://127.0.0.1:${server.port}/live/${streamKey}`);
      expect(output.status().url).toBe(`rtmp://127.0.0.1:${server.port}/live/****`);
      const writer = yield* Effect.forkScoped(output.run);
      for (let at = 0; at < ts.length; at += 1316)
        output.offer(ts.subarray(at, Math.min(at + 1316, ts.length)));

      yield* eventually("ffmpeg to publish", () =>
        output.status().state === "connected" ? true : undefined,
      );
      const recorded = yield* eventually(
        "a recording of the whole stream",
        async () => {
          const [file] = await server.recordings();
          const info = file === undefined ? undefined : await probeMedia(file);
          return info !== undefined && info.duration >= 3.5 ? info : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 250 },
      );
      expect(recorded.codecs).toEqual(["aac", "h264"]);
      expect(recorded.duration).toBeLessThan(4.6);
      expect(output.status()).toMatchObject({ bytesSent: ts.length, queueDrops: 0, reconnects: 0 });
      yield* Fiber.interrupt(writer);
      expect(output.status().state).toBe("stopped");
      expect(JSON.stringify(output.status())).not.toContain(streamKey);
    }),
  );

  it.scopedLive("a server that is not there is reported as refused, without the key", () =>
    Effect.gen(function* () {
      const port = yield* freeTcpPort;
      const output = yield* makeOutput(`rtmp://127.0.0.1:${port}/live/${streamKey}`);
      yield* Effect.forkScoped(output.run);
      // ffmpeg connects once it has probed about a second of real H.264 and AAC.
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "distributary-rtmp-"))),
        (path) => Effect.promise(() => rm(path, { recursive: true, force: true })),
      );
      yield* encodeTestStream(join(dir, "source.ts"), 2);
      const ts = yield* Effect.promise(() => readFile(join(dir, "source.ts")));
      for (let at = 0; at < ts.length; at += 1316)
        output.offer(ts.subarray(at, Math.min(at + 1316, ts.length)));
      const message = yield* eventually("an error", () => output.status().lastError ?? undefined);
      expect(message).toBe(`connection refused by 127.0.0.1:${port} (is the RTMP server running?)`);
      expect(output.status()).toMatchObject({ lastErrorReason: "connect_refused" });
    }),
  );
});
