import { readFileSync } from "node:fs";
import { expect, layer } from "@effect/vitest";
import { Effect } from "effect";
import { encodeSection, type SpliceInfoSection } from "../../src/core/scte35/index.ts";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import { Channels } from "../../src/effects/channel/channels.ts";
import { analyse } from "../support/analyse.ts";
import { spliceInsertSection } from "../support/cues.ts";
import { fixturePath } from "../support/fixtures.ts";
import {
  eventually,
  freeUdpPort,
  srtCallerPeer,
  srtListenerPeer,
  type UdpSink,
  udpSink,
} from "../support/peers.ts";
import { asRtp, chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const spliceInsert = (eventId: number, pts: number): SpliceInfoSection =>
  spliceInsertSection(
    {
      splice_event_id: eventId,
      splice_event_cancel_indicator: false,
      out_of_network_indicator: true,
      program_splice_flag: true,
      duration_flag: true,
      splice_immediate_flag: false,
      event_id_compliance_flag: true,
      time_specified_flag: true,
      pts_time: pts,
      break_duration: { auto_return: true, duration: 30 * 90_000 },
      unique_program_id: 7,
      avail_num: 1,
      avails_expected: 2,
    },
    [
      {
        splice_descriptor_tag: 0x00,
        descriptor_length: 8,
        identifier: 0x43554549,
        provider_avail_id: eventId,
      },
    ],
  );

/** Four seconds of generated TS at 6 Mbit/s with three splice_inserts made by our encoder. */
const generatedStream = (): { ts: Uint8Array; cues: Uint8Array[] } => {
  const generator = new TsGenerator({ seed: 7, bitrate: 6_000_000 });
  const cues = [1, 2, 3].map((n) => encodeSection(spliceInsert(1000 + n, 90_000 * (10 + n))));
  for (const [index, cue] of cues.entries()) generator.insertScte35(cue, 500 + index * 1000);
  return { ts: generator.packets(Math.round((4 * 6_000_000) / (188 * 8))), cues };
};

const rtpPayloads = (sink: UdpSink): Buffer =>
  Buffer.concat(sink.datagrams.map((datagram) => datagram.subarray(12)));

// Real time throughout: the peers and sockets are real.
layer(Channels.Test, { excludeTestServices: true })(
  "a channel fans one RTP input out byte for byte",
  (it) => {
    it.scoped(
      "UDP, RTP, SRT caller and SRT listener outputs all carry the input's exact TS packets",
      () =>
        Effect.gen(function* () {
          const channels = yield* Channels;
          const [udp, rtp, srtCallerSink, srtListenerSink] = yield* Effect.all([
            udpSink,
            udpSink,
            udpSink,
            udpSink,
          ]);
          const srtListener = yield* srtListenerPeer({ forwardTo: srtCallerSink.port });
          const ourSrtListenerPort = yield* freeUdpPort;
          const inputPort = yield* freeUdpPort;
          yield* channels.start({
            id: ChannelId.make("byte-exact"),
            name: "byte exact",
            primary: { ip: "127.0.0.1", port: inputPort },
            backup: null,
            outputs: [
              { id: OutputId.make("udp"), name: "udp", url: `udp://127.0.0.1:${udp.port}`, enabled: true },
              { id: OutputId.make("rtp"), name: "rtp", url: `rtp://127.0.0.1:${rtp.port}`, enabled: true },
              {
                id: OutputId.make("srt-caller"),
                name: "srt caller",
                url: `srt://127.0.0.1:${srtListener.port}?mode=caller&latency=120`,
                enabled: true,
              },
              {
                id: OutputId.make("srt-listener"),
                name: "srt listener",
                url: `srt://127.0.0.1:${ourSrtListenerPort}?mode=listener&latency=120`,
                enabled: true,
              },
            ],
          });
          yield* srtCallerPeer({ port: ourSrtListenerPort, forwardTo: srtListenerSink.port });
          yield* eventually("both SRT outputs connected", () =>
            Effect.runPromise(channels.status(ChannelId.make("byte-exact"))).then((status) => {
              const srt = (status?.outputs ?? []).filter((output) => output.protocol === "srt");
              return srt.length === 2 && srt.every((output) => output.state === "connected")
                ? true
                : undefined;
            }),
          );

          const generated = generatedStream();
          const feeds = [
            { name: "tsduck.ts", ts: readFileSync(fixturePath("scte35", "ts", "moq-dev_moq", "tsduck.ts")) },
            {
              name: "kyrion_dirtystart.ts",
              ts: readFileSync(fixturePath("scte35", "ts", "moq-dev_moq", "kyrion_dirtystart.ts")),
            },
            { name: "generated", ts: generated.ts },
          ];
          const sinks = {
            udp: () => udp.bytes(),
            rtp: () => rtpPayloads(rtp),
            "srt caller": () => srtCallerSink.bytes(),
            "srt listener": () => srtListenerSink.bytes(),
          };
          let sequence = 65_000; // the RTP sequence wraps during the run
          for (const feed of feeds) {
            const before = Object.fromEntries(
              Object.entries(sinks).map(([name, bytes]) => [name, bytes().length]),
            );
            const datagrams = asRtp(chunkTs(feed.ts), sequence);
            sequence = (sequence + datagrams.length) & 0xffff;
            yield* sendPaced(datagrams, inputPort);
            const expected = analyse(feed.ts);
            expect(expected.sections.length, `${feed.name} carries cues`).toBeGreaterThan(0);
            for (const [name, bytes] of Object.entries(sinks)) {
              const start = before[name] ?? 0;
              const received = yield* eventually(`${feed.name} complete at the ${name} output`, () => {
                const all = bytes();
                return all.length >= start + feed.ts.length
                  ? all.subarray(start, start + feed.ts.length)
                  : undefined;
              });
              expect(
                Buffer.compare(received, Buffer.from(feed.ts)),
                `${feed.name} at ${name}: identical bytes`,
              ).toBe(0);
              const seen = analyse(received);
              expect(seen.pids).toEqual(expected.pids);
              expect(seen.ccErrors).toBe(0);
              expect(seen.sections).toEqual(expected.sections);
            }
          }
          const generatedCues = analyse(generated.ts).sections;
          expect(generatedCues).toEqual(generated.cues.map((cue) => Buffer.from(cue).toString("base64")));

          for (const datagram of udp.datagrams) {
            expect(datagram.length % 188).toBe(0);
            expect(datagram.length).toBeLessThanOrEqual(1316);
          }
          for (const datagram of [...srtCallerSink.datagrams, ...srtListenerSink.datagrams]) {
            expect(datagram.length % 188).toBe(0);
          }
          yield* channels.sync;
          const cues = channels.cues(ChannelId.make("byte-exact"));
          expect(cues.map((cue) => cue.section_base64)).toEqual(
            feeds.flatMap((feed) => analyse(feed.ts).sections),
          );
          const status = yield* channels.status(ChannelId.make("byte-exact"));
          expect(status?.inputs[0]?.core.rtp.lost).toBe(0);
          for (const output of status?.outputs ?? []) expect(output.queueDrops, output.name).toBe(0);
        }),
      60_000,
    );
  },
);
