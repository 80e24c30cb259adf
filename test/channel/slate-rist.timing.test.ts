/**
 * The slate with a RIST input: ristsender calls the channel's RIST listener with a real H.264 + AAC stream (a
 * SCTE-35 cue every 2 s); the channel has a slate (after 1 s) and two outputs, UDP to a sink and RIST to a
 * ristreceiver. The sender stops (the process ends) and, once the slate has played a while, a new ristsender
 * (a new RIST flow, its numbers from 0 again) sends the stream from where its clock has got to. What the
 * receivers got: the slate on air at both outputs within after_ms + 100 ms of the input's silence, no continuity
 * error on any PID, and back to the input from its first keyframe, byte for byte from there with every cue.
 * test/channel/slate.timing.test.ts is the same with an RTP input and more outputs, in a service process.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { analyse } from "../support/analyse.ts";
import { eventually, freeUdpPort, json, useTestApp } from "../support/app.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import { encodeTestStream } from "../support/media.ts";
import { type UdpSink, udpSink } from "../support/peers.ts";
import { ristReceiverPeer, ristSenderPeer } from "../support/rist-peers.ts";
import { videoPes, withCues } from "../support/rtmp-media.ts";
import { chunkTs, DATAGRAM_BYTES, sendPaced } from "../support/sender.ts";
import { STREAM_TYPE_AAC } from "../support/ts-generator.ts";
import { discontinuity, find, hasPayload, pidAt, randomAccess } from "../support/ts-packets.ts";
import { continuityErrors } from "../support/ts-sections.ts";

const app = useTestApp();
const scope = Effect.runSync(Scope.make());
const dir = mkdtempSync(join(tmpdir(), "distributary-slate-rist-"));
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void));
  rmSync(dir, { recursive: true, force: true });
});

const SECONDS = 14;
/** The first sender sends this much; the second starts this much later in the stream. */
const FIRST_SECONDS = 5;
const AWAY_SECONDS = 4;
const AFTER_MS = 1000;
const CHANNEL = "slate-rist";
const PACKET = 188;
const VIDEO_PID = 0x100;

const inScope = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>, within: Scope.Scope = scope) =>
  Effect.runPromise(Scope.extend(effect, within));
const slate = async () =>
  (await json(await app.request(`/api/channels/${CHANNEL}`))).slate as { on: boolean; ready: boolean } | null;
/** The longest silence between two arrivals, and the index of the datagram after it. */
const longestSilence = (arrivals: ReadonlyArray<number>) =>
  arrivals.reduce(
    (worst, at, index) =>
      index > 0 && at - (arrivals[index - 1] ?? 0) > worst.gap
        ? { gap: at - (arrivals[index - 1] ?? 0), index }
        : worst,
    { gap: 0, index: 0 },
  );

