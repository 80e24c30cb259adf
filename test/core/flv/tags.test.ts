import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Either } from "effect";
import { describe, expect, it } from "vitest";
import { decodeAmf0, EcmaArray } from "../../../src/core/flv/amf0.ts";
import { AdtsReader, aacFrame, aacSequenceHeader, mp3Frame } from "../../../src/core/flv/audio.ts";
import { readHevcSps } from "../../../src/core/flv/hevc-sps.ts";
import { H264_NAL, NalUnits, nalType } from "../../../src/core/flv/nal.ts";
import {
  avcSequenceHeader,
  flvFileHeader,
  flvTag,
  hevcSequenceHeader,
  metadataBody,
  parameterSets,
  readCompositionMs,
  TAG_AUDIO,
  TAG_SCRIPT,
  TAG_VIDEO,
  videoFrame,
} from "../../../src/core/flv/tags.ts";
import { ffmpeg, mediaDir, packets } from "./media.ts";

const dir = mediaDir("flv-tags-");

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** Annex B split into access units at each delimiter, as an encoder with AUDs writes them. */
const accessUnits = (stream: Uint8Array): Uint8Array[] => {
  const starts: number[] = [];
  const nals = new NalUnits().scan(stream);
  for (let i = 0; i < nals.count; i++) {
    if (nalType("h264", stream, nals.start(i)) === H264_NAL.aud) starts.push(nals.start(i) - 4);
  }
  return starts.map((at, i) => stream.subarray(at, starts[i + 1] ?? stream.length));
};

describe("FLV framing", () => {
  it("writes the file header and a tag with its extended timestamp byte and PreviousTagSize", () => {
    expect(hex(flvFileHeader(true, true))).toBe("464c5601050000000900000000");
    expect(hex(flvFileHeader(false, true))).toBe("464c5601010000000900000000");
    const tag = flvTag(TAG_VIDEO, 0x12345678, Uint8Array.of(0xaa, 0xbb));
    expect(hex(tag)).toBe(`09000002${"345678"}12${"000000"}aabb${"0000000d"}`);
    expect(hex(flvTag(TAG_AUDIO, 40, new Uint8Array(0)).subarray(0, 8))).toBe("0800000000002800");
  });
});

