/**
 * What an RTMP output sends over time and across codecs: a server that goes away and comes back gets a
 * stream that starts at a keyframe behind metadata and sequence headers; a jump to another time base and a
 * timeline past 2^24 ms keep the tags' timestamps monotonic (ffmpeg, which drops a session whose continuation
 * chunks lack the extended timestamp, reads them all); HEVC goes as Enhanced RTMP only where the URL says the
 * destination takes it, and codecs RTMP cannot carry give the output an error naming them.
 */
import { execFileSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { it } from "@effect/vitest";
import { Effect, Exit, Fiber, Scope } from "effect";
import { describe, expect } from "vitest";
import { MESSAGE } from "../../src/core/rtmp/chunks.ts";
import { makeOutput } from "../../src/effects/outputs/writer.ts";
import { eventually } from "../support/peers.ts";
import { bframeStream, hevcAnnexB, pictures, play, probe } from "../support/rtmp-media.ts";
import { ffmpegRtmpListener, type TestReceiver, tempDir, testReceiver } from "../support/rtmp-peers.ts";

const EXTENDED_FROM = 0xffffff;
const streamKey = "secret-key-77ab";

/** The first messages of each publish: what follows `publish`, up to the first video frame. */
const openings = (receiver: TestReceiver): string[][] => {
  const runs: string[][] = [];
  let current: string[] | null = null;
  for (const message of receiver.messages) {
    if (message.type === MESSAGE.command && message.values?.[0] === "publish") {
      current = [];
      runs.push(current);
    } else if (current !== null && current.length < 4) {
      if (message.type === MESSAGE.data) current.push(String(message.values?.[1]));
      else if (message.type === MESSAGE.video)
        current.push(
          message.body[1] === 0
            ? "video header"
            : `video ${(message.body[0] ?? 0) >> 4 === 1 ? "key" : "inter"}`,
        );
      else if (message.type === MESSAGE.audio) current.push(message.body[1] === 0 ? "audio header" : "audio");
    }
  }
  return runs;
};

describe("rtmp output streams", () => {
  it.scopedLive(
    "a server that goes away and comes back gets metadata, sequence headers, then a keyframe",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir("distributary-rtmp-");
        const input = join(dir, "in.ts");
        bframeStream(input, 9);
        const ts = yield* Effect.promise(() => readFile(input));
        const first = yield* Scope.make();
        const receiver = yield* testReceiver(18621).pipe(Scope.extend(first));
        const output = yield* makeOutput("rtmp://127.0.0.1:18621/live/key", {
          reconnect: { firstDelay: "200 millis", maxDelay: "200 millis" },
        });
        yield* Effect.forkScoped(output.run);
        const playing = yield* Effect.forkScoped(play(output, ts, 9));
        yield* eventually("frames sent", () =>
          (output.status().rtmp?.framesSent ?? 0) > 50 ? true : undefined,
        );
        yield* Scope.close(first, Exit.void);
        yield* eventually("the output to notice", () => (output.status().errors > 0 ? true : undefined));
        const back = yield* testReceiver(18621);
        yield* eventually("the second publish to start", () =>
          (openings(back)[0]?.length ?? 0) >= 4 && output.status().state === "connected" ? true : undefined,
        );
        void playing;
        // The stream's very first keyframe comes before its first audio frame: the audio header follows it.
        expect(openings(receiver)[0]?.slice(0, 3)).toEqual(["onMetaData", "video header", "video key"]);
        expect(openings(back)[0]).toEqual(["onMetaData", "video header", "audio header", "video key"]);
        expect(output.status()).toMatchObject({ reconnects: 1, state: "connected" });
        expect(output.status().lastError).toBe("the RTMP server at 127.0.0.1:18621 closed the connection");
      }),
  );

  it.scopedLive(
    "the server's ping is answered and its window acknowledged; a BadName refusal is told in words, the key masked",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir("distributary-rtmp-");
        const input = join(dir, "in.ts");
        bframeStream(input, 3);
        const ts = yield* Effect.promise(() => readFile(input));
        const receiver = yield* testReceiver(18626, { window: 1000, ping: 424242 });
        const refusing = yield* testReceiver(18627, { refuse: "NetStream.Publish.BadName" });
        const output = yield* makeOutput("rtmp://127.0.0.1:18626/live/key");
        const refused = yield* makeOutput(`rtmp://127.0.0.1:18627/live/${streamKey}`, {
          reconnect: { firstDelay: "30 seconds" },
        });
        yield* Effect.forkScoped(output.run);
        yield* Effect.forkScoped(refused.run);
        yield* Effect.all([play(output, ts, 3), play(refused, ts, 3)], { concurrency: 2 });
        const control = (type: number) => receiver.messages.filter((m) => m.type === type);
        yield* eventually("the ping's answer", () =>
          control(MESSAGE.userControl).some((m) => m.body[1] === 7) ? true : undefined,
        );
        const pong = control(MESSAGE.userControl).find((m) => m.body[1] === 7);
        expect(Buffer.from(pong?.body ?? []).readUInt32BE(2)).toBe(424242);
        // It said its chunk size and window first, and acknowledged what it received past the 1000-byte window
        // the server asked for (its handshake and the replies, about 3.5 kB).
        const acks = control(MESSAGE.acknowledgement).map((m) => Buffer.from(m.body).readUInt32BE(0));
        expect(acks.length).toBeGreaterThan(0);
        expect(acks[0]).toBeGreaterThanOrEqual(1000);
        expect(receiver.messages[0]).toMatchObject({ type: MESSAGE.setChunkSize });
        expect(Buffer.from(receiver.messages[0]?.body ?? []).readUInt32BE(0)).toBe(4096);
        expect(receiver.messages[1]).toMatchObject({ type: MESSAGE.windowAckSize });

        const message = yield* eventually("the refusal", () => refused.status().lastError ?? undefined);
        expect(message).toBe(
          "the server refused the stream key: the RTMP server at 127.0.0.1:18627 said NetStream.Publish.BadName **** is already publishing (the stream key is already in use or not valid)",
        );
        expect(refused.status()).toMatchObject({ lastErrorReason: "auth_rejected", bytesSent: 0 });
        expect(refusing.messages.filter((m) => m.type === MESSAGE.video)).toEqual([]);
      }),
  );

  it.scopedLive("a jump to another time base and a timeline past 2^24 ms keep timestamps monotonic", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir("distributary-rtmp-");
      // The backup's stream: the same pictures an hour later in PTS.
      const primary = join(dir, "primary.ts");
      const backup = join(dir, "backup.ts");
      bframeStream(primary, 4);
      bframeStream(backup, 4, "libx264", 3600);
      const file = join(dir, "got.flv");
      const listener = yield* ffmpegRtmpListener(18622, file);
      const receiver = yield* testReceiver(18623);
      // The timeline starts 2 s before 2^24 ms, as a channel would after 4 h 39 min.
      const start = { flvStartMs: EXTENDED_FROM - 2000 };
      const toFfmpeg = yield* makeOutput("rtmp://127.0.0.1:18622/live/key", start);
      const toReceiver = yield* makeOutput("rtmp://127.0.0.1:18623/live/key", start);
      const toFfmpegRun = yield* Effect.forkScoped(toFfmpeg.run);
      yield* Effect.forkScoped(toReceiver.run);
      for (const path of [primary, backup]) {
        const ts = yield* Effect.promise(() => readFile(path));
        yield* Effect.all([play(toFfmpeg, ts, 4), play(toReceiver, ts, 4)], { concurrency: 2 });
      }
      yield* Effect.sleep("300 millis");
      const sent = toFfmpeg.status();
      // The publisher leaves; ffmpeg ends its file.
      yield* Fiber.interrupt(toFfmpegRun);
      yield* listener.exit;

      // Our receiver: every tag past the line carries its full 32-bit time, each track monotonic.
      for (const type of [MESSAGE.video, MESSAGE.audio]) {
        const times = receiver.messages.filter((m) => m.type === type).map((m) => m.timestamp);
        expect(times.length).toBeGreaterThan(100);
        expect(times.every((t, i) => i === 0 || t >= (times[i - 1] ?? 0))).toBe(true);
        expect(times[0]).toBeLessThan(EXTENDED_FROM);
        expect(times.at(-1)).toBeGreaterThan(EXTENDED_FROM + 5000);
        // No step back and no hour-long step forward at the switch.
        const steps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
        expect(Math.max(...steps)).toBeLessThan(1000);
      }

      // ffmpeg read the whole session: every frame it wrote decodes to the pictures sent, in order, with
      // monotonic times past 2^24 ms.
      const got = probe(file).filter((p) => p.codec_type === "video");
      expect(got.length).toBeGreaterThanOrEqual((sent.rtmp?.framesSent ?? 0) * 0.3);
      expect(got.every((p, i) => i === 0 || p.dts >= (got[i - 1]?.dts ?? 0))).toBe(true);
      expect(got.at(-1)?.dts).toBeGreaterThan(EXTENDED_FROM + 5000);
      const want = pictures(primary);
      const have = pictures(file);
      const at = want.indexOf(have[0] ?? "");
      expect(at).toBeGreaterThanOrEqual(0);
      expect(have.slice(0, want.length - at - 2)).toEqual(want.slice(at, want.length - 2));
    }),
  );

  it.scopedLive("HEVC goes as Enhanced RTMP to an output marked hevc=1; the others are told why not", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir("distributary-rtmp-hevc-");
      const input = join(dir, "in.ts");
      bframeStream(input, 4, "libx265");
      const ts = yield* Effect.promise(() => readFile(input));
      const receiver = yield* testReceiver(18624);
      const hevc = yield* makeOutput("rtmp://127.0.0.1:18624/live/key?hevc=1");
      const legacy = yield* makeOutput("rtmp://127.0.0.1:18624/live/other", {
        reconnect: { firstDelay: "30 seconds" },
      });
      yield* Effect.forkScoped(hevc.run);
      yield* Effect.forkScoped(legacy.run);
      yield* Effect.all([play(hevc, ts, 4), play(legacy, ts, 4)], { concurrency: 2 });
      yield* eventually("frames", () => ((hevc.status().rtmp?.framesSent ?? 0) > 100 ? true : undefined));
      yield* Effect.sleep("300 millis");

      expect(legacy.status()).toMatchObject({ lastErrorReason: "unsupported_media", bytesSent: 0 });
      expect(legacy.status().lastError).toContain(
        "the channel's video is HEVC, which needs Enhanced RTMP: add hevc=1",
      );
      const connects = receiver.messages.filter(
        (m) => m.type === MESSAGE.command && m.values?.[0] === "connect",
      );
      expect(connects.length).toBe(1);
      expect(connects[0]?.values?.[2]).toMatchObject({ fourCcList: ["hvc1", "avc1"] });

      // Our own reading of the E-RTMP tags: a SequenceStart with the hvc1 record, then coded frames whose
      // composition times are the input's, rebuilt into an Annex B stream that decodes to the input's pictures.
      const video = receiver.messages.filter((m) => m.type === MESSAGE.video);
      const header = video[0]?.body ?? new Uint8Array(0);
      expect(header[0]).toBe(0x80 | 0x10 | 0);
      expect(Buffer.from(header.subarray(1, 5)).toString()).toBe("hvc1");
      const frames = video.slice(1);
      expect(
        frames.every(
          (m) => ((m.body[0] ?? 0) & 0x80) !== 0 && Buffer.from(m.body.subarray(1, 5)).toString() === "hvc1",
        ),
      ).toBe(true);
      expect(frames[0]?.body[0]).toBe(0x80 | 0x10 | 1);
      const composition = (body: Uint8Array) => {
        if ((body[0] ?? 0) % 16 === 3) return 0;
        const raw = ((body[5] ?? 0) << 16) | ((body[6] ?? 0) << 8) | (body[7] ?? 0);
        return raw & 0x800000 ? raw - 0x1000000 : raw;
      };
      const source = probe(input).filter((p) => p.codec_type === "video");
      const rebuilt = join(dir, "rebuilt.hevc");
      yield* Effect.promise(() =>
        writeFile(
          rebuilt,
          hevcAnnexB(
            header,
            frames.map((m) => m.body),
          ),
        ),
      );
      const want = pictures(input);
      const have = pictures(rebuilt);
      expect(have.length).toBe(frames.length);
      const start = want.indexOf(have[0] ?? "");
      expect(start).toBeGreaterThanOrEqual(0);
      expect(have.slice(0, -2)).toEqual(want.slice(start, start + have.length - 2));
      const keyAt = source.findIndex(
        (p) =>
          Math.round((p.pts - p.dts) / 90) === composition(frames[0]?.body ?? header) && p.flags[0] === "K",
      );
      expect(frames.map((m) => composition(m.body))).toEqual(
        source.slice(keyAt, keyAt + frames.length).map((p) => Math.round((p.pts - p.dts) / 90)),
      );
      expect(source.some((p) => p.pts > p.dts)).toBe(true);
    }),
  );

  it.scopedLive(
    "a channel whose video turns to HEVC ends the stream of an output not marked hevc=1, in words",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir("distributary-rtmp-switch-");
        const h264 = join(dir, "h264.ts");
        const hevc = join(dir, "hevc.ts");
        bframeStream(h264, 3);
        bframeStream(hevc, 3, "libx265", 10);
        const receiver = yield* testReceiver(18628);
        const output = yield* makeOutput("rtmp://127.0.0.1:18628/live/key", {
          reconnect: { firstDelay: "30 seconds" },
        });
        yield* Effect.forkScoped(output.run);
        yield* play(output, yield* Effect.promise(() => readFile(h264)), 3);
        expect(output.status().state).toBe("connected");
        yield* play(output, yield* Effect.promise(() => readFile(hevc)), 3);
        const message = yield* eventually("an error", () => output.status().lastError ?? undefined);
        expect(message).toContain("the channel's video is HEVC, which needs Enhanced RTMP: add hevc=1");
        const video = receiver.messages.filter((m) => m.type === MESSAGE.video);
        expect(video.length).toBeGreaterThan(50);
        expect(video.filter((m) => ((m.body[0] ?? 0) & 0x80) !== 0)).toEqual([]);
      }),
  );

  it.scopedLive(
    "MPEG-2 video with MPEG audio layer II gives an error naming them and what RTMP carries",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir("distributary-rtmp-mpeg2-");
        const input = join(dir, "in.ts");
        execFileSync("ffmpeg", [
          ...[
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
          ],
          ...[
            "-f",
            "lavfi",
            "-i",
            "sine=sample_rate=48000",
            "-t",
            "2",
            "-c:v",
            "mpeg2video",
            "-c:a",
            "mp2",
            "-f",
            "mpegts",
            input,
          ],
        ]);
        const ts = yield* Effect.promise(() => readFile(input));
        const output = yield* makeOutput("rtmp://127.0.0.1:18625/live/key", {
          reconnect: { firstDelay: "30 seconds" },
        });
        yield* Effect.forkScoped(output.run);
        yield* play(output, ts, 2);
        const message = yield* eventually("an error", () => output.status().lastError ?? undefined);
        // Told before any server is called (none listens here): the PMT names the video's codec, and the audio's
        // layer once a frame of it was seen.
        expect(message).toMatch(
          /^the channel carries MPEG-2 video( and MPEG audio layer II)?, which RTMP cannot carry: RTMP takes H\.264, HEVC or AV1 video with AAC or MP3 audio$/,
        );
        expect(output.status().lastErrorReason).toBe("unsupported_media");
      }),
  );
});
