/**
 * The HLS segmenter across a splice the stream signals, as the channel's slate makes one: live, then bridge
 * packets (adaptation field only, discontinuity_indicator set) and a clip on another time base from its
 * keyframe, then bridges and the live again. The segment in progress ends at the new keyframe however short
 * it is, the one that starts there is EXT-X-DISCONTINUITY and starts with PAT, PMT and that keyframe, the
 * durations stay stream time across both switches, and the playlist's EXT-X-DISCONTINUITY-SEQUENCE counts the
 * discontinuities that slid out of its window.
 */
import { describe, expect, it } from "vitest";
import { type HlsSegment, makeHlsSegmenter, nextNumbers } from "../../src/core/hls.ts";
import { renderPlaylist } from "../../src/core/hls-playlist.ts";
import { PACKET_SIZE, TsGenerator, tsPacket } from "../support/ts-generator.ts";

const pidOf = (packet: Uint8Array) => (((packet[1] ?? 0) & 0x1f) << 8) | (packet[2] ?? 0);
const unitStart = (packet: Uint8Array) => ((packet[1] ?? 0) & 0x40) !== 0;
const randomAccess = (packet: Uint8Array) =>
  ((packet[3] ?? 0) & 0x20) !== 0 && (packet[4] ?? 0) > 0 && ((packet[5] ?? 0) & 0x40) !== 0;
const hasPcr = (packet: Uint8Array) =>
  ((packet[3] ?? 0) & 0x20) !== 0 && (packet[4] ?? 0) >= 7 && ((packet[5] ?? 0) & 0x10) !== 0;

const packetsOf = (ts: Uint8Array): Uint8Array[] => {
  const out: Uint8Array[] = [];
  for (let at = 0; at + PACKET_SIZE <= ts.length; at += PACKET_SIZE) out.push(ts.slice(at, at + PACKET_SIZE));
  return out;
};

/** Moves a packet's PCR by `seconds` (another time base). */
const shiftPcr = (packet: Uint8Array, seconds: number): void => {
  if (!hasPcr(packet)) return;
  const base =
    (packet[6] ?? 0) * 2 ** 25 +
    (packet[7] ?? 0) * 2 ** 17 +
    (packet[8] ?? 0) * 2 ** 9 +
    (packet[9] ?? 0) * 2;
  const next = (base + ((packet[10] ?? 0) >> 7) + Math.round(seconds * 90_000)) % 2 ** 33;
  packet[6] = Math.floor(next / 2 ** 25) & 0xff;
  packet[7] = Math.floor(next / 2 ** 17) & 0xff;
  packet[8] = Math.floor(next / 2 ** 9) & 0xff;
  packet[9] = Math.floor(next / 2) & 0xff;
  packet[10] = ((next % 2) << 7) | ((packet[10] ?? 0) & 0x7f);
};

/** Where a packet of the spliced stream came from. */
type Origin = "live" | "bridge" | "slate";

interface Spliced {
  readonly packets: ReadonlyArray<Uint8Array>;
  readonly origins: ReadonlyArray<Origin>;
  /** Index of the first packet of each new source (its keyframe). */
  readonly switches: ReadonlyArray<number>;
  /** Stream seconds each packet stands for, in order (the live's time goes on while the slate plays). */
  readonly seconds: number;
}

const BITRATE = 1_000_000;
const SECONDS_PER_PACKET = (PACKET_SIZE * 8) / BITRATE;
const VIDEO = 0x100;

/** The first keyframe packet at or after stream second `seconds`. */
const keyframeAfter = (packets: ReadonlyArray<Uint8Array>, seconds: number): number =>
  packets.findIndex(
    (packet, index) =>
      index * SECONDS_PER_PACKET >= seconds &&
      pidOf(packet) === VIDEO &&
      unitStart(packet) &&
      randomAccess(packet),
  );

/**
 * Appends `source` after bridge packets as the slate's splicer writes them: one before the first packet of
 * each media PID of the new source.
 */
const splice = (
  out: { packets: Uint8Array[]; origins: Origin[]; switches: number[] },
  source: ReadonlyArray<Uint8Array>,
  origin: Origin,
) => {
  out.switches.push(out.packets.length + 1);
  const bridged = new Set<number>();
  for (const packet of source) {
    const pid = pidOf(packet);
    if ((pid === VIDEO || pid === 0x101) && !bridged.has(pid)) {
      bridged.add(pid);
      out.packets.push(tsPacket({ pid, cc: (packet[3] ?? 0) & 0x0f, adaptation: { discontinuity: true } }));
      out.origins.push("bridge");
    }
    out.packets.push(packet);
    out.origins.push(origin);
  }
};

