/**
 * The start gate the RTMP writer feeds ffmpeg through: over a real H.264 + AAC stream joined in the middle
 * of a GOP, it passes on the PAT, the PMT and then everything from the next keyframe, whether the encoder
 * flags keyframes (random_access_indicator) or not.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "@effect/vitest";
import { Effect } from "effect";
import { describe, expect, it as plain } from "vitest";
import { makeStartGate } from "../../src/core/ts-start.ts";
import { encodeTestStream, streamFigures, videoFramesFromFirstKeyframe } from "../support/media.ts";

const pidOf = (packet: Uint8Array) => (((packet[1] ?? 0) & 0x1f) << 8) | (packet[2] ?? 0);
const randomAccess = (packet: Uint8Array) =>
  ((packet[3] ?? 0) & 0x20) !== 0 && (packet[4] ?? 0) > 0 && ((packet[5] ?? 0) & 0x40) !== 0;

const joined = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "distributary-start-"))),
    (path) => Effect.promise(() => rm(path, { recursive: true, force: true })),
  );
  const source = join(dir, "source.ts");
  yield* encodeTestStream(source, 3);
  const ts = yield* Effect.promise(() => readFile(source));
  // 0.4 s in: past the first keyframe's PES, before the next (one a second).
  const sent = ts.subarray(Math.floor((ts.length * 0.4) / 3 / 188) * 188);
  return { dir, sent };
});

/** Pushes `ts` through a gate as 7-packet chunks; the parts it passed on, joined. */
const throughGate = (ts: Uint8Array) => {
  const gate = makeStartGate();
  const parts: Array<Uint8Array> = [];
  for (let at = 0; at < ts.length; at += 1316) {
    const out = gate.push(ts.subarray(at, at + 1316));
    if (out !== null) parts.push(out);
  }
  return { gate, out: Buffer.concat(parts) };
};

describe("start gate", () => {
  it.scopedLive("starts a stream joined mid-GOP with the PAT, the PMT and the next keyframe", () =>
    Effect.gen(function* () {
      const { dir, sent } = yield* joined;
      const { gate, out } = throughGate(sent);
      expect(gate.isOpen()).toBe(true);
      expect(out.length % 188).toBe(0);
      const first = [0, 1, 2].map((i) => out.subarray(i * 188, (i + 1) * 188));
      expect(first.map(pidOf)).toEqual([0, 0x1000, 0x100]);
      expect(randomAccess(first[2] ?? new Uint8Array())).toBe(true);
      // After the two tables, the rest is the input from the keyframe on, byte for byte.
      expect(Buffer.compare(out.subarray(2 * 188), sent.subarray(gate.skippedBytes()))).toBe(0);

      const path = join(dir, "gated.ts");
      yield* Effect.promise(() => writeFile(path, out));
      const frames = yield* Effect.promise(() => videoFramesFromFirstKeyframe(join(dir, "gated.ts")));
      const figures = yield* Effect.promise(() => streamFigures(path));
      // Every picture from the start is decodable: none precedes the keyframe.
      expect(figures?.video?.packets).toBe(frames);
      expect(frames).toBeGreaterThanOrEqual(50);
    }),
  );

  it.scopedLive(
    "finds the keyframe by its H.264 parameter sets when the encoder sets no random-access flag",
    () =>
      Effect.gen(function* () {
        const { sent } = yield* joined;
        const unflagged = Buffer.from(sent);
        for (let at = 0; at < unflagged.length; at += 188) {
          if (((unflagged[at + 3] ?? 0) & 0x20) !== 0 && (unflagged[at + 4] ?? 0) > 0)
            unflagged[at + 5] = (unflagged[at + 5] ?? 0) & ~0x40;
        }
        const flagged = throughGate(sent);
        const { gate, out } = throughGate(unflagged);
        expect(gate.skippedBytes()).toBe(flagged.gate.skippedBytes());
        expect(out.length).toBe(flagged.out.length);
      }),
  );

  plain(
    "lets a stream without PAT and PMT through after a bound, so that ffmpeg can say what is wrong",
    () => {
      const gate = makeStartGate({ giveUpAfterBytes: 10 * 188 });
      const noTables = new Uint8Array(7 * 188);
      for (let at = 0; at < noTables.length; at += 188) noTables.set([0x47, 0x01, 0x00, 0x10], at);
      expect(gate.push(noTables)).toBeNull();
      expect(gate.isOpen()).toBe(false);
      expect(gate.push(noTables)).toBe(noTables);
      expect(gate.isOpen()).toBe(true);
    },
  );
});
