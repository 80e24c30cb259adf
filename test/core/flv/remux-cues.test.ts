/**
 * When the remux hands on a cue and the time it stamps it with: at its splice time on the tags' timeline (past
 * the 33-bit wrap, and on a backup's time base after a switch), before the first frame at or after it; at
 * arrival when it is immediate, when there is nothing to map it against, or when it is too far ahead.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Either } from "effect";
import { describe, expect, it } from "vitest";
import { type Amf0Value, decodeAmf0 } from "../../../src/core/flv/amf0.ts";
import { MAX_CUE_HOLD_MS } from "../../../src/core/flv/cue-hold.ts";
import type { FlvFrame } from "../../../src/core/flv/frames.ts";
import { FlvRemux } from "../../../src/core/flv/remux.ts";
import { encodeSection } from "../../../src/core/scte35/index.ts";
import { PTS_WRAP } from "../../../src/core/ts/index.ts";
import { immediateSpliceOut } from "../../support/cues.ts";
import { bframeStream, videoPes } from "../../support/rtmp-media.ts";
import { PACKET_SIZE, timeSignal } from "../../support/ts-generator.ts";
import { mediaDir } from "./media.ts";

const dir = mediaDir("flv-remux-cues-");

/** A 3 s test stream whose times start `offset` seconds in (ffmpeg adds 1.4 s), and its video PES. */
const stream = (name: string, offset: number) => {
  const path = join(dir, name);
  bframeStream(path, 3, "libx264", offset);
  const ts = readFileSync(path);
  return { ts, pes: videoPes(ts) };
};

/** `time` and the pre-roll of a cue frame's onCuePoint. */
const cueTiming = (frame: FlvFrame) => {
  const body = frame.cueBody?.("oncuepoint");
  const values = body === undefined ? Either.right([]) : decodeAmf0(body);
  const fields = (Either.getOrElse(values, () => [])[1] ?? {}) as Record<string, Amf0Value>;
  return { time: fields.time, preRoll: (fields.parameters as Record<string, Amf0Value>).pre_roll_time };
};

describe("cue frames of the remux", () => {
  it("waits for a cue's splice time across the wrap and after a switch; goes at arrival otherwise", () => {
    // The first stream wraps 0.8 s in; the backup's times are another time base altogether.
    const main = stream("main.ts", PTS_WRAP / 90_000 - 2.2);
    const backup = stream("backup.ts", 1000);
    const remux = new FlvRemux();
    const frames: FlvFrame[] = [];
    remux.listen((frame) => frames.push(frame));
    const push = (ts: Uint8Array, from: number, to: number) =>
      remux.push(ts.subarray(from * PACKET_SIZE, Math.min(to * PACKET_SIZE, ts.length)));
    const at = (pes: ReturnType<typeof videoPes>, i: number) => pes[i] ?? { packet: 0, pts: 0, dts: 0 };
    const latest = () =>
      Math.max(...frames.filter((f) => f.kind === "video" || f.kind === "audio").map((f) => f.timestamp));
    const videoAt = (dts: number) => frames.find((f) => f.kind === "video" && f.timestamp === dts);

    push(main.ts, 0, at(main.pes, 10).packet);
    const mark = frames.length;
    // After the wrap, 20 ms past frame 40's DTS; then one 70 s ahead, and an immediate one.
    remux.cue(timeSignal((at(main.pes, 40).dts + 1800) % PTS_WRAP));
    remux.cue(timeSignal((at(main.pes, 10).dts + 70 * 90_000) % PTS_WRAP));
    remux.cue(encodeSection(immediateSpliceOut(3)));
    const arrival = latest();
    const [far, immediate] = frames.slice(mark) as [FlvFrame, FlvFrame];
    expect([far.kind, immediate.kind, frames.length - mark]).toEqual(["cue", "cue", 2]);
    expect([far.timestamp, immediate.timestamp]).toEqual([arrival, arrival]);
    expect(MAX_CUE_HOLD_MS).toBeLessThan(70_000);
    expect(cueTiming(far).preRoll).toBeGreaterThan(69);
    expect(cueTiming(immediate)).toEqual({ time: arrival / 1000, preRoll: 0 });

    push(main.ts, at(main.pes, 10).packet, main.ts.length);
    const held = frames.filter((f) => f.kind === "cue")[2] as FlvFrame;
    const index = frames.indexOf(held);
    expect(frames.slice(0, index).filter((f) => f.kind !== "cue" && f.timestamp >= held.timestamp)).toEqual(
      [],
    );
    const frame40 = frames.filter((f) => f.kind === "video")[40] as FlvFrame;
    expect(held.timestamp).toBe(frame40.timestamp + 20);
    expect(videoAt(frame40.timestamp + 40)).toBeDefined();
    expect(cueTiming(held)).toEqual({ time: held.timestamp / 1000, preRoll: 0 });

    // A switch: a cue before the backup's first frame has nothing to map against and goes at once; one on the
    // backup's time base waits for it.
    remux.discontinuity();
    remux.cue(timeSignal(at(backup.pes, 30).dts + 1800));
    expect(frames.at(-1)?.kind).toBe("cue");
    push(backup.ts, 0, at(backup.pes, 5).packet);
    const count = frames.length;
    remux.cue(timeSignal(at(backup.pes, 30).dts + 1800));
    expect(frames.length).toBe(count);
    push(backup.ts, at(backup.pes, 5).packet, backup.ts.length);
    const switched = frames.filter((f) => f.kind === "cue").at(-1) as FlvFrame;
    const before = frames
      .slice(0, frames.indexOf(switched))
      .filter((f) => f.kind === "video")
      .at(-1) as FlvFrame;
    expect(switched.timestamp).toBeGreaterThan(frame40.timestamp);
    expect(switched.timestamp - before.timestamp).toBe(20);
  });
});
