/**
 * AV1 from Enhanced RTMP to MPEG-TS (av1.ts, ts-mux.ts) without sockets: the start code format and its
 * emulation prevention on bytes made to provoke it, and a stream SVT-AV1 encoded (via ffmpeg) fed to the
 * muxer as `av01` tags from two publishers: every temporal unit comes back byte for byte from its PES, the PMT
 * says what AOM's "Carriage of AV1 in MPEG-2 TS" says (stream_type 0x06, `AV01` registered first, the AV1 video
 * descriptor made of the configuration record's head) and stays one across the reconnect.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  av1ConfigFromDescriptor,
  av1Descriptors,
  lowOverheadFormat,
  readAv1C,
  startCodeFormat,
  startCodeKeyFrame,
  startsKeyFrame,
} from "../../../src/core/flv/av1.ts";
import { FlvTsMux, RTMP_TS } from "../../../src/core/flv/ts-mux.ts";
import {
  ccAt,
  PACKET,
  payloadOffset,
  pidAt,
  readPmt,
  SectionReader,
  unitStartAt,
} from "../../../src/core/ts/index.ts";
import { av1Tags, encodeAv1, temporalUnitsIn } from "../../support/av1-media.ts";
import { mediaDir } from "./media.ts";

const dir = mediaDir("h5-av1-");

/** An OBU in the low overhead format: header (type, has_size_field) and a one-byte size. */
const obu = (type: number, payload: ReadonlyArray<number>) => [(type << 3) | 2, payload.length, ...payload];

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

const sectionsOn = (ts: Uint8Array, pid: number): Uint8Array[] => {
  const found: Uint8Array[] = [];
  const reader = new SectionReader((section) => found.push(Uint8Array.from(section)));
  for (let at = 0; at + PACKET <= ts.length; at += PACKET) {
    if (pidAt(ts, at) !== pid) continue;
    const packet = ts.subarray(at, at + PACKET);
    reader.packet(packet, payloadOffset(packet), unitStartAt(packet), ccAt(packet));
  }
  return found;
};

describe("AV1 start code format", () => {
  it("escapes every 00 00 0x (x ≤ 3), keeps a unit's zero tail, and reads back byte for byte", () => {
    const tu = Uint8Array.from([
      ...obu(2, []),
      ...obu(6, [0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 9, 0, 0]),
      ...obu(5, [0, 0, 0]),
    ]);
    const pes = startCodeFormat(tu, false, new Uint8Array(0));
    if (pes === null) throw new Error("the unit did not parse");
    // No start code but the three put before the OBUs, and no 00 00 0x (x ≤ 3) but the prevention bytes'.
    let codes = 0;
    for (
      let at = Buffer.from(pes).indexOf("000001", 0, "hex");
      at >= 0;
      at = Buffer.from(pes).indexOf("000001", at + 1, "hex")
    )
      codes++;
    expect(codes).toBe(3);
    expect(hex(pes)).toBe(
      [
        "000001" + "1200",
        "000001" + "3212" + "0000030000030001" + "00000302" + "00000303" + "00000409" + "0000",
        "000001" + "2a03" + "00000300",
      ].join(""),
    );
    expect(hex(lowOverheadFormat(pes))).toBe(hex(tu));
  });

  it("puts a temporal delimiter first, and the record's sequence header in a key frame without one", () => {
    const sequenceHeader = obu(1, [0x00, 0x00, 0x00, 0x04, 0x3c]);
    const frame = obu(6, [0x10, 0x20]);
    const pes = startCodeFormat(Uint8Array.from(frame), true, Uint8Array.from(sequenceHeader));
    if (pes === null) throw new Error("the unit did not parse");
    expect(hex(lowOverheadFormat(pes))).toBe(
      hex(Uint8Array.from([...obu(2, []), ...sequenceHeader, ...frame])),
    );
    // Not on an inter frame.
    const inter = startCodeFormat(Uint8Array.from(frame), false, Uint8Array.from(sequenceHeader));
    expect(hex(lowOverheadFormat(inter as Uint8Array))).toBe(hex(Uint8Array.from([...obu(2, []), ...frame])));
  });

  it("gives an OBU carried without obu_size (MPEG-TS allows it) its size on the way back", () => {
    const pes = Buffer.from("000001" + "10" + "000001" + "30" + "302000000301", "hex");
    expect(hex(lowOverheadFormat(pes))).toBe("1200" + "3205" + "3020000001"); // an inter frame
    expect(startCodeKeyFrame(pes)).toBe(false);
    // A key frame (show_existing_frame 0, frame_type KEY) is found without the size field too.
    expect(startCodeKeyFrame(Buffer.from("000001" + "30" + "10", "hex"))).toBe(true);
  });

  it("refuses OBUs whose sizes run past the unit, or whose forbidden bit is set", () => {
    expect(startCodeFormat(Uint8Array.of(0x32, 9, 1, 2), false, new Uint8Array(0))).toBeNull();
    expect(startCodeFormat(Uint8Array.of(0xb2, 0), false, new Uint8Array(0))).toBeNull();
    expect(startCodeFormat(new Uint8Array(0), false, new Uint8Array(0))).toBeNull();
  });

  it("the PMT descriptors: AV01 registered, then tag 0x80 from the record's head (or an MPEG-2 TS start's)", () => {
    const config = readAv1C(Uint8Array.of(0x81, 0x08, 0x0c, 0x00, 0x0a, 0x00));
    if (config === null) throw new Error("the record did not read");
    const descriptors = av1Descriptors(config);
    // 05 04 'AV01', 80 04 marker+version, profile 0 level 8, tier 0 8-bit 4:2:0, hdr_wcg_idc 3 (not said).
    expect(hex(descriptors)).toBe("050441563031" + "8004" + "81080cc0");
    expect(readAv1C(Uint8Array.of(0x01, 0, 0, 0))).toBeNull();
    const back = av1ConfigFromDescriptor(descriptors.subarray(6));
    expect(hex(back?.head ?? new Uint8Array(0))).toBe("81080c00");
  });
});

