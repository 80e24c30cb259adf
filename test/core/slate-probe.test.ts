/**
 * The slate's format probe (src/core/slate/probe.ts) on real encoder output: ffmpeg (libx264, libx265, aac,
 * ac3, mp2, libmp3lame) makes short MPEG-TS files, which are fed to the probe in chunks of 7 packets as the
 * outputs get them; the answer must be the exact format, or a refusal in words.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeFormatProbe } from "../../src/core/slate/probe.ts";
import type { ProbeResult, SlateFormat } from "../../src/core/slate/types.ts";
import { describeFormat, formatKey } from "../../src/core/slate/types.ts";
import { crc32Mpeg2 } from "../../src/core/ts/crc32.ts";

const CHUNK = 7 * 188;

let dir = "";

const SOURCES = {
  video1080i25: ["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25"],
  video720p50: ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=50"],
  video1080p2997: ["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30000/1001"],
  video360p24: ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=24"],
  sine48: ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"],
} as const;

const interlaced = (order: "tff" | "bff") => [
  ...SOURCES.video1080i25,
  ...SOURCES.sine48,
  ...[
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-profile:v",
    "high",
    "-level",
    "4.0",
    "-pix_fmt",
    "yuv420p",
  ],
  ...["-flags", "+ildct+ilme", "-x264-params", `${order}=1:cabac=1:8x8dct=1`, "-vf", `setfield=${order}`],
  ...["-c:a", "aac", "-ac", "2"],
];

/** Each sample: ffmpeg's arguments between the inputs and the output (1 s of each). */
const SAMPLES: Record<string, ReadonlyArray<string>> = {
  tff: interlaced("tff"),
  bff: interlaced("bff"),
  ac3: [
    ...SOURCES.video720p50,
    ...SOURCES.sine48,
    ...[
      "-c:v",
      "libx264",
      "-preset",
      "ultrafast",
      "-profile:v",
      "main",
      "-level",
      "3.1",
      "-pix_fmt",
      "yuv420p",
    ],
    ...["-x264-params", "cabac=1", "-c:a", "ac3", "-ac", "6"],
    ...["-mpegts_pmt_start_pid", "480", "-mpegts_start_pid", "481"],
  ],
  hevc: [
    ...SOURCES.video1080p2997,
    ...SOURCES.sine48,
    ...["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-r", "30000/1001"],
    ...["-pix_fmt", "yuv420p", "-c:a", "mp2", "-ac", "2"],
  ],
  hevc10: [
    ...SOURCES.video720p50,
    ...[
      "-c:v",
      "libx265",
      "-preset",
      "ultrafast",
      "-x265-params",
      "log-level=error",
      "-pix_fmt",
      "yuv420p10le",
    ],
  ],
  mpeg2: [...SOURCES.video360p24, ...SOURCES.sine48, ...["-c:v", "mpeg2video", "-c:a", "mp2"]],
  audioOnly: [...SOURCES.sine48, ...["-c:a", "aac"]],
  mp3: [
    ...SOURCES.video360p24,
    ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"],
    ...["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "libmp3lame", "-ac", "2"],
  ],
};

const files = new Map<string, Uint8Array>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "slate-probe-"));
  await Promise.all(
    Object.entries(SAMPLES).map(async ([name, args]) => {
      const path = join(dir, `${name}.ts`);
      await execa("ffmpeg", [
        ...["-hide_banner", "-loglevel", "error", "-y"],
        ...args,
        "-t",
        "1",
        "-f",
        "mpegts",
        path,
      ]);
      files.set(name, new Uint8Array(await readFile(path)));
    }),
  );
}, 120_000);

