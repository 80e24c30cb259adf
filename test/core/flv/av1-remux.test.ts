/**
 * AV1 from MPEG-TS back to Enhanced RTMP (es.ts, av1-frames.ts, remux.ts) without sockets, and the sequence
 * header reader (av1-sequence.ts) against ffmpeg's own AV1CodecConfigurationRecord writer: streams encoded by
 * SVT-AV1 and libaom in several pixel formats, the record made from their sequence header equal byte for byte
 * to the one ffmpeg put in an MP4; the TS our RTMP input makes (ts-mux.ts) read by the channel's FLV remux: an
 * `av01` sequence start of that record, then every temporal unit as sent, but its temporal delimiter; and
 * that TS corrupted as the fuzz tests corrupt H.264 and HEVC (fuzz.test.ts): nothing escapes the remux's
 * checks, nothing goes out of order or before its sequence header.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { av1SequenceStart, readAv1C, sequenceHeaderObu } from "../../../src/core/flv/av1.ts";
import { av1CodecConfiguration, readSequenceHeader } from "../../../src/core/flv/av1-sequence.ts";
import type { FlvFrame } from "../../../src/core/flv/frames.ts";
import { FlvRemux } from "../../../src/core/flv/remux.ts";
import { FlvTsMux } from "../../../src/core/flv/ts-mux.ts";
import { av1Tags, encodeAv1, temporalUnitsIn } from "../../support/av1-media.ts";
import { CORRUPTIONS, corruptMedia } from "../../support/corrupt.ts";
import { PACKET_SIZE } from "../../support/ts-generator.ts";
import { counted, fuzzRuns, fuzzTimeout, remuxRun } from "./fuzz-support.ts";
import { ffmpeg, mediaDir } from "./media.ts";

const dir = mediaDir("h5-av1-remux-");
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** The av1C box ffmpeg's MP4 writer made for `encoder` and `pixFmt` (BT.2020 PQ colour when `hdr`). */
const ffmpegRecord = (encoder: string, pixFmt: string, hdr: boolean): Uint8Array => {
  const ivf = join(dir, `${encoder}-${pixFmt}-${hdr}.ivf`);
  const mp4 = ivf.replace(/ivf$/, "mp4");
  const colour = hdr
    ? ["-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc"]
    : [];
  ffmpeg(
    ...["-f", "lavfi", "-i", "testsrc2=size=352x200:rate=25", "-t", "0.12", "-c:v", encoder],
    ...(encoder === "libaom-av1" ? ["-cpu-used", "8"] : ["-preset", "12"]),
    ...["-pix_fmt", pixFmt, ...colour, ivf],
  );
  ffmpeg("-i", ivf, "-c", "copy", mp4);
  const file = readFileSync(mp4);
  const at = file.indexOf("av1C");
  return file.subarray(at + 4, at - 4 + file.readUInt32BE(at - 4));
};

describe("AV1 sequence header", () => {
  it.each([
    ["libsvtav1", "yuv420p", false, 3],
    ["libsvtav1", "yuv420p10le", true, 2],
    ["libaom-av1", "yuv444p", false, 3],
    ["libaom-av1", "gray", true, 2],
  ])("%s %s: the record made from it is ffmpeg's, byte for byte", (encoder, pixFmt, hdr, hdrWcg) => {
    const record = ffmpegRecord(encoder, pixFmt, hdr);
    const sequence = sequenceHeaderObu(readAv1C(record)?.configObus ?? new Uint8Array(0));
    if (sequence === null) throw new Error("no sequence header in ffmpeg's record");
    const info = readSequenceHeader(sequence);
    if (typeof info === "string") throw new Error(info);
    expect(hex(av1CodecConfiguration(info, sequence))).toBe(hex(record));
    expect([info.width, info.height, info.hdrWcg]).toEqual([352, 200, hdrWcg]);
  });

  it("says why a sequence header cannot be read", () => {
    expect(readSequenceHeader(Uint8Array.of(0x32, 0))).toBe("not a sequence header OBU");
    expect(readSequenceHeader(Uint8Array.of(0x0a, 9, 0))).toMatch(/size runs past/);
    expect(readSequenceHeader(Uint8Array.of(0x0a, 2, 0, 0))).toMatch(/ends before its colour/);
  });
});

