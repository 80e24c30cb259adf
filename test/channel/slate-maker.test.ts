/**
 * The slate maker (src/effects/channel/slate-maker.ts with src/core/slate/clip-args.ts) and the upload check
 * (src/core/slate/image.ts), against real ffmpeg and ffprobe: a clip is exactly the channel's format (codec,
 * profile, level, size, rate, field order, pixel format, audio), laid out on the PIDs the splicer expects,
 * two closed GOPs that each open with an IDR and its parameter sets, audio as long as the video; the card
 * takes any title without it reaching the filter graph, and is made once; an uploaded picture comes out
 * recognisably (PSNR); a refused format and a timeout leave no ffmpeg behind.
 */

import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { Effect, Exit } from "effect";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { AUDIO_FRAME_SAMPLES, CLIP_GOPS, clipRefusal, gopFrames } from "../../src/core/slate/clip-args.ts";
import { MAX_SLATE_IMAGE_BYTES, readSlateImage } from "../../src/core/slate/image.ts";
import type { AudioFormat, SlateFormat, VideoFormat } from "../../src/core/slate/types.ts";
import {
  keepSlateFormat,
  keptSlateFormat,
  makeSlateClip,
  type SlatePicture,
} from "../../src/effects/channel/slate-maker.ts";
import { childProcesses } from "../support/peers.ts";

const temps: Array<string> = [];
const tempDir = async (name = "slate-") => {
  const dir = await mkdtemp(join(tmpdir(), name));
  temps.push(dir);
  return dir;
};
afterAll(async () => {
  await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })));
});

const format = (
  video: Partial<VideoFormat> & Pick<VideoFormat, "codec" | "profile" | "level" | "width" | "height">,
  audio: ReadonlyArray<Pick<AudioFormat, "codec" | "sampleRate" | "channels">>,
): SlateFormat => ({
  program: 1,
  pmtPid: 0x30,
  pcrPid: 0x31,
  pat: new Uint8Array(),
  pmt: new Uint8Array(),
  video: {
    pid: 0x31,
    streamType: video.codec === "h264" ? 0x1b : 0x24,
    frameRate: { num: 25, den: 1 },
    scan: "progressive",
    bitDepth: 8,
    chroma: "4:2:0",
    ...video,
  },
  audio: audio.map((a, i) => ({ pid: 0x40 + i, streamType: a.codec === "aac" ? 0x0f : 0x81, ...a })),
  silent: [],
  ptsLead: 0,
});

const ffmpeg = (args: ReadonlyArray<string>) =>
  execa("ffmpeg", ["-nostdin", "-hide_banner", "-loglevel", "error", ...args]);
const ffprobeJson = async <T>(args: ReadonlyArray<string>): Promise<T> =>
  JSON.parse((await execa("ffprobe", ["-v", "error", "-of", "json", ...args])).stdout) as T;

/** A still picture made by ffmpeg: testsrc2 (detail, colour, edges) at this size. */
const picture = async (dir: string, name: string, size: string): Promise<string> => {
  const path = join(dir, name);
  await ffmpeg(["-f", "lavfi", "-i", `testsrc2=s=${size}`, "-frames:v", "1", "-y", path]);
  return path;
};

