import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AdtsReader, aacFrame, aacSequenceHeader } from "../../../src/core/flv/audio.ts";
import { type AccessUnit, EsDemuxer, isVideoCodec } from "../../../src/core/flv/es.ts";
import {
  avcSequenceHeader,
  flvFileHeader,
  flvTag,
  metadataBody,
  parameterSets,
  TAG_AUDIO,
  TAG_SCRIPT,
  TAG_VIDEO,
  videoFrame,
} from "../../../src/core/flv/tags.ts";
import { AUDIO, compositionMs, TagClock, VIDEO } from "../../../src/core/flv/timestamps.ts";
import { PTS_WRAP } from "../../../src/core/ts/index.ts";
import { ffmpeg, mediaDir, type Packet, packets } from "./media.ts";

const dir = mediaDir("flv-remux-");

/** The decoded pictures' MD5s, in order: equal lists mean the FLV carries the same coded frames. */
const pictureHashes = (file: string): string[] =>
  ffmpeg("-i", file, "-map", "0:v", "-f", "framemd5", "-")
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => line.split(",").at(-1)?.trim() ?? "");

/** What a channel's remux will do, reduced to a file: start at the first keyframe, headers first. */
const remux = (ts: Uint8Array): Uint8Array => {
  const clock = new TagClock();
  const adts = new AdtsReader();
  const tags: Uint8Array[] = [];
  let started = false;
  let audioHeader = false;
  const demux = new EsDemuxer((unit: AccessUnit) => {
    if (isVideoCodec(unit.codec)) {
      if (!started && !unit.keyframe) return;
      if (!started) {
        const sets = parameterSets(unit.codec, unit.data);
        tags.push(flvTag(TAG_VIDEO, 0, avcSequenceHeader(sets.sps, sets.pps)));
        started = true;
      }
      const ms = clock.timestampMs(unit.dts, VIDEO);
      const body = videoFrame(unit.codec, unit.data, unit.keyframe, compositionMs(unit.pts, unit.dts));
      tags.push(flvTag(TAG_VIDEO, ms, body));
    } else if (started && unit.codec === "aac") {
      adts.reset(unit.data);
      while (adts.next()) {
        if (!audioHeader) {
          tags.push(flvTag(TAG_AUDIO, 0, aacSequenceHeader(adts.audioSpecificConfig())));
          audioHeader = true;
        }
        const pts = (unit.pts + Math.round((adts.index * 1024 * 90000) / adts.sampleRate)) % PTS_WRAP;
        tags.push(
          flvTag(TAG_AUDIO, clock.timestampMs(pts, AUDIO), aacFrame(unit.data, adts.start, adts.end)),
        );
      }
    }
  });
  demux.push(ts);
  demux.flush();
  const meta = metadataBody({
    video: { codec: "h264", width: 320, height: 240, frameRate: 25 },
    audio: { codec: "aac", sampleRate: 48000, channels: 2 },
  });
  return Buffer.concat([flvFileHeader(true, true), flvTag(TAG_SCRIPT, 0, meta), ...tags]);
};

describe("TS → FLV", () => {
  it("carries every video and audio frame of an H.264 + AAC stream with B-frames, at its times", () => {
    const input = join(dir, "in.ts");
    ffmpeg(
      ...["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"],
      ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3"],
      ...["-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "2"],
      ...["-c:a", "aac", "-ac", "2", "-f", "mpegts", input],
    );
    const output = join(dir, "out.flv");
    writeFileSync(output, remux(new Uint8Array(readFileSync(input))));

    const source = packets(input);
    const flv = packets(output);
    const video = (list: Packet[]) => list.filter((p) => p.codec_type === "video");
    const audio = (list: Packet[]) => list.filter((p) => p.codec_type === "audio");
    const base = video(source)[0]?.dts ?? 0;
    expect(video(source).some((p) => p.pts > p.dts + 3600)).toBe(true); // B-frames: reordered by 2 frames

    expect(video(flv).map((p) => [p.dts, p.pts, p.flags[0]])).toEqual(
      video(source).map((p) => [(p.dts - base) / 90, (p.pts - base) / 90, p.flags[0]]),
    );
    expect(pictureHashes(output)).toEqual(pictureHashes(input));

    // The source's AAC packets are ADTS frames (ffmpeg's parser splits its PES); the FLV's are raw.
    expect(audio(flv).map((p) => [p.dts, Number(p.size)])).toEqual(
      audio(source).map((p) => [Math.floor((p.pts - base) / 90), Number(p.size) - 7]),
    );
    expect(audio(flv).length).toBeGreaterThan(140);
  });
});