describe("video tags", () => {
  it("drops delimiters and writes 4-byte lengths for 3- and 4-byte start codes", () => {
    const au = Uint8Array.of(0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65, 0xaa, 0xbb, 0, 0, 0, 1, 0x41, 0xcc);
    expect(hex(videoFrame("h264", au, true, 0))).toBe("1701000000" + "0000000365aabb" + "0000000241cc");
    expect(hex(videoFrame("h264", au, false, 80))).toBe("2701000050" + "0000000365aabb" + "0000000241cc");
  });

  it("writes a negative composition time as signed 24 bits", () => {
    const body = videoFrame("h264", Uint8Array.of(0, 0, 1, 0x41, 1), false, -34);
    expect(hex(body.subarray(2, 5))).toBe("ffffde");
    expect(readCompositionMs(body, 2)).toBe(-34);
    expect(readCompositionMs(videoFrame("h264", Uint8Array.of(0, 0, 1, 0x41, 1), false, 8_000_000), 2)).toBe(
      8_000_000,
    );
  });

  it("writes HEVC frames with the Enhanced RTMP header and FourCC hvc1", () => {
    const au = Uint8Array.of(0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 0x26, 0x01, 0xaf);
    // AUD (type 35) dropped; an IDR (type 19) with a composition time: CodedFrames, else CodedFramesX.
    expect(hex(videoFrame("hevc", au, true, 40))).toBe(`91${"68766331"}000028${"00000003"}2601af`);
    expect(hex(videoFrame("hevc", au, false, 0))).toBe(`a3${"68766331"}${"00000003"}2601af`);
  });

  it("builds an AVCDecoderConfigurationRecord from the SPS and PPS", () => {
    const sps = Uint8Array.of(0x67, 0x64, 0x00, 0x1f, 0xac);
    const pps = Uint8Array.of(0x68, 0xee, 0x3c, 0x80);
    expect(hex(avcSequenceHeader([sps], [pps]))).toBe(
      "1700000000" + "0164001fff" + "e1" + "0005" + "6764001fac" + "01" + "0004" + "68ee3c80",
    );
  });

  it("gives ffmpeg an FLV of H.264 and AAC that it reads frame for frame and decodes cleanly", () => {
    ffmpeg(
      ...["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "2"],
      ...["-c:v", "libx264", "-preset", "ultrafast", "-g", "12", "-bf", "0", "-x264-params", "aud=1"],
      ...["-f", "h264", join(dir, "in.h264")],
    );
    ffmpeg(
      ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "2", "-ac", "2"],
      ...["-c:a", "aac", "-f", "adts", join(dir, "in.aac")],
    );
    const units = accessUnits(new Uint8Array(readFileSync(join(dir, "in.h264"))));
    const adtsFile = new Uint8Array(readFileSync(join(dir, "in.aac")));
    expect(units.length).toBe(50);

    const first = units[0] ?? new Uint8Array(0);
    const sets = parameterSets("h264", first);
    const adts = new AdtsReader();
    adts.reset(adtsFile);
    expect(adts.next()).toBe(true);
    expect(adts.sampleRate).toBe(48000);
    const parts: Uint8Array[] = [
      flvFileHeader(true, true),
      flvTag(
        TAG_SCRIPT,
        0,
        metadataBody({
          video: { codec: "h264", width: 320, height: 240, frameRate: 25 },
          audio: { codec: "aac", sampleRate: 48000, channels: 2 },
        }),
      ),
      flvTag(TAG_VIDEO, 0, avcSequenceHeader(sets.sps, sets.pps)),
      flvTag(TAG_AUDIO, 0, aacSequenceHeader(adts.audioSpecificConfig())),
    ];
    const expected: Array<{ type: string; ms: number; size: number; key: boolean }> = [];
    // Every ADTS frame of the file, as if one PES held them all: each 1024 samples after the one before.
    const audio: Array<{ ms: number; tag: Uint8Array }> = [];
    adts.reset(adtsFile);
    while (adts.next()) {
      const ms = Math.round((adts.index * 1024 * 1000) / adts.sampleRate);
      audio.push({ ms, tag: flvTag(TAG_AUDIO, ms, aacFrame(adtsFile, adts.start, adts.end)) });
      expected.push({ type: "audio", ms, size: adts.end - adts.start, key: true });
    }
    let a = 0;
    units.forEach((unit, i) => {
      const key = parameterSets("h264", unit).sps.length > 0;
      const body = videoFrame("h264", unit, key, 0);
      while (a < audio.length && (audio[a]?.ms ?? 0) <= i * 40)
        parts.push(audio[a++]?.tag ?? new Uint8Array());
      parts.push(flvTag(TAG_VIDEO, i * 40, body));
      expected.push({ type: "video", ms: i * 40, size: body.length - 5, key });
    });
    while (a < audio.length) parts.push(audio[a++]?.tag ?? new Uint8Array());
    const file = join(dir, "out.flv");
    writeFileSync(file, Buffer.concat(parts));

    const got = packets(file).map((p) => ({
      type: p.codec_type,
      ms: p.dts,
      size: Number(p.size),
      key: p.flags.startsWith("K"),
    }));
    const byType = (list: typeof got, type: string) => list.filter((p) => p.type === type);
    expect(byType(got, "video")).toEqual(byType(expected, "video"));
    expect(byType(got, "audio")).toEqual(byType(expected, "audio"));
    expect(byType(got, "video").filter((p) => p.key).length).toBe(5);
    // Decoding everything reports nothing: the sequence headers and length-prefixed NAL units are right.
    expect(ffmpeg("-i", file, "-f", "null", "-")).toBe("");
  });
});