afterAll(async () => {
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

/** Feeds the bytes in chunks of 7 packets until the probe answers (or the bytes end). */
const probe = (bytes: Uint8Array, maxBytes?: number): ProbeResult | null => {
  const reader = makeFormatProbe(maxBytes === undefined ? undefined : { maxBytes });
  for (let at = 0; at < bytes.length && reader.result() === null; at += CHUNK)
    reader.push(bytes.subarray(at, at + CHUNK));
  return reader.result();
};

const formatOf = (name: string): SlateFormat => {
  const result = probe(files.get(name) ?? new Uint8Array());
  if (result === null || !("format" in result))
    throw new Error(`no format for ${name}: ${JSON.stringify(result)}`);
  return result.format;
};

/** The first section on `pid` as it is in the file (a PUSI packet's payload from its pointer_field on). */
const firstSection = (bytes: Uint8Array, pid: number, length: number): Uint8Array => {
  for (let at = 0; at + 188 <= bytes.length; at += 188) {
    const p = bytes.subarray(at, at + 188);
    if (((((p[1] ?? 0) & 0x1f) << 8) | (p[2] ?? 0)) !== pid || ((p[1] ?? 0) & 0x40) === 0) continue;
    const start = 5 + (p[4] ?? 0);
    return p.slice(start, start + length);
  }
  return new Uint8Array();
};

describe("the slate's format probe", () => {
  it("reads H.264 High 4.0 1080i25 top field first with AAC 48 kHz stereo", () => {
    const format = formatOf("tff");
    expect(format.program).toBe(1);
    expect(format.pmtPid).toBe(0x1000);
    expect(format.pcrPid).toBe(0x100);
    // ffmpeg's mux delay (0.7 s) keeps each picture's PTS that far ahead of the PCR, and a little more.
    expect(format.ptsLead).toBeGreaterThanOrEqual(0.7 * 90_000);
    expect(format.ptsLead).toBeLessThan(2 * 90_000);
    expect(format.video).toEqual({
      pid: 0x100,
      streamType: 0x1b,
      codec: "h264",
      profile: "high",
      level: 4,
      width: 1920,
      height: 1080,
      frameRate: { num: 25, den: 1 },
      scan: "tff",
      bitDepth: 8,
      chroma: "4:2:0",
    });
    expect(format.audio).toEqual([
      { pid: 0x101, streamType: 0x0f, codec: "aac", sampleRate: 48000, channels: 2 },
    ]);
    expect(format.silent).toEqual([]);
    expect(format.pat[0]).toBe(0x00);
    expect(crc32Mpeg2(format.pat)).toBe(0);
  });

  it("reads bottom field first from the pic_timing SEI", () => {
    const format = formatOf("bff");
    expect(format.video.scan).toBe("bff");
    expect(format.video.frameRate).toEqual({ num: 25, den: 1 });
    expect(format.video.height).toBe(1080);
  });

  it("reads H.264 Main 3.1 720p50 with AC-3 5.1 on MediaLive-like PIDs, and keeps the PMT as sent", () => {
    const format = formatOf("ac3");
    expect({ program: format.program, pmtPid: format.pmtPid, pcrPid: format.pcrPid }).toEqual({
      program: 1,
      pmtPid: 480,
      pcrPid: 481,
    });
    expect(format.video).toMatchObject({
      pid: 481,
      codec: "h264",
      profile: "main",
      level: 3.1,
      width: 1280,
      height: 720,
      frameRate: { num: 50, den: 1 },
      scan: "progressive",
    });
    expect(format.audio).toEqual([
      { pid: 482, streamType: 0x81, codec: "ac3", sampleRate: 48000, channels: 6 },
    ]);
    expect(format.pmt[0]).toBe(0x02);
    expect(crc32Mpeg2(format.pmt)).toBe(0);
    const length = 3 + ((((format.pmt[1] ?? 0) & 0x0f) << 8) | (format.pmt[2] ?? 0));
    expect(format.pmt.length).toBe(length);
    expect(
      Buffer.from(format.pmt).equals(firstSection(files.get("ac3") ?? new Uint8Array(), 480, length)),
    ).toBe(true);
    expect(describeFormat(format)).toBe("H.264 Main 3.1, 1280×720p50; AC-3 48 kHz 5.1");
  });

  it("reads HEVC Main 1080p29.97 with MPEG-1 Layer II, and HEVC Main10", () => {
    const format = formatOf("hevc");
    expect(format.video).toEqual({
      pid: 0x100,
      streamType: 0x24,
      codec: "hevc",
      profile: "main",
      level: 4,
      width: 1920,
      height: 1080,
      frameRate: { num: 30000, den: 1001 },
      scan: "progressive",
      bitDepth: 8,
      chroma: "4:2:0",
    });
    expect(format.audio).toEqual([
      { pid: 0x101, streamType: 0x03, codec: "mp2", sampleRate: 48000, channels: 2 },
    ]);
    const ten = formatOf("hevc10");
    expect(ten.video).toMatchObject({
      codec: "hevc",
      profile: "main10",
      bitDepth: 10,
      width: 1280,
      height: 720,
      frameRate: { num: 50, den: 1 },
    });
    expect(ten.audio).toEqual([]);
  });

  it("refuses in words: MPEG-2 video, no video, garbage", () => {
    expect(probe(files.get("mpeg2") ?? new Uint8Array())).toEqual({
      refused:
        "the slate is made for H.264 and HEVC video; this channel's video is MPEG-2 (stream type 0x02)",
    });
    expect(probe(files.get("audioOnly") ?? new Uint8Array())).toEqual({
      refused: "this channel carries no video",
    });
    let seed = 7;
    const garbage = new Uint8Array(188 * 1000).map(() => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed >> 16;
    });
    for (let at = 0; at < garbage.length; at += 188 * 3) garbage[at] = 0x47; // some look like packets
    expect(probe(garbage, 64 * 1024)).toEqual({ refused: "no PAT in the first 64 KiB of the stream" });
    // A real stream cut short: the PAT and PMT are there, not enough of the rest.
    const tff = files.get("tff") ?? new Uint8Array();
    expect(probe(tff.subarray(0, 188 * 14), 188 * 14)).toEqual({
      refused: "no H.264 SPS in the first 2632 bytes of the stream",
    });
  });

  it("puts audio it cannot make in silent, with why, and still gives the format", () => {
    const format = formatOf("mp3");
    expect(format.video).toMatchObject({
      codec: "h264",
      width: 640,
      height: 360,
      frameRate: { num: 24, den: 1 },
    });
    expect(format.audio).toEqual([]);
    expect(format.silent).toEqual([
      { pid: 0x101, why: "MPEG audio Layer III (MP3): the slate's encoder makes Layer II only" },
    ]);
  });

  it("answers an audio PID that never shows a frame header silent once its bytes are spent", () => {
    // The interlaced stream without its audio packets (PID 0x101): the PMT still lists the AAC.
    const tff = files.get("tff") ?? new Uint8Array();
    const kept: number[] = [];
    for (let at = 0; at + 188 <= tff.length; at += 188)
      if (((((tff[at + 1] ?? 0) & 0x1f) << 8) | (tff[at + 2] ?? 0)) !== 0x101) kept.push(at);
    const muted = new Uint8Array(kept.length * 188);
    for (const [i, at] of kept.entries()) muted.set(tff.subarray(at, at + 188), i * 188);
    const result = probe(muted, 1024 * 1024);
    const format = result !== null && "format" in result ? result.format : null;
    expect(format?.audio).toEqual([]);
    expect(format?.silent).toEqual([
      { pid: 0x101, why: "no AAC (ADTS) frame header in the first 1 MiB of the stream" },
    ]);
    expect(format?.video.scan).toBe("tff");
  });

  it("names the format: formatKey and describeFormat", () => {
    const format = formatOf("tff");
    expect(formatKey(format)).toBe("h264-high-4-1920x1080-25_1-tff-8-420+aac-48000-2");
    expect(describeFormat(format)).toBe("H.264 High 4.0, 1920×1080i25 (top field first); AAC 48 kHz stereo");
  });

  it("keeps its answer once given, and is cheap after it", () => {
    const bytes = files.get("ac3") ?? new Uint8Array();
    const reader = makeFormatProbe();
    let at = 0;
    for (; at < bytes.length && reader.result() === null; at += CHUNK)
      reader.push(bytes.subarray(at, at + CHUNK));
    const answer = reader.result();
    expect(answer).not.toBeNull();
    reader.push(new Uint8Array(188 * 7).fill(0x47));
    for (; at < bytes.length; at += CHUNK) reader.push(bytes.subarray(at, at + CHUNK));
    expect(reader.result()).toBe(answer);
  });

  it("starts over when the PMT changes while it reads", () => {
    // The HEVC stream's first packets (its PAT, and its PMT on 0x1000: HEVC and MP2), then the interlaced
    // H.264 stream, whose PAT is the same and whose PMT on the same PID says H.264 and AAC.
    const hevc = files.get("hevc") ?? new Uint8Array();
    const tff = files.get("tff") ?? new Uint8Array();
    const joined = new Uint8Array(188 * 10 + tff.length);
    joined.set(hevc.subarray(0, 188 * 10));
    joined.set(tff, 188 * 10);
    const result = probe(joined);
    const format = result !== null && "format" in result ? result.format : null;
    expect(format?.video.codec).toBe("h264");
    expect(format?.audio.map((a) => a.codec)).toEqual(["aac"]);
    expect(format?.pmt).toEqual(formatOf("tff").pmt);
  });
});
