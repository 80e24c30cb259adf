/**
 * FLV to TS (ts-mux.ts) without sockets: the tags of FLV files ffmpeg made, fed as two publishers one after the
 * other, checked with ffmpeg's decoder and read packet by packet: one PMT throughout, continuity counters that
 * go on with discontinuity_indicator at the join, a PCR that keeps counting by the time between publishers;
 * and AMF cue messages turned back into SCTE-35 sections.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Either } from "effect";
import { describe, expect, it } from "vitest";
import { encodeAmf0 } from "../../../src/core/flv/amf0.ts";
import { cueMessage } from "../../../src/core/flv/cues.ts";
import { FlvTsMux, RTMP_TS } from "../../../src/core/flv/ts-mux.ts";
import { decodeSection, encodeSection } from "../../../src/core/scte35/index.ts";
import {
  ccAt,
  PACKET,
  packetPts,
  payloadOffset,
  pcrOf,
  pidAt,
  SectionReader,
  signalsDiscontinuity,
  unitStartAt,
} from "../../../src/core/ts/index.ts";
import { immediateSpliceOut, spliceInsertSection } from "../../support/cues.ts";
import { ffmpeg, mediaDir } from "./media.ts";

const dir = mediaDir("h11-ts-mux-");

/** An FLV file's tags: type, timestamp (ms) and body. */
const flvTags = (flv: Buffer) => {
  const tags: Array<{ type: number; timestamp: number; body: Uint8Array }> = [];
  for (let at = flv.readUInt32BE(5) + 4; at + 11 <= flv.length; ) {
    const size = flv.readUIntBE(at + 1, 3);
    const timestamp = (flv.readUIntBE(at + 4, 3) | ((flv[at + 7] ?? 0) << 24)) >>> 0;
    tags.push({ type: flv[at] ?? 0, timestamp, body: flv.subarray(at + 11, at + 11 + size) });
    at += 11 + size + 4;
  }
  return tags;
};

const flvOf = (name: string, audio: ReadonlyArray<string>) => {
  const path = join(dir, name);
  ffmpeg(
    ...["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=44100"],
    ...["-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", ...audio],
    ...["-f", "flv", path],
  );
  return flvTags(readFileSync(path));
};

/** Two publishers of `tags`, `gapMs` of wall clock apart; the TS the muxer made. */
const twoPublishers = (tags: ReturnType<typeof flvTags>, gapMs: number) => {
  const out: Uint8Array[] = [];
  const mux = new FlvTsMux((datagram) => out.push(Uint8Array.from(datagram)));
  let wall = 1_000_000;
  for (let round = 0; round < 2; round++) {
    mux.join(wall);
    const first = tags[0]?.timestamp ?? 0;
    for (const tag of tags) mux.tag(tag.type, tag.timestamp, tag.body, wall + (tag.timestamp - first));
    wall += (tags.at(-1)?.timestamp ?? 0) - first;
    mux.leave(wall);
    wall += gapMs;
  }
  return { ts: Buffer.concat(out), mux };
};

const packetsOf = (ts: Buffer) => {
  const packets: Buffer[] = [];
  for (let at = 0; at + PACKET <= ts.length; at += PACKET) packets.push(ts.subarray(at, at + PACKET));
  return packets;
};

const sectionsOn = (ts: Buffer, pid: number): string[] => {
  const found: string[] = [];
  const reader = new SectionReader((section) => found.push(Buffer.from(section).toString("hex")));
  for (const packet of packetsOf(ts)) {
    if (pidAt(packet) === pid)
      reader.packet(packet, payloadOffset(packet), unitStartAt(packet), ccAt(packet));
  }
  return found;
};

const decodeErrors = (ts: Buffer, name: string) => {
  const path = join(dir, name);
  writeFileSync(path, ts);
  return ffmpeg("-v", "error", "-i", path, "-f", "null", "-");
};

