/**
 * The remux and every parser of elementary streams survive any input: property-based runs (fast-check) over
 * real streams made with ffmpeg (H.264 + AAC, HEVC + AAC, H.264 + MP3), their video and audio payloads
 * corrupted as contribution feeds corrupt them (random bytes, PES headers whose lengths lie, start codes, an
 * SPS of 0xff, impossible ADTS headers, test/support/corrupt.ts) or replaced by arbitrary bytes, and over
 * arbitrary bytes fed to each parser directly. In every run: nothing throws, nothing loops, the remux's safety
 * net catches nothing (every bad frame is dropped by a named check, `internal_error` stays 0), no frame goes
 * out of order or before its sequence header, and memory stays bounded. 105,000 inputs in all under `npm run
 * fuzz`; a tenth of each property's count, from the same fixed seed, in `npm test` (DISTRIBUTARY_FUZZ_SCALE,
 * fuzz-support.ts). remux-coverage.test.ts runs a coverage-guided search over the same seeds; what it (or
 * anything) ever found is kept in fuzz-corpus/ and replayed here, in every run.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Either } from "effect";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { AdtsReader } from "../../../src/core/flv/audio.ts";
import { readAvcSps } from "../../../src/core/flv/avc-sps.ts";
import { EsDemuxer } from "../../../src/core/flv/es.ts";
import type { FlvFrame } from "../../../src/core/flv/frames.ts";
import { readHevcSps } from "../../../src/core/flv/hevc-sps.ts";
import { NalUnits } from "../../../src/core/flv/nal.ts";
import { avcPpsProblem, hevcSetProblem } from "../../../src/core/flv/rbsp.ts";
import { FlvRemux } from "../../../src/core/flv/remux.ts";
import { parameterSets } from "../../../src/core/flv/tags.ts";
import { makeHlsSegmenter } from "../../../src/core/hls.ts";
import { decodeSection } from "../../../src/core/scte35/index.ts";
import { CORRUPTIONS, corruptMedia, seeded } from "../../support/corrupt.ts";
import { PACKET_SIZE } from "../../support/ts-generator.ts";
import {
  corpusDir,
  counted,
  feed,
  fuzzRuns,
  fuzzTimeout,
  MEDIA_PIDS,
  remuxRun,
  seedStreams,
  watch,
} from "./fuzz-support.ts";
import { ffmpeg, mediaDir } from "./media.ts";

const dir = mediaDir("distributary-fuzz-");
let seeds: ReadonlyArray<{ readonly name: string; readonly ts: Buffer }> = [];

beforeAll(() => {
  seeds = seedStreams(dir, ffmpeg);
});

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const heapMiB = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

describe("the remux over corrupt streams", () => {
  it("passes the clean seeds through with nothing dropped", () => {
    expect(seeds.map((seed) => seed.name)).toEqual(["h264-aac", "hevc-aac", "h264-mp3"]);
    for (const seed of seeds) {
      const remux = new FlvRemux();
      const frames: FlvFrame[] = [];
      remux.listen((frame) => frames.push(frame));
      feed(remux, seed.ts, 7);
      expect(
        Object.values(remux.dropped).every((count) => count === 0),
        `${seed.name}: ${JSON.stringify(remux.dropped)}`,
      ).toBe(true);
      expect(frames.filter((frame) => frame.kind === "video").length, seed.name).toBeGreaterThan(40);
      // MP3 goes a PES (several frames) to a tag.
      expect(frames.filter((frame) => frame.kind === "audio").length, seed.name).toBeGreaterThan(5);
    }
  });

  it(`${counted(fuzzRuns(30_000))} streams with 0.2–10 % of their media packets corrupted: no escape, nothing out of order`, {
    timeout: fuzzTimeout,
  }, () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 2 }),
        fc.double({ min: 0.002, max: 0.1, noNaN: true }),
        fc.nat(),
        fc.subarray([...CORRUPTIONS], { minLength: 1 }),
        fc.integer({ min: 1, max: 64 }),
        (seed, fraction, random, kinds, packets) => {
          const { ts } = corruptMedia((seeds[seed] as { ts: Buffer }).ts, {
            pids: MEDIA_PIDS,
            fraction,
            seed: random,
            kinds,
          });
          expect(remuxRun(ts, packets)).toEqual([]);
        },
      ),
      { numRuns: fuzzRuns(30_000), seed: 41 },
    );
  });

  it(`${counted(fuzzRuns(20_000))} streams with arbitrary bytes in place of media payloads, or cut short anywhere: the same`, {
    timeout: fuzzTimeout,
  }, () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 2 }),
        fc.array(fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 184 })), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.nat(),
        (seed, replacements, cut) => {
          const ts = Buffer.from((seeds[seed] as { ts: Buffer }).ts);
          const packets = ts.length / PACKET_SIZE;
          for (const [index, bytes] of replacements) {
            const at = (index % packets) * PACKET_SIZE;
            if (!MEDIA_PIDS.includes(((ts[at + 1] ?? 0) & 0x1f) * 256 + (ts[at + 2] ?? 0))) continue;
            ts.set(bytes.subarray(0, PACKET_SIZE - 4), at + 4);
          }
          // A stream cut anywhere, its last packet incomplete: the remux reads whole packets only.
          expect(remuxRun(ts.subarray(0, cut % ts.length), 7)).toEqual([]);
        },
      ),
      { numRuns: fuzzRuns(20_000), seed: 42 },
    );
  });

  it("one remux fed corrupt stream for 3,000 passes keeps its memory bounded", () => {
    const remux = new FlvRemux();
    const problems = watch(remux);
    const random = seeded(7);
    const run = (passes: number) => {
      for (let pass = 0; pass < passes; pass++) {
        const seed = seeds[pass % seeds.length] as { ts: Buffer };
        feed(
          remux,
          corruptMedia(seed.ts, { pids: MEDIA_PIDS, fraction: 0.05, seed: Math.floor(random() * 2 ** 31) })
            .ts,
          7,
        );
      }
    };
    run(300);
    const settled = heapMiB();
    run(2_700);
    const grown = heapMiB() - settled;
    expect(problems).toEqual([]);
    expect(remux.dropped.internal_error).toBe(0);
    expect(grown, `heap grew ${grown.toFixed(1)} MiB over 2,700 passes`).toBeLessThan(8);
  });
});

describe("each parser over arbitrary bytes", () => {
  /** The parameter sets of the seeds' first keyframes, to mutate. */
  const realSets = () =>
    seeds.flatMap((seed) => {
      const found: Array<{ codec: "h264" | "hevc"; nal: Uint8Array }> = [];
      const codec = seed.name.startsWith("hevc") ? "hevc" : "h264";
      new EsDemuxer((unit) => {
        if (found.length > 0 || !unit.keyframe) return;
        const sets = parameterSets(codec, unit.data, new NalUnits().scan(unit.data));
        for (const nal of [...sets.vps, ...sets.sps, ...sets.pps]) found.push({ codec, nal: nal.slice() });
      }).push(seed.ts);
      return found;
    });

  it(`${counted(fuzzRuns(15_000) + fuzzRuns(15_000))} parameter sets, real ones with bits flipped and arbitrary ones, are read or refused in words`, {
    timeout: fuzzTimeout,
  }, () => {
    const sets = realSets();
    expect(sets.length).toBeGreaterThanOrEqual(7);
    const read = (codec: "h264" | "hevc", nal: Uint8Array) => {
      const type = codec === "h264" ? (nal[0] ?? 0) & 0x1f : ((nal[0] ?? 0) >> 1) & 0x3f;
      const answer =
        codec === "h264"
          ? type === 8
            ? avcPpsProblem(nal)
            : readAvcSps(nal)
          : type === 33
            ? readHevcSps(nal)
            : hevcSetProblem(nal, type === 32 ? "VPS" : "PPS");
      if (answer !== null && typeof answer === "object" && "unusable" in answer)
        expect(answer.unusable).toMatch(/^an? |^no /);
      if (answer !== null && typeof answer === "object" && "width" in answer) {
        expect(answer.width).toBeGreaterThan(0);
        expect(answer.width).toBeLessThanOrEqual(16_384);
        expect(answer.height).toBeGreaterThan(0);
        expect(answer.height).toBeLessThanOrEqual(16_384);
      }
    };
    fc.assert(
      fc.property(fc.nat(), fc.array(fc.nat(), { maxLength: 16 }), (pick, flips) => {
        const { codec, nal } = sets[pick % sets.length] as { codec: "h264" | "hevc"; nal: Uint8Array };
        const mutated = nal.slice();
        for (const flip of flips) {
          const bit = (flip % (mutated.length * 8 - 8)) + 8; // the NAL header stays: the type is what is read
          mutated[bit >> 3] = (mutated[bit >> 3] ?? 0) ^ (0x80 >> (bit & 7));
        }
        read(codec, mutated);
      }),
      { numRuns: fuzzRuns(15_000), seed: 43 },
    );
    fc.assert(
      fc.property(
        fc.constantFrom(0x67, 0x68, 0x40, 0x42, 0x44),
        fc.uint8Array({ maxLength: 96 }),
        (header, bytes) => {
          const hevc = header < 0x60;
          read(hevc ? "hevc" : "h264", Uint8Array.of(header, ...(hevc ? [0x01] : []), ...bytes));
        },
      ),
      { numRuns: fuzzRuns(15_000), seed: 44 },
    );
    // The issue's own: an SPS of 0xff after its header, and one whose pic_order_cnt cycle would run for ever.
    expect(readAvcSps(Uint8Array.of(0x67, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))).toHaveProperty(
      "unusable",
    );
    expect(
      readAvcSps(Uint8Array.of(0x67, 0x42, 0x00, 0x1e, 0xf9, 0x00, 0x00, 0x00, 0x00, 0x01)),
    ).toHaveProperty("unusable");
  });

  it(`${counted(fuzzRuns(10_000))} ADTS payloads: frames inside the payload, every byte walked once at most`, {
    timeout: fuzzTimeout,
  }, () => {
    const reader = new AdtsReader();
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2048 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (bytes, syncs) => {
          // Sync words planted at random places, so headers with impossible lengths are met often.
          for (const at of syncs) {
            if (bytes.length < 2) break;
            bytes[at % (bytes.length - 1)] = 0xff;
            bytes[(at % (bytes.length - 1)) + 1] = 0xf1;
          }
          reader.reset(bytes);
          let frames = 0;
          let before = -1;
          while (reader.next()) {
            frames++;
            expect(reader.start).toBeGreaterThan(before);
            expect(reader.end).toBeLessThanOrEqual(bytes.length);
            expect(reader.end).toBeGreaterThan(reader.start);
            expect(reader.sampleRate).toBeGreaterThan(0);
            before = reader.end - 1;
          }
          expect(frames).toBeLessThanOrEqual(bytes.length / 8);
        },
      ),
      { numRuns: fuzzRuns(10_000), seed: 45 },
    );
  });

  it(`${counted(fuzzRuns(5_000))} corrupt streams through the HLS segmenter and ${counted(fuzzRuns(10_000))} arbitrary sections through the SCTE-35 decoder`, {
    timeout: fuzzTimeout,
  }, () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 2 }),
        fc.double({ min: 0.002, max: 0.2, noNaN: true }),
        fc.nat(),
        (seed, fraction, random) => {
          const { ts } = corruptMedia((seeds[seed] as { ts: Buffer }).ts, {
            pids: [...MEDIA_PIDS, 0, 0x1000],
            fraction,
            seed: random,
          });
          const segmenter = makeHlsSegmenter({ targetSeconds: 1 });
          let now = 0;
          for (let at = 0; at < ts.length; at += 7 * PACKET_SIZE) {
            now += 2;
            for (const segment of segmenter.push(ts.subarray(at, at + 7 * PACKET_SIZE), now)) {
              expect(segment.bytes.length % PACKET_SIZE).toBe(0);
            }
          }
          segmenter.flush(now);
        },
      ),
      { numRuns: fuzzRuns(5_000), seed: 46 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        if (bytes.length > 0) bytes[0] = 0xfc; // splice_info_section's table_id, so the decoder reads on
        expect(Either.isEither(decodeSection(bytes))).toBe(true);
      }),
      { numRuns: fuzzRuns(10_000), seed: 47 },
    );
  });
});

describe("the corpus of inputs that once broke the remux", () => {
  const files = readdirSync(corpusDir).filter((file) => file.endsWith(".bin"));
  it.each(files)("%s goes through, its bad frames dropped in words", (file) => {
    const ts = readFileSync(join(corpusDir, file));
    const remux = new FlvRemux();
    const problems = watch(remux);
    feed(remux, ts, 7);
    expect(problems).toEqual([]);
    expect(remux.dropped.internal_error).toBe(0);
    expect(Object.values(remux.dropped).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });
});
