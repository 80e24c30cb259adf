import { it } from "@effect/vitest";
import { Effect, Exit, Fiber, Scope } from "effect";
import { describe, expect } from "vitest";
import { makeOutput, type Output } from "../../src/effects/outputs/writer.ts";
import {
  eventually,
  freeUdpPort,
  srtCallerPeer,
  srtListenerPeer,
  type UdpSink,
  udpSink,
} from "../support/peers.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const passphrase = "correct-horse-battery";

const connected = (output: Output, timeoutMs = 15_000) =>
  eventually(
    `${output.maskedUrl} to connect (${output.status().lastError})`,
    () => (output.status().state === "connected" ? true : undefined),
    { timeoutMs },
  );

/** Offers `datagrams` 7-packet chunks at about 1.5 Mb/s, as a live channel would, and returns them. */
const sendLive = (output: Output, generator: TsGenerator, datagrams: number) =>
  Effect.gen(function* () {
    const sent: Array<Uint8Array> = [];
    for (let i = 0; i < datagrams; i++) {
      const chunk = generator.datagram();
      sent.push(chunk);
      output.offer(chunk);
      if (i % 2 === 1) yield* Effect.sleep("10 millis");
    }
    return Buffer.concat(sent.map((chunk) => Buffer.from(chunk)));
  });

const received = (sink: UdpSink, expected: Buffer) =>
  eventually(`${expected.length} bytes at the sink (have ${sink.totalBytes()})`, () =>
    sink.totalBytes() >= expected.length ? true : undefined,
  ).pipe(Effect.map(() => sink.bytes()));

const options = { srtStatsIntervalMs: 100 };

describe("srt output", () => {
  it.scopedLive("caller: a listener peer forwards the same TS byte for byte, and link stats appear", () =>
    Effect.gen(function* () {
      const sink = yield* udpSink;
      const peer = yield* srtListenerPeer({ forwardTo: sink.port });
      const output = yield* makeOutput(`srt://127.0.0.1:${peer.port}?latency=80`, options);
      yield* Effect.forkScoped(output.run);
      yield* connected(output);
      const expected = yield* sendLive(output, new TsGenerator({ seed: 11 }), 150);
      const bytes = yield* received(sink, expected);
      expect(bytes.equals(expected)).toBe(true);
      expect(sink.datagrams.every((datagram) => datagram.length === 1316)).toBe(true);
      const stats = yield* eventually("srt stats", () => output.status().srt ?? undefined);
      expect(typeof stats.rttMs).toBe("number");
      expect(stats.sendRateMbps).toBeGreaterThanOrEqual(0);
      expect(output.status()).toMatchObject({ bytesSent: expected.length, reconnects: 0, queueDrops: 0 });
    }),
  );

  it.scopedLive("listener with a passphrase: a caller peer connects and gets the same TS", () =>
    Effect.gen(function* () {
      const sink = yield* udpSink;
      const port = yield* freeUdpPort;
      const output = yield* makeOutput(
        `srt://127.0.0.1:${port}?mode=listener&passphrase=${passphrase}`,
        options,
      );
      yield* Effect.forkScoped(output.run);
      expect(output.status().url).toBe(`srt://127.0.0.1:${port}?mode=listener&passphrase=****`);
      yield* srtCallerPeer({ port, forwardTo: sink.port, passphrase });
      yield* connected(output);
      const expected = yield* sendLive(output, new TsGenerator({ seed: 12 }), 100);
      expect((yield* received(sink, expected)).equals(expected)).toBe(true);
      yield* eventually("srt stats", () => output.status().srt ?? undefined);
    }),
  );

  it.scopedLive("caller with a passphrase; a wrong one is reported in words, without the secret", () =>
    Effect.gen(function* () {
      const sink = yield* udpSink;
      const peer = yield* srtListenerPeer({ forwardTo: sink.port, passphrase });
      const good = yield* makeOutput(
        `srt://127.0.0.1:${peer.port}?passphrase=${passphrase}&pbkeylen=32`,
        options,
      );
      yield* Effect.forkScoped(good.run);
      yield* connected(good);
      const expected = yield* sendLive(good, new TsGenerator({ seed: 13 }), 60);
      expect((yield* received(sink, expected)).equals(expected)).toBe(true);

      // srt-live-transmit serves one caller at a time, so the wrong passphrase gets a listener of its own.
      const second = yield* srtListenerPeer({ forwardTo: sink.port, passphrase });
      const wrong = yield* makeOutput(
        `srt://127.0.0.1:${second.port}?passphrase=not-the-passphrase`,
        options,
      );
      yield* Effect.forkScoped(wrong.run);
      const message = yield* eventually("an error", () => wrong.status().lastError ?? undefined);
      expect(message).toBe(`the SRT peer at 127.0.0.1:${second.port} rejected the passphrase`);
      expect(wrong.status()).toMatchObject({ lastErrorReason: "auth_rejected" });
      expect(JSON.stringify(wrong.status())).not.toContain("not-the-passphrase");
    }),
  );

  it.scopedLive("a listener that goes away and comes back is reconnected without anyone acting", () =>
    Effect.gen(function* () {
      const sink = yield* udpSink;
      const peerScope = yield* Scope.make();
      const peer = yield* srtListenerPeer({ forwardTo: sink.port }).pipe(Scope.extend(peerScope));
      const output = yield* makeOutput(`srt://127.0.0.1:${peer.port}?latency=80`, options);
      yield* Effect.forkScoped(output.run);
      yield* connected(output);

      yield* Scope.close(peerScope, Exit.void);
      // The SRT sender notices the peer is gone once its keepalives go unanswered.
      const during = yield* Effect.fork(sendLive(output, new TsGenerator({ seed: 14 }), 400));
      yield* eventually(
        "the loss to be noticed",
        () => (output.status().state !== "connected" ? true : undefined),
        {
          timeoutMs: 20_000,
        },
      );

      yield* srtListenerPeer({ forwardTo: sink.port, port: peer.port });
      yield* connected(output, 30_000);
      yield* Fiber.join(during);
      expect(output.status().reconnects).toBeGreaterThanOrEqual(1);
      expect(output.status().lastError).toMatch(/127\.0\.0\.1:\d+ (disconnected|\(is it running)/);
      const expected = yield* sendLive(output, new TsGenerator({ seed: 15 }), 60);
      // Data sent before the reconnect may still drain in front of it; what was sent after must end the stream.
      yield* eventually("the data sent after the reconnect, byte for byte", () => {
        const all = sink.bytes();
        return all.length >= expected.length && all.subarray(all.length - expected.length).equals(expected)
          ? true
          : undefined;
      });
    }),
  );
});