describe("FlvTsMux", () => {
  it("H.264 and AAC from two publishers: decodes clean, one PMT, CC on with a flagged join, the PCR counting on", () => {
    const tags = flvOf("h264-aac.flv", ["-c:a", "aac"]);
    const { ts, mux } = twoPublishers(tags, 2000);
    expect(decodeErrors(ts, "h264-aac.ts")).toBe("");
    const pmts = new Set(sectionsOn(ts, RTMP_TS.pmtPid));
    expect(pmts.size).toBe(1);
    // H.264 on 0x100, AAC (ADTS) on 0x101, SCTE-35 on 0x1F4.
    expect([...pmts][0]).toMatch(/1be100f000.*0fe101f000.*86e1f4f000/);
    expect(mux.counters().dropped).toBe(0);

    const packets = packetsOf(ts);
    for (const pid of [RTMP_TS.videoPid, RTMP_TS.audioPid]) {
      const mine = packets.filter((packet) => pidAt(packet) === pid);
      mine.slice(1).forEach((packet, i) => {
        expect(ccAt(packet)).toBe((ccAt(mine[i] as Buffer) + 1) & 0x0f);
      });
      // Exactly one packet says discontinuity: the first after the second publisher joined.
      expect(mine.filter((packet) => signalsDiscontinuity(packet)).length).toBe(1);
    }
    const pcrs = packets.map((packet) => pcrOf(packet)).filter((pcr) => pcr >= 0);
    for (let i = 1; i < pcrs.length; i++) expect(pcrs[i]).toBeGreaterThan(pcrs[i - 1] as number);
    const steps = pcrs.slice(1).map((pcr, i) => (pcr - (pcrs[i] as number)) / 27_000);
    // The largest step is the join: the 2 s between publishers.
    expect(Math.max(...steps)).toBeGreaterThanOrEqual(1990);
    expect(Math.max(...steps)).toBeLessThanOrEqual(2100);
  });

  it("MP3 audio goes as MPEG-1 audio (stream_type 0x03) and decodes", () => {
    const tags = flvOf("h264-mp3.flv", ["-c:a", "libmp3lame", "-ar", "44100"]);
    const { ts } = twoPublishers(tags, 500);
    expect(decodeErrors(ts, "h264-mp3.ts")).toBe("");
    expect(sectionsOn(ts, RTMP_TS.pmtPid)[0]).toMatch(/03e101f000/);
  });

  it("onAdCue carries the section byte for byte; Elemental's onCuePoint is made again from its fields", () => {
    const out: Uint8Array[] = [];
    const mux = new FlvTsMux((datagram) => out.push(Uint8Array.from(datagram)));
    mux.join(0);
    const tags = flvOf("cues.flv", ["-c:a", "aac"]);
    for (const tag of tags.slice(0, 10)) mux.tag(tag.type, tag.timestamp, tag.body, tag.timestamp);
    const adCue = encodeSection(immediateSpliceOut(77));
    const decodedAdCue = decodeSection(adCue);
    if (Either.isLeft(decodedAdCue)) throw new Error("the test's cue does not decode");
    mux.tag(
      18,
      200,
      cueMessage("onadcue", adCue, decodedAdCue.right, { time: 0.2, preRoll: 0 }) as Uint8Array,
      200,
    );
    const insert = spliceInsertSection({
      splice_event_id: 78,
      splice_event_cancel_indicator: false,
      out_of_network_indicator: true,
      program_splice_flag: true,
      duration_flag: true,
      break_duration: { auto_return: true, duration: 30 * 90_000 },
      splice_immediate_flag: true,
      event_id_compliance_flag: true,
      unique_program_id: 9,
      avail_num: 1,
      avails_expected: 2,
    });
    const insertBytes = encodeSection(insert);
    mux.tag(
      18,
      240,
      cueMessage("oncuepoint", insertBytes, insert, { time: 0.24, preRoll: 0 }) as Uint8Array,
      240,
    );
    // Not a cue: nothing on the SCTE-35 PID.
    mux.tag(18, 260, encodeAmf0("onTextData", { text: "hello" }), 260);
    const sections = sectionsOn(Buffer.concat(out), RTMP_TS.cuePid);
    expect(sections).toEqual([Buffer.from(adCue).toString("hex"), Buffer.from(insertBytes).toString("hex")]);
    expect(mux.counters().cues).toBe(2);
  });

  it("a frame before its sequence header and a codec it cannot carry are counted, not muxed", () => {
    const out: Uint8Array[] = [];
    const mux = new FlvTsMux((datagram) => out.push(Uint8Array.from(datagram)));
    mux.join(0);
    mux.tag(9, 0, Uint8Array.of(0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65), 0);
    mux.tag(9, 0, Uint8Array.of(0x12, 0, 0, 0, 0), 0);
    mux.tag(8, 0, Uint8Array.of(0x6f, 1, 2, 3), 0);
    expect(mux.counters()).toMatchObject({ dropped: 3, videoFrames: 0, audioFrames: 0 });
    expect(mux.counters().dropReason).toMatch(/sound format 6/);
    expect(out).toEqual([]);
  });

  it("a scheduled onCuePoint lands on the PTS of the frame at its time, on the channel's timeline", () => {
    const out: Uint8Array[] = [];
    const mux = new FlvTsMux((datagram) => out.push(Uint8Array.from(datagram)));
    mux.join(0);
    const tags = flvOf("scheduled.flv", ["-c:a", "aac"]);
    const insert = spliceInsertSection({
      splice_event_id: 90,
      splice_event_cancel_indicator: false,
      out_of_network_indicator: true,
      program_splice_flag: true,
      duration_flag: false,
      splice_immediate_flag: false,
      event_id_compliance_flag: true,
      time_specified_flag: true,
      pts_time: 123_456,
      unique_program_id: 1,
      avail_num: 0,
      avails_expected: 0,
    });
    // As our RTMP output sends it: at 0.3 s, for a splice at the 21st frame's time (its `time`), no pre-roll left.
    const frames = tags.filter((tag) => tag.type === 9 && tag.body[1] === 1);
    const spliceMs = frames[20]?.timestamp ?? 0;
    const message = cueMessage("oncuepoint", encodeSection(insert), insert, {
      time: spliceMs / 1000,
      preRoll: 0,
    }) as Uint8Array;
    let cued = false;
    for (const tag of tags) {
      if (!cued && tag.timestamp >= 300) {
        mux.tag(18, 300, message, 300);
        cued = true;
      }
      mux.tag(tag.type, tag.timestamp, tag.body, tag.timestamp);
    }
    const ts = Buffer.concat(out);
    const [section] = sectionsOn(ts, RTMP_TS.cuePid);
    const decoded = decodeSection(Buffer.from(section ?? "", "hex"));
    if (
      Either.isLeft(decoded) ||
      decoded.right.encrypted_packet ||
      decoded.right.splice_command_type !== 0x05
    )
      throw new Error("no splice_insert came out");
    const command = decoded.right.splice_command;
    if (command.splice_event_cancel_indicator) throw new Error("a cancel came out");
    expect([command.splice_event_id, command.splice_immediate_flag]).toEqual([90, false]);
    const videoPts = packetsOf(ts)
      .filter((packet) => pidAt(packet) === RTMP_TS.videoPid && unitStartAt(packet))
      .map((packet) => packetPts(packet));
    expect(command.pts_time).toBe(videoPts[20]);
  });
});