describe("FlvTsMux with AV1", () => {
  const stream = encodeAv1(dir, "two-seconds", 2);
  const tags = av1Tags(stream);

  const twoPublishers = () => {
    const out: Uint8Array[] = [];
    const mux = new FlvTsMux((datagram) => out.push(Uint8Array.from(datagram)));
    let wall = 1_000_000;
    for (let round = 0; round < 2; round++) {
      mux.join(wall);
      for (const tag of tags) mux.tag(9, tag.timestamp, tag.body, wall + tag.timestamp);
      wall += tags.at(-1)?.timestamp ?? 0;
      mux.leave(wall);
      wall += 1000;
    }
    return { ts: Buffer.concat(out), mux };
  };

  it("the encoder's key frames are found, and the record is ffmpeg's own", () => {
    const keys = stream.units.flatMap((unit, i) => (startsKeyFrame(unit) ? [i] : []));
    expect(keys).toEqual([0, 25]);
    expect(stream.av1C[0]).toBe(0x81);
  });

  it("every temporal unit comes back byte for byte, one per PES of stream_id 0xBD, aligned, key ones flagged", () => {
    const { ts, mux } = twoPublishers();
    expect(mux.counters()).toMatchObject({ dropped: 0, videoFrames: 2 * stream.units.length });
    const carried = temporalUnitsIn(ts);
    expect(carried.length).toBe(2 * stream.units.length);
    const expected = [...stream.units, ...stream.units];
    carried.forEach((got, i) => {
      expect(hex(got.unit)).toBe(hex(expected[i] as Uint8Array));
      expect(got.streamId).toBe(0xbd);
      expect(got.aligned).toBe(true);
      expect(got.randomAccess).toBe(startsKeyFrame(expected[i] as Uint8Array));
      expect(got.priority).toBe(got.randomAccess);
    });
  });

  it("the PMT: stream_type 0x06 with AV01 first and the AV1 video descriptor, one version across the reconnect", () => {
    const { ts } = twoPublishers();
    const pmts = new Set(sectionsOn(ts, RTMP_TS.pmtPid).map(hex));
    expect(pmts.size).toBe(1);
    const pmt = Buffer.from([...pmts][0] as string, "hex");
    const read = readPmt(pmt);
    const video = read?.streams.find((entry) => entry.pid === RTMP_TS.videoPid);
    expect(video?.streamType).toBe(0x06);
    const descriptors = pmt.subarray((video?.start ?? 0) + 5, video?.end);
    const head = (readAv1C(stream.av1C)?.head ?? new Uint8Array(4)) as Uint8Array;
    expect(hex(descriptors)).toBe(
      `050441563031800481${hex(head.subarray(1, 3))}${(0xc0 | ((head[3] ?? 0) & 0x1f)).toString(16)}`,
    );
    expect(read?.pcrPid).toBe(RTMP_TS.videoPid);
  });

  it("a coded frame before the sequence start and OBUs that do not parse are counted as dropped", () => {
    const mux = new FlvTsMux(() => {});
    mux.join(0);
    const frame = tags[1] as { timestamp: number; body: Uint8Array };
    mux.tag(9, 0, frame.body, 0);
    expect(mux.counters().dropReason).toMatch(/before its sequence header/);
    mux.tag(9, 0, (tags[0] as { body: Uint8Array }).body, 0);
    mux.tag(9, 40, Uint8Array.of(0x90 | 1, 0x61, 0x76, 0x30, 0x31, 0x32, 0x40, 1), 40);
    expect(mux.counters()).toMatchObject({ dropped: 2, videoFrames: 0 });
    expect(mux.counters().dropReason).toMatch(/AV1 temporal unit whose OBUs cannot be read/);
  });

  it("a publisher's arbitrary av01 bodies (sequence starts and frames) never throw: what cannot be read is dropped", () => {
    const AV01 = [0x61, 0x76, 0x30, 0x31];
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.constantFrom(0x90, 0x95, 0x91, 0xa1), fc.uint8Array({ maxLength: 300 }), fc.boolean()),
          { minLength: 1, maxLength: 20 },
        ),
        (tags) => {
          const mux = new FlvTsMux(() => {});
          mux.join(0);
          tags.forEach(([first, bytes, real], i) => {
            // Half of them a real record or unit with arbitrary bytes written over its start.
            const base = real ? ((i === 0 ? stream.av1C : stream.units[i]) ?? bytes) : bytes;
            const body = Uint8Array.from([first, ...AV01, ...base]);
            body.set(bytes.subarray(0, Math.min(bytes.length, base.length, 8)), 5);
            mux.tag(9, i * 40, body, i * 40);
          });
          const { videoFrames, dropped } = mux.counters();
          expect(videoFrames + dropped).toBeLessThanOrEqual(tags.length);
        },
      ),
      { numRuns: 2000, seed: 69 },
    );
  });
});