describe("a channel with a RIST input and a slate", () => {
  it("the sender stops: the slate within after_ms at every output; a new sender: back from its first keyframe, byte for byte", async () => {
    const file = join(dir, "in.ts");
    await Effect.runPromise(encodeTestStream(file, SECONDS));
    const plain = await readFile(file);
    const cues = videoPes(plain)
      .filter((_, index) => index > 0 && index % 50 === 0)
      .map((frame, index) => ({
        before: frame.packet,
        section: encodeSection(immediateSpliceOut(5300 + index)),
      }));
    const source = withCues(plain, STREAM_TYPE_AAC, cues);
    // The first sender stops between two pictures; the second starts wherever its clock is, mid-picture.
    const pictures = videoPes(source);
    const stopAt =
      (pictures.find((frame) => frame.packet * PACKET >= (source.length * FIRST_SECONDS) / SECONDS)?.packet ??
        0) * PACKET;
    const resumeAt =
      Math.round((source.length * (FIRST_SECONDS + AWAY_SECONDS)) / SECONDS / DATAGRAM_BYTES) *
      DATAGRAM_BYTES;
    const secondPart = source.subarray(resumeAt);
    const perMs = source.length / SECONDS / DATAGRAM_BYTES / 1000;

    const udp: UdpSink = await inScope(udpSink);
    const ristSink: UdpSink = await inScope(udpSink);
    const [inputPort, ristOut] = [await freeUdpPort(), await freeUdpPort()];
    await inScope(ristReceiverPeer({ mode: "listen", port: ristOut, udpPort: ristSink.port, buffer: 200 }));
    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: CHANNEL,
        name: "Slate RIST",
        rtp_ip: "127.0.0.1",
        rtp_port: inputPort,
        input_url: `rist://@127.0.0.1:${inputPort}?buffer=200`,
        slate: { after_ms: AFTER_MS },
        outputs: [
          { id: "udp", name: "udp", protocol: "udp", url: `udp://127.0.0.1:${udp.port}` },
          { id: "rist", name: "rist", protocol: "rist", url: `rist://127.0.0.1:${ristOut}?buffer=200` },
        ],
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await app.request(`/api/channels/${CHANNEL}/start`, { method: "POST" })).status).toBe(200);

    const first = Effect.runSync(Scope.make());
    const sender = await inScope(ristSenderPeer({ mode: "connect", port: inputPort, buffer: 200 }), first);
    await Effect.runPromise(sendPaced(chunkTs(source.subarray(0, stopAt)), sender.udpPort, perMs));
    await eventually("the slate ready before the input stops", async () =>
      (await slate())?.ready ? true : undefined,
    );
    const lastLive = source.subarray(stopAt - PACKET, stopAt);
    await eventually("the first part at both outputs", () =>
      find(udp.bytes(), lastLive) >= 0 && find(ristSink.bytes(), lastLive) >= 0 ? true : undefined,
    );
    // The sender stops: its process ends.
    await Effect.runPromise(Scope.close(first, Exit.void));
    await eventually("the slate on air", async () => ((await slate())?.on ? true : undefined));
    const onAt = udp.arrivals.length;
    await eventually("2 s of the slate at the UDP output", () =>
      (udp.arrivals.at(-1) ?? 0) - (udp.arrivals[onAt] ?? Number.POSITIVE_INFINITY) > 2000 ? true : undefined,
    );

    // A new sender, a new RIST flow, the stream from where its clock got to while it was away.
    const again = await inScope(ristSenderPeer({ mode: "connect", port: inputPort, buffer: 200 }));
    await Effect.runPromise(sendPaced(chunkTs(secondPart), again.udpPort, perMs));
    const last = secondPart.subarray(secondPart.length - PACKET);
    await eventually("the end of the stream at both outputs", () =>
      find(udp.bytes(), last) >= 0 && find(ristSink.bytes(), last) >= 0 ? true : undefined,
    );

    // The slate took over within its time at both outputs, and nothing was ever silent longer.
    for (const [name, sink] of [
      ["UDP", udp],
      ["RIST", ristSink],
    ] as const) {
      const arrivals = sink.arrivals.slice(
        0,
        sink.datagrams.findIndex((d) => find(d, last) >= 0),
      );
      const silence = longestSilence(arrivals);
      console.log(
        `slate with a RIST input: the ${name} output's longest silence ${silence.gap.toFixed(0)} ms`,
      );
      expect(silence.gap).toBeLessThanOrEqual(AFTER_MS + 100);
      expect(Object.fromEntries(continuityErrors(sink.bytes()))).toEqual({});
    }

    // Back to the input at its first keyframe, and from there every packet the second sender sent, in order,
    // with only flagged bridges (no payload) between them; every cue after the return as sent.
    const keyframeAt = pictures
      .map((frame) => frame.packet * PACKET - resumeAt)
      .find((at) => at >= 0 && randomAccess(secondPart, at));
    // The second sender starts mid-picture: what it sent before that keyframe never reaches an output.
    expect(keyframeAt).toBeGreaterThan(0);
    const fromKeyframe = secondPart.subarray(keyframeAt ?? 0);
    const beforeKeyframe = chunkTs(secondPart.subarray(0, keyframeAt)).flatMap((datagram) =>
      Array.from({ length: datagram.length / PACKET }, (_, index) =>
        datagram.subarray(index * PACKET, (index + 1) * PACKET),
      ).filter((packet) => pidAt(packet, 0) === VIDEO_PID),
    );
    expect(beforeKeyframe.length).toBeGreaterThan(0);
    for (const sink of [udp, ristSink]) {
      const received = sink.bytes();
      expect(beforeKeyframe.filter((packet) => find(received, packet) >= 0)).toEqual([]);
      const at = find(received, fromKeyframe.subarray(0, PACKET));
      expect(at).toBeGreaterThan(0);
      const live = received.subarray(at);
      let matched = 0;
      for (let r = 0; r + PACKET <= live.length && matched * PACKET < fromKeyframe.length; r += PACKET) {
        const packet = live.subarray(r, r + PACKET);
        if (packet.equals(fromKeyframe.subarray(matched * PACKET, matched * PACKET + PACKET))) matched++;
        else expect(discontinuity(live, r) && !hasPayload(live, r)).toBe(true);
      }
      expect(matched * PACKET).toBe(fromKeyframe.length);
      const sentCues = analyse(fromKeyframe).sections;
      expect(sentCues.length).toBeGreaterThanOrEqual(2);
      expect(analyse(live).sections).toEqual(sentCues);
    }

    const events = (await json(await app.request(`/api/events?channel=${CHANNEL}&limit=1000`))).events as
      | ReadonlyArray<{ type: string; reason?: string }>
      | undefined;
    const slateEvents = (events ?? []).filter((event) => event.type.startsWith("slate_"));
    expect(slateEvents.map((event) => [event.type, event.reason ?? null])).toEqual(
      expect.arrayContaining([
        ["slate_on", "input_lost"],
        ["slate_off", null],
      ]),
    );
  }, 90_000);
});