describe("FlvRemux with AV1", () => {
  const stream = encodeAv1(dir, "remux", 2);
  const ts: Uint8Array[] = [];
  const mux = new FlvTsMux((datagram) => ts.push(Uint8Array.from(datagram)));
  mux.join(0);
  for (const tag of av1Tags(stream)) mux.tag(9, tag.timestamp, tag.body, tag.timestamp);
  const whole = Buffer.concat(ts);

  it("the TS our RTMP input made goes back out as av01: the record's sequence start, then every unit as sent", () => {
    const remux = new FlvRemux();
    const frames: FlvFrame[] = [];
    remux.listen((frame) => frames.push(frame));
    for (const datagram of ts) remux.push(datagram);

    expect(remux.problem).toBeNull();
    expect(remux.tracks).toEqual({ video: true, audio: false, videoCodec: "av1" });
    const [header, ...video] = frames;
    expect(header?.kind).toBe("videoHeader");
    expect(hex(header?.body ?? new Uint8Array(0))).toBe(hex(av1SequenceStart(stream.av1C)));
    // Every unit, the last too: its PES says its length, so it ends without waiting for the next.
    expect(video.length).toBe(stream.units.length);
    video.forEach((frame, i) => {
      const unit = stream.units[i] as Uint8Array;
      expect(hex(unit.subarray(0, 2))).toBe("1200"); // the encoder's temporal delimiter, left out
      expect(frame.kind).toBe("video");
      expect(frame.timestamp).toBe(video[0]?.timestamp === undefined ? 0 : video[0].timestamp + i * 40);
      expect(frame.keyframe).toBe(i % 25 === 0);
      expect(hex(frame.body)).toBe(`${frame.keyframe ? "91" : "a1"}61763031${hex(unit.subarray(2))}`);
    });
    expect(Object.values(remux.dropped).every((count) => count === 0)).toBe(true);
    const meta = Buffer.from(remux.metadata()).toString("latin1");
    expect(meta).toContain("videocodecid");
  });

  it("a temporal unit larger than a PES length can say (unbounded PES) goes both ways byte for byte", () => {
    // A key frame OBU of 200,000 bytes (leb128 size), its payload full of 00 00 0x runs to escape.
    const payloadSize = 200_000;
    const payload = new Uint8Array(payloadSize).map((_, i) => (i === 0 ? 0x10 : i % 7 < 3 ? 0 : i % 5));
    const size = [(payloadSize & 0x7f) | 0x80, ((payloadSize >> 7) & 0x7f) | 0x80, payloadSize >> 14];
    const sequence = sequenceHeaderObu(readAv1C(stream.av1C)?.configObus ?? new Uint8Array(0)) as Uint8Array;
    const unit = Uint8Array.from([0x12, 0x00, ...sequence, 0x32, ...size, ...payload]);
    const out: Uint8Array[] = [];
    const big = new FlvTsMux((datagram) => out.push(Uint8Array.from(datagram)));
    big.join(0);
    const av01 = [0x61, 0x76, 0x30, 0x31];
    big.tag(9, 0, Uint8Array.from([0x90, ...av01, ...stream.av1C]), 0);
    for (const ms of [0, 40]) big.tag(9, ms, Uint8Array.from([0x91, ...av01, ...unit]), ms);
    const whole = Buffer.concat(out);
    const first = out
      .flatMap((datagram) => {
        const packets: Uint8Array[] = [];
        for (let at = 0; at < datagram.length; at += PACKET_SIZE)
          packets.push(datagram.subarray(at, at + PACKET_SIZE));
        return packets;
      })
      .find((packet) => ((packet[1] ?? 0) & 0x5f) === 0x41 && packet[2] === 0x00) as Uint8Array;
    const pes = first.subarray(5 + (first[4] ?? 0));
    expect([pes[3], pes[4], pes[5]]).toEqual([0xbd, 0, 0]); // private_stream_1, PES_packet_length 0
    const carried = temporalUnitsIn(whole);
    expect(carried.map((got) => hex(got.unit))).toEqual([hex(unit), hex(unit)]);
    const remux = new FlvRemux();
    const frames: FlvFrame[] = [];
    remux.listen((frame) => frames.push(frame));
    for (const datagram of out) remux.push(datagram);
    // The first unit ends where the second starts (the last waits for a PES after it).
    const video = frames.filter((frame) => frame.kind === "video");
    expect(video.length).toBe(1);
    expect(hex(video[0]?.body ?? new Uint8Array(0))).toBe(`9161763031${hex(unit.subarray(2))}`);
  });

  it(`${counted(fuzzRuns(5_000))} corrupt copies of it: no escape, nothing out of order`, {
    timeout: fuzzTimeout,
  }, () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.002, max: 0.1, noNaN: true }),
        fc.nat(),
        fc.subarray([...CORRUPTIONS], { minLength: 1 }),
        fc.integer({ min: 1, max: 64 }),
        (fraction, random, kinds, packets) => {
          const corrupt = corruptMedia(whole, { pids: [0x100], fraction, seed: random, kinds });
          expect(remuxRun(corrupt.ts, packets)).toEqual([]);
        },
      ),
      { numRuns: fuzzRuns(5_000), seed: 67 },
    );
  });

  it(`${counted(fuzzRuns(3_000))} copies with arbitrary bytes in place of its payloads, or cut anywhere: the same`, {
    timeout: fuzzTimeout,
  }, () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 184 })), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.nat(),
        (replacements, cut) => {
          const copy = Buffer.from(whole);
          const packets = copy.length / PACKET_SIZE;
          for (const [index, bytes] of replacements) {
            const at = (index % packets) * PACKET_SIZE;
            if ((((copy[at + 1] ?? 0) & 0x1f) << 8) + (copy[at + 2] ?? 0) !== 0x100) continue;
            copy.set(bytes.subarray(0, PACKET_SIZE - 4), at + 4);
          }
          expect(remuxRun(copy.subarray(0, cut % copy.length), 7)).toEqual([]);
        },
      ),
      { numRuns: fuzzRuns(3_000), seed: 68 },
    );
  });
});
