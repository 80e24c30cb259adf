/**
 * The vector path (src/effects/ingest/input-path.ts `runOf`): a channel whose outputs are all plain UDP takes a
 * whole read of its input at once (one packet core call, one run to the outputs); a channel with an output
 * that takes datagrams one by one (here RTP) is handed each. Both deliver the input byte for byte. A channel
 * whose RTMP outputs' remux is the only other reader takes whole reads too, and its RTMP output sends the very
 * frames the same channel sends when it is handed each datagram. The test counts the input path's entries
 * through its test seam (ChannelFaults.onDatagram): once per read on the vector path, once per datagram
 * otherwise.
 */
import { createSocket } from "node:dgram";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Effect, Layer } from "effect";
import { afterEach, expect, it } from "vitest";
import { MESSAGE } from "../../src/core/rtmp/chunks.ts";
import { ChannelFaults } from "../../src/effects/channel/channel-types.ts";
import { markOwnPort } from "../../src/effects/runtime/sockets/own-ports.ts";
import { eventually, freeUdpPort, makeTestApp, type TestApp } from "../support/app.ts";
import { withBothInputPaths } from "../support/input-paths.ts";
import { encodeTestStream } from "../support/media.ts";
import { freeTcpPort, udpSink } from "../support/peers.ts";
import { type TestReceiver, tempDir, testReceiver } from "../support/rtmp-peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

type Sink = Effect.Effect.Success<typeof udpSink>;

/** Sends the stream to two channels' inputs at once, and checks that each one's UDP output has it byte for byte. */
const bothByteForByte = (
  datagrams: ReadonlyArray<Uint8Array>,
  stream: Buffer,
  [aPort, a]: readonly [number, Sink],
  [bPort, b]: readonly [number, Sink],
  perMs: number,
) =>
  Effect.gen(function* () {
    yield* Effect.all([sendPaced(datagrams, aPort, perMs), sendPaced(datagrams, bPort, perMs)], {
      concurrency: 2,
    });
    yield* Effect.promise(() =>
      eventually("both channels' UDP outputs have the whole stream", () =>
        a.totalBytes() >= stream.length && b.totalBytes() >= stream.length ? true : undefined,
      ),
    );
    expect(a.bytes().equals(stream)).toBe(true);
    expect(b.bytes().equals(stream)).toBe(true);
  });

it("plain UDP outputs take a whole read at once; an RTP output beside them has each datagram; both byte for byte", async () => {
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const both = yield* withBothInputPaths;
        app = both.app;
        const { entries, plain, mixed, rtp, plainPort, mixedPort } = both;
        const stream = Buffer.from(new TsGenerator({ seed: 8, bitrate: 8_000_000 }).packets(7 * 600));
        const datagrams = chunkTs(stream);
        // Four datagrams a millisecond: several wait for each read (every 3 ms).
        yield* bothByteForByte(datagrams, stream, [plainPort, plain], [mixedPort, mixed], 4);
        // The RTP output's datagrams carry the same TS behind their 12-byte headers.
        expect(rtp.totalBytes()).toBe(stream.length + 12 * datagrams.length);
        expect(entries.get("mixed")).toBe(datagrams.length);
        expect(entries.get("plain") ?? 0).toBeGreaterThan(0);
        expect(entries.get("plain") ?? 0).toBeLessThan(datagrams.length / 2);
      }),
    ),
  );
});

/** A receiver's video frames' bodies (the sequence headers left out) and their times. */
const videoOf = (receiver: TestReceiver) =>
  receiver.messages
    .filter((message) => message.type === MESSAGE.video && message.body[1] !== 0)
    .map((message) => ({ timestamp: message.timestamp, body: Buffer.from(message.body) }));