describe("HEVC sequence header", () => {
  it("carries the fields ffmpeg's own hvcC has for the same parameter sets", () => {
    ffmpeg(
      ...["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "0.2"],
      ...["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=none"],
      ...["-f", "hevc", join(dir, "in.hevc")],
    );
    ffmpeg("-i", join(dir, "in.hevc"), "-c", "copy", join(dir, "in.mp4"));
    const stream = new Uint8Array(readFileSync(join(dir, "in.hevc")));
    const { vps, sps, pps } = parameterSets("hevc", stream);
    const body = hevcSequenceHeader(vps, sps, pps);
    expect(hex(body.subarray(0, 5))).toBe(`90${"68766331"}`);
    const ours = body.subarray(5);

    const mp4 = readFileSync(join(dir, "in.mp4"));
    const at = mp4.indexOf("hvcC");
    const theirs = new Uint8Array(mp4.subarray(at + 4, at - 4 + mp4.readUInt32BE(at - 4)));
    // Version, general profile, tier, compatibility and constraint flags, level.
    expect(hex(ours.subarray(0, 13))).toBe(hex(theirs.subarray(0, 13)));
    // Chroma format and bit depths; then the temporal layer count, nesting and length size.
    expect(hex(ours.subarray(16, 19))).toBe(hex(theirs.subarray(16, 19)));
    expect((ours[21] ?? 0) & 0x3f).toBe((theirs[21] ?? 0) & 0x3f);
    // The VPS, SPS and PPS arrays, byte for byte but for array_completeness.
    expect(hex(ours.subarray(22).map((b, i, all) => (i === 0 || isArrayHead(all, i) ? b & 0x3f : b)))).toBe(
      hex(theirs.subarray(22).map((b, i, all) => (i === 0 || isArrayHead(all, i) ? b & 0x3f : b))),
    );
    expect(readHevcSps(sps[0] ?? new Uint8Array())).toMatchObject({
      width: 320,
      height: 240,
      chromaFormat: 1,
    });
  });
});

/** Whether byte `i` of an hvcC's array list (after numOfArrays) starts an array. */
const isArrayHead = (list: Uint8Array, i: number): boolean => {
  let at = 1;
  while (at < list.length) {
    if (at === i) return true;
    const count = ((list[at + 1] ?? 0) << 8) | (list[at + 2] ?? 0);
    at += 3;
    for (let n = 0; n < count; n++) at += 2 + (((list[at] ?? 0) << 8) | (list[at + 1] ?? 0));
  }
  return false;
};

describe("audio tags", () => {
  it("splits a PES of ADTS frames (with and without CRC) and builds the AudioSpecificConfig", () => {
    // AAC LC, 48 kHz (index 3), 2 channels; frame lengths 7+2 and 9+1 bytes.
    const plain = Uint8Array.of(0xff, 0xf1, 0x4c, 0x80, 0x01, 0x3f, 0xfc, 0xaa, 0xbb);
    const crc = Uint8Array.of(0xff, 0xf0, 0x4c, 0x80, 0x01, 0x5f, 0xfc, 0x12, 0x34, 0xcc);
    const pes = Uint8Array.from([...plain, ...crc]);
    const adts = new AdtsReader();
    adts.reset(pes);
    const frames: string[] = [];
    while (adts.next()) frames.push(`${adts.index}:${hex(aacFrame(pes, adts.start, adts.end))}`);
    expect(frames).toEqual(["0:af01aabb", "1:af01cc"]);
    adts.reset(pes);
    adts.next();
    expect(hex(aacSequenceHeader(adts.audioSpecificConfig()))).toBe("af001190");
    const config = adts.audioSpecificConfig();
    expect(adts.hasConfig(config)).toBe(true);
    // 44.1 kHz (index 4), mono: another AudioSpecificConfig, so the remux sends a new sequence header.
    adts.reset(Uint8Array.of(0xff, 0xf1, 0x50, 0x40, 0x01, 0x3f, 0xfc, 0xaa, 0xbb));
    expect(adts.next()).toBe(true);
    expect([adts.hasConfig(config), hex(adts.audioSpecificConfig())]).toEqual([false, "1208"]);
    // A frame longer than what remains ends the walk rather than reading past it.
    adts.reset(pes.subarray(0, 12));
    expect([adts.next(), adts.next()]).toEqual([true, false]);
  });

  it("flags MP3 as FLV codec 2 with its rate and channels", () => {
    // MPEG-1 layer 3, 44.1 kHz, stereo; MPEG-2 layer 3, 22.05 kHz, mono.
    expect(hex(mp3Frame(Uint8Array.of(0xff, 0xfb, 0x90, 0x00)).subarray(0, 1))).toBe("2f");
    expect(hex(mp3Frame(Uint8Array.of(0xff, 0xf3, 0x90, 0xc0)).subarray(0, 1))).toBe("2a");
  });
});

describe("onMetaData", () => {
  it("names the codecs and sizes as an ECMA array, behind @setDataFrame for a publisher", () => {
    const meta = {
      video: { codec: "hevc", width: 1920, height: 1080, frameRate: 50, kbps: 6000 },
      audio: { codec: "aac", sampleRate: 48000, channels: 2, kbps: 128 },
    } as const;
    expect(Either.getOrThrow(decodeAmf0(metadataBody(meta, true)))).toEqual([
      "@setDataFrame",
      "onMetaData",
      new EcmaArray({
        duration: 0,
        width: 1920,
        height: 1080,
        framerate: 50,
        videocodecid: 0x68766331,
        videodatarate: 6000,
        audiocodecid: 10,
        audiosamplerate: 48000,
        audiosamplesize: 16,
        stereo: true,
        audiodatarate: 128,
      }),
    ]);
  });
});
