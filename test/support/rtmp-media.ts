/**
 * What the RTMP output's tests share: test streams with B-frames (H.264 or HEVC, AAC) made with ffmpeg, playing
 * them into an output at about real time, ffprobe's packets and decoded pictures of what a receiver got, and
 * the comparison of those with the input's access units; SCTE-35 cues put into such a stream where we want them.
 */
import { execFileSync } from "node:child_process";
import { Effect } from "effect";
import { expect } from "vitest";
import type { Output } from "../../src/effects/outputs/writer.ts";
import { type Packet, packets } from "../core/flv/media.ts";
import { childProcesses, eventually } from "./peers.ts";
import {
  buildPmt,
  CUEI_REGISTRATION,
  PACKET_SIZE,
  packetizeSections,
  STREAM_TYPE_H264,
  STREAM_TYPE_SCTE35,
} from "./ts-generator.ts";

/** Every packet of a received file, as ffprobe reads it. */
export const probe = packets;

/** The MD5 of each decoded picture, in order. */
export const pictures = (file: string): string[] =>
  execFileSync("ffmpeg", ["-v", "error", "-i", file, "-map", "0:v", "-f", "framemd5", "-"], {
    encoding: "utf8",
  })
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => line.split(",").at(-1)?.trim() ?? "");

/** H.264 (B-frames, a keyframe a second) and AAC in TS, made with ffmpeg. */
export const bframeStream = (
  path: string,
  seconds: number,
  codec: "libx264" | "libx265" = "libx264",
  offset = 0,
) =>
  execFileSync("ffmpeg", [
    ...["-hide_banner", "-loglevel", "error", "-y"],
    ...["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"],
    ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", String(seconds)],
    ...["-c:v", codec, "-preset", "veryfast", "-g", "25", "-bf", "2", "-pix_fmt", "yuv420p"],
    ...(codec === "libx265" ? ["-x265-params", "log-level=error:bframes=2:keyint=25"] : []),
    ...["-c:a", "aac", "-ac", "2", "-output_ts_offset", String(offset), "-f", "mpegts", path],
  ]);

/**
 * Hands `ts` to the output as the fan-out does, seven packets at a time, at about real time, once the output
 * runs (a channel's stream would be flowing already: none of it should be lost to the test's start).
 */
