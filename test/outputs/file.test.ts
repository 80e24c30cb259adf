/**
 * The file:// output (recording) writing real files in a temporary directory: files turn over at the wall
 * clock's multiples of `rotate`, concatenated they are the stream given byte for byte, retention deletes the
 * oldest by age and by size (never anything that is not a recording), and a full disk (/dev/full) is an
 * output error in words.
 */
import { mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "@effect/vitest";
import { Duration, Effect } from "effect";
import { describe, expect } from "vitest";
import { recordingFileName } from "../../src/effects/outputs/file.ts";
import { makeOutput } from "../../src/effects/outputs/writer.ts";
import { eventually } from "../support/peers.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "distributary-rec-"))),
  (path) => Effect.promise(() => rm(path, { recursive: true, force: true })),
);

const recordings = async (dir: string) =>
  (await readdir(dir).catch(() => [] as string[])).filter((name) => name.endsWith("Z.ts")).sort();

const concatFiles = async (dir: string, names: ReadonlyArray<string>) =>
  Buffer.concat(await Promise.all(names.map((name) => readFile(join(dir, name)))));

/** The second a recording's name gives, as epoch seconds. */
const startSecond = (name: string) =>
  Date.parse(`${name.slice(0, 10)}T${name.slice(11, 19).replaceAll("-", ":")}Z`) / 1000;

