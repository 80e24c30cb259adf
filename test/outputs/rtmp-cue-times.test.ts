/**
 * When an RTMP output's cue messages go and the time they carry: a cue whose splice time is ahead of the media
 * goes at that time on the tags' timeline, between the frames before and after it; an immediate cue goes at
 * once, stamped at its arrival; and a receiver too slow for the stream loses frames, never a cue.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "@effect/vitest";
import { Effect } from "effect";
import { describe, expect } from "vitest";
import type { Amf0Value } from "../../src/core/flv/amf0.ts";
import { MESSAGE } from "../../src/core/rtmp/chunks.ts";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import { startChannel } from "../../src/effects/channel/channel.ts";
import { immediateSpliceOut, spliceInsertSection } from "../support/cues.ts";
import { encodeTestStream } from "../support/media.ts";
import { eventually } from "../support/peers.ts";
import { bframeStream, videoPes, withCues } from "../support/rtmp-media.ts";
import { type ReceivedMessage, tempDir, testReceiver } from "../support/rtmp-peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { STREAM_TYPE_AAC } from "../support/ts-generator.ts";

const output = (id: string, url: string) => ({ id: OutputId.make(id), name: id, url, enabled: true });

/** A splice_insert out of the network at `ptsTime` (before `adjustment`), a 30 s break. */
const scheduledSpliceOut = (eventId: number, ptsTime: number, adjustment: number) =>
  encodeSection({
    ...spliceInsertSection({
      splice_event_id: eventId,
      splice_event_cancel_indicator: false,
      out_of_network_indicator: true,
      program_splice_flag: true,
      duration_flag: true,
      splice_immediate_flag: false,
      event_id_compliance_flag: true,
      time_specified_flag: true,
      pts_time: ptsTime,
      break_duration: { auto_return: true, duration: 30 * 90_000 },
      unique_program_id: 1,
      avail_num: 0,
      avails_expected: 0,
    }),
    pts_adjustment: adjustment,
  });

const isMedia = (message: ReceivedMessage) =>
  (message.type === MESSAGE.video || message.type === MESSAGE.audio) && message.body[1] !== 0;

const cueMessages = (messages: ReadonlyArray<ReceivedMessage>) =>
  messages.filter((message) => message.type === MESSAGE.data && message.values?.[0] === "onCuePoint");

const fieldsOf = (message: ReceivedMessage | undefined) =>
  (message?.values?.[1] ?? {}) as Record<string, Amf0Value>;
const eventIdOf = (message: ReceivedMessage) =>
  (fieldsOf(message).parameters as Record<string, Amf0Value>).splice_event_id;

