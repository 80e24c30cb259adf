/**
 * The key-frame watcher's copy of an H.264 stream (src/core/content/key-frame-copy.ts), read by ffmpeg: its
 * SPSs say the pictures need no reordering (ffmpeg's own header trace reads max_num_reorder_frames 0, and 2
 * in the original), it still decodes to the same key frames, and while probing it carries no B-picture, the
 * other PIDs' packets untouched and every PID's continuity counters continuous.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeKeyFrameCopy } from "../../src/core/content/key-frame-copy.ts";
import { ccAt, PACKET, payloadOffset, pidAt } from "../../src/core/ts/index.ts";
import { encodeContentStream } from "../support/media.ts";

let dir = "";
let original: Buffer = Buffer.alloc(0);
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "key-frame-copy-"));
  const file = join(dir, "source.ts");
  // Broadcast-like: B-frames (x264 says it reorders 2 pictures), a 2 s GOP.
  await Effect.runPromise(
    encodeContentStream(
      file,
      [
        { kind: "programme", seconds: 3 },
        { kind: "black", seconds: 3 },
      ],
      "320x180",
      "500k",
      ["-preset", "veryfast", "-bf", "2"],
      { frames: 50, atStarts: false },
    ),
  );
  original = await readFile(file);
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The copy of `ts` in 1316-byte chunks, probing for its first `probingBytes`. */
const copyOf = (ts: Buffer, probingBytes: number): Buffer => {
  const copy = makeKeyFrameCopy();
  const source = Buffer.from(ts);
  const parts: Uint8Array[] = [];
  for (let at = 0; at < source.length; at += 1316)
    parts.push(Buffer.from(copy.copy(source.subarray(at, at + 1316), at < probingBytes)));
  return Buffer.concat(parts);
};

const reorderFrames = async (file: string): Promise<number[]> => {
  const { stderr } = await execa("ffmpeg", [
    ...["-hide_banner", "-loglevel", "info", "-i", file, "-map", "0:v", "-c", "copy"],
    ...["-bsf:v", "trace_headers", "-f", "null", "-"],
  ]);
  return [...stderr.matchAll(/max_num_reorder_frames\s+\d+ = (\d+)/g)].map((match) => Number(match[1]));
};

const keyFrames = async (file: string): Promise<string[]> => {
  const { stdout } = await execa("ffprobe", [
    ...["-v", "error", "-skip_frame", "nokey", "-select_streams", "v:0"],
    ...["-show_entries", "frame=pts_time", "-of", "csv=p=0", file],
  ]);
  return stdout.split("\n").filter((line) => line !== "");
};

const packets = (ts: Buffer) =>
  Array.from({ length: Math.floor(ts.length / PACKET) }, (_, i) => ts.subarray(i * PACKET, (i + 1) * PACKET));

describe("the key-frame copy", () => {
  it("says every SPS reorders no picture, and decodes to the same key frames", async () => {
    const copied = join(dir, "copied.ts");
    await writeFile(copied, copyOf(original, 0));
    const source = join(dir, "source.ts");
    const [before, after] = [await reorderFrames(source), await reorderFrames(copied)];
    expect(before.length).toBeGreaterThanOrEqual(3);
    expect(before.every((frames) => frames === 2)).toBe(true);
    expect(after).toEqual(before.map(() => 0));
    expect(await keyFrames(copied)).toEqual(await keyFrames(source));
  }, 30_000);

  it("while probing carries no B-picture; other PIDs untouched, continuity counters continuous", async () => {
    const copied = copyOf(original, original.length);
    expect(copied.length).toBeLessThan(original.length);
    const copiedFile = join(dir, "probing.ts");
    await writeFile(copiedFile, copied);
    const { stdout } = await execa("ffprobe", [
      ...["-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pict_type", "-of", "csv=p=0"],
      copiedFile,
    ]);
    const types = stdout.split("\n").filter((line) => line !== "");
    expect(types).toContain("I");
    expect(types).toContain("P");
    expect(types).not.toContain("B");
    // The audio (and PAT, PMT) packets as they were, in order.
    const video = pidAt(
      packets(original).find((packet) => packet[payloadOffset(packet) + 3] === 0xe0) ?? Buffer.alloc(PACKET),
    );
    const others = (ts: Buffer) => packets(ts).filter((packet) => pidAt(packet) !== video);
    expect(Buffer.concat(others(copied)).equals(Buffer.concat(others(original)))).toBe(true);
    // Each PID's counter goes up by one from a packet with payload to the next.
    const last = new Map<number, number>();
    const breaks = packets(copied).filter((packet) => {
      if (payloadOffset(packet) >= PACKET) return false;
      const before = last.get(pidAt(packet));
      last.set(pidAt(packet), ccAt(packet));
      return before !== undefined && ccAt(packet) !== ((before + 1) & 0x0f);
    });
    expect(breaks).toEqual([]);
  }, 30_000);
});
