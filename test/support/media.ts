import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import { execa } from "execa";
import { afterAll, beforeAll } from "vitest";

/**
 * Real H.264 + AAC in MPEG-TS, as an encoder sends it, made with ffmpeg's test sources. Noise on the picture
 * keeps the bitrate near `videoBitrate` instead of letting the encoder squeeze a static pattern to nothing.
 */
export const encodeTestStream = (
  path: string,
  seconds: number,
  videoBitrate = "1M",
  size = "640x360",
  /** More of the muxer's options, e.g. how often it repeats its SI tables. */
  muxer: ReadonlyArray<string> = [],
) =>
  Effect.promise(() =>
    execa("ffmpeg", [
      ...["-hide_banner", "-loglevel", "error", "-y"],
      ...["-f", "lavfi", "-i", `testsrc2=size=${size}:rate=25`],
      ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"],
      ...["-t", String(seconds), "-vf", "noise=alls=40:allf=t"],
      ...["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"],
      ...["-b:v", videoBitrate, "-maxrate", videoBitrate, "-bufsize", videoBitrate],
      ...["-c:a", "aac", ...muxer, "-f", "mpegts", path],
    ]),
  );

export interface MediaInfo {
  readonly duration: number;
  readonly codecs: ReadonlyArray<string>;
}

/** What ffprobe finds in a file, or undefined while it cannot read it (still being written). */
export const probeMedia = async (path: string): Promise<MediaInfo | undefined> => {
  const result = await execa(
    "ffprobe",
    ["-v", "error", "-show_entries", "format=duration:stream=codec_name", "-of", "json", path],
    { reject: false },
  );
  if (result.exitCode !== 0) return undefined;
  const parsed: { format?: { duration?: string }; streams?: Array<{ codec_name?: string }> } = JSON.parse(
    result.stdout,
  );
  return {
    duration: Number(parsed.format?.duration ?? 0),
    codecs: (parsed.streams ?? []).flatMap((stream) => (stream.codec_name ? [stream.codec_name] : [])).sort(),
  };
};

export interface StreamFigures {
  readonly codec: string;
  /** Packets (frames for video) ffprobe read. */
  readonly packets: number;
  /** Seconds, as the container states it. */
  readonly startTime: number;
  /** Of the first picture's parameters; 0 for audio. */
  readonly width: number;
}

/** Each stream's packet count, start time and width, by codec type; undefined while ffprobe cannot read it. */
export const streamFigures = async (
  path: string,
): Promise<{ readonly video?: StreamFigures; readonly audio?: StreamFigures } | undefined> => {
  const result = await execa(
    "ffprobe",
    [
      ...["-v", "error", "-count_packets"],
      ...[
        "-show_entries",
        "stream=codec_type,codec_name,nb_read_packets,start_time,width",
        "-of",
        "json",
        path,
      ],
    ],
    { reject: false },
  );
  if (result.exitCode !== 0) return undefined;
  const parsed: {
    streams?: Array<{
      codec_type?: string;
      codec_name?: string;
      nb_read_packets?: string;
      start_time?: string;
      width?: number;
    }>;
  } = JSON.parse(result.stdout);
  const figures = (type: string): StreamFigures | undefined => {
    const stream = parsed.streams?.find((candidate) => candidate.codec_type === type);
    return stream === undefined
      ? undefined
      : {
          codec: stream.codec_name ?? "",
          packets: Number(stream.nb_read_packets ?? 0),
          startTime: Number(stream.start_time ?? Number.NaN),
          width: stream.width ?? 0,
        };
  };
  const video = figures("video");
  const audio = figures("audio");
  return { ...(video === undefined ? {} : { video }), ...(audio === undefined ? {} : { audio }) };
};

/** The video frames of a TS file from its first keyframe on: what a decoder joining there can show. */
export const videoFramesFromFirstKeyframe = async (path: string): Promise<number> => {
  const result = await execa("ffprobe", [
    ...["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags", "-of", "csv=p=0", path],
  ]);
  const flags = result.stdout.split("\n").filter((line) => line.trim() !== "");
  const first = flags.findIndex((line) => line.startsWith("K"));
  return first === -1 ? 0 : flags.length - first;
};

/** One stretch of a content test stream: the programme (moving picture, a tone), black and silence, or a still. */
export interface ContentPart {
  readonly kind: "programme" | "black" | "still";
  readonly seconds: number;
}

