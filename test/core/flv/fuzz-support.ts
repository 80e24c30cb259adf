/**
 * What the fuzz tests share. The real streams they start from, made with ffmpeg (2 s each, small pictures so a run is quick):
 * H.264 + AAC, HEVC + AAC, H.264 + MP3, with a keyframe every half second so parameter sets are met often.
 * And where the corpus of inputs that once broke the remux is kept (fuzz-corpus/README.md says what each is).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { FlvFrame } from "../../../src/core/flv/frames.ts";
import { FlvRemux } from "../../../src/core/flv/remux.ts";
import { PACKET_SIZE } from "../../support/ts-generator.ts";

export const corpusDir = join(import.meta.dirname, "fuzz-corpus");

/**
 * How much of the fuzz tests' full counts (105,000 inputs in all) a run makes: DISTRIBUTARY_FUZZ_SCALE, a tenth
 * in `npm test` (every CI run: the same first inputs of each property's fixed seed, a few seconds), 1 under
 * `npm run fuzz` (the full counts), more for a longer search. Each count is at least 100.
 */
export const FUZZ_SCALE = Number(process.env.DISTRIBUTARY_FUZZ_SCALE ?? 0.1);
export const fuzzRuns = (full: number): number => Math.max(100, Math.round(full * FUZZ_SCALE));
/** A count as test names say it: 30,000. */
export const counted = (n: number): string => n.toLocaleString("en-US");
/** A fuzz test's time limit: Vitest's minute, and two more for each full count asked. */
export const fuzzTimeout = 60_000 + Math.ceil(FUZZ_SCALE) * 120_000;

const STREAMS = [
  {
    name: "h264-aac",
    video: ["-c:v", "libx264", "-x264-params", "keyint=12:min-keyint=12"],
    audio: ["-c:a", "aac"],
  },
  {
    name: "hevc-aac",
    video: ["-c:v", "libx265", "-x265-params", "keyint=12:min-keyint=12:log-level=error"],
    audio: ["-c:a", "aac"],
  },
  {
    name: "h264-mp3",
    video: ["-c:v", "libx264", "-x264-params", "keyint=12:min-keyint=12"],
    audio: ["-c:a", "libmp3lame"],
  },
] as const;

export const seedStreams = (
  dir: string,
  ffmpeg: (...args: string[]) => unknown,
): ReadonlyArray<{ readonly name: string; readonly ts: Buffer }> =>
  STREAMS.map((stream) => {
    const path = join(dir, `${stream.name}.ts`);
    ffmpeg(
      ...[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=192x108:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
      ],
      ...["-t", "2", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-b:v", "200k", ...stream.video],
      ...[...stream.audio, "-b:a", "64k", "-f", "mpegts", path],
    );
    return { name: stream.name, ts: readFileSync(path) };
  });

/** ffmpeg's video and audio PIDs in the streams it makes. */
export const MEDIA_PIDS: ReadonlyArray<number> = [0x100, 0x101];

/**
 * What a run of the remux must never break, checked on every frame it hands out: per track, timestamps that
 * never go back; video and AAC frames after their sequence header (MP3 frames carry their own); no empty frame.
 * The list the problems go to.
 */
export const watch = (remux: FlvRemux): string[] => {
  const last = { video: -1, audio: -1 };
  const problems: string[] = [];
  remux.listen((frame: FlvFrame) => {
    if (frame.kind !== "video" && frame.kind !== "audio") return;
    if (frame.timestamp < last[frame.kind])
      problems.push(`${frame.kind} at ${frame.timestamp} after ${last[frame.kind]}`);
    last[frame.kind] = frame.timestamp;
    const aac = frame.kind === "audio" && (frame.body[0] ?? 0) >> 4 === 10;
    const header = frame.kind === "video" ? remux.videoHeader : aac ? remux.audioHeader : true;
    if (header === null) problems.push(`a ${frame.kind} frame before its sequence header`);
    if (frame.body.length === 0) problems.push(`an empty ${frame.kind} frame`);
  });
  return problems;
};

/** Pushes `ts` in chunks of `packets` whole packets, as the fan-out offers them. */
export const feed = (remux: FlvRemux, ts: Uint8Array, packets: number): void => {
  const size = packets * PACKET_SIZE;
  for (let at = 0; at < ts.length; at += size) remux.push(ts.subarray(at, at + size));
};

/** Runs a new remux over `ts`: the invariants it broke, and its safety net's catches; empty when none. */
export const remuxRun = (ts: Uint8Array, packets: number): string[] => {
  const remux = new FlvRemux();
  const problems = watch(remux);
  feed(remux, ts, packets);
  if (remux.dropped.internal_error > 0) problems.push(`the safety net caught: ${remux.lastDrop}`);
  return problems;
};