const imagePicture = async (path: string): Promise<SlatePicture> => {
  const bytes = new Uint8Array(await readFile(path));
  const { createHash } = await import("node:crypto");
  return { kind: "image", bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
};

const make = (options: Parameters<typeof makeSlateClip>[0]) => Effect.runPromise(makeSlateClip(options));
const failure = async (options: Parameters<typeof makeSlateClip>[0]): Promise<string> => {
  const exit = await Effect.runPromiseExit(makeSlateClip(options));
  if (Exit.isSuccess(exit)) throw new Error("makeSlateClip succeeded where it should have failed");
  const error = exit.cause._tag === "Fail" ? exit.cause.error : null;
  if (error === null) throw new Error(`makeSlateClip died: ${String(exit.cause)}`);
  return error.message;
};

interface ProbedStream {
  readonly id: string;
  readonly codec_type: string;
  readonly codec_name: string;
  readonly profile?: string;
  readonly level?: number;
  readonly width?: number;
  readonly height?: number;
  readonly r_frame_rate: string;
  readonly field_order?: string;
  readonly pix_fmt?: string;
  readonly sample_rate?: string;
  readonly channels?: number;
}
interface ProbedFrame {
  readonly key_frame: number;
  readonly pts: number;
  readonly pts_time: string;
  readonly nb_samples?: number;
  readonly interlaced_frame?: number;
  readonly top_field_first?: number;
}

const frames = async (path: string, stream: string) =>
  (
    await ffprobeJson<{ frames: Array<ProbedFrame> }>([
      ...["-select_streams", stream, "-show_entries"],
      "frame=key_frame,pts,pts_time,nb_samples,interlaced_frame,top_field_first",
      path,
    ])
  ).frames;

/** The NAL unit types of the clip's video, in order (the elementary stream copied out of the TS). */
const nalTypes = async (dir: string, path: string, codec: "h264" | "hevc"): Promise<Array<number>> => {
  const es = join(dir, `es.${codec}`);
  await ffmpeg(["-i", path, "-map", "0:v", "-c", "copy", "-f", codec, "-y", es]);
  const bytes = await readFile(es);
  const types: Array<number> = [];
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 0 && bytes[i + 1] === 0 && bytes[i + 2] === 1) {
      const header = bytes[i + 3] ?? 0;
      types.push(codec === "h264" ? header & 0x1f : (header >> 1) & 0x3f);
      i += 3;
    }
  }
  return types;
};

/**
 * The least room between a video PES's PTS and the PCR before it, in seconds: the clip's video is due this
 * long after it arrives (clip-args.ts chose -muxdelay 0.3).
 */
const leastPtsAheadOfPcr = (ts: Uint8Array): number => {
  let pcr: number | null = null;
  let least = Number.POSITIVE_INFINITY;
  const at = (i: number) => ts[i] ?? 0;
  for (let i = 0; i + 188 <= ts.length; i += 188) {
    if ((((at(i + 1) & 0x1f) << 8) | at(i + 2)) !== 0x100) continue;
    const control = (at(i + 3) >> 4) & 3;
    let p = i + 4;
    if (control & 2) {
      const length = at(p);
      if (length > 0 && at(p + 1) & 0x10)
        pcr =
          at(p + 2) * 2 ** 25 + at(p + 3) * 2 ** 17 + at(p + 4) * 2 ** 9 + at(p + 5) * 2 + (at(p + 6) >> 7);
      p += 1 + length;
    }
    if (at(i + 1) & 0x40 && control & 1 && at(p + 7) & 0x80 && pcr !== null) {
      const pts =
        (at(p + 9) & 0x0e) * 2 ** 29 +
        at(p + 10) * 2 ** 22 +
        (at(p + 11) & 0xfe) * 2 ** 14 +
        at(p + 12) * 2 ** 7 +
        (at(p + 13) >> 1);
      least = Math.min(least, (pts - pcr) / 90_000);
    }
  }
  return least;
};

const PROFILE_NAMES: Record<string, string> = {
  "h264/high": "High",
  "h264/main": "Main",
  "h264/high10": "High 10",
  "hevc/main": "Main",
};
const FIELD_ORDERS: Record<VideoFormat["scan"], ReadonlyArray<string | undefined>> = {
  tff: ["tt"],
  bff: ["bb"],
  // H.264 says "progressive" (see below); progressive HEVC that sends no picture timing SEI has no field order in ffprobe's eyes (it leaves the
  // field out); its frames say progressive (interlaced_frame=0, checked below).
  progressive: ["progressive", undefined],
};

const libx264TenBit = async (): Promise<boolean> =>
  /yuv420p10le/.test((await execa("ffmpeg", ["-hide_banner", "-h", "encoder=libx264"])).stdout);