export const play = (output: Output, ts: Uint8Array, seconds: number) =>
  Effect.zipRight(
    eventually("the output to run", () => (output.status().state !== "starting" ? true : undefined)),
    Effect.promise(async () => {
      const step = 1316;
      const perTick = Math.ceil(ts.length / step / (seconds * 50));
      for (let at = 0; at < ts.length; ) {
        for (let n = 0; n < perTick && at < ts.length; n++, at += step) {
          output.offer(ts.subarray(at, Math.min(at + step, ts.length)));
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }),
  );

/**
 * The received FLV carries the input's access units from a keyframe on: each picture decodes to the same
 * image as in the input, in a run without a gap, with the same composition offsets and key flags, and every
 * AAC frame has its ADTS frame's size without the header.
 */
export const expectSameAccessUnits = (input: string, received: string, atLeast: number) => {
  const source = probe(input);
  const got = probe(received);
  const video = (list: Packet[]) => list.filter((p) => p.codec_type === "video");
  const audio = (list: Packet[]) => list.filter((p) => p.codec_type === "audio");
  const sourceVideo = video(source);
  const gotVideo = video(got);
  expect(gotVideo.length).toBeGreaterThanOrEqual(atLeast);
  expect(gotVideo[0]?.flags[0]).toBe("K");
  const want = pictures(input);
  const have = pictures(received);
  const first = want.indexOf(have[0] ?? "");
  expect(first).toBeGreaterThanOrEqual(0);
  // The last frame or two decode differently where the recording ends before the input's reordering does.
  expect(have.slice(0, -2)).toEqual(want.slice(first, first + have.length - 2));
  // Composition offsets (ms) and key flags of the same run of frames; the source's are in 90 kHz.
  const start = sourceVideo.findIndex((p) => p.flags[0] === "K" && sourceVideo.indexOf(p) >= first - 2);
  const offsets = (list: Packet[], scale: number) =>
    list.map((p) => [Math.round((p.pts - p.dts) / scale), p.flags[0]]);
  expect(offsets(gotVideo, 1)).toEqual(offsets(sourceVideo.slice(start, start + gotVideo.length), 90));
  expect(sourceVideo.some((p) => p.pts > p.dts)).toBe(true);
  const sizes = audio(source).map((p) => Number(p.size) - 7);
  const gotSizes = audio(got).map((p) => Number(p.size));
  expect(gotSizes.length).toBeGreaterThan(atLeast);
  const joinAt = sizes.findIndex((_, i) => gotSizes.every((size, j) => sizes[i + j] === size));
  expect(joinAt).toBeGreaterThanOrEqual(0);
};

export const noFfmpegRunning = Effect.promise(async () =>
  (await childProcesses()).filter((child) => child.command === "ffmpeg" && child.state !== "Z"),
);

/** One file under `list()` whose video has at least `frames` frames. */
export const recordingWith = (list: () => Promise<ReadonlyArray<string>>, frames: number) =>
  eventually(
    `a recording with ${frames} video frames`,
    async () => {
      const files = await list();
      const file = files[0];
      if (files.length !== 1 || file === undefined) return undefined;
      try {
        return probe(file).filter((p) => p.codec_type === "video").length >= frames ? file : undefined;
      } catch {
        return undefined;
      }
    },
    { timeoutMs: 20_000, intervalMs: 250 },
  );

/**
 * An Enhanced RTMP HEVC stream as Annex B, for ffmpeg to decode (Debian's ffmpeg 5.1 reads no E-RTMP): the
 * parameter sets of the SequenceStart's HEVCDecoderConfigurationRecord, then each coded frame's NAL units, each
 * behind a start code.
 */
export const hevcAnnexB = (sequenceStart: Uint8Array, frames: ReadonlyArray<Uint8Array>): Buffer => {
  const out: Uint8Array[] = [];
  const startCode = Uint8Array.of(0, 0, 0, 1);
  // The record after the 5-byte E-RTMP header: 22 bytes of fields, numOfArrays, then per array its type, a
  // 16-bit count and each NAL unit behind a 16-bit length.
  const record = sequenceStart.subarray(5);
  let at = 23;
  for (let array = 0; array < (record[22] ?? 0); array++) {
    const count = ((record[at + 1] ?? 0) << 8) | (record[at + 2] ?? 0);
    at += 3;
    for (let n = 0; n < count; n++) {
      const length = ((record[at] ?? 0) << 8) | (record[at + 1] ?? 0);
      out.push(startCode, record.subarray(at + 2, at + 2 + length));
      at += 2 + length;
    }
  }
  for (const body of frames) {
    // CodedFramesX (3) has no composition time: its NAL units start after the FourCC.
    for (let p = (body[0] ?? 0) % 16 === 3 ? 5 : 8; p + 4 <= body.length; ) {
      const length = Buffer.from(body.buffer, body.byteOffset + p, 4).readUInt32BE(0);
      out.push(startCode, body.subarray(p + 4, p + 4 + length));
      p += 4 + length;
    }
  }
  return Buffer.concat(out);
};

/** An FLV file's whole tags (type, body, where the next begins), in order: an FLV reader of our own. */
const flvTags = function* (flv: Buffer) {
  for (let at = flv.readUInt32BE(5) + 4; at + 11 <= flv.length; ) {
    const size = flv.readUIntBE(at + 1, 3);
    const next = at + 11 + size + 4;
    if (next > flv.length) return;
    yield { type: flv[at], body: flv.subarray(at + 11, at + 11 + size), next };
    at = next;
  }
};

/** The bodies of an FLV file's video tags, in order (for what ffprobe cannot read). */
export const flvVideoTags = (flv: Buffer): Uint8Array[] =>
  [...flvTags(flv)].filter((tag) => tag.type === 9).map((tag) => tag.body);

/**
 * An FLV recording up to its last whole tag: what a reader may take of a file the server is still writing
 * (ffmpeg reading it as it grows can read a tag's header before its bytes are there).
 */
export const wholeTags = (flv: Buffer): Buffer => {
  let end = flv.length >= 13 ? flv.readUInt32BE(5) + 4 : 0;
  for (const tag of flvTags(flv)) end = tag.next;
  return flv.subarray(0, end);
};

/** ffmpeg's PIDs in a TS it makes: the PMT, the video and the audio; and the one we add for SCTE-35. */
const FFMPEG_PIDS = { pmt: 0x1000, video: 0x100, audio: 0x101 } as const;
export const CUE_PID = 0x1f0;

const pidOf = (ts: Uint8Array, at: number) => (((ts[at + 1] ?? 0) & 0x1f) << 8) | (ts[at + 2] ?? 0);

/** A PES header's 33-bit time at byte `at`. */
const pesTime = (b: Uint8Array, at: number) =>
  (((b[at] ?? 0) >> 1) & 7) * 2 ** 30 +
  (b[at + 1] ?? 0) * 2 ** 22 +
  ((b[at + 2] ?? 0) >> 1) * 2 ** 15 +
  (b[at + 3] ?? 0) * 2 ** 7 +
  ((b[at + 4] ?? 0) >> 1);

/** The video PES of a TS ffmpeg made, in order: the index of the packet each starts in, its PTS and DTS. */
export const videoPes = (ts: Uint8Array): Array<{ packet: number; pts: number; dts: number }> => {
  const found: Array<{ packet: number; pts: number; dts: number }> = [];
  for (let packet = 0; packet * PACKET_SIZE < ts.length; packet++) {
    const at = packet * PACKET_SIZE;
    if (pidOf(ts, at) !== FFMPEG_PIDS.video || ((ts[at + 1] ?? 0) & 0x40) === 0) continue;
    const control = ((ts[at + 3] ?? 0) >> 4) & 3;
    const pes = at + (control === 3 ? 5 + (ts[at + 4] ?? 0) : 4);
    const flags = (ts[pes + 7] ?? 0) >> 6;
    const pts = pesTime(ts, pes + 9);
    found.push({ packet, pts, dts: flags === 3 ? pesTime(ts, pes + 14) : pts });
  }
  return found;
};

/**
 * A TS ffmpeg made (H.264 and AAC or MPEG audio) with a SCTE-35 stream in its PMT (CUEI registered) and each
 * cue's section put in just before packet `before` (an index into `ts`), as a cue inserter would.
 */
export const withCues = (
  ts: Uint8Array,
  audioType: number,
  cues: ReadonlyArray<{ readonly before: number; readonly section: Uint8Array }>,
): Buffer => {
  const pmt = buildPmt({
    program: 1,
    pcrPid: FFMPEG_PIDS.video,
    programInfo: CUEI_REGISTRATION,
    streams: [
      { streamType: STREAM_TYPE_H264, pid: FFMPEG_PIDS.video },
      { streamType: audioType, pid: FFMPEG_PIDS.audio },
      { streamType: STREAM_TYPE_SCTE35, pid: CUE_PID },
    ],
  });
  const out: Uint8Array[] = [];
  let cueCc = 0;
  for (let packet = 0; packet * PACKET_SIZE < ts.length; packet++) {
    for (const cue of cues.filter((candidate) => candidate.before === packet)) {
      const packets = packetizeSections(CUE_PID, [cue.section], cueCc);
      cueCc = (cueCc + packets.length) & 0x0f;
      out.push(...packets);
    }
    const at = packet * PACKET_SIZE;
    const original = ts.subarray(at, at + PACKET_SIZE);
    out.push(
      pidOf(ts, at) === FFMPEG_PIDS.pmt
        ? (packetizeSections(FFMPEG_PIDS.pmt, [pmt], (ts[at + 3] ?? 0) & 0x0f)[0] as Uint8Array)
        : original,
    );
  }
  return Buffer.concat(out);
};