it("a channel whose only reader beside its UDP output is the RTMP remux takes whole reads, and sends the frames it sends datagram by datagram", async () => {
  const entries = new Map<string, number>();
  const counting = Layer.succeed(ChannelFaults, {
    onDatagram: (channelId: string) => entries.set(channelId, (entries.get(channelId) ?? 0) + 1),
  });
  app = await makeTestApp(undefined, counting);
  const test = app;
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir("whole-reads-");
        const path = join(dir, "stream.ts");
        // About 10 Mbit/s in real time: three or four datagrams wait for each read (every 3 ms), and the RTMP
        // outputs, which connect once the channel has seen its PMT, get most of the stream.
        yield* encodeTestStream(path, 6, "10M", "1280x720");
        const stream = yield* Effect.promise(() => readFile(path));
        const datagrams = chunkTs(stream);
        const [wholeRtmp, eachRtmp] = [yield* freeTcpPort, yield* freeTcpPort];
        const receivers = { whole: yield* testReceiver(wholeRtmp), each: yield* testReceiver(eachRtmp) };
        const [whole, each, rtp] = [yield* udpSink, yield* udpSink, yield* udpSink];
        const ports = { whole: yield* Effect.promise(freeUdpPort), each: yield* Effect.promise(freeUdpPort) };
        yield* Effect.promise(async () => {
          for (const [id, outputs] of [
            [
              "whole",
              [
                { name: "udp", protocol: "udp", url: `udp://127.0.0.1:${whole.port}` },
                { name: "rtmp", protocol: "rtmp", url: `rtmp://127.0.0.1:${wholeRtmp}/live/whole` },
              ],
            ],
            [
              "each",
              [
                { name: "udp", protocol: "udp", url: `udp://127.0.0.1:${each.port}` },
                { name: "rtp", protocol: "rtp", url: `rtp://127.0.0.1:${rtp.port}` },
                { name: "rtmp", protocol: "rtmp", url: `rtmp://127.0.0.1:${eachRtmp}/live/each` },
              ],
            ],
          ] as const) {
            const created = await test.request("/api/channels", {
              method: "POST",
              body: JSON.stringify({ id, name: id, rtp_ip: "127.0.0.1", rtp_port: ports[id], outputs }),
            });
            expect(created.status).toBe(201);
            expect((await test.request(`/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
          }
        });
        const perMs = datagrams.length / 6000;
        yield* bothByteForByte(datagrams, stream, [ports.whole, whole], [ports.each, each], perMs);
        expect(entries.get("each")).toBe(datagrams.length);
        expect(entries.get("whole") ?? 0).toBeGreaterThan(0);
        expect(entries.get("whole") ?? 0).toBeLessThan(datagrams.length / 2);

        // Each output starts at a keyframe of its own: from the later start on, the two send the same frames,
        // a frame's time as far from the first one's in both.
        const frames = yield* Effect.promise(() =>
          eventually("both RTMP outputs to send four seconds of frames", () => {
            const got = { whole: videoOf(receivers.whole), each: videoOf(receivers.each) };
            return got.whole.length >= 100 && got.each.length >= 100 ? got : undefined;
          }),
        );
        const [later, earlier] =
          frames.each.findIndex((frame) => frame.body.equals(frames.whole[0]?.body ?? Buffer.alloc(0))) >= 0
            ? [frames.whole, frames.each]
            : [frames.each, frames.whole];
        const from = earlier.findIndex((frame) => frame.body.equals(later[0]?.body ?? Buffer.alloc(0)));
        expect(from).toBeGreaterThanOrEqual(0);
        const overlap = Math.min(later.length, earlier.length - from);
        expect(overlap).toBeGreaterThanOrEqual(75);
        const times = (list: typeof later, start: number) =>
          list.slice(start, start + overlap).map((frame) => frame.timestamp - (list[start]?.timestamp ?? 0));
        expect(times(later, 0)).toEqual(times(earlier, from));
        for (let i = 0; i < overlap; i++)
          expect(later[i]?.body.equals(earlier[from + i]?.body ?? Buffer.alloc(0))).toBe(true);
      }),
    ),
  );
});

it("a trusted sender whose port turns out to be one of the service's own outputs' is refused as a loop", async () => {
  // A seam set runs the channels on this thread, where the test can mark a port as the service's own.
  app = await makeTestApp(undefined, Layer.succeed(ChannelFaults, { onDatagram: () => {} }));
  const test = app;
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const output = yield* udpSink;
        const port = yield* Effect.promise(() => freeUdpPort());
        const created = yield* Effect.promise(() =>
          test.request("/api/channels", {
            method: "POST",
            body: JSON.stringify({
              id: "loop",
              name: "loop",
              rtp_ip: "127.0.0.1",
              rtp_port: port,
              outputs: [{ name: "a", protocol: "udp", url: `udp://127.0.0.1:${output.port}` }],
            }),
          }),
        );
        expect(created.status).toBe(201);
        yield* Effect.promise(() => test.request("/api/channels/loop/start", { method: "POST" }));
        const sender = createSocket("udp4");
        yield* Effect.addFinalizer(() => Effect.sync(() => sender.close()));
        yield* Effect.promise(() => new Promise<void>((resolve) => sender.bind(0, "127.0.0.1", resolve)));
        const generator = new TsGenerator({ seed: 12 });
        const first = chunkTs(generator.packets(7 * 50));
        for (const datagram of first) sender.send(datagram, port, "127.0.0.1");
        yield* Effect.promise(() =>
          eventually("the sender's stream at the output", () =>
            output.totalBytes() >= 50 * 1316 ? true : undefined,
          ),
        );
        // The sender's port is now one the service sends from (as when an output's socket takes a port a
        // sender had): what comes from it is a loop, and is dropped however trusted it was.
        const release = markOwnPort(sender.address().port);
        yield* Effect.addFinalizer(() => Effect.sync(release));
        const second = chunkTs(generator.packets(7 * 20));
        for (const datagram of second) sender.send(datagram, port, "127.0.0.1");
        const rejected = yield* Effect.promise(() =>
          eventually("the datagrams counted as the service's own", async () => {
            const stats = (await (await test.request("/api/channels/loop/stats")).json()) as {
              inputs: ReadonlyArray<{ rejected: Record<string, number> }>;
            };
            const own = stats.inputs[0]?.rejected.own_output ?? 0;
            return own >= second.length ? own : undefined;
          }),
        );
        expect(rejected).toBe(second.length);
        expect(output.totalBytes()).toBe(50 * 1316);
      }),
    ),
  );
});
