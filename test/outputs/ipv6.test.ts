/**
 * Outputs and link inputs on IPv6 sockets, on this machine's ::1: a UDP output to [::1] byte for byte; an SRT
 * caller to srt-live-transmit listening on [::1]; an SRT listener on [::] (dual stack) that a caller reaches on
 * ::1 and another on 127.0.0.1; SRT inputs listening on [::] and calling [::1]; an RTMP input on [::] that
 * ffmpeg publishes to at [::1]. srt-live-transmit's UDP side takes IPv4 only: it hands what it gets to a sink
 * on 127.0.0.1 (or reads from one). The status shows the peers' IPv6 addresses in brackets.
 */
import { createSocket } from "node:dgram";
import { it } from "@effect/vitest";
import { Effect } from "effect";
import { describe, expect } from "vitest";
import type { SrtTarget } from "../../src/domain/url/srt.ts";
import { parseOutputUrl } from "../../src/domain/url/url.ts";
import { bindRistInput, ristInputTarget } from "../../src/effects/ingest/rist-receiver.ts";
import { bindRtmpInput, rtmpInputTargetOf } from "../../src/effects/ingest/rtmp-receiver.ts";
import { bindSrtInput } from "../../src/effects/ingest/srt-receiver.ts";
import { makeOutput, type Output } from "../../src/effects/outputs/writer.ts";
import { spawnChild } from "../../src/effects/runtime/process/child-process.ts";
import {
  eventually,
  freeTcpPort,
  freeUdpPort,
  type UdpSink,
  udpPortBound,
  udpSink,
} from "../support/peers.ts";
import { collector, expectSame, primed, ristStreamWithCues } from "../support/rist-stream.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const options = { srtStatsIntervalMs: 100 };

const connected = (output: Output) =>
  eventually(
    `${output.maskedUrl} to connect (${output.status().lastError})`,
    () => (output.status().state === "connected" ? true : undefined),
    { timeoutMs: 15_000 },
  );

/** Offers `datagrams` 7-packet chunks at about 1.5 Mb/s and returns them. */
const sendLive = (outputs: ReadonlyArray<Output>, generator: TsGenerator, datagrams: number) =>
  Effect.gen(function* () {
    const sent: Array<Uint8Array> = [];
    for (let i = 0; i < datagrams; i++) {
      const chunk = generator.datagram();
      sent.push(chunk);
      for (const output of outputs) output.offer(chunk);
      if (i % 2 === 1) yield* Effect.sleep("10 millis");
    }
    return Buffer.concat(sent.map((chunk) => Buffer.from(chunk)));
  });

const received = (sink: { readonly totalBytes: () => number; readonly bytes: () => Buffer }, bytes: number) =>
  eventually(`${bytes} bytes at the sink (have ${sink.totalBytes()})`, () =>
    sink.totalBytes() >= bytes ? true : undefined,
  ).pipe(Effect.map(() => sink.bytes()));

/** A UDP sink on [::1]. */
const udp6Sink = Effect.acquireRelease(
  Effect.async<{ port: number; bytes: () => Buffer; totalBytes: () => number; close: () => void }>(
    (resume) => {
      const socket = createSocket("udp6");
      const datagrams: Buffer[] = [];
      let total = 0;
      socket.on("message", (message) => {
        datagrams.push(message);
        total += message.length;
      });
      socket.bind(0, "::1", () =>
        resume(
          Effect.succeed({
            port: socket.address().port,
            bytes: () => Buffer.concat(datagrams),
            totalBytes: () => total,
            close: () => socket.close(),
          }),
        ),
      );
    },
  ),
  (sink) => Effect.sync(sink.close),
);

const srtLiveTransmit = (from: string, sink: UdpSink) =>
  spawnChild({ command: "srt-live-transmit", args: [from, `udp://127.0.0.1:${sink.port}`] });

describe("outputs on IPv6", () => {
  it.scopedLive("udp://[::1]: the same TS byte for byte", () =>
    Effect.gen(function* () {
      const sink = yield* udp6Sink;
      const output = yield* makeOutput(`udp://[::1]:${sink.port}`, options);
      yield* Effect.forkScoped(output.run);
      yield* connected(output);
      expect(output.status().url).toBe(`udp://[::1]:${sink.port}`);
      const expected = yield* sendLive([output], new TsGenerator({ seed: 61 }), 80);
      expect((yield* received(sink, expected.length)).equals(expected)).toBe(true);
    }),
  );

  it.scopedLive("srt caller to a listener on [::1], and a listener on [::] reached over IPv6 and IPv4", () =>
    Effect.gen(function* () {
      const [callerSink, v6Sink, v4Sink] = [yield* udpSink, yield* udpSink, yield* udpSink];
      const peerPort = yield* freeUdpPort;
      yield* srtLiveTransmit(`srt://[::1]:${peerPort}?mode=listener`, callerSink);
      const caller = yield* makeOutput(`srt://[::1]:${peerPort}?latency=80`, options);
      const listenPort = yield* freeUdpPort;
      const listener = yield* makeOutput(`srt://[::]:${listenPort}?mode=listener&latency=80`, options);
      yield* Effect.forkScoped(caller.run);
      yield* Effect.forkScoped(listener.run);
      yield* connected(caller);
      const called = yield* eventually("the caller's peer", () => caller.status().srt?.peers[0]?.peer);
      expect(called).toBe(`[::1]:${peerPort}`);
      yield* srtLiveTransmit(`srt://[::1]:${listenPort}?mode=caller&latency=80`, v6Sink);
      yield* srtLiveTransmit(`srt://127.0.0.1:${listenPort}?mode=caller&latency=80`, v4Sink);
      const peers = yield* eventually("both receivers of the listener", () => {
        const found = listener.status().srt?.peers ?? [];
        return found.length === 2 ? found.map((peer) => peer.peer) : undefined;
      });
      // A dual-stack socket sees an IPv4 caller as an IPv4-mapped IPv6 address.
      expect([...peers].sort()).toEqual([
        expect.stringMatching(/^\[::1\]:\d+$/),
        expect.stringMatching(/^\[::ffff:7f00:1\]:\d+$/),
      ]);
      const expected = yield* sendLive([caller, listener], new TsGenerator({ seed: 62 }), 80);
      for (const sink of [callerSink, v6Sink, v4Sink])
        expect((yield* received(sink, expected.length)).equals(expected)).toBe(true);
    }),
  );
});