/** Live 0–9.x s, the slate (its PCR an hour on) for 6 s from its keyframe, the live again from 16 s on. */
const slateStream = (): Spliced => {
  const live = packetsOf(
    new TsGenerator({ seed: 5, bitrate: BITRATE }).packets(Math.ceil(24 / SECONDS_PER_PACKET)),
  );
  const slate = packetsOf(
    new TsGenerator({ seed: 9, bitrate: BITRATE }).packets(Math.ceil(6 / SECONDS_PER_PACKET)),
  );
  for (const packet of slate) shiftPcr(packet, 3600);
  // The live leaves at a keyframe that the target would not cut at, and comes back at one.
  const leave = keyframeAfter(live, 9.5);
  const back = keyframeAfter(live, 16);
  // The clip starts at its keyframe (its own PAT and PMT are the channel's, sent later again).
  const slateStart = slate.findIndex((packet) => pidOf(packet) === VIDEO);
  expect(randomAccess(slate[slateStart] as Uint8Array)).toBe(true);
  const out = { packets: [] as Uint8Array[], origins: [] as Origin[], switches: [] as number[] };
  for (const packet of live.slice(0, leave)) {
    out.packets.push(packet);
    out.origins.push("live");
  }
  splice(out, slate.slice(slateStart), "slate");
  splice(out, live.slice(back), "live");
  const seconds = (leave + (slate.length - slateStart) + (live.length - back)) * SECONDS_PER_PACKET;
  return { ...out, seconds };
};

const concat = (packets: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(packets.length * PACKET_SIZE);
  packets.forEach((packet, index) => {
    out.set(packet, index * PACKET_SIZE);
  });
  return out;
};

const segmentAll = (ts: Uint8Array, target = 4): HlsSegment[] => {
  const segmenter = makeHlsSegmenter({ targetSeconds: target });
  const segments: HlsSegment[] = [];
  for (let at = 0; at < ts.length; at += 7 * PACKET_SIZE) {
    segments.push(...segmenter.push(ts.subarray(at, at + 7 * PACKET_SIZE), 1_700_000_000_000));
  }
  const last = segmenter.flush(1_700_000_000_000);
  if (last !== null) segments.push(last);
  return segments;
};

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

const playlist = (segments: ReadonlyArray<HlsSegment>) =>
  renderPlaylist({
    segments,
    targetSeconds: 4,
    mode: "live",
    ended: false,
    cueTags: false,
    segmentName: (sequence) => `segment-${sequence}.ts`,
  });

