/**
 * One framing rule for PSI: every reader of the PAT and PMT reassembles sections, so a PMT that spans two
 * packets (a long program_info, many streams) reads as one that fits in one. The start gate, the HLS segmenter
 * and the remux's demuxer are fed the same stream twice, its PMTs in one packet and then in two, and must give
 * the same answer (the slate clip's reader: test/core/slate-splice.test.ts).
 */
import { describe, expect, it } from "vitest";
import { EsDemuxer } from "../../src/core/flv/es.ts";
import { type HlsSegment, makeHlsSegmenter } from "../../src/core/hls.ts";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { makeStartGate } from "../../src/core/ts-start.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import { lengthenedPmt, withTwoPacketPmts } from "../support/long-pmt.ts";
import { PACKET_SIZE, packetizeSections, TsGenerator } from "../support/ts-generator.ts";

const CHUNK = 7 * PACKET_SIZE;
const pidOf = (packet: Uint8Array) => (((packet[1] ?? 0) & 0x1f) << 8) | (packet[2] ?? 0);
const pidsOf = (ts: Uint8Array, count: number) =>
  Array.from({ length: count }, (_, i) => pidOf(ts.subarray(i * PACKET_SIZE)));

const streams = () => {
  const generator = new TsGenerator({ seed: 11, bitrate: 2_000_000 });
  const short = generator.packets(Math.ceil((9 * 2_000_000) / 8 / PACKET_SIZE));
  return { generator, short, long: withTwoPacketPmts(short, generator.pmtPid) };
};

const chunks = function* (ts: Uint8Array) {
  for (let at = 0; at < ts.length; at += CHUNK) yield ts.subarray(at, at + CHUNK);
};

describe("a PMT in two packets", () => {
  const { generator, short, long } = streams();

  it("the start gate opens at the same keyframe, the PAT and both PMT packets ahead of it", () => {
    const through = (ts: Uint8Array) => {
      const gate = makeStartGate();
      const parts: Uint8Array[] = [];
      for (const chunk of chunks(ts)) {
        const out = gate.push(chunk);
        if (out !== null) parts.push(out);
      }
      return { open: gate.isOpen(), out: Buffer.concat(parts), skipped: gate.skippedBytes() };
    };
    const one = through(short);
    const two = through(long);
    expect(one.open).toBe(true);
    expect(two.open).toBe(true);
    expect(pidsOf(one.out, 3)).toEqual([0, generator.pmtPid, generator.videoPid]);
    expect(pidsOf(two.out, 4)).toEqual([0, generator.pmtPid, generator.pmtPid, generator.videoPid]);
    // The two packets are the input's own, as it sent them, and the stream goes on from the same keyframe.
    expect(Buffer.from(long).indexOf(two.out.subarray(PACKET_SIZE, 3 * PACKET_SIZE))).toBeGreaterThanOrEqual(
      0,
    );
    expect(Buffer.compare(two.out.subarray(3 * PACKET_SIZE), long.subarray(two.skipped))).toBe(0);
    expect(
      Buffer.compare(
        two.out.subarray(3 * PACKET_SIZE, 4 * PACKET_SIZE),
        one.out.subarray(2 * PACKET_SIZE, 3 * PACKET_SIZE),
      ),
    ).toBe(0);
  });

  it("the HLS segmenter cuts the same segments, each headed by the PAT and both PMT packets", () => {
    const segment = (ts: Uint8Array) => {
      const segmenter = makeHlsSegmenter({ targetSeconds: 2 });
      const segments: HlsSegment[] = [];
      for (const chunk of chunks(ts)) segments.push(...segmenter.push(chunk, 1_700_000_000_000));
      return segments;
    };
    const one = segment(short);
    const two = segment(long);
    expect(one.length).toBeGreaterThanOrEqual(3);
    expect(two.map((s) => s.durationSeconds)).toEqual(one.map((s) => s.durationSeconds));
    for (const s of two) {
      expect(pidsOf(s.bytes, 3)).toEqual([0, generator.pmtPid, generator.pmtPid]);
      expect(pidOf(s.bytes.subarray(3 * PACKET_SIZE))).toBe(generator.videoPid);
    }
  });

  it("the remux's demuxer finds the same programme and hands on the same access units", () => {
    const demux = (ts: Uint8Array) => {
      const units: string[] = [];
      const demuxer = new EsDemuxer((u) =>
        units.push(`${u.pid} ${u.codec} ${u.pts} ${u.dts} ${u.keyframe} ${u.data.length}`),
      );
      for (const chunk of chunks(ts)) demuxer.push(chunk);
      demuxer.flush();
      return { units, program: demuxer.program };
    };
    const one = demux(short);
    const two = demux(long);
    expect(one.program?.video?.pid).toBe(generator.videoPid);
    expect(two.program).toEqual(one.program);
    expect(one.units.length).toBeGreaterThan(100);
    expect(two.units).toEqual(one.units);
  });

  it("is what the test lengthens: 200 bytes more than the generator's PMT", () => {
    expect(lengthenedPmt(generator.pmt).length).toBe(generator.pmt.length + 200);
  });
});

describe("a duplicated packet", () => {
  it("is read once: a cue whose packet comes twice (same bytes, same CC) is one DATERANGE, not two", () => {
    // A bug fixed with the one framing rule: the segmenter read a repeated cue packet again, and listed the
    // cue twice.
    const cues = (times: number) => {
      const generator = new TsGenerator({ seed: 6, bitrate: 1_000_000 });
      const [packet] = packetizeSections(generator.scte35Pid, [encodeSection(immediateSpliceOut(7))], 0);
      const segmenter = makeHlsSegmenter({ targetSeconds: 4 });
      const now = 1_700_000_000_000;
      const segments = [...segmenter.push(generator.packets(1500), now)];
      for (let k = 0; k < times; k++) segments.push(...segmenter.push(packet ?? new Uint8Array(0), now));
      segments.push(...segmenter.push(generator.packets(1500), now));
      const last = segmenter.flush(now);
      return [...segments, ...(last === null ? [] : [last])].flatMap((s) => s.cues.map((c) => c.cueClass));
    };
    expect(cues(1)).toEqual(["out"]);
    expect(cues(2)).toEqual(["out"]);
  });
});
