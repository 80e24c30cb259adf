/**
 * The channel's shared remux through the slate's two switches, as the RTMP outputs see it (they keep their
 * publish session throughout): live H.264 + AAC, then bridge packets (adaptation field only,
 * discontinuity_indicator set) and a clip of the same format from its keyframe on a time base 1 s after the
 * live's, then bridges and the live again with its clock 20 s back (a sender that restarted), going on.
 *
 * The rule for the timeline (timestamps.ts): a step of the stream's DTS between 2 s back and 10 s forward is
 * kept as it is (the slate 1 s on: a 1 s gap in the tags); any other step starts the new time base 1 ms past
 * the latest tag handed out (the live 20 s back: no gap beyond the tracks' interleave). Tags never go back on a
 * track. A new AVC sequence header goes out at a switch exactly when the new video's SPS/PPS differ from the
 * ones in force, just before its keyframe; the AAC header only when the AudioSpecificConfig changes.
 * The remux reads no discontinuity_indicator: its clock's own rule covers these switches.
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { FlvFrame } from "../../../src/core/flv/frames.ts";
import { FlvRemux } from "../../../src/core/flv/remux.ts";
import { PACKET_SIZE, tsPacket } from "../../support/ts-generator.ts";
import { ffmpeg, mediaDir } from "./media.ts";

const dir = mediaDir("flv-remux-slate-");
const VIDEO_PID = 481;
const AUDIO_PID = 482;
const WRAP = 2 ** 33;

const pidOf = (packet: Uint8Array) => (((packet[1] ?? 0) & 0x1f) << 8) | (packet[2] ?? 0);
const unitStart = (packet: Uint8Array) => ((packet[1] ?? 0) & 0x40) !== 0;
const hasAdaptation = (packet: Uint8Array) => ((packet[3] ?? 0) & 0x20) !== 0 && (packet[4] ?? 0) > 0;
const randomAccess = (packet: Uint8Array) => hasAdaptation(packet) && ((packet[5] ?? 0) & 0x40) !== 0;
const payloadAt = (packet: Uint8Array) => (((packet[3] ?? 0) & 0x20) !== 0 ? 5 + (packet[4] ?? 0) : 4);

const packetsOf = (ts: Uint8Array): Uint8Array[] => {
  const out: Uint8Array[] = [];
  for (let at = 0; at + PACKET_SIZE <= ts.length; at += PACKET_SIZE) out.push(ts.slice(at, at + PACKET_SIZE));
  return out;
};

const readTime = (bytes: Uint8Array, at: number) =>
  (((bytes[at] ?? 0) >> 1) & 0x07) * 2 ** 30 +
  (bytes[at + 1] ?? 0) * 2 ** 22 +
  (((bytes[at + 2] ?? 0) >> 1) & 0x7f) * 2 ** 15 +
  (bytes[at + 3] ?? 0) * 2 ** 7 +
  (((bytes[at + 4] ?? 0) >> 1) & 0x7f);

const writeTime = (bytes: Uint8Array, at: number, value: number) => {
  const prefix = (bytes[at] ?? 0) & 0xf0;
  bytes[at] = prefix | ((Math.floor(value / 2 ** 30) & 0x07) << 1) | 1;
  bytes[at + 1] = Math.floor(value / 2 ** 22) & 0xff;
  bytes[at + 2] = ((Math.floor(value / 2 ** 15) & 0x7f) << 1) | 1;
  bytes[at + 3] = Math.floor(value / 2 ** 7) & 0xff;
  bytes[at + 4] = ((value & 0x7f) << 1) | 1;
};

/** The PES's PTS and DTS (DTS = PTS when absent), or null when the packet starts no timed PES. */
const timesOf = (packet: Uint8Array): { pts: number; dts: number } | null => {
  if (!unitStart(packet)) return null;
  const pes = payloadAt(packet);
  if (packet[pes] !== 0 || packet[pes + 1] !== 0 || packet[pes + 2] !== 1) return null;
  const flags = (packet[pes + 7] ?? 0) >> 6;
  if ((flags & 2) === 0) return null;
  const pts = readTime(packet, pes + 9);
  return { pts, dts: flags === 3 ? readTime(packet, pes + 14) : pts };
};

/** Every PTS, DTS and PCR moved by `ticks` (90 kHz), across the 33-bit wrap: another time base. */
const shifted = (packets: ReadonlyArray<Uint8Array>, ticks: number): Uint8Array[] =>
  packets.map((original) => {
    const packet = original.slice();
    const move = (value: number) => (((value + ticks) % WRAP) + WRAP) % WRAP;
    if (hasAdaptation(packet) && ((packet[5] ?? 0) & 0x10) !== 0) {
      const base =
        (packet[6] ?? 0) * 2 ** 25 +
        (packet[7] ?? 0) * 2 ** 17 +
        (packet[8] ?? 0) * 2 ** 9 +
        (packet[9] ?? 0) * 2 +
        ((packet[10] ?? 0) >> 7);
      const next = move(base);
      packet[6] = Math.floor(next / 2 ** 25) & 0xff;
      packet[7] = Math.floor(next / 2 ** 17) & 0xff;
      packet[8] = Math.floor(next / 2 ** 9) & 0xff;
      packet[9] = Math.floor(next / 2) & 0xff;
      packet[10] = ((next % 2) << 7) | ((packet[10] ?? 0) & 0x7f);
    }
    const times = timesOf(packet);
    if (times !== null) {
      const pes = payloadAt(packet);
      writeTime(packet, pes + 9, move(times.pts));
      if ((packet[pes + 7] ?? 0) >> 6 === 3) writeTime(packet, pes + 14, move(times.dts));
    }
    return packet;
  });

