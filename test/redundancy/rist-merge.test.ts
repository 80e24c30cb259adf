/**
 * SMPTE 2022-7 merge of two RIST inputs: one ristsender with a peer for each of the channel's listeners (weight
 * 0, a whole copy each), each peer's path through a relay of its own on loopback. The primary's path is cut
 * while the stream flows, brought back, and then the backup's is cut while the primary carries again: the
 * output stays the sent stream byte for byte, every SCTE-35 cue in it, no continuity error, nothing skipped,
 * and the merge's figures say which input delivered what. test/redundancy/merge.test.ts merges two RTP inputs.
 */
import { expect, layer } from "@effect/vitest";
import { Effect, Fiber } from "effect";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import { Channels } from "../../src/effects/channel/channels.ts";
import { analyse } from "../support/analyse.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import { eventually, freeUdpPort, udpReceiver } from "../support/peers.ts";
import { ristSenderPeer } from "../support/rist-peers.ts";
import { collector, primed } from "../support/rist-stream.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";
import { udpRelay } from "../support/udp-relay.ts";

const SECONDS = 8;
const BITRATE = 2_000_000;

layer(Channels.Test, { excludeTestServices: true })("merge of two RIST inputs", (it) => {
  it.scoped(
    "one ristsender, a peer per input: either path cut in turn, the output is the stream byte for byte with every cue",
    () =>
      Effect.gen(function* () {
        const channels = yield* Channels;
        const got = collector();
        const sink = yield* udpReceiver(got.onDatagram);
        const [primaryPort, backupPort] = yield* Effect.all([freeUdpPort, freeUdpPort]);
        const id = ChannelId.make("rist-merge");
        yield* channels.start({
          id,
          name: "rist merge",
          primary: { ip: "127.0.0.1", port: primaryPort, srt: `rist://@127.0.0.1:${primaryPort}?buffer=500` },
          backup: { ip: "127.0.0.1", port: backupPort, srt: `rist://@127.0.0.1:${backupPort}?buffer=500` },
          redundancy: { mode: "merge" },
          outputs: [{ id: OutputId.make("udp"), name: "udp", url: `udp://127.0.0.1:${sink}`, enabled: true }],
        });
        const [primaryPath, backupPath] = yield* Effect.all([udpRelay(primaryPort), udpRelay(backupPort)]);
        const sender = yield* ristSenderPeer({
          mode: "connect",
          port: [primaryPath.port, backupPath.port],
          buffer: 500,
        });
        yield* primed(sender.udpPort, got.primed);

        const generator = new TsGenerator({ seed: 2022_7, bitrate: BITRATE });
        for (const [index, atMs] of [700, 2500, 4300, 6100, 7500].entries())
          generator.insertScte35(encodeSection(immediateSpliceOut(300 + index)), atMs);
        const ts = generator.packets(Math.round((BITRATE * SECONDS) / 8 / 188 / 7) * 7);
        const datagrams = chunkTs(ts);
        const arrived = (share: number) =>
          eventually(`${Math.round(share * 100)} % of the stream at the output`, () =>
            got.bytes().length >= ts.length * share ? true : undefined,
          );
        const status = () => channels.status(id).pipe(Effect.map((found) => found ?? undefined));
        const sending = yield* Effect.fork(sendPaced(datagrams, sender.udpPort, 0.25));

        yield* arrived(0.2);
        primaryPath.cut(true);
        yield* arrived(0.45);
        primaryPath.cut(false);
        // The primary's path carries again: its input hears data before the backup's path goes down.
        const back = primaryPath.forwarded();
        yield* eventually("the primary input receiving again", async () => {
          const now = await Effect.runPromise(status());
          const primary = now?.inputs.find((input) => input.role === "primary");
          return primaryPath.forwarded() > back + 20 && (primary?.lastPacketAgeMs ?? 1e9) < 100
            ? true
            : undefined;
        });
        yield* arrived(0.6);
        backupPath.cut(true);
        yield* arrived(0.85);
        backupPath.cut(false);
        yield* Fiber.join(sending);
        yield* eventually("the whole stream at the output", () =>
          got.bytes().length >= ts.length ? true : undefined,
        );

        const received = got.bytes();
        expect(received.length).toBe(ts.length);
        expect(Buffer.compare(received, Buffer.from(ts))).toBe(0);
        const [want, seen] = [analyse(ts), analyse(received)];
        expect(want.sections.length).toBe(5);
        expect(seen.sections).toEqual(want.sections);
        expect(seen.ccErrors).toBe(0);

        const final = yield* status();
        const merge = final?.redundancy.merge;
        expect(merge).toMatchObject({ skipped: 0, late: 0, notRtp: 0 });
        const primary = merge?.firstCopies.primary ?? 0;
        const backup = merge?.firstCopies.backup ?? 0;
        // Primers and stream: every datagram released, each delivered first by one input.
        expect(primary + backup).toBe(merge?.released);
        expect(merge?.released).toBeGreaterThanOrEqual(datagrams.length);
        // Each input alone carried the stream for a quarter of it while the other's path was cut.
        expect(backup).toBeGreaterThan(datagrams.length / 5);
        expect(primary).toBeGreaterThan(datagrams.length / 5);
        expect(final?.inputs.every((input) => input.active && (input.rist?.packets ?? 0) > 0)).toBe(true);
        console.log(
          `RIST merge: ${datagrams.length} datagrams; first copies primary ${primary}, backup ${backup}; duplicates ${merge?.duplicates}; librist received primary ${final?.inputs[0]?.rist?.packets}, backup ${final?.inputs[1]?.rist?.packets}`,
        );
      }),
    60_000,
  );
});
