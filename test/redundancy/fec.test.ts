import { expect, layer } from "@effect/vitest";
import { Effect } from "effect";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import { Channels } from "../../src/effects/channel/channels.ts";
import { encodeFec } from "../support/fec.ts";
import { eventually, freeUdpPort } from "../support/peers.ts";
import { asRtp, chunkTs } from "../support/sender.ts";
import { type Outgoing, sendSlots, timedUdpSink } from "../support/timed.ts";
import { prng, TsGenerator } from "../support/ts-generator.ts";

const DATAGRAMS = 2_000;

layer(Channels.Test, { excludeTestServices: true })("SMPTE 2022-1 FEC on an input", (it) => {
  it.scoped(
    "L=10, D=10 column and row FEC recover 1% random loss completely, and the counters say so",
    () =>
      Effect.gen(function* () {
        const channels = yield* Channels;
        const sink = yield* timedUdpSink;
        // FEC listens on the media port + 2 and + 4, which must exist.
        let port = yield* freeUdpPort;
        while (port > 65_531) port = yield* freeUdpPort;
        yield* channels.start({
          id: ChannelId.make("fec"),
          name: "fec",
          primary: { ip: "127.0.0.1", port },
          backup: null,
          redundancy: { fec: true },
          outputs: [
            { id: OutputId.make("udp"), name: "udp", url: `udp://127.0.0.1:${sink.port}`, enabled: true },
          ],
        });

        const ts = new TsGenerator({ seed: 33, bitrate: 8_000_000 }).packets(DATAGRAMS * 7);
        const media = asRtp(chunkTs(ts), 64_000);
        const { schedule } = encodeFec(media, 10, 10);
        const random = prng(2022_1);
        const lost = new Set(media.flatMap((_, index) => (random() < 0.01 ? [index] : [])));
        expect(lost.size).toBeGreaterThan(10);
        const ports = { media: port, column: port + 2, row: port + 4 } as const;
        const slots: Outgoing[][] = [];
        for (const item of schedule) {
          if (item.stream === "media") slots.push([]);
          if (item.stream === "media" && lost.has(item.index)) continue;
          slots[slots.length - 1]?.push({ port: ports[item.stream], datagram: item.datagram });
        }
        yield* sendSlots(slots);

        yield* eventually("the whole stream at the sink", () =>
          sink.bytes().length >= ts.length ? true : undefined,
        );
        expect(sink.bytes().equals(Buffer.from(ts))).toBe(true);
        const input = (yield* channels.status(ChannelId.make("fec")))?.inputs[0];
        // At least the packets the test dropped: on a loaded machine loopback may lose one more, which FEC
        // also recovers (the byte-exact output above is the proof either way).
        expect(input?.fec?.recovered).toBeGreaterThanOrEqual(lost.size);
        expect(input?.fec).toMatchObject({ unrecoverable: 0, malformedFec: 0 });
        expect(input?.fec?.columnPackets).toBeGreaterThan(0);
        expect(input?.fec?.rowPackets).toBeGreaterThan(0);
        // Recovered packets entered the input path in their place: the input saw no loss and no CC error.
        expect(input?.core.rtp.lost).toBe(0);
        expect(input?.core.tr101290.ccErrors).toBe(0);
        console.log(
          `fec: ${lost.size} of ${DATAGRAMS} media datagrams dropped, ${input?.fec?.recovered} recovered`,
        );
      }),
    60_000,
  );
});
