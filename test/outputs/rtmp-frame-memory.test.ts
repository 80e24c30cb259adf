/**
 * A channel's remux uses its frames' memory again once every RTMP output is done with a frame: a destination
 * that stalls while another reads must still get every frame it was sent as it was made, not bytes of a later
 * frame written over it. Two receivers of one channel, one stopped for seconds with frames waiting in its
 * output's queue and socket: every video and audio message it gets afterwards is, byte for byte, the one the
 * other got at the same time stamp.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { it } from "@effect/vitest";
import { Effect } from "effect";
import { describe, expect } from "vitest";
import { MESSAGE } from "../../src/core/rtmp/chunks.ts";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import { startChannel } from "../../src/effects/channel/channel.ts";
import { encodeTestStream } from "../support/media.ts";
import { eventually, freeTcpPort, freeUdpPort } from "../support/peers.ts";
import { type ReceivedMessage, tempDir, testReceiver } from "../support/rtmp-peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";

const SECONDS = 10;

const media = (messages: ReadonlyArray<ReceivedMessage>) =>
  messages.filter((m) => m.type === MESSAGE.video || m.type === MESSAGE.audio);
/** A sequence header goes at its keyframe's time: the packet type (byte 1, 0 for a header) tells them apart. */
const key = (m: ReceivedMessage) => `${m.type}:${m.timestamp}:${m.body[1]}`;
const digest = (m: ReceivedMessage) => createHash("sha1").update(m.body).digest("hex");

describe("RTMP outputs of one channel sharing its frames' memory", () => {
  it.scopedLive(
    "send a stalled destination every frame as it was made while the other's frames are written and let go",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir("distributary-rtmp-frame-memory-");
        const path = join(dir, "in.ts");
        yield* encodeTestStream(path, SECONDS, "8M");
        const ts = yield* Effect.promise(() => readFile(path));
        const [INPUT, READING, STALLING] = [yield* freeUdpPort, yield* freeTcpPort, yield* freeTcpPort];
        const reading = yield* testReceiver(READING);
        const stalling = yield* testReceiver(STALLING);
        const output = (id: string, port: number) => ({
          id: OutputId.make(id),
          name: id,
          url: `rtmp://127.0.0.1:${port}/live/${id}`,
          enabled: true,
        });
        const channel = yield* startChannel(
          {
            id: ChannelId.make("rtmp-frame-memory"),
            name: "rtmp frame memory",
            primary: { ip: "127.0.0.1", port: INPUT },
            backup: null,
            outputs: [output("reading", READING), output("stalling", STALLING)],
          },
          // Room for all the stall's frames: what waits is held, none of it dropped.
          { outputs: { queueBytes: 32 * 1024 * 1024 } },
        );
        const status = (id: string) => {
          const found = channel.summary().outputs.find((o) => o.id === id);
          if (found === undefined) throw new Error(`no output ${id}`);
          return found;
        };
        const datagrams = chunkTs(ts);
        const second = Math.floor(datagrams.length / SECONDS);
        yield* sendPaced(datagrams.slice(0, second), INPUT, 0.8);
        yield* eventually("both outputs to connect", () =>
          status("reading").state === "connected" && status("stalling").state === "connected"
            ? true
            : undefined,
        );
        stalling.pause(true);
        let queuedMax = 0;
        for (let s = 1; s < SECONDS - 2; s++) {
          yield* sendPaced(datagrams.slice(s * second, (s + 1) * second), INPUT, 1.5);
          queuedMax = Math.max(queuedMax, status("stalling").queuedBytes);
        }
        // The stall filled the socket and left frames waiting in the output's queue.
        expect(queuedMax).toBeGreaterThan(256 * 1024);
        stalling.pause(false);
        yield* sendPaced(datagrams.slice((SECONDS - 2) * second), INPUT, 1.5);
        const sent = () => status("stalling").rtmp?.framesSent ?? 0;
        yield* eventually("the stalled output's queue to empty and its frames to arrive", () =>
          status("stalling").queuedBytes === 0 && media(stalling.messages).length >= sent() && sent() > 0
            ? true
            : undefined,
        );
        expect(status("stalling").rtmp?.framesDropped).toBe(0);
        // Each frame by its time (the first frames of a stream may share one, clamped at its start: those are left out).
        const made = new Map<string, string | null>();
        for (const m of media(reading.messages)) made.set(key(m), made.has(key(m)) ? null : digest(m));
        const got = media(stalling.messages).filter((m) => typeof made.get(key(m)) === "string");
        expect(got.length).toBeGreaterThan(media(stalling.messages).length * 0.9);
        const differing = got.filter((m) => made.get(key(m)) !== digest(m)).length;
        expect(differing).toBe(0);
      }),
    120_000,
  );
});
