/**
 * RTMP outputs inside a channel: the channel's one remux shared by several RTMP outputs beside a UDP output.
 * SCTE-35 cues reach a test receiver as AMF0 data messages in each output's format, one per section, and a
 * receiver that stops reading costs its own output whole frames (counted), never the other outputs' bytes. An idle
 * RTMP output made enabled (replaced) is fed the channel's stream.
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { it } from "@effect/vitest";
import { Effect, Either } from "effect";
import { describe, expect } from "vitest";
import type { Amf0Value } from "../../src/core/flv/amf0.ts";
import { MESSAGE } from "../../src/core/rtmp/chunks.ts";
import { decodeSection } from "../../src/core/scte35/index.ts";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import { startChannel } from "../../src/effects/channel/channel.ts";
import type { OutputEntryStatus } from "../../src/effects/channel/channel-types.ts";
import { analyse, withoutCues } from "../support/analyse.ts";
import { fixturePath } from "../support/fixtures.ts";
import { encodeTestStream } from "../support/media.ts";
import { eventually, udpSink } from "../support/peers.ts";
import { type ReceivedMessage, type TestReceiver, tempDir, testReceiver } from "../support/rtmp-peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";

const output = (id: string, url: string) => ({ id: OutputId.make(id), name: id, url, enabled: true });

const byId = (outputs: ReadonlyArray<OutputEntryStatus>, id: string) => {
  const found = outputs.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`no output ${id}`);
  return found;
};

const dataMessages = (receiver: TestReceiver, from: number): ReadonlyArray<ReadonlyArray<Amf0Value>> =>
  receiver.messages
    .slice(from)
    .filter((message) => message.type === MESSAGE.data && message.values?.[0] !== "@setDataFrame")
    .map((message) => message.values ?? []);

/** The video and audio frames a receiver got, sequence headers left out (H.264 and AAC: packet type 0). */
const media = (receiver: TestReceiver): ReadonlyArray<ReceivedMessage> =>
  receiver.messages.filter(
    (message) => (message.type === MESSAGE.video || message.type === MESSAGE.audio) && message.body[1] !== 0,
  );