describe("hls segmenter across signalled splices", () => {
  const stream = slateStream();
  const segments = segmentAll(concat(stream.packets));
  // Each segment: PAT, PMT, then a run of the stream; the runs follow one another from the first keyframe.
  const runs: Array<{ from: number; to: number }> = [];
  let next = stream.packets.findIndex((packet) => pidOf(packet) === VIDEO && randomAccess(packet));
  for (const segment of segments) {
    const count = segment.bytes.length / PACKET_SIZE - 2;
    runs.push({ from: next, to: next + count });
    next += count;
  }

  it("passes every packet from the first keyframe on, once, in order", () => {
    expect(next).toBe(stream.packets.length);
    segments.forEach((segment, index) => {
      const run = runs[index] as { from: number; to: number };
      const body = segment.bytes.subarray(2 * PACKET_SIZE);
      expect(sameBytes(body, concat(stream.packets.slice(run.from, run.to)))).toBe(true);
    });
  });

  it("ends the segment at each new source's keyframe and marks the next one EXT-X-DISCONTINUITY", () => {
    const marked = segments.filter((segment) => segment.discontinuity);
    expect(marked.map((segment) => runs[segments.indexOf(segment)]?.from)).toEqual(stream.switches);
    for (const at of stream.switches) {
      const index = runs.findIndex((run) => run.from === at);
      const before = runs[index - 1] as { from: number; to: number };
      // The segment before holds nothing of the new source: the old one and the splicer's bridges.
      const newOrigin = stream.origins[at];
      const oldOrigin = stream.origins[before.from];
      expect(oldOrigin).not.toBe(newOrigin);
      expect(
        stream.origins.slice(before.from, before.to).every((o) => o === oldOrigin || o === "bridge"),
      ).toBe(true);
      // Shorter than the target: the splice cut it, not the target.
      expect(segments[index - 1]?.durationSeconds).toBeLessThan(3.5);
      // The new segment: PAT, PMT, then the new source's keyframe, as any segment starts.
      const packets = packetsOf(segments[index]?.bytes ?? new Uint8Array(0));
      expect(pidOf(packets[0] as Uint8Array)).toBe(0);
      expect(pidOf(packets[1] as Uint8Array)).toBe(0x1000);
      const first = packets[2] as Uint8Array;
      expect(pidOf(first)).toBe(VIDEO);
      expect(unitStart(first) && randomAccess(first)).toBe(true);
    }
    const text = playlist(segments);
    const lines = text.split("\n");
    const tags = lines.flatMap((line, index) => (line === "#EXT-X-DISCONTINUITY" ? [index] : []));
    expect(tags).toHaveLength(2);
    // Each tag belongs to the segment that starts at a switch: the next URI is its.
    const names = tags.map((index) => lines.slice(index).find((line) => line.endsWith(".ts")));
    expect(names).toEqual(marked.map((segment) => `segment-${segment.sequence}.ts`));
    expect(text).not.toContain("#EXT-X-DISCONTINUITY-SEQUENCE");
    expect(segments.map((segment) => segment.discontinuitySequence)).toEqual(
      segments.map((segment) => marked.filter((m) => m.sequence <= segment.sequence).length),
    );
  });

  it("keeps durations stream time across both switches", () => {
    // Each segment lasts what its packets stand for (the PCR, one interval at most, is the clock).
    segments.forEach((segment, index) => {
      const run = runs[index] as { from: number; to: number };
      const bridges = stream.origins.slice(run.from, run.to).filter((o) => o === "bridge").length;
      const seconds = (run.to - run.from - bridges + 2) * SECONDS_PER_PACKET;
      expect(Math.abs(segment.durationSeconds - seconds)).toBeLessThan(0.1);
      expect(segment.durationSeconds).toBeLessThanOrEqual(4);
    });
    const total = segments.reduce((sum, segment) => sum + segment.durationSeconds, 0);
    expect(Math.abs(total - stream.seconds)).toBeLessThan(0.3);
  });

  it("counts in EXT-X-DISCONTINUITY-SEQUENCE the discontinuities that slid out of a live window", () => {
    const window = 3;
    const marked = segments.filter((segment) => segment.discontinuity).map((segment) => segment.sequence);
    const seen = new Map<number, number>();
    for (let end = window; end <= segments.length; end++) {
      const listed = segments.slice(end - window, end);
      const lines = playlist(listed).split("\n");
      const header = lines.find((line) => line.startsWith("#EXT-X-DISCONTINUITY-SEQUENCE:"));
      const base = header === undefined ? 0 : Number(header.split(":")[1]);
      // As many discontinuities went before the window's first segment as the header says.
      const first = listed[0] as HlsSegment;
      expect(base).toBe(marked.filter((sequence) => sequence <= first.sequence).length);
      // RFC 8216 §6.2.2: every segment keeps its Discontinuity Sequence Number from one playlist to the next.
      let number = base;
      for (const line of lines) {
        if (line === "#EXT-X-DISCONTINUITY") number += 1;
        const match = /^segment-(\d+)\.ts$/.exec(line);
        if (match === null) continue;
        const sequence = Number(match[1]);
        expect(seen.get(sequence) ?? number).toBe(number);
        seen.set(sequence, number);
      }
    }
    // The window after the first discontinuous segment slid out says 1; after the second, 2.
    const windowAfter = (sequence: number) =>
      playlist(segments.filter((s) => s.sequence > sequence).slice(0, window));
    expect(windowAfter(marked[0] as number)).toContain("#EXT-X-DISCONTINUITY-SEQUENCE:1\n");
    expect(windowAfter(marked[1] as number)).toContain("#EXT-X-DISCONTINUITY-SEQUENCE:2\n");
    // A segmenter that follows this one counts on.
    const numbers = nextNumbers(segments, { sequence: 0, cue: 0 });
    expect(numbers.discontinuitySequence).toBe(2);
  });

  it("the same splices without bridges make no discontinuity", () => {
    const plain = concat(stream.packets.filter((_, index) => stream.origins[index] !== "bridge"));
    const unflagged = segmentAll(plain);
    expect(unflagged.some((segment) => segment.discontinuity)).toBe(false);
    // Unsignalled, a jump of the PCR still cuts (the target's rule sees a segment far too long) but marks
    // nothing: the segmenter cannot tell a new source from a clock that jumped.
    expect(unflagged.every((segment) => segment.discontinuitySequence === 0)).toBe(true);
  });
});