/** Each case: its name, the format, and the uploaded picture (a 4:3 JPEG is padded to 16:9). */
const formats: Array<[string, SlateFormat, { name: string; size: string }]> = [
  [
    "H.264 High 4.0 1920×1080i25 top field first + AAC 48 kHz stereo",
    format({ codec: "h264", profile: "high", level: 4, width: 1920, height: 1080, scan: "tff" }, [
      { codec: "aac", sampleRate: 48000, channels: 2 },
    ]),
    { name: "upload.png", size: "640x360" },
  ],
  [
    "H.264 Main 3.1 1280×720p50 + AC-3 48 kHz 5.1",
    format(
      {
        codec: "h264",
        profile: "main",
        level: 3.1,
        width: 1280,
        height: 720,
        frameRate: { num: 50, den: 1 },
      },
      [{ codec: "ac3", sampleRate: 48000, channels: 6 }],
    ),
    { name: "upload.png", size: "1920x1080" },
  ],
  [
    "HEVC Main 4.0 1920×1080p29.97 + MPEG-1 Layer II 48 kHz stereo",
    format(
      {
        codec: "hevc",
        profile: "main",
        level: 4,
        width: 1920,
        height: 1080,
        frameRate: { num: 30000, den: 1001 },
      },
      [{ codec: "mp2", sampleRate: 48000, channels: 2 }],
    ),
    { name: "upload.jpg", size: "640x480" },
  ],
];
if (await libx264TenBit())
  formats.push([
    "H.264 High 10 4.0 1280×720i25 bottom field first 10-bit + AAC 48 kHz mono and AC-3 48 kHz stereo",
    format(
      { codec: "h264", profile: "high10", level: 4, width: 1280, height: 720, scan: "bff", bitDepth: 10 },
      [
        { codec: "aac", sampleRate: 48000, channels: 1 },
        { codec: "ac3", sampleRate: 48000, channels: 2 },
      ],
    ),
    { name: "upload.png", size: "320x240" },
  ]);

describe("a slate clip is exactly the channel's format", () => {
  it.each(formats)("%s", async (_name, slateFormat, upload) => {
    const dir = await tempDir();
    const image = await picture(dir, upload.name, upload.size);
    const clip = await make({
      dir: join(dir, "clips"),
      format: slateFormat,
      picture: await imagePicture(image),
    });
    expect(clip.reused).toBe(false);
    expect(clip.bytes.length % 188).toBe(0);
    expect(Buffer.from(await readFile(clip.path)).equals(Buffer.from(clip.bytes))).toBe(true);
    const v = slateFormat.video;

    const probed = await ffprobeJson<{
      programs: Array<{ pmt_pid: number; pcr_pid: number; streams: Array<ProbedStream> }>;
    }>(["-show_programs", clip.path]);
    expect(probed.programs).toHaveLength(1);
    const [program] = probed.programs;
    expect(program?.pmt_pid).toBe(0x1000);
    expect(program?.pcr_pid).toBe(0x100);
    const streams = program?.streams ?? [];
    expect(streams.map((s) => [s.id, s.codec_type])).toEqual([
      ["0x100", "video"],
      ...slateFormat.audio.map((_, i) => [`0x${(0x101 + i).toString(16)}`, "audio"]),
    ]);
    const video = streams[0];
    expect(video).toMatchObject({
      codec_name: v.codec,
      profile: PROFILE_NAMES[`${v.codec}/${v.profile}`],
      level: v.codec === "h264" ? Math.round(v.level * 10) : Math.round(v.level * 30),
      width: v.width,
      height: v.height,
      r_frame_rate: `${v.frameRate.num}/${v.frameRate.den}`,
      pix_fmt: v.bitDepth === 10 ? "yuv420p10le" : "yuv420p",
    });
    const fieldOrders =
      v.codec === "h264" && v.scan === "progressive" ? ["progressive"] : FIELD_ORDERS[v.scan];
    expect(fieldOrders).toContain(video?.field_order);
    slateFormat.audio.forEach((a, i) => {
      expect(streams[1 + i]).toMatchObject({
        codec_name: a.codec,
        sample_rate: `${a.sampleRate}`,
        channels: a.channels,
      });
    });

    // The PCR (on the video PID) runs ahead of every picture's PTS, with room for the decoder's buffer.
    const room = leastPtsAheadOfPcr(clip.bytes);
    expect(room).toBeGreaterThanOrEqual(0.25);
    expect(room).toBeLessThanOrEqual(0.6);

    // Two whole GOPs: keyint = round(fps) frames each, a key frame first and at the second GOP only.
    const gop = Math.round(v.frameRate.num / v.frameRate.den);
    expect(gopFrames(v)).toBe(gop);
    const pictures = await frames(clip.path, "v:0");
    expect(pictures).toHaveLength(CLIP_GOPS * gop);
    expect(pictures.flatMap((f, i) => (f.key_frame === 1 ? [i] : []))).toEqual([0, gop]);
    if (v.scan !== "progressive")
      expect(pictures.slice(0, 3).map((f) => [f.interlaced_frame, f.top_field_first])).toEqual(
        Array(3).fill([1, v.scan === "tff" ? 1 : 0]),
      );
    else expect(pictures.slice(0, 3).map((f) => f.interlaced_frame)).toEqual([0, 0, 0]);

    // Each GOP opens with an IDR preceded by its parameter sets (VPS too for HEVC); the first picture is one.
    const types = await nalTypes(dir, clip.path, v.codec);
    const isVcl = (t: number) => (v.codec === "h264" ? t >= 1 && t <= 5 : t <= 31);
    const isIdr = (t: number) => (v.codec === "h264" ? t === 5 : t === 19 || t === 20);
    const needed = v.codec === "h264" ? [7, 8] : [32, 33, 34];
    expect(isIdr(types.find(isVcl) ?? -1)).toBe(true);
    let sinceLastPicture: Array<number> = [];
    let idrs = 0;
    for (const t of types) {
      if (!isVcl(t)) sinceLastPicture.push(t);
      else {
        if (isIdr(t) && sinceLastPicture.length > 0) {
          idrs++;
          expect(sinceLastPicture).toEqual(expect.arrayContaining(needed));
        }
        sinceLastPicture = [];
      }
    }
    expect(idrs).toBe(CLIP_GOPS);

    // Audio lasts as long as the video, to within one audio frame (its encoder's priming included).
    const frameSeconds = v.frameRate.den / v.frameRate.num;
    const videoStart = Number(pictures[0]?.pts_time);
    const videoEnd = Number(pictures.at(-1)?.pts_time) + frameSeconds;
    // Evenly spaced on the 90 kHz clock, to the tick (3600 at 25 fps, 3003 at 30000/1001).
    const ticks = (90_000 * v.frameRate.den) / v.frameRate.num;
    expect(pictures.slice(1).map((f, i) => f.pts - (pictures[i]?.pts ?? 0))).toEqual(
      Array(pictures.length - 1).fill(ticks),
    );
    for (const [i, a] of slateFormat.audio.entries()) {
      const sound = await frames(clip.path, `a:${i}`);
      const samples = sound.reduce((sum, f) => sum + (f.nb_samples ?? 0), 0);
      const audioStart = Number(sound[0]?.pts_time);
      const audioEnd = audioStart + samples / a.sampleRate;
      const oneFrame = AUDIO_FRAME_SAMPLES[a.codec] / a.sampleRate;
      expect(Math.abs(audioEnd - videoEnd)).toBeLessThanOrEqual(oneFrame);
      expect(videoStart - audioStart).toBeGreaterThanOrEqual(0);
      expect(videoStart - audioStart).toBeLessThanOrEqual(oneFrame);
    }
  });
});