describe("file output (recording)", () => {
  it.scopedLive(
    "files turn over at the rotation boundary, and concatenated they are the stream sent, byte for byte",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir;
        const target = join(dir, "ch1");
        const output = yield* makeOutput(`file://${target}?rotate=2`);
        yield* Effect.forkScoped(output.run);
        yield* eventually("connected", () => (output.status().state === "connected" ? true : undefined));

        const generator = new TsGenerator({ seed: 11 });
        const sent: Uint8Array[] = [];
        // About 5 s of stream, in datagram-sized chunks as the fan-out hands them over.
        const until = Date.now() + 5_000;
        while (Date.now() < until) {
          const chunk = generator.packets(7);
          sent.push(chunk);
          output.offer(chunk);
          yield* Effect.sleep(Duration.millis(5));
        }
        const expected = Buffer.concat(sent);
        yield* eventually("every byte written", () =>
          output.status().bytesSent === expected.length ? true : undefined,
        );

        const names = yield* Effect.promise(() => recordings(target));
        expect(names.length).toBeGreaterThanOrEqual(3);
        // After the first, every file starts on a multiple of 2 s, one rotation after the one before.
        const starts = names.map(startSecond);
        for (const [index, start] of starts.entries()) {
          if (index === 0) continue;
          expect(start % 2).toBe(0);
          expect(start - (starts[index - 1] ?? 0)).toBeLessThanOrEqual(2);
        }
        const files = yield* Effect.promise(() =>
          Promise.all(names.map((name) => readFile(join(target, name)))),
        );
        for (const file of files) {
          expect(file.length % 188).toBe(0);
          expect(file[0]).toBe(0x47);
        }
        const recorded = yield* Effect.promise(() => concatFiles(target, names));
        expect(recorded.equals(expected)).toBe(true);
        expect(output.status()).toMatchObject({ queueDrops: 0, packetsSent: expected.length / 188 });
      }),
  );

  it.scopedLive("retention by age deletes recordings last written too long ago, and nothing else", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir;
      const now = Date.now();
      const old = recordingFileName(now - 72 * 3_600_000);
      const older = recordingFileName(now - 73 * 3_600_000);
      const recent = recordingFileName(now - 3_600_000);
      yield* Effect.promise(async () => {
        for (const name of [older, old, recent, "notes.txt"])
          await writeFile(join(dir, name), "x".repeat(188));
        const threeDaysAgo = new Date(now - 72 * 3_600_000);
        await utimes(join(dir, older), threeDaysAgo, threeDaysAgo);
        await utimes(join(dir, old), threeDaysAgo, threeDaysAgo);
        await utimes(join(dir, "notes.txt"), threeDaysAgo, threeDaysAgo);
      });
      const output = yield* makeOutput(`file://${dir}?rotate=3600&keep_hours=48`);
      yield* Effect.forkScoped(output.run);
      yield* eventually("the old recordings deleted", async () =>
        (await recordings(dir)).includes(old) ? undefined : true,
      );
      const left = yield* Effect.promise(() => readdir(dir));
      expect(left).not.toContain(older);
      expect(left).toContain(recent);
      expect(left).toContain("notes.txt");
    }),
  );

  it.scopedLive("retention by size deletes the oldest recordings first, never the one being written", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir;
      const now = Date.now();
      const [a, b, c] = [3, 2, 1].map((hours) => recordingFileName(now - hours * 3_600_000));
      const hundredKb = Buffer.alloc(188 * 532, 0x47);
      yield* Effect.promise(async () => {
        for (const name of [a, b, c]) await writeFile(join(dir, name ?? ""), hundredKb);
      });
      // 250 kB: the three old files (300 kB) are over it as the recording starts.
      const output = yield* makeOutput(`file://${dir}?rotate=1&max_gb=0.00025`);
      yield* Effect.forkScoped(output.run);
      yield* eventually("the oldest deleted", async () =>
        (await recordings(dir)).includes(a ?? "") ? undefined : true,
      );
      expect(yield* Effect.promise(() => recordings(dir))).toEqual([b, c]);

      // 60 kB in the first new file, then, a rotation later, more: the next oldest goes, the newest stay.
      const generator = new TsGenerator({ seed: 5 });
      output.offer(generator.packets(320));
      const first = yield* eventually("a recording started", async () =>
        (await recordings(dir)).find((name) => name !== b && name !== c),
      );
      yield* eventually("the next second", () =>
        Math.floor(Date.now() / 1000) > startSecond(first) ? true : undefined,
      );
      output.offer(generator.packets(7));
      yield* eventually("the next oldest deleted", async () =>
        (await recordings(dir)).includes(b ?? "") ? undefined : true,
      );
      const left = yield* Effect.promise(() => recordings(dir));
      expect(left[0]).toBe(c);
      expect(left).toContain(first);
      expect(left.length).toBe(3);
    }),
  );

  it.scopedLive(
    "a directory whose symbolic link leads out of the recordings directory fails, writing nothing",
    () =>
      Effect.gen(function* () {
        const root = yield* tempDir;
        const elsewhere = yield* tempDir;
        // Saved when it was a directory under the recordings directory; a link by the time it runs.
        yield* Effect.promise(() => symlink(elsewhere, join(root, "evil")));
        for (const directory of [`${root}/evil`, `${root}/evil/below`]) {
          const output = yield* makeOutput(`file://${directory}?rotate=1`, { recordingsRoot: root });
          yield* Effect.forkScoped(output.run);
          output.offer(new TsGenerator({ seed: 2 }).packets(70));
          const error = yield* eventually("the error", () => output.status().lastError ?? undefined);
          expect(error).toBe(
            `${directory} leads outside the recordings directory ${root} through a symbolic link: record in a real directory under it`,
          );
          expect(output.status().bytesSent).toBe(0);
        }
        expect(yield* Effect.promise(() => readdir(elsewhere))).toEqual([]);
      }),
  );

  it.scopedLive("a full disk is an output error in words, retried", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir;
      // The next seconds' recordings all lead to /dev/full, where every write fails with ENOSPC.
      const now = Date.now();
      yield* Effect.promise(async () => {
        for (let second = 0; second < 30; second++) {
          await symlink("/dev/full", join(dir, recordingFileName(now + second * 1000)));
        }
      });
      const output = yield* makeOutput(`file://${dir}?rotate=1`, {
        reconnect: { firstDelay: "100 millis", maxDelay: "200 millis" },
      });
      yield* Effect.forkScoped(output.run);
      output.offer(new TsGenerator({ seed: 2 }).packets(7));
      const error = yield* eventually("the error", () => output.status().lastError ?? undefined);
      expect(error).toBe(`the disk is full: cannot write the recording in ${dir}`);
      expect(output.status()).toMatchObject({ lastErrorReason: "write_failed" });
      expect(["reconnecting", "connecting", "connected"]).toContain(output.status().state);
    }),
  );
});