describe("rtmp cue messages in time", () => {
  it.scopedLive(
    "a cue is stamped at its splice time and sent between the frames before and after it; an immediate cue at its arrival",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir("distributary-rtmp-cue-times-");
        const path = join(dir, "in.ts");
        bframeStream(path, 6);
        const ts = readFileSync(path);
        const pes = videoPes(ts);
        expect(pes.length).toBeGreaterThan(140);
        const frame = (i: number) => pes[i] ?? { packet: 0, pts: 0, dts: 0 };
        // The splice half-way between the 101st and 102nd frames (decode order), announced 2 s of stream ahead,
        // with a pts_adjustment that only 33-bit arithmetic brings back to that time.
        const splice = frame(100).dts + 1800;
        const adjustment = 2 ** 33 - 45_000;
        const cued = withCues(ts, STREAM_TYPE_AAC, [
          { before: frame(40).packet, section: encodeSection(immediateSpliceOut(1)) },
          { before: frame(50).packet, section: scheduledSpliceOut(2, splice + 45_000, adjustment) },
        ]);

        const receiver = yield* testReceiver(19401);
        const channel = yield* startChannel({
          id: ChannelId.make("rtmp-cue-times"),
          name: "rtmp cue times",
          primary: { ip: "127.0.0.1", port: 19400 },
          backup: null,
          outputs: [output("cues", "rtmp://127.0.0.1:19401/live/key?cues=oncuepoint")],
        });
        // A first pass (without cues) connects the output; the second pass's cues are the test's.
        yield* sendPaced(chunkTs(withCues(ts, STREAM_TYPE_AAC, [])), 19400);
        yield* eventually("the output connected and sending", () =>
          (channel.summary().outputs[0]?.rtmp?.framesSent ?? 0) > 0 ? true : undefined,
        );
        const from = receiver.messages.length;
        yield* sendPaced(chunkTs(cued), 19400);
        const pass = () => receiver.messages.slice(from);
        yield* eventually("both cues to arrive", () => (cueMessages(pass()).length >= 2 ? true : undefined));
        const messages = pass();
        const cues = cueMessages(messages);
        expect(cues.map(eventIdOf)).toEqual([1, 2]);
        const [immediate, held] = cues as [ReceivedMessage, ReceivedMessage];

        // The scheduled cue: its timestamp is the splice time on the video's timeline, 20 ms after frame 101
        // and 20 ms before frame 102, and its `time` says the same, with no pre-roll left.
        const at = held.timestamp;
        const video = messages.filter((m) => m.type === MESSAGE.video && isMedia(m)).map((m) => m.timestamp);
        const before = Math.max(...video.filter((t) => t < at));
        const after = Math.min(...video.filter((t) => t >= at));
        expect(at - before).toBeGreaterThanOrEqual(19);
        expect(at - before).toBeLessThanOrEqual(21);
        expect(after - at).toBeGreaterThanOrEqual(19);
        expect(after - at).toBeLessThanOrEqual(21);
        expect(fieldsOf(held).time).toBe(at / 1000);
        expect((fieldsOf(held).parameters as Record<string, Amf0Value>).pre_roll_time).toBe(0);
        // In order: nothing before it is at or after its time, nothing after it was due before the frame
        // that reached its time.
        const heldIndex = messages.indexOf(held);
        expect(messages.slice(0, heldIndex).filter((m) => isMedia(m) && m.timestamp >= at)).toEqual([]);
        expect(
          messages.slice(heldIndex + 1).some((m) => m.type === MESSAGE.video && m.timestamp === after),
        ).toBe(true);

        // The immediate cue: stamped at its arrival, the latest time the media had reached, long before.
        const immediateIndex = messages.indexOf(immediate);
        const reached = Math.max(
          ...messages
            .slice(0, immediateIndex)
            .filter(isMedia)
            .map((m) => m.timestamp),
        );
        expect(immediate.timestamp).toBe(reached);
        expect(fieldsOf(immediate).time).toBe(reached / 1000);
        expect(at - immediate.timestamp).toBeGreaterThan(2000);
      }),
  );

  it.scopedLive("a receiver too slow for the stream loses whole frames but no cue", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir("distributary-rtmp-cue-slow-");
      const path = join(dir, "in.ts");
      yield* encodeTestStream(path, 8, "8M");
      const ts = readFileSync(path);
      const pes = videoPes(ts);
      // Ten cues through the stream after its first second: immediate ones, and ones for a second later.
      const cues = Array.from({ length: 10 }, (_, i) => {
        const announced = pes[40 + i * 12] ?? { packet: 0, dts: 0 };
        return {
          before: announced.packet,
          section:
            i % 2 === 0
              ? encodeSection(immediateSpliceOut(i))
              : scheduledSpliceOut(i, (announced.dts + 90_000) % 2 ** 33, 0),
        };
      });
      const slow = yield* testReceiver(19403);
      const channel = yield* startChannel(
        {
          id: ChannelId.make("rtmp-cue-slow"),
          name: "rtmp cue slow",
          primary: { ip: "127.0.0.1", port: 19402 },
          backup: null,
          outputs: [output("slow", "rtmp://127.0.0.1:19403/live/slow?cues=oncuepoint")],
        },
        { outputs: { queueBytes: 32 * 1024 } },
      );
      const datagrams = chunkTs(withCues(ts, STREAM_TYPE_AAC, cues));
      const warmUp = Math.floor(datagrams.length / 8);
      yield* sendPaced(datagrams.slice(0, warmUp), 19402, 0.6);
      yield* eventually("the output connected", () =>
        channel.summary().outputs[0]?.state === "connected" ? true : undefined,
      );
      const from = slow.messages.length;
      slow.pause(true);
      yield* sendPaced(datagrams.slice(warmUp), 19402, 0.6);
      slow.pause(false);
      yield* eventually("the slow receiver to get what its output sent", () => {
        const now = channel.summary().outputs[0];
        return now?.queuedBytes === 0 && cueMessages(slow.messages.slice(from)).length >= 10
          ? true
          : undefined;
      });
      expect(channel.summary().outputs[0]?.rtmp?.framesDropped).toBeGreaterThan(0);
      // Each once; a scheduled cue goes after the immediate one announced after it, at its splice time.
      const ids = cueMessages(slow.messages.slice(from)).map((message) => Number(eventIdOf(message)));
      expect(ids.sort((a, b) => a - b)).toEqual(cues.map((_, i) => i));
      expect(channel.summary().outputs[0]?.rtmp?.cuesSent).toBe(10);
    }),
  );
});