const videoTimes = (packets: ReadonlyArray<Uint8Array>) =>
  packets.flatMap((packet) => (pidOf(packet) === VIDEO_PID ? (timesOf(packet) ?? []) : []));
const audioTimes = (packets: ReadonlyArray<Uint8Array>) =>
  packets.flatMap((packet) => (pidOf(packet) === AUDIO_PID ? (timesOf(packet) ?? []) : []));

/** The index of the first video keyframe packet whose PTS is `seconds` or more past the stream's first. */
const keyframeAt = (packets: ReadonlyArray<Uint8Array>, seconds: number): number => {
  const first = videoTimes(packets)[0]?.pts ?? 0;
  return packets.findIndex((packet) => {
    if (pidOf(packet) !== VIDEO_PID || !randomAccess(packet)) return false;
    const times = timesOf(packet);
    return times !== null && times.pts - first >= seconds * 90_000;
  });
};

/** `source` after the splicer's bridges: one before the first packet of each PID of the new source. */
const bridged = (source: ReadonlyArray<Uint8Array>): Uint8Array[] => {
  const seen = new Set<number>();
  return source.flatMap((packet) => {
    const pid = pidOf(packet);
    if (seen.has(pid)) return [packet];
    seen.add(pid);
    const bridge = tsPacket({ pid, cc: (packet[3] ?? 0) & 0x0f, adaptation: { discontinuity: true } });
    return [bridge, packet];
  });
};

const concat = (parts: ReadonlyArray<Uint8Array>) => Buffer.concat(parts);

interface Run {
  readonly frames: ReadonlyArray<FlvFrame>;
  readonly remux: FlvRemux;
  /** Video access units fed per part: live, slate, live again. */
  readonly videoUnits: ReadonlyArray<number>;
  /** The streams' own DTS step at each switch (ms): live → slate, slate → live. */
  readonly realVideoGaps: ReadonlyArray<number>;
  readonly realAudioGaps: ReadonlyArray<number>;
}

/** Live 0–4 s, the clip (its whole 3 s, 1 s after), the live again from 7 s with its clock 20 s back. */
const run = (live: ReadonlyArray<Uint8Array>, clip: ReadonlyArray<Uint8Array>): Run => {
  const leave = keyframeAt(live, 4);
  const back = keyframeAt(live, 7);
  const partA = live.slice(0, leave);
  const lastA = videoTimes(partA).at(-1)?.dts ?? 0;
  const clipFirst = videoTimes(clip)[0]?.dts ?? 0;
  const partB = shifted(clip, lastA + 90_000 - clipFirst);
  const lastB = videoTimes(partB).at(-1)?.dts ?? 0;
  const liveBack = videoTimes(live.slice(back))[0]?.dts ?? 0;
  const partC = shifted(live.slice(back), lastB - 20 * 90_000 - liveBack);
  const ts = concat([...partA, ...bridged(partB), ...bridged(partC)]);
  // The short way round the 33-bit circle: the live's clock 20 s back from under 20 s wraps.
  const ms = (ticks: number) => {
    const ahead = ((ticks % WRAP) + WRAP) % WRAP;
    return (ahead >= WRAP / 2 ? ahead - WRAP : ahead) / 90;
  };
  const gap = (before: ReadonlyArray<{ dts: number }>, after: ReadonlyArray<{ dts: number }>) =>
    ms((after[0]?.dts ?? 0) - (before.at(-1)?.dts ?? 0));

  const remux = new FlvRemux();
  const frames: FlvFrame[] = [];
  remux.listen((frame) => frames.push(frame));
  for (let at = 0; at < ts.length; at += 7 * PACKET_SIZE) remux.push(ts.subarray(at, at + 7 * PACKET_SIZE));
  return {
    frames,
    remux,
    videoUnits: [videoTimes(partA).length, videoTimes(partB).length, videoTimes(partC).length],
    realVideoGaps: [gap(videoTimes(partA), videoTimes(partB)), gap(videoTimes(partB), videoTimes(partC))],
    realAudioGaps: [gap(audioTimes(partA), audioTimes(partB)), gap(audioTimes(partB), audioTimes(partC))],
  };
};

const ofKind = (frames: ReadonlyArray<FlvFrame>, kind: FlvFrame["kind"]) =>
  frames.filter((f) => f.kind === kind);

