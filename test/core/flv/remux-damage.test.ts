/**
 * What the remux does with a damaged frame of a real stream (H.264 with B-frames and AAC, made with ffmpeg, a
 * keyframe every 2 s), one kind of damage at a time at a frame in the middle of a GOP: it sends what a decoder
 * of the TS would decode, and every frame after it, so that an RTMP viewer sees a few damaged macroblocks
 * where a TS viewer does, not a picture frozen until the next keyframe. Only what cannot be framed is left
 * out; parameter sets that cannot be read never become a sequence header.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { FlvFrame } from "../../../src/core/flv/frames.ts";
import { FlvRemux } from "../../../src/core/flv/remux.ts";
import { videoPes } from "../../support/rtmp-media.ts";
import { PACKET_SIZE } from "../../support/ts-generator.ts";
import { ffmpeg, mediaDir } from "./media.ts";

const dir = mediaDir("flv-damage-");
let clean: Buffer = Buffer.alloc(0);
/** The video PES in decode order: the packet each starts in. */
let pes: ReadonlyArray<{ readonly packet: number }> = [];
/** The frame damaged: in the middle of the first GOP, not a keyframe. */
const DAMAGED = 10;
/** The second keyframe (a GOP of 50 frames). */
const SECOND_KEY = 50;

beforeAll(() => {
  const path = join(dir, "in.ts");
  ffmpeg(
    ...["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000"],
    ...["-t", "4", "-vf", "noise=alls=30:allf=t", "-c:v", "libx264", "-preset", "veryfast", "-bf", "2"],
    ...["-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-b:v", "1500k"],
    ...["-c:a", "aac", "-f", "mpegts", path],
  );
  clean = readFileSync(path);
  pes = videoPes(clean);
});

interface Run {
  readonly video: ReadonlyArray<FlvFrame>;
  readonly headers: number;
  readonly dropped: Readonly<Record<string, number>>;
  readonly lastDrop: string | null;
}

const run = (ts: Uint8Array): Run => {
  const remux = new FlvRemux();
  const video: FlvFrame[] = [];
  let headers = 0;
  remux.listen((frame) => {
    if (frame.kind === "video") video.push(frame);
    if (frame.kind === "videoHeader") headers++;
  });
  for (let at = 0; at < ts.length; at += 7 * PACKET_SIZE) remux.push(ts.subarray(at, at + 7 * PACKET_SIZE));
  return { video, headers, dropped: { ...remux.dropped }, lastDrop: remux.lastDrop };
};

/** Where the payload of packet `index` starts in `ts`. */
const payloadOf = (ts: Uint8Array, index: number): number => {
  const at = index * PACKET_SIZE;
  const control = ((ts[at + 3] ?? 0) >> 4) & 3;
  return at + (control === 3 ? 5 + (ts[at + 4] ?? 0) : 4);
};

/** Where frame `frame`'s NAL units start (their first byte after the start code), within its first packet. */
const nalStarts = (ts: Uint8Array, frame: number): number[] => {
  const first = (pes[frame] as { packet: number }).packet;
  const payload = payloadOf(ts, first);
  const end = (first + 1) * PACKET_SIZE;
  const starts: number[] = [];
  for (let at = payload + 9 + (ts[payload + 8] ?? 0); at + 3 < end; at++)
    if (ts[at] === 0 && ts[at + 1] === 0 && ts[at + 2] === 1) starts.push(at + 3);
  return starts;
};

/** The clean stream with `edit` made to a copy of it. */
const damaged = (edit: (ts: Buffer) => void): Buffer => {
  const copy = Buffer.from(clean);
  edit(copy);
  return copy;
};

/** The clean stream without packet `index`: lost on the way. */
const withoutPacket = (index: number): Buffer =>
  Buffer.concat([clean.subarray(0, index * PACKET_SIZE), clean.subarray((index + 1) * PACKET_SIZE)]);

const hex = (frame: FlvFrame | undefined) => Buffer.from(frame?.body ?? []).toString("hex");
/** The frames as [timestamp, key, body]: equal lists, equal frames. */
const described = (frames: ReadonlyArray<FlvFrame>) => frames.map((f) => [f.timestamp, f.keyframe, hex(f)]);