describe("the kept format", () => {
  it("comes back as it was kept, tables and all; a channel that kept none has none", async () => {
    const dir = await tempDir();
    const kept = {
      ...format({ codec: "h264", profile: "high", level: 4, width: 1280, height: 720 }, [
        { codec: "aac", sampleRate: 48_000, channels: 2 },
      ]),
      pat: Uint8Array.of(0, 0xb0, 0x0d),
      pmt: Uint8Array.of(2, 0xb0, 0x17, 1),
      ptsLead: 3_600,
    };
    await Effect.runPromise(keepSlateFormat(dir, "a/b c", kept));
    expect(await readdir(dir)).toEqual([`format-${encodeURIComponent("a/b c")}.json`]);
    expect(await Effect.runPromise(keptSlateFormat(dir, "a/b c"))).toEqual(kept);
    expect(await Effect.runPromise(keptSlateFormat(dir, "other"))).toBeNull();
  });
});

describe("the generated card", () => {
  const hd = format({ codec: "h264", profile: "main", level: 3.1, width: 1280, height: 720 }, [
    { codec: "aac", sampleRate: 48000, channels: 2 },
  ]);

  it("takes a title with quotes, colons, percent and backslashes as text, and is made once", async () => {
    // The directory's name needs quoting in the filter graph too.
    const dir = join(await tempDir(), "it's: [a,b]; c\\d");
    const title = `It's 100% "live": a\\b`;
    const first = await make({ dir, format: hd, picture: { kind: "card", title } });
    expect(first.reused).toBe(false);

    // The title was drawn: many white pixels on the dark card (decoded as grey levels).
    const gray = await execa(
      "ffmpeg",
      ["-v", "error", "-i", first.path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
      { encoding: "buffer" },
    );
    const luma = new Uint8Array(gray.stdout);
    expect(luma.length).toBe(1280 * 720);
    const white = luma.reduce((n, y) => (y > 200 ? n + 1 : n), 0);
    expect(white).toBeGreaterThan(5_000);

    const before = await stat(first.path);
    const second = await make({ dir, format: hd, picture: { kind: "card", title } });
    expect(second).toMatchObject({ reused: true, key: first.key, path: first.path });
    expect(Buffer.from(second.bytes).equals(Buffer.from(first.bytes))).toBe(true);
    // Not rewritten: the same file (a new one would be a new inode, by the rename), untouched.
    const after = await stat(second.path);
    expect([after.ino, after.mtimeMs, after.size]).toEqual([before.ino, before.mtimeMs, before.size]);
    expect(await readdir(dir)).toEqual([`${first.key}.ts`]);

    // Another title is another clip.
    const other = await make({ dir, format: hd, picture: { kind: "card", title: "Other" } });
    expect(other.key).not.toBe(first.key);
    expect(other.reused).toBe(false);
  });
});

describe("an uploaded picture", () => {
  it("comes out recognisably: the clip's first frame against the image scaled has PSNR above 30 dB", async () => {
    const dir = await tempDir();
    const image = await picture(dir, "upload.png", "640x360");
    const slateFormat = format(
      { codec: "h264", profile: "high", level: 4, width: 1280, height: 720, frameRate: { num: 50, den: 1 } },
      [{ codec: "aac", sampleRate: 48000, channels: 2 }],
    );
    const clip = await make({
      dir: join(dir, "clips"),
      format: slateFormat,
      picture: await imagePicture(image),
    });
    const first = join(dir, "first.png");
    await ffmpeg(["-i", clip.path, "-frames:v", "1", "-y", first]);
    const scaled = "scale=1280:720:flags=lanczos,format=yuv444p";
    const result = await execa("ffmpeg", [
      ...["-nostdin", "-hide_banner", "-i", first, "-i", image],
      ...["-lavfi", `[0:v]format=yuv444p[clip];[1:v]${scaled}[image];[clip][image]psnr`, "-f", "null", "-"],
    ]);
    const psnr = Number(/PSNR .* average:([\d.]+|inf)/.exec(result.stderr)?.[1]);
    console.log(`slate picture PSNR: ${psnr.toFixed(2)} dB`);
    expect(psnr).toBeGreaterThan(30);
  });
});

describe("readSlateImage", () => {
  it("reads a PNG's and a JPEG's type and size", async () => {
    const dir = await tempDir();
    const png = await readFile(await picture(dir, "a.png", "640x360"));
    const jpeg = await readFile(await picture(dir, "b.jpg", "320x240"));
    expect(readSlateImage(png)).toEqual({ type: "image/png", width: 640, height: 360 });
    expect(readSlateImage(jpeg)).toEqual({ type: "image/jpeg", width: 320, height: 240 });
  });

  it("says in words what is wrong with the rest", async () => {
    const dir = await tempDir();
    const png = new Uint8Array(await readFile(await picture(dir, "a.png", "640x360")));
    const jpeg = new Uint8Array(await readFile(await picture(dir, "b.jpg", "320x240")));
    const problem = (bytes: Uint8Array) => {
      const read = readSlateImage(bytes);
      return "problem" in read ? read.problem : `no problem: ${JSON.stringify(read)}`;
    };

    expect(problem(new TextEncoder().encode("hello, this is text"))).toMatch(
      /^this is not a PNG or JPEG image \(it starts with 68 65 6c 6c 6f 2c 20 74\)/,
    );
    expect(problem(new TextEncoder().encode("GIF89a and more"))).toMatch(
      /not a PNG or JPEG.*looks like a GIF/,
    );
    expect(problem(new Uint8Array())).toMatch(/empty/);
    expect(problem(png.subarray(0, Math.floor(png.length / 2)))).toMatch(/PNG file is cut short.*whole file/);
    expect(problem(png.subarray(0, 20))).toMatch(/PNG file is cut short/);
    expect(problem(jpeg.subarray(0, 10))).toMatch(/JPEG file is cut short/);
    expect(problem(jpeg.subarray(0, jpeg.length - 100))).toMatch(/JPEG file is cut short/);

    const brokenCrc = png.slice();
    brokenCrc[29] = (brokenCrc[29] ?? 0) ^ 0xff;
    expect(problem(brokenCrc)).toMatch(/damaged.*IHDR.*checksum/);

    // A real 16×16 PNG, its IHDR width made 20000 and its CRC made right again.
    const small = new Uint8Array(await readFile(await picture(dir, "c.png", "16x16")));
    expect(readSlateImage(small)).toEqual({ type: "image/png", width: 16, height: 16 });
    const wide = small.slice();
    new DataView(wide.buffer).setUint32(16, 20000);
    new DataView(wide.buffer).setUint32(29, crc32(wide.subarray(12, 29)));
    expect(problem(wide)).toBe("the image is 20000×16; a slate image is at most 7680×4320: scale it down");
    const tiny = small.slice();
    new DataView(tiny.buffer).setUint32(16, 8);
    new DataView(tiny.buffer).setUint32(29, crc32(tiny.subarray(12, 29)));
    expect(problem(tiny)).toMatch(/the image is 8×16; a slate image is at least 16×16/);

    const large = new Uint8Array(Math.round(3.1 * 1024 * 1024));
    large.set(png);
    expect(problem(large)).toMatch(/^the image is 3\.1 MiB; a slate image is at most 2 MiB/);
    expect(problem(large.subarray(0, MAX_SLATE_IMAGE_BYTES + 1))).toMatch(/2\.1 MiB; .* at most 2 MiB/);
  });
});

describe("what a slate cannot be", () => {
  const interlacedHevc = format(
    { codec: "hevc", profile: "main", level: 4, width: 1920, height: 1080, scan: "tff" },
    [{ codec: "aac", sampleRate: 48000, channels: 2 }],
  );

  it("a refused format is a sentence, and never starts ffmpeg", async () => {
    const refusal = clipRefusal(interlacedHevc);
    expect(refusal).toMatch(/^the channel's HEVC video is interlaced, .*cannot match it$/);
    expect(
      clipRefusal(format({ ...interlacedHevc.video, scan: "progressive", chroma: "4:2:2" }, [])),
    ).toMatch(/HEVC video is 4:2:2/);
    expect(
      clipRefusal(format(interlacedHevc.video, [{ codec: "mp2", sampleRate: 48000, channels: 6 }])),
    ).toMatch(/HEVC video is interlaced/);
    expect(
      clipRefusal(
        format({ ...interlacedHevc.video, scan: "progressive" }, [
          { codec: "mp2", sampleRate: 48000, channels: 6 },
        ]),
      ),
    ).toMatch(/audio 1 .*MPEG-1 Layer II in 6 channels/);
    expect(clipRefusal(format({ ...interlacedHevc.video, scan: "progressive" }, []))).toBeNull();

    const dir = join(await tempDir(), "clips");
    const message = await failure({ dir, format: interlacedHevc, picture: { kind: "card", title: "x" } });
    expect(message).toBe(refusal);
    // Refused before anything was done: not even the directory was made.
    await expect(stat(dir)).rejects.toThrow(/ENOENT/);
  });

  it("a timeout stops ffmpeg, says so, and leaves nothing behind", async () => {
    const dir = await tempDir();
    const slateFormat = format({ codec: "h264", profile: "high", level: 4, width: 1920, height: 1080 }, [
      { codec: "aac", sampleRate: 48000, channels: 2 },
    ]);
    const message = await failure({
      dir,
      format: slateFormat,
      picture: { kind: "card", title: "late" },
      timeoutMs: 1,
    });
    expect(message).toMatch(/ffmpeg took too long .*stopped/);
    const children = await childProcesses(process.pid);
    expect(children.filter((child) => /ffmpeg|setpriv/.test(child.command))).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });

  it("an image that is not one fails in words before ffmpeg", async () => {
    const dir = await tempDir();
    const slateFormat = format({ codec: "h264", profile: "main", level: 3.1, width: 1280, height: 720 }, []);
    const bytes = new TextEncoder().encode("not a picture at all");
    const message = await failure({
      dir,
      format: slateFormat,
      picture: { kind: "image", bytes, sha256: "0" },
    });
    expect(message).toMatch(/^the slate image cannot be used: this is not a PNG or JPEG image/);
    expect(await readdir(dir)).toEqual([]);
  });
});