/** What holds of every run: monotonic tracks, small gaps at the switches, a keyframe first after each. */
const expectContinuous = (result: Run) => {
  const { frames, remux } = result;
  expect(Object.values(remux.dropped).reduce((a, b) => a + b, 0)).toBe(0);
  const video = ofKind(frames, "video");
  const audio = ofKind(frames, "audio");
  // Every access unit went out (the last one waits for a PES after it).
  const [a = 0, b = 0, c = 0] = result.videoUnits;
  expect(video.length).toBe(a + b + c - 1);
  for (const track of [video, audio]) {
    for (let i = 1; i < track.length; i++) {
      expect((track[i] as FlvFrame).timestamp).toBeGreaterThanOrEqual((track[i - 1] as FlvFrame).timestamp);
    }
  }
  // The first video tag of each new source is its keyframe; the step to it is the stream's own gap going
  // forward (1 s), or little more than a frame when the clock went back (1 ms past the latest tag of either track).
  const switches = [a, a + b];
  switches.forEach((index, which) => {
    const first = video[index] as FlvFrame;
    expect(first.keyframe).toBe(true);
    const step = first.timestamp - (video[index - 1] as FlvFrame).timestamp;
    const real = result.realVideoGaps[which] ?? 0;
    expect(step).toBeGreaterThanOrEqual(0);
    if (real > 0) expect(Math.abs(step - real)).toBeLessThanOrEqual(1);
    else expect(step).toBeLessThan(250);
  });
  // Audio: any step longer than 100 ms is at a switch, and under 1 s past the stream's own gap there.
  const long = audio.flatMap((frame, index) =>
    index > 0 && frame.timestamp - (audio[index - 1] as FlvFrame).timestamp > 100
      ? [frame.timestamp - (audio[index - 1] as FlvFrame).timestamp]
      : [],
  );
  expect(long.length).toBeLessThanOrEqual(2);
  const allowed = Math.max(0, ...result.realAudioGaps) + 1000;
  for (const step of long) expect(step).toBeLessThan(allowed);
  // Headers go out just before the keyframe they are for, at its time.
  for (const header of ofKind(frames, "videoHeader")) {
    const next = frames.slice(frames.indexOf(header) + 1).find((f) => f.kind === "video");
    expect(next?.keyframe).toBe(true);
    expect(next?.timestamp).toBe(header.timestamp);
  }
  expect(ofKind(frames, "audioHeader")).toHaveLength(1);
  return { video, switches };
};

const x264 = (preset: string) => [
  ...["-c:v", "libx264", "-preset", preset, "-g", "25", "-pix_fmt", "yuv420p"],
  ...["-c:a", "aac", "-ac", "2", "-ar", "48000", "-f", "mpegts", "-mpegts_start_pid", "481"],
];

describe("the remux through the slate's switches", () => {
  let live: Uint8Array[] = [];
  let clip: Uint8Array[] = [];
  let sameClip: Uint8Array[] = [];
  beforeAll(() => {
    const make = (name: string, video: string, audio: string, seconds: number, preset: string) => {
      const file = join(dir, name);
      ffmpeg(
        ...["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio, "-t", String(seconds)],
        ...x264(preset),
        file,
      );
      return packetsOf(readFileSync(file));
    };
    live = make(
      "live.ts",
      "testsrc2=size=640x360:rate=25",
      "sine=frequency=440:sample_rate=48000",
      10,
      "veryfast",
    );
    // The slate: a still picture and silence, same format; another x264 preset, so other SPS and PPS.
    const still = "color=c=0x203040:size=640x360:rate=25";
    clip = make("clip.ts", still, "anullsrc=r=48000:cl=stereo", 3, "ultrafast");
    // The same encoder settings as the live's: the same SPS and PPS bytes (checked below).
    sameClip = make("same.ts", still, "anullsrc=r=48000:cl=stereo", 3, "veryfast");
  }, 120_000);

  it("continues the timeline and sends a new AVC header at both switches when the slate's SPS/PPS differ", () => {
    const result = run(live, clip);
    const { video, switches } = expectContinuous(result);
    const headers = ofKind(result.frames, "videoHeader");
    expect(headers).toHaveLength(3);
    // The first for the live's start, then one at each switch, before the new source's keyframe.
    const keyframes = switches.map((index) => video[index] as FlvFrame);
    expect(headers.slice(1).map((h) => h.timestamp)).toEqual(keyframes.map((k) => k.timestamp));
    expect(Buffer.compare(headers[0]?.body ?? new Uint8Array(0), headers[2]?.body ?? new Uint8Array(0))).toBe(
      0,
    );
    expect(
      Buffer.compare(headers[0]?.body ?? new Uint8Array(0), headers[1]?.body ?? new Uint8Array(0)),
    ).not.toBe(0);
  });

  it("sends no new AVC header when the slate's SPS/PPS are the live's, nor an AAC header for the same config", () => {
    const result = run(live, sameClip);
    expectContinuous(result);
    expect(ofKind(result.frames, "videoHeader")).toHaveLength(1);
  });

  it("the same with the live spliced into itself at a keyframe", () => {
    const result = run(live, live.slice(keyframeAt(live, 5), keyframeAt(live, 8)));
    expectContinuous(result);
    expect(ofKind(result.frames, "videoHeader")).toHaveLength(1);
  });
});
