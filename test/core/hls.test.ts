/**
 * The HLS segmenter on its own: a splice_insert that names a PTS (not immediate) starts a segment at the first
 * keyframe whose PTS reaches it, where the target alone would not have cut, and its DATERANGE opens that
 * segment.
 */
import { describe, expect, it } from "vitest";
import { type HlsSegment, makeHlsSegmenter } from "../../src/core/hls.ts";
import { bytesToHex, encodeSection } from "../../src/core/scte35/index.ts";
import { immediateSpliceOut, spliceInsertSection } from "../support/cues.ts";
import { PACKET_SIZE, packetizeSections, TsGenerator } from "../support/ts-generator.ts";

const pidOf = (packet: Uint8Array) => (((packet[1] ?? 0) & 0x1f) << 8) | (packet[2] ?? 0);

/**
 * The generator's stream with each video PES stamped with a PTS equal to the latest PCR (90 kHz), as an
 * encoder's would advance: the generator itself writes PTS 0 everywhere.
 */
const withAdvancingPts = (generator: TsGenerator, packets: number): Uint8Array => {
  const ts = generator.packets(packets);
  let pts = 0;
  for (let at = 0; at < ts.length; at += PACKET_SIZE) {
    const packet = ts.subarray(at, at + PACKET_SIZE);
    const control = ((packet[3] ?? 0) >> 4) & 0x3;
    if ((control & 0x2) !== 0 && (packet[4] ?? 0) >= 7 && ((packet[5] ?? 0) & 0x10) !== 0) {
      pts =
        (packet[6] ?? 0) * 2 ** 25 +
        (packet[7] ?? 0) * 2 ** 17 +
        (packet[8] ?? 0) * 2 ** 9 +
        (packet[9] ?? 0) * 2;
    }
    const unitStart = ((packet[1] ?? 0) & 0x40) !== 0;
    if (!unitStart || pidOf(packet) !== generator.videoPid) continue;
    const pes = (control & 0x2) !== 0 ? 5 + (packet[4] ?? 0) : 4;
    const field = pes + 9;
    packet[field] = 0x21 | ((Math.floor(pts / 2 ** 30) & 0x07) << 1);
    packet[field + 1] = Math.floor(pts / 2 ** 22) & 0xff;
    packet[field + 2] = ((Math.floor(pts / 2 ** 15) & 0x7f) << 1) | 1;
    packet[field + 3] = Math.floor(pts / 2 ** 7) & 0xff;
    packet[field + 4] = ((pts & 0x7f) << 1) | 1;
  }
  return ts;
};

const segmentAll = (ts: Uint8Array): ReadonlyArray<HlsSegment> => {
  const segmenter = makeHlsSegmenter({ targetSeconds: 4 });
  const segments: HlsSegment[] = [];
  for (let at = 0; at < ts.length; at += 7 * PACKET_SIZE) {
    segments.push(...segmenter.push(ts.subarray(at, at + 7 * PACKET_SIZE), 1_700_000_000_000));
  }
  return segments;
};

describe("hls segmenter", () => {
  it("cuts at the first keyframe at or after a splice's PTS, and the cue's DATERANGE opens that segment", () => {
    const packets = Math.ceil((14_000 * 1_000_000) / 8 / 188 / 1000);
    const plain = segmentAll(withAdvancingPts(new TsGenerator({ seed: 5, bitrate: 1_000_000 }), packets));
    const plainStarts = plain.map((_, index) =>
      plain.slice(0, index).reduce((sum, s) => sum + s.durationSeconds, 0),
    );

    const generator = new TsGenerator({ seed: 5, bitrate: 1_000_000 });
    // Sent at 3.5 s for a splice at 4.3 s: keyframes come about every 1.025 s, the target alone cuts every third.
    const section = encodeSection(
      spliceInsertSection({
        splice_event_id: 9,
        splice_event_cancel_indicator: false,
        out_of_network_indicator: true,
        program_splice_flag: true,
        duration_flag: true,
        break_duration: { auto_return: true, duration: 30 * 90_000 },
        splice_immediate_flag: false,
        time_specified_flag: true,
        pts_time: 4.3 * 90_000,
        event_id_compliance_flag: true,
        unique_program_id: 1,
        avail_num: 0,
        avails_expected: 0,
      }),
    );
    generator.insertScte35(section, 3500);
    const segments = segmentAll(withAdvancingPts(generator, packets));
    const starts = segments.map((_, index) =>
      segments.slice(0, index).reduce((sum, s) => sum + s.durationSeconds, 0),
    );

    const withCue = segments.findIndex((segment) => segment.cues.length > 0);
    expect(withCue).toBeGreaterThan(0);
    const at = starts[withCue] ?? 0;
    expect(at).toBeGreaterThanOrEqual(4.3);
    expect(at).toBeLessThan(4.3 + 1.1);
    // Without the cue no segment starts there.
    expect(plainStarts.some((start) => Math.abs(start - at) < 0.1)).toBe(false);
    const cue = segments[withCue]?.cues[0];
    expect(cue?.cueClass).toBe("out");
    expect(cue?.durationSeconds).toBe(30);
    expect(bytesToHex(cue?.section ?? new Uint8Array(0))).toBe(bytesToHex(section));
    for (const segment of segments) expect(segment.durationSeconds).toBeLessThanOrEqual(4);
  });
});

describe("hls segmenter, cues packed together", () => {
  it("reads every SCTE-35 section a packet carries, not only the first", () => {
    const generator = new TsGenerator({ seed: 6, bitrate: 1_000_000 });
    const cue = (id: number) => encodeSection(immediateSpliceOut(id));
    const [first, second] = [cue(21), cue(22)];
    const packed = packetizeSections(generator.scte35Pid, [first, second], 0);
    expect(packed.length).toBe(1);
    const segmenter = makeHlsSegmenter({ targetSeconds: 4 });
    const now = 1_700_000_000_000;
    const segments = [
      ...segmenter.push(generator.packets(1500), now),
      ...segmenter.push(packed[0] ?? new Uint8Array(0), now),
      ...segmenter.push(generator.packets(1500), now),
    ];
    const last = segmenter.flush(now);
    const cues = [...segments, ...(last === null ? [] : [last])].flatMap((segment) => segment.cues);
    expect(cues.map((c) => bytesToHex(c.section))).toEqual([bytesToHex(first), bytesToHex(second)]);
  });
});
