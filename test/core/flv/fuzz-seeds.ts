/**
 * The real streams the fuzz tests start from, made with ffmpeg (2 s each, small pictures so a run is quick):
 * H.264 + AAC, HEVC + AAC, H.264 + MP3, with a keyframe every half second so parameter sets are met often.
 * And where the corpus of inputs that once broke the remux is kept (fuzz-corpus/README.md says what each is).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const corpusDir = join(import.meta.dirname, "fuzz-corpus");

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
