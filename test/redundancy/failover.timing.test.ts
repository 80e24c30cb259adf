import { expect, layer } from "@effect/vitest";
import { Effect, Stream } from "effect";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import type { ChannelEvent } from "../../src/domain/events/events.ts";
import { Channels } from "../../src/effects/channel/channels.ts";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { analyse } from "../support/analyse.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import { eventually, freeUdpPort, srtListenerPeer } from "../support/peers.ts";
import { asRtp, chunkTs } from "../support/sender.ts";
import { type Outgoing, sendSlots, type TimedSink, timedUdpSink } from "../support/timed.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const FAILOVER_AFTER_MS = 500;
const DATAGRAMS = 2_600;
const PRIMARY_STOPS_AT = 1_000;

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

/** The sink's bytes split at its largest silence: what came before the switch and what came after. */
const stretches = (sink: TimedSink) => {
  const { gapMs, index } = sink.largestGap();
  const before = Buffer.concat(sink.arrivals.slice(0, index).map((arrival) => arrival.datagram));
  const after = Buffer.concat(sink.arrivals.slice(index).map((arrival) => arrival.datagram));
  return { gapMs, before, after };
};

// Real time and real sockets: the one end-to-end failover; the timer policy is tested on the TestClock.
layer(Channels.Test, { excludeTestServices: true })("failover between two live inputs", (it) => {
  it.scoped(
    "UDP and SRT outputs carry on from the backup within failover_after_ms + 100 ms, without a reconnect",
    () =>
      Effect.gen(function* () {
        const channels = yield* Channels;
        const [udpSink, srtSink] = yield* Effect.all([timedUdpSink, timedUdpSink]);
        const srtPeer = yield* srtListenerPeer({ forwardTo: srtSink.port });
        const [primaryPort, backupPort] = yield* Effect.all([freeUdpPort, freeUdpPort]);
        const bus = yield* EventBus;
        const events: ChannelEvent[] = [];
        yield* Effect.forkScoped(
          bus.stream.pipe(
            Stream.filter((event) => event.channel === "failover"),
            Stream.runForEach((event) => Effect.sync(() => events.push(event))),
          ),
        );
        yield* channels.start({
          id: ChannelId.make("failover"),
          name: "failover",
          primary: { ip: "127.0.0.1", port: primaryPort },
          backup: { ip: "127.0.0.1", port: backupPort },
          redundancy: { mode: "failover", failover_after_ms: FAILOVER_AFTER_MS, revert: "sticky" },
          outputs: [
            { id: OutputId.make("udp"), name: "udp", url: `udp://127.0.0.1:${udpSink.port}`, enabled: true },
            {
              id: OutputId.make("srt"),
              name: "srt",
              url: `srt://127.0.0.1:${srtPeer.port}?mode=caller&latency=120`,
              enabled: true,
            },
          ],
        });
        yield* eventually("the SRT output to connect", () =>
          Effect.runPromise(channels.status(ChannelId.make("failover"))).then((status) =>
            status?.outputs.find((output) => output.id === "srt")?.state === "connected" ? true : undefined,
          ),
        );

        // Both pipelines carry the same stream, cues included: one cue before the primary stops, one after.
        const generator = new TsGenerator({ seed: 9, bitrate: 6_000_000 });
        const msPerDatagram = (7 * 188 * 8 * 1000) / 6_000_000;
        const cues = [encodeSection(immediateSpliceOut(1)), encodeSection(immediateSpliceOut(2))];
        generator.insertScte35(cues[0] ?? new Uint8Array(0), 300 * msPerDatagram);
        generator.insertScte35(cues[1] ?? new Uint8Array(0), 2_200 * msPerDatagram);
        const first = generator.packets(DATAGRAMS * 7);
        const datagrams = asRtp(chunkTs(first), 40_000);
        yield* sendSlots(
          datagrams.map((datagram, index): Outgoing[] => [
            ...(index < PRIMARY_STOPS_AT ? [{ port: primaryPort, datagram }] : []),
            { port: backupPort, datagram },
          ]),
        );
        const tail = Buffer.from(first.subarray(first.length - 1316));
        for (const sink of [udpSink, srtSink]) {
          yield* eventually("the end of the stream at the sinks", () =>
            sink.bytes().subarray(-tail.length).equals(tail) ? true : undefined,
          );
        }

        const measured: Record<string, number> = {};
        for (const [name, sink] of [
          ["udp", udpSink],
          ["srt", srtSink],
        ] as const) {
          const { gapMs, before, after } = stretches(sink);
          measured[name] = Math.round(gapMs);
          expect(gapMs, `${name}: largest gap`).toBeLessThanOrEqual(FAILOVER_AFTER_MS + 100);
          // Before the gap, the primary's stream from its start; after it, the backup's to the end: the
          // largest gap is the failover.
          expect(before.length, `${name}: all the primary sent`).toBe(PRIMARY_STOPS_AT * 1316);
          expect(before.equals(first.subarray(0, before.length)), `${name}: primary bytes`).toBe(true);
          expect(after.equals(first.subarray(first.length - after.length)), `${name}: backup bytes`).toBe(
            true,
          );
          const [primaryStretch, backupStretch] = [analyse(before), analyse(after)];
          expect(primaryStretch.ccErrors, `${name}: CC errors before`).toBe(0);
          expect(backupStretch.ccErrors, `${name}: CC errors after`).toBe(0);
          expect(primaryStretch.sections).toEqual([base64(cues[0] ?? new Uint8Array(0))]);
          expect(backupStretch.sections).toEqual([base64(cues[1] ?? new Uint8Array(0))]);
        }
        console.log(`failover gap at the receiver: udp ${measured.udp} ms, srt ${measured.srt} ms`);
        yield* channels.sync;
        expect(channels.cues(ChannelId.make("failover")).map((cue) => cue.section_base64)).toEqual(
          cues.map(base64),
        );

        const status = yield* channels.status(ChannelId.make("failover"));
        expect(status?.redundancy).toMatchObject({ mode: "failover", active: "backup", failovers: 1 });
        expect(status?.inputs.map((input) => input.failovers)).toEqual([1, 0]);
        // The bus and the channel's own recent list tell the same switch.
        const switched = events.find((event) => event.type === "input_switched");
        expect(switched).toMatchObject({ from: "primary", to: "backup", reason: "silence" });
        expect(status?.redundancy.events).toContainEqual({
          type: "switch",
          from: "primary",
          to: "backup",
          reason: "silence",
          at: Date.parse(switched?.at ?? ""),
        });

        // Every input silent: the channel says so, and its outputs stay connected meanwhile.
        yield* eventually("input lost", () =>
          Effect.runPromise(channels.status(ChannelId.make("failover"))).then((status) =>
            status?.input === "lost" ? true : undefined,
          ),
        );
        expect(events.map((event) => event.type)).toContain("input_lost");
        // The primary comes back first: outputs carry on at once, with no reconnect.
        const more = generator.packets(300 * 7);
        yield* sendSlots(
          asRtp(chunkTs(more), (40_000 + DATAGRAMS) & 0xffff).map((datagram) => [
            { port: primaryPort, datagram },
          ]),
        );
        for (const sink of [udpSink, srtSink]) {
          yield* eventually("the stream after the input returned", () =>
            sink.bytes().subarray(-more.length).equals(more) ? true : undefined,
          );
        }
        const after = yield* channels.status(ChannelId.make("failover"));
        expect(after?.input).toBe("ok");
        expect(after?.redundancy.active).toBe("primary");
        for (const output of after?.outputs ?? []) {
          expect(output.state, output.id).toBe("connected");
          expect(output.reconnects, output.id).toBe(0);
          expect(output.queueDrops, output.id).toBe(0);
        }
      }),
    60_000,
  );
});