const partSources = (part: ContentPart, size: string): ReadonlyArray<string> => {
  const d = String(part.seconds);
  const video = {
    programme: `testsrc2=size=${size}:rate=25:duration=${d}`,
    black: `color=black:size=${size}:rate=25:duration=${d}`,
    still: `smptebars=size=${size}:rate=25:duration=${d}`,
  }[part.kind];
  const audio =
    part.kind === "black"
      ? `anullsrc=r=48000:cl=mono:d=${d}`
      : `sine=frequency=440:sample_rate=48000:duration=${d}`;
  return ["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio];
};

/** Where each stretch starts, in seconds. */
const startsOf = (parts: ReadonlyArray<ContentPart>): ReadonlyArray<number> =>
  parts.map((_, i) => parts.slice(0, i).reduce((sum, part) => sum + part.seconds, 0));

/**
 * H.264 + AAC in MPEG-TS whose stretches follow each other in ONE encode (the timing runs on unbroken, as an
 * encoder's does when its source turns black), by default a key frame every second and at each stretch's start
 * (as an encoder starts a GOP where its source changes). The programme's picture carries noise, so no two of its
 * pictures match.
 */
export const encodeContentStream = (
  path: string,
  parts: ReadonlyArray<ContentPart>,
  size = "640x360",
  videoBitrate = "1M",
  /** The encoder's speed and B-frames: none by default; `["-preset", "veryfast", "-bf", "2"]` as broadcast has them. */
  encoder: ReadonlyArray<string> = ["-preset", "ultrafast"],
  /**
   * Pictures between key frames, and whether a stretch's start is a key frame too (as an encoder that starts
   * a GOP where its source changes); `{ frames: 50, atStarts: false }`: a 2 s GOP that a change falls into.
   */
  gop: { readonly frames: number; readonly atStarts: boolean } = { frames: 25, atStarts: true },
) =>
  Effect.promise(() =>
    execa("ffmpeg", [
      ...["-hide_banner", "-loglevel", "error", "-y"],
      ...parts.flatMap((part) => partSources(part, size)),
      "-filter_complex",
      [
        ...parts.map(
          (part, i) => `[${2 * i}:v]${part.kind === "programme" ? "noise=alls=40:allf=t" : "null"}[v${i}]`,
        ),
        `${parts.map((_, i) => `[v${i}][${2 * i + 1}:a]`).join("")}concat=n=${parts.length}:v=1:a=1[v][a]`,
      ].join(";"),
      ...["-map", "[v]", "-map", "[a]"],
      // One encoding thread: x264's threads make its rate control, and so a still's key frames, differ from run
      // to run (CI once saw the still "unfreeze" a second before the black).
      ...["-c:v", "libx264", ...encoder, "-threads", "1", "-g", String(gop.frames), "-pix_fmt", "yuv420p"],
      ...(gop.atStarts
        ? ["-force_key_frames", startsOf(parts).join(",")]
        : ["-keyint_min", String(gop.frames), "-sc_threshold", "0"]),
      ...["-b:v", videoBitrate, "-maxrate", videoBitrate, "-bufsize", videoBitrate],
      ...["-c:a", "aac", "-f", "mpegts", path],
    ]),
  );

/**
 * A test file's ffmpeg streams (`encodeTestStream`, 600 kbit/s 320×180), encoded once before its tests and
 * read by name; `muxers` gives each name its muxer options (e.g. `{pcr150: ["-pcr_period", "150"]}`). Their
 * directory is removed after the tests.
 */
export const useTestStreams = (
  prefix: string,
  seconds: number,
  muxers: Readonly<Record<string, ReadonlyArray<string>>>,
): ((name: string) => Buffer) => {
  const streams = new Map<string, Buffer>();
  let dir: string | undefined;
  beforeAll(async () => {
    const made = await mkdtemp(join(tmpdir(), `${prefix}-`));
    dir = made;
    await Promise.all(
      Object.entries(muxers).map(async ([name, muxer]) => {
        const path = join(made, `${name}.ts`);
        await Effect.runPromise(encodeTestStream(path, seconds, "600k", "320x180", muxer));
        streams.set(name, await readFile(path));
      }),
    );
  }, 120_000);
  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });
  return (name) => {
    const stream = streams.get(name);
    if (stream === undefined)
      throw new Error(`no test stream '${name}': the streams are ${[...streams.keys()].join(", ")}`);
    return stream;
  };
};