describe("rtmp outputs of a channel", () => {
  it.scopedLive("each SCTE-35 section becomes one AMF0 data message in the output's format", () =>
    Effect.gen(function* () {
      const ts = readFileSync(fixturePath("scte35", "ts", "moq-dev_moq", "gst480i.ts"));
      const sections = analyse(ts).sections;
      expect(sections.length).toBeGreaterThan(0);
      const decoded = sections.map((section) => {
        const cue = decodeSection(Buffer.from(section, "base64"));
        if (Either.isLeft(cue)) throw new Error("the fixture's cue does not decode");
        return cue.right;
      });
      const youtubeCues = decoded.filter(
        (cue) =>
          !cue.encrypted_packet &&
          cue.splice_command_type === 0x05 &&
          !cue.splice_command.splice_event_cancel_indicator &&
          cue.splice_command.out_of_network_indicator &&
          cue.splice_command.break_duration !== undefined,
      ).length;

      const receivers = {
        oncuepoint: yield* testReceiver(18611),
        onadcue: yield* testReceiver(18612),
        youtube: yield* testReceiver(18613),
        off: yield* testReceiver(18614),
      };
      const sink = yield* udpSink;
      const channel = yield* startChannel({
        id: ChannelId.make("rtmp-cues"),
        name: "rtmp cues",
        primary: { ip: "127.0.0.1", port: 18610 },
        backup: null,
        outputs: [
          output("udp", `udp://127.0.0.1:${sink.port}`),
          output("oncuepoint", "rtmp://127.0.0.1:18611/live/k1?cues=oncuepoint"),
          output("onadcue", "rtmp://127.0.0.1:18612/live/k2?cues=onadcue"),
          output("youtube", "rtmp://127.0.0.1:18613/live/k3?cues=youtube"),
          output("off", "rtmp://127.0.0.1:18614/live/k4"),
        ],
      });
      // A first pass connects the outputs and starts them at a keyframe; the second pass's cues are counted.
      yield* sendPaced(chunkTs(ts), 18610);
      yield* eventually("every RTMP output connected and started", () =>
        channel
          .summary()
          .outputs.every((o) => o.state === "connected" && (o.rtmp === null || o.rtmp.framesSent > 0))
          ? true
          : undefined,
      );
      // The first pass wholly through: the UDP output has it, and each receiver got every cue its output sent
      // (a cue still on its way when the count below is taken would be counted with the second pass).
      yield* eventually("the first pass's cues to arrive", () => {
        const outputs = channel.summary().outputs;
        return sink.bytes().length >= ts.length &&
          (["oncuepoint", "onadcue", "youtube"] as const).every(
            (name) => dataMessages(receivers[name], 0).length === (byId(outputs, name).rtmp?.cuesSent ?? 0),
          )
          ? true
          : undefined;
      });
      const before = Object.fromEntries(
        Object.entries(receivers).map(([name, receiver]) => [name, receiver.messages.length]),
      );
      const cuesBefore = Object.fromEntries(
        channel.summary().outputs.map((o) => [o.id, o.rtmp?.cuesSent ?? 0]),
      );
      yield* sendPaced(chunkTs(ts), 18610);
      yield* eventually("the UDP output to get both passes", () =>
        sink.bytes().length >= 2 * ts.length ? true : undefined,
      );
      yield* eventually("the cues to arrive at the three receivers that take them", () =>
        dataMessages(receivers.onadcue, before.onadcue ?? 0).length >= sections.length &&
        dataMessages(receivers.oncuepoint, before.oncuepoint ?? 0).length >= sections.length &&
        dataMessages(receivers.youtube, before.youtube ?? 0).length >= youtubeCues
          ? true
          : undefined,
      );

      expect(Buffer.compare(sink.bytes(), Buffer.concat([ts, ts]))).toBe(0);
      const adCues = dataMessages(receivers.onadcue, before.onadcue ?? 0);
      expect(adCues.map((values) => values[0])).toEqual(sections.map(() => "onAdCue"));
      expect(adCues.map((values) => (values[1] as Record<string, Amf0Value>).cue)).toEqual(sections);
      for (const values of adCues) expect(values[1]).toMatchObject({ type: "scte35" });

      const cuePoints = dataMessages(receivers.oncuepoint, before.oncuepoint ?? 0);
      expect(cuePoints.length).toBe(sections.length);
      cuePoints.forEach((values, i) => {
        const cue = decoded[i];
        expect(values[0]).toBe("onCuePoint");
        expect(values[1]).toMatchObject({ name: "scte35", type: "event" });
        const parameters = (values[1] as Record<string, Amf0Value>).parameters as Record<string, Amf0Value>;
        if (cue === undefined || cue.encrypted_packet) return;
        expect(parameters.splice_command_type).toBe(cue.splice_command_type);
        if (cue.splice_command_type === 0x05) {
          expect(parameters.splice_event_id).toBe(cue.splice_command.splice_event_id);
        }
      });

      const youtube = dataMessages(receivers.youtube, before.youtube ?? 0);
      expect(youtube.length).toBe(youtubeCues);
      for (const values of youtube) expect(values[1]).toMatchObject({ type: "com.youtube.cuepoint" });
      expect(dataMessages(receivers.off, before.off ?? 0)).toEqual([]);

      const after = channel.summary().outputs;
      const sent = (id: string) => (byId(after, id).rtmp?.cuesSent ?? 0) - (cuesBefore[id] ?? 0);
      expect([sent("oncuepoint"), sent("onadcue"), sent("youtube"), sent("off")]).toEqual([
        sections.length,
        sections.length,
        youtubeCues,
        0,
      ]);
      expect(byId(after, "onadcue").rtmp?.cues).toBe("onadcue");
    }),
  );

  it.scopedLive(
    "an RTMP output's SCTE-35 policy withholds its cues before they become AMF messages; lifted live, the cues come, with no reconnection",
    () =>
      Effect.gen(function* () {
        const ts = readFileSync(fixturePath("scte35", "ts", "moq-dev_moq", "gst480i.ts"));
        const sections = analyse(ts).sections;
        expect(sections.length).toBeGreaterThan(0);
        const receivers = { open: yield* testReceiver(18621), strip: yield* testReceiver(18622) };
        const strip = {
          ...output("strip", "rtmp://127.0.0.1:18622/live/k2?cues=onadcue"),
          policy: { scte35: "strip" as const },
        };
        const channel = yield* startChannel({
          id: ChannelId.make("rtmp-policy"),
          name: "rtmp policy",
          primary: { ip: "127.0.0.1", port: 18620 },
          backup: null,
          outputs: [output("open", "rtmp://127.0.0.1:18621/live/k1?cues=onadcue"), strip],
        });
        /** One pass of the file, once both outputs run; the data messages each receiver got from it. */
        const pass = Effect.gen(function* () {
          const before = { open: receivers.open.messages.length, strip: receivers.strip.messages.length };
          yield* sendPaced(chunkTs(ts), 18620);
          yield* eventually("the pass's cues at the open output", () =>
            dataMessages(receivers.open, before.open).length >= sections.length ? true : undefined,
          );
          // The strip output reads the same frames in the same turns as the open one: the same wait covers it.
          yield* eventually("the strip output's frames of the pass", () =>
            media(receivers.strip).length >= media(receivers.open).length - 2 ? true : undefined,
          );
          return {
            open: dataMessages(receivers.open, before.open).map(
              (values) => (values[1] as Record<string, Amf0Value>).cue,
            ),
            strip: dataMessages(receivers.strip, before.strip).map(
              (values) => (values[1] as Record<string, Amf0Value>).cue,
            ),
          };
        });
        // Warmed up without cues: none of them can reach a receiver late, inside a pass.
        const warmUp = withoutCues(ts);
        expect(analyse(warmUp).sections).toEqual([]);
        yield* sendPaced(chunkTs(warmUp), 18620);
        yield* eventually("both RTMP outputs connected and started", () =>
          channel.summary().outputs.every((o) => o.state === "connected" && (o.rtmp?.framesSent ?? 0) > 0)
            ? true
            : undefined,
        );
        const withheld = yield* pass;
        expect(withheld.open).toEqual(sections);
        expect(withheld.strip).toEqual([]);
        // The cue log names the output that withheld each cue, and the rule.
        const logged = channel.watcher.recent().slice(-sections.length);
        for (const record of logged)
          expect(record.withheld).toEqual([{ output: "strip", name: "strip", rule: "strip" }]);

        yield* channel.applyOutput({ ...strip, policy: null });
        const lifted = yield* pass;
        expect(lifted.strip).toEqual(sections);
        const status = byId(channel.summary().outputs, "strip");
        expect([status.state, status.reconnects, status.errors]).toEqual(["connected", 0, 0]);
      }),
  );

  it.scopedLive(
    "a receiver that stops reading loses whole frames, counted; the UDP output stays byte-exact and the other RTMP output loses nothing",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir("distributary-rtmp-slow-");
        const path = join(dir, "in.ts");
        yield* encodeTestStream(path, 8, "8M");
        const ts = yield* Effect.promise(() => readFile(path));
        const fast = yield* testReceiver(18616);
        const slow = yield* testReceiver(18617);
        const sink = yield* udpSink;
        const channel = yield* startChannel(
          {
            id: ChannelId.make("rtmp-slow"),
            name: "rtmp slow",
            primary: { ip: "127.0.0.1", port: 18615 },
            backup: null,
            outputs: [
              output("udp", `udp://127.0.0.1:${sink.port}`),
              output("fast", "rtmp://127.0.0.1:18616/live/fast"),
              output("slow", "rtmp://127.0.0.1:18617/live/slow"),
            ],
          },
          { outputs: { queueBytes: 512 * 1024 } },
        );
        // The first second connects both (an output calls its server once the PMT says what it will send).
        const datagrams = chunkTs(ts);
        const warmUp = Math.floor(datagrams.length / 8);
        yield* sendPaced(datagrams.slice(0, warmUp), 18615, 0.6);
        yield* eventually("both RTMP outputs connected", () =>
          channel.summary().outputs.every((o) => o.state === "connected") ? true : undefined,
        );
        slow.pause(true);
        let queuedMax = 0;
        const watching = yield* Effect.forkScoped(
          Effect.forever(
            Effect.zipRight(
              Effect.sync(() => {
                queuedMax = Math.max(queuedMax, byId(channel.summary().outputs, "slow").queuedBytes);
              }),
              Effect.sleep("50 millis"),
            ),
          ),
        );
        yield* sendPaced(datagrams.slice(warmUp), 18615, 0.6);
        yield* eventually("the UDP output to get the stream", () =>
          sink.bytes().length >= ts.length ? true : undefined,
        );
        yield* Effect.sleep("500 millis");
        void watching;
        expect(Buffer.compare(sink.bytes(), ts)).toBe(0);
        const outputs = channel.summary().outputs;
        const slowStatus = byId(outputs, "slow").rtmp;
        const fastStatus = byId(outputs, "fast").rtmp;
        expect(slowStatus?.framesDropped).toBeGreaterThan(0);
        expect(fastStatus?.framesDropped).toBe(0);
        expect(media(fast).length).toBe(fastStatus?.framesSent);
        expect(media(fast).length).toBeGreaterThan(8 * 25);

        // What the slow receiver gets once it reads again: never a frame whose reference was dropped.
        slow.pause(false);
        yield* eventually("the slow receiver to get every frame its output sent", () => {
          const now = byId(channel.summary().outputs, "slow");
          return now.queuedBytes === 0 && media(slow).length === now.rtmp?.framesSent ? true : undefined;
        });
        // Its queue filled up to its size (or a second of this 8 Mbit/s stream) and no further.
        expect(queuedMax).toBeGreaterThan(512 * 1024);
        expect(queuedMax).toBeLessThanOrEqual(1.5 * 1024 * 1024);
        const fastVideo = media(fast).filter((m) => m.type === MESSAGE.video && m.body[1] === 1);
        const slowTimes = new Set(
          media(slow)
            .filter((m) => m.type === MESSAGE.video && m.body[1] === 1)
            .map((m) => m.timestamp),
        );
        fastVideo.forEach((message, i) => {
          const key = (message.body[0] ?? 0) >> 4 === 1;
          const previous = fastVideo[i - 1];
          if (slowTimes.has(message.timestamp) && !key && previous !== undefined) {
            expect(slowTimes.has(previous.timestamp), `frame at ${message.timestamp} has its reference`).toBe(
              true,
            );
          }
        });
        expect(slowTimes.size).toBeLessThan(fastVideo.length);
      }),
  );

  it.scopedLive(
    "an idle RTMP output made enabled (a new output in its place, as a fleet node that takes the lease) is fed the channel's stream",
    () =>
      Effect.gen(function* () {
        const ts = readFileSync(fixturePath("scte35", "ts", "moq-dev_moq", "gst480i.ts"));
        const receiver = yield* testReceiver(31611);
        const sink = yield* udpSink;
        const rtmp = { ...output("rtmp", "rtmp://127.0.0.1:31611/live/k"), enabled: false };
        const channel = yield* startChannel({
          id: ChannelId.make("rtmp-idle"),
          name: "rtmp idle",
          primary: { ip: "127.0.0.1", port: 31610 },
          backup: null,
          outputs: [output("udp", `udp://127.0.0.1:${sink.port}`), rtmp],
        });
        yield* channel.applyOutput({ ...rtmp, enabled: true });
        yield* sendPaced(chunkTs(ts), 31610);
        yield* eventually("the RTMP output to connect and send frames", () =>
          (byId(channel.summary().outputs, "rtmp").rtmp?.framesSent ?? 0) > 0 ? true : undefined,
        );
        yield* eventually("the receiver to get video and audio frames", () =>
          media(receiver).length > 0 ? true : undefined,
        );
        expect(byId(channel.summary().outputs, "rtmp").state).toBe("connected");
        expect(Buffer.compare(sink.bytes(), ts)).toBe(0);
      }),
  );
});
