/**
 * The AMF0 data messages for SCTE-35, from the standard's own examples (SCTE 35 2022b, 14.1 and 14.2), read
 * back with the AMF0 decoder as a receiver would.
 */
import { Either } from "effect";
import { describe, expect, it } from "vitest";
import { decodeAmf0 } from "../../../src/core/flv/amf0.ts";
import { base64, cueMessage, splicePts } from "../../../src/core/flv/cues.ts";
import { decodeSection, encodeSection, parseCueText } from "../../../src/core/scte35/index.ts";
import { immediateSpliceOut } from "../../support/cues.ts";

/** 14.1: time_signal with a Placement Opportunity Start segmentation descriptor, 307 s, Airing ID UPID. */
const TIME_SIGNAL = "/DA0AAAAAAAA///wBQb+cr0AUAAeAhxDVUVJSAAAjn/PAAGlmbAICAAAAAAsoKGKNAIAmsnRfg==";
/** 14.2: splice_insert out of the network, event 0x4800008f, break of 60.293567 s with auto return. */
const SPLICE_INSERT = "/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=";

const cue = (text: string) => {
  const bytes = Either.getOrThrow(parseCueText(text));
  return { bytes, section: Either.getOrThrow(decodeSection(bytes)) };
};
const read = (body: Uint8Array | undefined) => (body ? Either.getOrThrow(decodeAmf0(body)) : undefined);
const timing = { time: 4321.5, preRoll: 4 };

describe("cue messages", () => {
  it("onCuePoint in the Elemental shape carries the splice_insert's fields", () => {
    const { bytes, section } = cue(SPLICE_INSERT);
    expect(read(cueMessage("oncuepoint", bytes, section, timing))).toEqual([
      "onCuePoint",
      {
        name: "scte35",
        time: 4321.5,
        type: "event",
        parameters: {
          messageType: "SpliceInsert",
          splice_command_type: 5,
          splice_event_id: 0x4800008f,
          splice_event_cancel_indicator: false,
          out_of_network_indicator: true,
          splice_immediate: false,
          pre_roll_time: 4,
          break_duration: 5426421 / 90000,
          auto_return: true,
          unique_program_id: 0,
          avail_num: 0,
          avail_expected: 0,
        },
      },
    ]);
  });

  it("onCuePoint carries a time_signal's segmentation descriptor", () => {
    const { bytes, section } = cue(TIME_SIGNAL);
    const [, message] = read(cueMessage("oncuepoint", bytes, section, timing)) ?? [];
    expect(message).toMatchObject({
      parameters: {
        messageType: "TimeSignal",
        splice_command_type: 6,
        pre_roll_time: 4,
        segmentation_event_id: 0x4800008e,
        segmentation_event_cancel_indicator: false,
        segmentation_type_id: 0x34,
        segmentation_upid_type: 8,
        segmentation_upid: "000000002ca0a18a",
        segmentation_duration: 27630000 / 90000,
        segment_num: 2,
        segments_expected: 0,
      },
    });
  });

  it("onAdCue holds the section's exact bytes in base64", () => {
    for (const text of [SPLICE_INSERT, TIME_SIGNAL]) {
      const { bytes, section } = cue(text);
      const [name, message] = read(cueMessage("onadcue", bytes, section, timing)) ?? [];
      expect(name).toBe("onAdCue");
      expect(message).toMatchObject({ cue: text, type: "scte35", time: 4321.5 });
    }
    const insert = cue(SPLICE_INSERT);
    expect(read(cueMessage("onadcue", insert.bytes, insert.section, timing))?.[1]).toEqual({
      cue: SPLICE_INSERT,
      type: "scte35",
      id: String(0x4800008f),
      duration: 5426421 / 90000,
      time: 4321.5,
    });
    // A section without a duration says 0, as the format has no "unknown".
    const immediate = encodeSection(immediateSpliceOut(7));
    const decoded = Either.getOrThrow(decodeSection(immediate));
    expect(read(cueMessage("onadcue", immediate, decoded, timing))?.[1]).toMatchObject({
      id: "7",
      duration: 0,
    });
  });

  it("YouTube's cuepoint for a break out of the network, and nothing for a cue it cannot express", () => {
    const insert = cue(SPLICE_INSERT);
    expect(read(cueMessage("youtube", insert.bytes, insert.section, timing))).toEqual([
      "onCuePoint",
      {
        type: "com.youtube.cuepoint",
        version: "0.1",
        pre_roll_time_sec: 4,
        cue_point_start: true,
        break_duration_sec: 5426421 / 90000,
        splice_event_id: 0x4800008f,
      },
    ]);
    const signal = cue(TIME_SIGNAL);
    expect(cueMessage("youtube", signal.bytes, signal.section, timing)).toBeUndefined();
    const noDuration = encodeSection(immediateSpliceOut(7));
    expect(
      cueMessage("youtube", noDuration, Either.getOrThrow(decodeSection(noDuration)), timing),
    ).toBeUndefined();
  });

  it("times a cue at its splice PTS, pts_adjustment added, or at arrival when immediate", () => {
    expect(splicePts(cue(SPLICE_INSERT).section)).toBe(0x07369c02e);
    expect(splicePts(cue(TIME_SIGNAL).section)).toBe(0x072bd0050);
    const adjusted = { ...cue(TIME_SIGNAL).section, pts_adjustment: 2 ** 33 - 0x50 };
    expect(splicePts(adjusted)).toBe(0x072bd0000);
    expect(splicePts(immediateSpliceOut(7))).toBeUndefined();
  });

  it("encodes base64 as RFC 4648 does", () => {
    const enc = new TextEncoder();
    expect(["", "f", "fo", "foo", "foob", "fooba", "foobar"].map((s) => base64(enc.encode(s)))).toEqual([
      "",
      "Zg==",
      "Zm8=",
      "Zm9v",
      "Zm9vYg==",
      "Zm9vYmE=",
      "Zm9vYmFy",
    ]);
  });
});
