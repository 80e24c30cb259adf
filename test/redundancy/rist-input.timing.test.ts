/**
 * A channel whose primary input is RIST fails over to its UDP backup when the RIST sender stops, on real sockets
 * and in real time: the gap at the output is measured in milliseconds, so it runs in the timing project.
 * test/redundancy/rist-input.test.ts tests the RIST input itself; test/lab/rist.test.ts a lossy link.
 */
import { expect, layer } from "@effect/vitest";
import { Effect } from "effect";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import { Channels } from "../../src/effects/channel/channels.ts";
import { analyse } from "../support/analyse.ts";
import { eventually, freeUdpPort } from "../support/peers.ts";
import { ristSenderPeer } from "../support/rist-peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { type Outgoing, sendSlots, timedUdpSink } from "../support/timed.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const FAILOVER_AFTER_MS = 500;

layer(Channels.Test, { excludeTestServices: true })("a channel with a RIST primary input", (it) => {
  it.scoped("a RIST primary that stops fails over to the UDP backup within failover_after_ms + 100 ms", () =>
    Effect.gen(function* () {
      const channels = yield* Channels;
      const sink = yield* timedUdpSink;
      const [primaryPort, backupPort] = yield* Effect.all([freeUdpPort, freeUdpPort]);
      const id = ChannelId.make("rist-input");
      yield* channels.start({
        id,
        name: "rist input",
        primary: { ip: "127.0.0.1", port: primaryPort, srt: `rist://@127.0.0.1:${primaryPort}?buffer=200` },
        backup: { ip: "127.0.0.1", port: backupPort },
        redundancy: { mode: "failover", failover_after_ms: FAILOVER_AFTER_MS, revert: "sticky" },
        outputs: [
          { id: OutputId.make("udp"), name: "udp", url: `udp://127.0.0.1:${sink.port}`, enabled: true },
        ],
      });
      const sender = yield* ristSenderPeer({ mode: "connect", port: primaryPort, buffer: 200 });
      const generator = new TsGenerator({ seed: 56, bitrate: 4_000_000 });
      // Null-packet primers until the link carries data: the primary is then the channel's input.
      const primer = Buffer.concat(
        Array.from({ length: 7 }, () =>
          Buffer.from([0x47, 0x1f, 0xff, 0x10, ...new Array<number>(184).fill(0xff)]),
        ),
      );
      while (sink.arrivals.length === 0) {
        yield* sendPaced([primer], sender.udpPort);
        yield* Effect.sleep("50 millis");
      }
      const primed = sink.arrivals.length;
      const ts = generator.packets(1_600 * 7);
      const datagrams = chunkTs(ts);
      const primaryStopsAt = 600;
      // The primary's stream goes through ristsender and RIST; the backup's straight to its port.
      yield* sendSlots(
        datagrams.map((datagram, index): Outgoing[] => [
          ...(index < primaryStopsAt ? [{ port: sender.udpPort, datagram }] : []),
          { port: backupPort, datagram },
        ]),
      );
      const tail = Buffer.from(ts.subarray(ts.length - 1316));
      yield* eventually("the end of the stream at the sink", () =>
        sink.bytes().subarray(-tail.length).equals(tail) ? true : undefined,
      );
      // Primers that were still on their way, then the primary's 600 datagrams, then the backup's from where
      // it was when the channel switched: the gap between the two is the failover.
      const arrivals = sink.arrivals.slice(primed).filter((arrival) => !arrival.datagram.equals(primer));
      const index = primaryStopsAt;
      const gapMs = (arrivals[index]?.atMs ?? 0) - (arrivals[index - 1]?.atMs ?? 0);
      const before = Buffer.concat(arrivals.slice(0, index).map((arrival) => arrival.datagram));
      const after = Buffer.concat(arrivals.slice(index).map((arrival) => arrival.datagram));
      console.log(`failover gap after the RIST primary stopped: ${Math.round(gapMs)} ms`);
      expect(before.equals(Buffer.from(ts.subarray(0, before.length)))).toBe(true);
      expect(before.length).toBe(primaryStopsAt * 1316);
      expect(after.equals(Buffer.from(ts.subarray(ts.length - after.length)))).toBe(true);
      expect(gapMs).toBeLessThanOrEqual(FAILOVER_AFTER_MS + 100);
      expect(analyse(before).ccErrors).toBe(0);
      const status = yield* channels.status(id);
      expect(status?.redundancy).toMatchObject({ active: "backup", failovers: 1 });
    }),
  );
});
