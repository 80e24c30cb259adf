/**
 * A channel whose primary input is SRT fails over to its UDP backup when the SRT sender goes, on real sockets
 * and in real time: the gap at the output is measured in milliseconds, so it runs in the timing project.
 * test/redundancy/srt-input.test.ts tests the SRT input itself.
 */
import { expect, layer } from "@effect/vitest";
import { Effect, Exit, Scope } from "effect";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import { Channels } from "../../src/effects/channel/channels.ts";
import { analyse } from "../support/analyse.ts";
import { eventually, freeUdpPort, srtSenderPeer } from "../support/peers.ts";
import { chunkTs } from "../support/sender.ts";
import { type Outgoing, sendSlots, timedUdpSink } from "../support/timed.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const passphrase = "input-passphrase-0123";

const FAILOVER_AFTER_MS = 500;

// A channel whose primary input is SRT: the same packet core, failover and outputs as for UDP/RTP.
layer(Channels.Test, { excludeTestServices: true })("a channel with an SRT primary input", (it) => {
  it.scoped("an SRT primary that drops fails over to the UDP backup within failover_after_ms + 100 ms", () =>
    Effect.gen(function* () {
      const channels = yield* Channels;
      const sink = yield* timedUdpSink;
      const [primaryPort, backupPort] = yield* Effect.all([freeUdpPort, freeUdpPort]);
      const id = ChannelId.make("srt-input");
      yield* channels.start({
        id,
        name: "srt input",
        primary: {
          ip: "127.0.0.1",
          port: primaryPort,
          srt: `srt://127.0.0.1:${primaryPort}?mode=listener&latency=80&passphrase=${passphrase}`,
        },
        backup: { ip: "127.0.0.1", port: backupPort },
        redundancy: { mode: "failover", failover_after_ms: FAILOVER_AFTER_MS, revert: "sticky" },
        outputs: [
          { id: OutputId.make("udp"), name: "udp", url: `udp://127.0.0.1:${sink.port}`, enabled: true },
        ],
      });
      const senderScope = yield* Scope.make();
      const sender = yield* srtSenderPeer({ mode: "caller", port: primaryPort, passphrase }).pipe(
        Scope.extend(senderScope),
      );

      const generator = new TsGenerator({ seed: 55, bitrate: 4_000_000 });
      const ts = generator.packets(1_600 * 7);
      const datagrams = chunkTs(ts);
      const primaryStopsAt = 600;
      // The primary's stream goes through srt-live-transmit and SRT; the backup's straight to its port.
      yield* sendSlots(
        datagrams.map((datagram, index): Outgoing[] => [
          ...(index < primaryStopsAt ? [{ port: sender.udpPort, datagram }] : []),
          { port: backupPort, datagram },
        ]),
      );
      yield* Scope.close(senderScope, Exit.void);
      const tail = Buffer.from(ts.subarray(ts.length - 1316));
      yield* eventually("the end of the stream at the sink", () =>
        sink.bytes().subarray(-tail.length).equals(tail) ? true : undefined,
      );
      // The primary's 600 datagrams, then the backup's from where it was when the channel switched: the gap
      // between the two is the failover (a stall of this busy machine elsewhere in the run does not count).
      const index = primaryStopsAt;
      const gapMs = (sink.arrivals[index]?.atMs ?? 0) - (sink.arrivals[index - 1]?.atMs ?? 0);
      const before = Buffer.concat(sink.arrivals.slice(0, index).map((arrival) => arrival.datagram));
      const after = Buffer.concat(sink.arrivals.slice(index).map((arrival) => arrival.datagram));
      console.log(`failover gap after the SRT primary stopped: ${Math.round(gapMs)} ms`);
      expect(gapMs).toBeLessThanOrEqual(FAILOVER_AFTER_MS + 100);
      expect(before.equals(Buffer.from(ts.subarray(0, before.length)))).toBe(true);
      expect(after.equals(Buffer.from(ts.subarray(ts.length - after.length)))).toBe(true);
      expect(analyse(before).ccErrors).toBe(0);
      const status = yield* channels.status(id);
      expect(status?.redundancy).toMatchObject({ active: "backup", failovers: 1 });
    }),
  );
});