describe("a damaged frame in the remux", () => {
  let reference: Run;
  beforeAll(() => {
    reference = run(clean);
  });

  it("a clean stream goes whole: every frame, one sequence header, nothing dropped", () => {
    // All but the last, which waits for a PES after it to end it.
    expect(reference.video.length).toBe(pes.length - 1);
    expect(reference.headers).toBe(1);
    expect(Object.values(reference.dropped).every((count) => count === 0)).toBe(true);
  });

  it("a NAL unit whose forbidden bit is set is left out alone: the frame goes, and every frame after it", () => {
    // The frame's delimiter (AUD) with its forbidden bit set: a decoder skips that unit and decodes the frame.
    const aud = damaged((ts) => {
      const [at] = nalStarts(ts, DAMAGED);
      ts[at as number] = (ts[at as number] ?? 0) | 0x80;
    });
    const result = run(aud);
    expect(described(result.video)).toEqual(described(reference.video));
    expect(result.dropped).toMatchObject({ bad_video: 1, no_keyframe_yet: 0 });
    expect(result.lastDrop).toBe(
      "bad_video: a NAL unit whose forbidden_zero_bit is set, left out of its frame",
    );
  });

  it("a frame left with no NAL unit to decode is dropped alone: the frames after it still go", () => {
    // The slice itself with its forbidden bit set: nothing of the frame is left; the next frames refer to it,
    // and a decoder conceals what they miss.
    const slice = damaged((ts) => {
      const at = nalStarts(ts, DAMAGED)[1] as number;
      ts[at] = (ts[at] ?? 0) | 0x80;
    });
    const result = run(slice);
    const lost = reference.video[DAMAGED];
    expect(described(result.video)).toEqual(described(reference.video.filter((frame) => frame !== lost)));
    expect(result.dropped).toMatchObject({ bad_video: 1, no_keyframe_yet: 0 });
  });

  it("a PES header whose lengths lie still gives its frame, byte for byte", () => {
    const lying = damaged((ts) => {
      const payload = payloadOf(ts, (pes[DAMAGED] as { packet: number }).packet);
      ts[payload + 4] = 0x00; // PES_packet_length 3: too short for the header itself
      ts[payload + 5] = 0x03;
      ts[payload + 8] = 0xf5; // PES_header_data_length past the packet
    });
    const result = run(lying);
    expect(described(result.video)).toEqual(described(reference.video));
    expect(Object.values(result.dropped).every((count) => count === 0)).toBe(true);
  });

  it("a frame whose PTS cannot be trusted goes one frame step after the frame before, and the frames after it", () => {
    const unmarked = damaged((ts) => {
      const payload = payloadOf(ts, (pes[DAMAGED] as { packet: number }).packet);
      ts[payload + 9] = (ts[payload + 9] ?? 0) & 0xfe; // the PTS's first marker bit
    });
    const result = run(unmarked);
    expect(result.video.length).toBe(reference.video.length);
    const before = reference.video[DAMAGED - 1] as FlvFrame;
    const frame = result.video[DAMAGED] as FlvFrame;
    expect(frame.timestamp).toBe(before.timestamp + 40);
    // The same NAL units; the composition time (bytes 2 to 4) is 0, as the frame's own is not known.
    expect(hex(frame).slice(10)).toBe(hex(reference.video[DAMAGED]).slice(10));
    expect(described(result.video.slice(DAMAGED + 1))).toEqual(described(reference.video.slice(DAMAGED + 1)));
  });

  it("a frame whose PTS and DTS a bit error moved, their marker bits intact, keeps the timeline in place", () => {
    const moved = damaged((ts) => {
      const payload = payloadOf(ts, (pes[DAMAGED] as { packet: number }).packet);
      // Bit 26 of each: 12 minutes later, as a flipped bit in the PES header says.
      ts[payload + 10] = (ts[payload + 10] ?? 0) ^ 0x10;
      if ((ts[payload + 7] ?? 0) >> 6 === 3) ts[payload + 15] = (ts[payload + 15] ?? 0) ^ 0x10;
    });
    const result = run(moved);
    expect(result.video.length).toBe(reference.video.length);
    const frame = result.video[DAMAGED] as FlvFrame;
    expect(frame.timestamp).toBe((reference.video[DAMAGED - 1] as FlvFrame).timestamp + 40);
    expect(described(result.video.slice(DAMAGED + 1))).toEqual(described(reference.video.slice(DAMAGED + 1)));
  });

  it("a frame that lost a packet goes up to the hole; the frames after it go whole", () => {
    const first = (pes[DAMAGED] as { packet: number }).packet;
    const next = (pes[DAMAGED + 1] as { packet: number }).packet;
    // A packet of the frame's own PID in its middle (packets of other PIDs lie between).
    const pid = (at: number) => (((clean[at + 1] ?? 0) & 0x1f) << 8) | (clean[at + 2] ?? 0);
    const own = [];
    for (let p = first + 1; p < next; p++) if (pid(p * PACKET_SIZE) === pid(first * PACKET_SIZE)) own.push(p);
    expect(own.length).toBeGreaterThan(4);
    const lost = own[own.length >> 1] as number;
    const gap = withoutPacket(lost);
    const result = run(gap);
    expect(result.video.length).toBe(reference.video.length);
    const frame = result.video[DAMAGED] as FlvFrame;
    const whole = reference.video[DAMAGED] as FlvFrame;
    expect(frame.timestamp).toBe(whole.timestamp);
    // Its one slice cut where the packet was lost (what follows the hole in it no decoder can use): the bytes
    // of the slice in the frame's first packet and in its own packets before the hole.
    const slice = nalStarts(clean, DAMAGED)[1] as number;
    const before = own
      .filter((p) => p < lost)
      .reduce(
        (bytes, p) => bytes + (p + 1) * PACKET_SIZE - payloadOf(clean, p),
        (first + 1) * PACKET_SIZE - slice,
      );
    expect(frame.body.length).toBe(5 + 4 + before);
    expect(hex(whole).slice(18).startsWith(hex(frame).slice(18))).toBe(true);
    expect(described(result.video.slice(DAMAGED + 1))).toEqual(described(reference.video.slice(DAMAGED + 1)));
    expect(result.dropped.no_keyframe_yet).toBe(0);
  });

  it("a keyframe whose SPS cannot be read goes with the sets in force, without it; no new sequence header", () => {
    const broken = damaged((ts) => {
      const sps = nalStarts(ts, SECOND_KEY).find((at) => ((ts[at] ?? 0) & 0x1f) === 7) as number;
      // Its bytes after the profile and level: 0xff, every exp-Golomb code in it runs past the end.
      for (let at = sps + 4; at < sps + 12; at++) ts[at] = 0xff;
    });
    const result = run(broken);
    expect(result.headers).toBe(1);
    expect(result.video.length).toBe(reference.video.length);
    const key = result.video[SECOND_KEY] as FlvFrame;
    expect(key.keyframe).toBe(true);
    // The same frame without its SPS unit (the sets in force carry the good one).
    expect(key.body.length).toBeLessThan((reference.video[SECOND_KEY] as FlvFrame).body.length);
    expect(described(result.video.slice(SECOND_KEY + 1))).toEqual(
      described(reference.video.slice(SECOND_KEY + 1)),
    );
    expect(result.dropped).toMatchObject({ bad_parameter_sets: 1, no_keyframe_yet: 0 });
    expect(result.lastDrop).toMatch(
      /^bad_parameter_sets: the keyframe's .*: it went with the ones in force$/,
    );
  });

  it("with no usable sets in force, nothing goes until a keyframe brings good ones", () => {
    const broken = damaged((ts) => {
      const sps = nalStarts(ts, 0).find((at) => ((ts[at] ?? 0) & 0x1f) === 7) as number;
      for (let at = sps + 4; at < sps + 12; at++) ts[at] = 0xff;
    });
    const result = run(broken);
    expect(result.headers).toBe(1);
    expect(result.video[0]?.keyframe).toBe(true);
    expect(described(result.video)).toEqual(described(reference.video.slice(SECOND_KEY)));
    expect(result.dropped.bad_parameter_sets).toBe(1);
  });

  it("a frame whose first packet is lost cannot be framed: it alone is missing", () => {
    const first = (pes[DAMAGED] as { packet: number }).packet;
    const lost = withoutPacket(first);
    const result = run(lost);
    const missing = reference.video[DAMAGED];
    expect(described(result.video.filter((frame) => frame.timestamp !== missing?.timestamp))).toEqual(
      described(reference.video.filter((frame) => frame !== missing)),
    );
    expect(result.video.length).toBeGreaterThanOrEqual(reference.video.length - 1);
  });
});