const srtTarget = (url: string): SrtTarget => {
  const parsed = parseOutputUrl(url);
  if (parsed._tag === "Left" || parsed.right.protocol !== "srt") throw new Error(`not an SRT URL: ${url}`);
  return parsed.right;
};

describe("inputs on IPv6", () => {
  it.scopedLive(
    "SRT: a listener on [::] called at ::1, and a caller to a listener on [::1], byte for byte",
    () =>
      Effect.gen(function* () {
        for (const [mode, ours, theirs] of [
          ["listener", (port: number) => `srt://[::]:${port}?mode=listener&latency=80`, "caller"],
          ["caller", (port: number) => `srt://[::1]:${port}?latency=80`, "listener"],
        ] as const) {
          const port = yield* freeUdpPort;
          const udpPort = yield* freeUdpPort;
          const datagrams: Buffer[] = [];
          const input = yield* bindSrtInput(srtTarget(ours(port)), (datagram) => datagrams.push(datagram));
          yield* spawnChild({
            command: "srt-live-transmit",
            args: [`udp://127.0.0.1:${udpPort}`, `srt://[::1]:${port}?mode=${theirs}&latency=80`],
          });
          yield* Effect.orDie(udpPortBound(udpPort));
          const sender = yield* eventually(`the ${mode} input's sender`, () => input.sender() ?? undefined);
          // A listener names its caller (its port); a caller the address it called.
          if (mode === "listener") expect(sender).toMatch(/^\[::1\]:\d+$/);
          else expect(sender).toBe(`[::1]:${port}`);
          const ts = new TsGenerator({ seed: 63, bitrate: 2_000_000 }).packets(7 * 150);
          yield* sendPaced(chunkTs(ts), udpPort, 0.25);
          yield* eventually(`${ts.length} bytes (${mode})`, () =>
            Buffer.concat(datagrams).length >= ts.length ? true : undefined,
          );
          expect(Buffer.concat(datagrams).equals(Buffer.from(ts)), mode).toBe(true);
        }
      }),
  );

  it.scopedLive("RIST: an input listening on [::1] (main profile) that ristsender calls, byte for byte", () =>
    Effect.gen(function* () {
      const port = yield* freeUdpPort;
      const udpPort = yield* freeUdpPort;
      const got = collector();
      const target = yield* ristInputTarget(`rist://@[::1]:${port}`);
      yield* bindRistInput(target, got.onDatagram);
      yield* spawnChild({
        command: "ristsender",
        args: ["-i", `udp://127.0.0.1:${udpPort}`, "-o", `rist://[::1]:${port}`, "-p", "1"],
      });
      yield* Effect.orDie(udpPortBound(udpPort));
      // The link is open once primers come through: the stream is sent after them, not into a handshake.
      yield* primed(udpPort, got.primed);
      const ts = ristStreamWithCues(64);
      yield* sendPaced(chunkTs(ts), udpPort, 0.25);
      yield* eventually(
        `${ts.length} bytes over RIST`,
        () => (got.bytes().length >= ts.length ? true : undefined),
        {
          timeoutMs: 15_000,
        },
      );
      expectSame(got.bytes(), ts);
    }),
  );

  it.scopedLive("RTMP: an input on [::] that ffmpeg publishes to at [::1]", () =>
    Effect.gen(function* () {
      const port = yield* freeTcpPort;
      const datagrams: Buffer[] = [];
      const target = yield* rtmpInputTargetOf(`rtmp://[::]:${port}/live/k6`);
      const input = yield* bindRtmpInput(target, (datagram) => datagrams.push(datagram));
      expect(input.figures().listen).toBe(`rtmp://[::]:${port}`);
      yield* spawnChild({
        command: "ffmpeg",
        args: [
          ...["-hide_banner", "-loglevel", "error", "-re"],
          ...["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "3"],
          ...["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "flv"],
          `rtmp://[::1]:${port}/live/k6`,
        ],
      });
      const publisher = yield* eventually("the publisher", () => input.figures().publisher ?? undefined, {
        timeoutMs: 15_000,
      });
      expect(publisher).toMatch(/::1/);
      yield* eventually("TS from the publisher", () => (datagrams.length > 50 ? true : undefined), {
        timeoutMs: 15_000,
      });
      expect(datagrams.every((datagram) => datagram.length % 188 === 0 && datagram[0] === 0x47)).toBe(true);
    }),
  );
});
