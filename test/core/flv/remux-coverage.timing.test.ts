/**
 * A bounded coverage-guided search over the remux (DISTRIBUTARY_FUZZ_SECONDS: 5 s in `npm test`, which keeps a
 * short run in every CI beside the corpus fuzz.test.ts replays; `npm run fuzz` searches 600 s, or as long as
 * the variable says). It is in the timing project for its time-bound search only: run one file at a time, a
 * CI run's 5 s search is not starved by files beside it. V8's precise
 * block coverage (node:inspector) says which blocks of src/core/flv and src/core/hls.ts each input ran; an
 * input that runs a block no earlier one did joins the corpus, and inputs are made by mutating corpus entries
 * (bit flips and byte runs in media payloads, the corruptions of test/support/corrupt.ts, start codes and
 * parameter-set headers planted, two entries spliced at a packet). Seeds: the fuzz tests' real streams (the
 * first second of each). Every input must go through with nothing thrown, nothing out of order and the
 * remux's safety net untouched; one that does not is written to a temporary file, named in the failure, for
 * fuzz-corpus/. It prints what it ran and covered.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { CORRUPTIONS, corruptMedia, seeded } from "../../support/corrupt.ts";
import { PACKET_SIZE } from "../../support/ts-generator.ts";
import { MEDIA_PIDS, remuxRun, seedStreams } from "./fuzz-support.ts";
import { ffmpeg, mediaDir } from "./media.ts";

const SECONDS = Number(process.env.DISTRIBUTARY_FUZZ_SECONDS ?? 5);
const TARGETS = ["/src/core/flv/", "/src/core/hls.ts"];

interface Coverage {
  readonly result: ReadonlyArray<{
    readonly url: string;
    readonly functions: ReadonlyArray<{
      readonly functionName: string;
      readonly ranges: ReadonlyArray<{
        readonly startOffset: number;
        readonly endOffset: number;
        readonly count: number;
      }>;
    }>;
  }>;
}

const session = new Session();
session.connect();
afterAll(() => session.disconnect());

it(
  `searches the remux's blocks for ${SECONDS} s and finds no input it cannot take`,
  async () => {
    const dir = mediaDir("distributary-coverage-fuzz-");
    const seeds = seedStreams(dir, ffmpeg).map((seed) => {
      const packets = Math.floor(seed.ts.length / PACKET_SIZE / 2);
      return seed.ts.subarray(0, packets * PACKET_SIZE);
    });
    await session.post("Profiler.enable");
    await session.post("Profiler.startPreciseCoverage", { callCount: true, detailed: true });
    const seen = new Set<string>();
    const covered = new Set<string>();
    const functions = new Set<string>();
    /** The blocks `run` reached that no input before it did. */
    const newBlocks = async (run: () => void): Promise<number> => {
      await session.post("Profiler.takePreciseCoverage"); // counts from here on are this input's
      run();
      const { result } = (await session.post("Profiler.takePreciseCoverage")) as Coverage;
      let added = 0;
      for (const script of result) {
        if (!TARGETS.some((target) => script.url.includes(target))) continue;
        for (const fn of script.functions) {
          for (const [index, range] of fn.ranges.entries()) {
            const key = `${script.url}:${range.startOffset}-${range.endOffset}`;
            seen.add(key);
            if (range.count === 0 || covered.has(key)) continue;
            covered.add(key);
            if (index === 0) functions.add(key);
            added++;
          }
        }
      }
      return added;
    };

    const random = seeded(20261124);
    const pick = <A>(list: ReadonlyArray<A>): A => list[Math.floor(random() * list.length)] as A;
    const mediaPacketAt = (ts: Uint8Array): number => {
      for (let tries = 0; tries < 64; tries++) {
        const at = Math.floor(random() * (ts.length / PACKET_SIZE)) * PACKET_SIZE;
        if (MEDIA_PIDS.includes((((ts[at + 1] ?? 0) & 0x1f) << 8) | (ts[at + 2] ?? 0))) return at;
      }
      return -1;
    };
    const mutators: ReadonlyArray<(ts: Buffer) => Buffer> = [
      (ts) => {
        for (let flips = 1 + Math.floor(random() * 8); flips > 0; flips--) {
          const at = mediaPacketAt(ts);
          const byte = at + 4 + Math.floor(random() * 184);
          if (at >= 0) ts[byte] = (ts[byte] ?? 0) ^ (1 << Math.floor(random() * 8));
        }
        return ts;
      },
      (ts) => {
        const at = mediaPacketAt(ts);
        const value = pick([0x00, 0xff, Math.floor(random() * 256)]);
        if (at >= 0)
          ts.fill(value, at + 4 + Math.floor(random() * 150), at + 4 + 150 + Math.floor(random() * 34));
        return ts;
      },
      (ts) =>
        corruptMedia(ts, {
          pids: MEDIA_PIDS,
          fraction: 0.01 + random() * 0.05,
          seed: Math.floor(random() * 2 ** 31),
          kinds: [pick(CORRUPTIONS)],
        }).ts,
      (ts) => {
        const at = mediaPacketAt(ts);
        const planted = pick([
          [0, 0, 1, 0x67, 0x64, 0, 0x28],
          [0, 0, 1, 0x68],
          [0, 0, 1, 0x65, 0x88],
          [0, 0, 1, 0x40, 0x01],
          [0, 0, 1, 0x42, 0x01, 0x01],
          [0xff, 0xf1, 0x50, 0x80],
          [0xff, 0xfb, 0x90, 0x64],
          [0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 0x0a],
        ]);
        if (at >= 0) ts.set(planted, at + 4 + Math.floor(random() * (184 - planted.length)));
        return ts;
      },
      (ts) => {
        const other = pick(corpus);
        const cut = Math.floor((random() * Math.min(ts.length, other.length)) / PACKET_SIZE) * PACKET_SIZE;
        return Buffer.concat([ts.subarray(0, cut), other.subarray(cut)]);
      },
    ];

    const corpus: Buffer[] = [];
    for (const seed of seeds) {
      const problems = remuxRun(seed, 7);
      expect(problems).toEqual([]);
      await newBlocks(() => remuxRun(seed, 7));
      corpus.push(Buffer.from(seed));
    }
    const startedAt = Date.now();
    const found = mkdtempSync(join(tmpdir(), "distributary-fuzz-found-"));
    let inputs = 0;
    const failures: string[] = [];
    let yieldedAt = Date.now();
    while (Date.now() - startedAt < SECONDS * 1000 && failures.length === 0) {
      // The inspector answers through microtasks only: without a turn of the event loop now and then, the
      // test runner's own messages to this worker would wait for the whole run (and time out).
      if (Date.now() - yieldedAt > 250) {
        await new Promise((resolve) => setImmediate(resolve));
        yieldedAt = Date.now();
      }
      let input: Buffer = Buffer.from(pick(corpus));
      for (let steps = 1 + Math.floor(random() * 3); steps > 0; steps--) input = pick(mutators)(input);
      const packets = 1 + Math.floor(random() * 32);
      let problems: string[] = [];
      const added = await newBlocks(() => {
        try {
          problems = remuxRun(input, packets);
        } catch (thrown) {
          problems = [`threw: ${thrown instanceof Error ? thrown.message : String(thrown)}`];
        }
      });
      inputs++;
      if (problems.length > 0) {
        const file = join(found, `input-${inputs}.bin`);
        writeFileSync(file, input);
        failures.push(`${file} (chunks of ${packets} packets): ${problems.slice(0, 3).join("; ")}`);
      } else if (added > 0) corpus.push(input);
    }
    const seconds = (Date.now() - startedAt) / 1000;
    console.log(
      [
        `coverage-guided remux fuzz: ${inputs} inputs in ${seconds.toFixed(0)} s (${Math.round(inputs / seconds)}/s)`,
        `  corpus: ${corpus.length} inputs (${seeds.length} seeds, ${corpus.length - seeds.length} that reached new blocks)`,
        `  covered: ${covered.size} of ${seen.size} blocks of src/core/flv and src/core/hls.ts seen (${((100 * covered.size) / Math.max(1, seen.size)).toFixed(1)} %), ${functions.size} functions`,
        `  failures: ${failures.length === 0 ? "none" : failures.join("\n    ")}`,
      ].join("\n"),
    );
    expect(failures).toEqual([]);
    expect(inputs).toBeGreaterThan(100);
  },
  (SECONDS + 120) * 1000,
);
