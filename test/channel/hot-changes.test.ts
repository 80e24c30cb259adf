import { expect, layer } from "@effect/vitest";
import { Effect, Fiber } from "effect";
import { PacketCore } from "../../src/core/packet-core.ts";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import { Channels } from "../../src/effects/channel/channels.ts";
import { eventually, freeUdpPort, type UdpSink, udpSink } from "../support/peers.ts";
import { asRtp, chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const ccErrors = (ts: Uint8Array): number => {
  const core = PacketCore.load();
  for (const chunk of chunkTs(ts)) core.push(chunk);
  return core.snapshot().tr101290.ccErrors;
};

const rtpPayloads = (sink: UdpSink): Buffer =>
  Buffer.concat(sink.datagrams.map((datagram) => datagram.subarray(12)));

layer(Channels.Test, { excludeTestServices: true })("hot changes touch only the output changed", (it) => {
  it.scoped(
    "adding and removing a fourth output twenty times and re-pointing another leaves the rest intact",
    () =>
      Effect.gen(function* () {
        const channels = yield* Channels;
        const [a, b, c1, c2, d] = yield* Effect.all([udpSink, udpSink, udpSink, udpSink, udpSink]);
        const inputPort = yield* freeUdpPort;
        yield* channels.start({
          id: ChannelId.make("hot"),
          name: "hot",
          primary: { ip: "127.0.0.1", port: inputPort },
          backup: null,
          outputs: [
            { id: OutputId.make("a"), name: "a", url: `udp://127.0.0.1:${a.port}`, enabled: true },
            { id: OutputId.make("b"), name: "b", url: `rtp://127.0.0.1:${b.port}`, enabled: true },
            { id: OutputId.make("c"), name: "c", url: `udp://127.0.0.1:${c1.port}`, enabled: true },
          ],
        });
        // Six seconds of stream at 5 Mbit/s, long enough for every change to happen mid-stream.
        const generator = new TsGenerator({ seed: 3, bitrate: 5_000_000 });
        const ts = generator.packets(Math.round((6 * 5_000_000) / (188 * 8)));
        const datagrams = asRtp(chunkTs(ts));
        const sending = yield* Effect.fork(sendPaced(datagrams, inputPort, 0.5));

        yield* eventually("stream flowing", () => (a.totalBytes() > 0 ? true : undefined));
        for (let round = 0; round < 20; round++) {
          yield* channels.applyOutput(ChannelId.make("hot"), {
            id: OutputId.make("d"),
            name: "d",
            url: `udp://127.0.0.1:${d.port}`,
            enabled: true,
          });
          const before = d.totalBytes();
          yield* eventually(`output d receiving (round ${round})`, () =>
            d.totalBytes() > before ? true : undefined,
          );
          yield* channels.removeOutput(ChannelId.make("hot"), OutputId.make("d"));
          if (round === 10) {
            yield* channels.applyOutput(ChannelId.make("hot"), {
              id: OutputId.make("c"),
              name: "c",
              url: `udp://127.0.0.1:${c2.port}`,
              enabled: true,
            });
          }
        }
        yield* Fiber.join(sending);
        yield* eventually("a and b complete", () =>
          a.totalBytes() >= ts.length && rtpPayloads(b).length >= ts.length ? true : undefined,
        );

        expect(Buffer.compare(a.bytes(), Buffer.from(ts))).toBe(0);
        expect(Buffer.compare(rtpPayloads(b), Buffer.from(ts))).toBe(0);
        expect(ccErrors(a.bytes())).toBe(0);
        expect(ccErrors(rtpPayloads(b))).toBe(0);
        const sequences = b.datagrams.map((datagram) => datagram.readUInt16BE(2));
        const steps = sequences.slice(1).map((sequence, i) => (sequence - (sequences[i] ?? 0)) & 0xffff);
        expect(steps.every((step) => step === 1)).toBe(true);
        // The re-pointed output moved: the new destination receives, the old one stopped.
        yield* eventually("c2 receiving", () => (c2.totalBytes() > 0 ? true : undefined));
        expect(c1.totalBytes() + c2.totalBytes()).toBeLessThanOrEqual(ts.length);
        const outputs = (yield* channels.status(ChannelId.make("hot")))?.outputs ?? [];
        expect(outputs.map((output) => output.id).sort()).toEqual(["a", "b", "c"]);
        for (const output of outputs) expect(output.queueDrops).toBe(0);
      }),
    60_000,
  );
});
