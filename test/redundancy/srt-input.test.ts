/**
 * SRT inputs (src/effects/ingest/srt-receiver.ts) against real senders: srt-live-transmit calling our listener
 * and listening for our caller, and ffmpeg calling our listener. What arrives is the sent TS byte for byte,
 * every SCTE-35 section identical, no continuity error; a sender that goes and comes back is received again.
 */
import { it } from "@effect/vitest";
import { Effect, Exit, Scope } from "effect";
import { describe, expect } from "vitest";
import { encodeSection } from "../../src/core/scte35/index.ts";
import type { SrtTarget } from "../../src/domain/url/srt.ts";
import { parseOutputUrl } from "../../src/domain/url/url.ts";
import { bindSrtInput } from "../../src/effects/ingest/srt-receiver.ts";
import { spawnChild } from "../../src/effects/runtime/process/child-process.ts";
import { analyse } from "../support/analyse.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import { eventually, freeUdpPort, srtSenderPeer, udpPortBound } from "../support/peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const passphrase = "input-passphrase-0123";

const target = (url: string): SrtTarget => {
  const parsed = parseOutputUrl(url);
  if (parsed._tag === "Left" || parsed.right.protocol !== "srt") throw new Error(`not an SRT URL: ${url}`);
  return parsed.right;
};

/** Two seconds of TS with three SCTE-35 splice_inserts. */
const streamWithCues = (seed: number) => {
  const generator = new TsGenerator({ seed, bitrate: 2_000_000 });
  for (const [index, at] of [300, 900, 1500].entries()) {
    generator.insertScte35(encodeSection(immediateSpliceOut(100 + index)), at);
  }
  return generator.packets(Math.round((2_000_000 * 2) / 8 / 188 / 7) * 7);
};

const collector = () => {
  const datagrams: Array<Buffer> = [];
  return {
    onDatagram: (datagram: Buffer) => datagrams.push(datagram),
    bytes: () => Buffer.concat(datagrams),
    count: () => datagrams.length,
  };
};

const expectSame = (received: Buffer, sent: Uint8Array) => {
  expect(Buffer.compare(received, Buffer.from(sent))).toBe(0);
  const expected = analyse(sent);
  const seen = analyse(received);
  expect(expected.sections.length).toBe(3);
  expect(seen.sections).toEqual(expected.sections);
  expect(seen.ccErrors).toBe(0);
};

describe("SRT input", () => {
  it.scopedLive(
    "listener: srt-live-transmit calls with a passphrase; the TS arrives byte for byte, cues identical",
    () =>
      Effect.gen(function* () {
        const port = yield* freeUdpPort;
        const got = collector();
        const input = yield* bindSrtInput(
          target(`srt://127.0.0.1:${port}?mode=listener&passphrase=${passphrase}&latency=80`),
          got.onDatagram,
        );
        const sender = yield* srtSenderPeer({ mode: "caller", port, passphrase });
        yield* eventually("the sender to connect", () => input.sender() ?? undefined);
        const ts = streamWithCues(51);
        yield* sendPaced(chunkTs(ts), sender.udpPort, 0.25);
        yield* eventually(`${ts.length} bytes`, () => (got.bytes().length >= ts.length ? true : undefined));
        expectSame(got.bytes(), ts);
      }),
  );

  it.scopedLive("caller: ours calls srt-live-transmit's listener, and calls again when it comes back", () =>
    Effect.gen(function* () {
      const port = yield* freeUdpPort;
      const got = collector();
      const input = yield* bindSrtInput(target(`srt://127.0.0.1:${port}?latency=80`), got.onDatagram);
      const firstScope = yield* Scope.make();
      const first = yield* srtSenderPeer({ mode: "listener", port }).pipe(Scope.extend(firstScope));
      yield* eventually("connected to the listener", () => input.sender() ?? undefined);
      const ts = streamWithCues(52);
      yield* sendPaced(chunkTs(ts), first.udpPort, 0.25);
      yield* eventually(`${ts.length} bytes`, () => (got.bytes().length >= ts.length ? true : undefined));
      expectSame(got.bytes(), ts);

      yield* Scope.close(firstScope, Exit.void);
      yield* eventually("the loss noticed", () => (input.sender() === null ? true : undefined), {
        timeoutMs: 15_000,
      });
      const second = yield* srtSenderPeer({ mode: "listener", port });
      yield* eventually("connected again", () => input.sender() ?? undefined, { timeoutMs: 15_000 });
      const before = got.bytes().length;
      const again = streamWithCues(53);
      yield* sendPaced(chunkTs(again), second.udpPort, 0.25);
      yield* eventually("the second stream", () =>
        got.bytes().length >= before + again.length ? true : undefined,
      );
      expectSame(got.bytes().subarray(before), again);
    }),
  );

  it.scopedLive("listener: ffmpeg calls and sends what it receives; it arrives byte for byte", () =>
    Effect.gen(function* () {
      const port = yield* freeUdpPort;
      const got = collector();
      const input = yield* bindSrtInput(
        target(`srt://127.0.0.1:${port}?mode=listener&latency=120`),
        got.onDatagram,
      );
      // ffmpeg relays, untouched (-f data in and out), what arrives on a UDP port to our listener.
      const udpPort = yield* freeUdpPort;
      yield* spawnChild({
        command: "ffmpeg",
        args: [
          ...["-hide_banner", "-nostdin", "-loglevel", "error"],
          ...["-probesize", "32", "-analyzeduration", "0", "-fflags", "nobuffer"],
          ...["-f", "data", "-i", `udp://127.0.0.1:${udpPort}`, "-map", "0", "-c", "copy"],
          ...["-flush_packets", "1", "-f", "data"],
          `srt://127.0.0.1:${port}?mode=caller&pkt_size=1316`,
        ],
      });
      // ffmpeg opens its output once its input has data, so it calls while the stream flows; the stream may
      // start only once ffmpeg has bound its UDP port, or its first datagrams would be lost before it.
      yield* udpPortBound(udpPort);
      const ts = streamWithCues(54);
      yield* sendPaced(chunkTs(ts), udpPort, 0.25);
      yield* eventually(`${ts.length} bytes`, () => (got.bytes().length >= ts.length ? true : undefined));
      expect(input.sender()).toMatch(/^127\.0\.0\.1:\d+$/);
      expectSame(got.bytes(), ts);
    }),
  );
});
