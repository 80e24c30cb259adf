/**
 * Tag timestamps from 90 kHz DTS values placed where relays break: just before the 33-bit wrap, past 2^24 ms,
 * and across a switch to an input with another time base.
 */
import { describe, expect, it } from "vitest";
import { AUDIO, compositionMs, TagClock, VIDEO } from "../../../src/core/flv/timestamps.ts";
import { PTS_WRAP } from "../../../src/core/ts/index.ts";

const MS = 90;

describe("TagClock", () => {
  it("starts at 0 and follows the DTS in ms", () => {
    const clock = new TagClock();
    const start = 123_456_789;
    expect([0, 1, 2, 3].map((i) => clock.timestampMs(start + i * 40 * MS, VIDEO))).toEqual([0, 40, 80, 120]);
  });

  it("runs straight through the 33-bit wrap", () => {
    const clock = new TagClock();
    const start = PTS_WRAP - 1000 * MS;
    const times = Array.from({ length: 50 }, (_, i) =>
      clock.timestampMs((start + i * 40 * MS) % PTS_WRAP, VIDEO),
    );
    expect(times).toEqual(Array.from({ length: 50 }, (_, i) => i * 40));
    expect(clock.reanchors).toBe(1);
  });

  it("counts past 2^24 ms and past a 26.5 h wrap without a jump", () => {
    const clock = new TagClock();
    const start = PTS_WRAP - 3600 * 1000 * MS;
    let last = 0;
    // 30 hours of one-second steps: past 0xFFFFFF ms at 4 h 39 min and across the wrap an hour in.
    for (let second = 0; second <= 30 * 3600; second++) {
      last = clock.timestampMs((start + second * 1000 * MS) % PTS_WRAP, VIDEO);
      if (last !== second * 1000) throw new Error(`second ${second} gave ${last}`);
    }
    expect(last).toBe(108_000_000);
    expect(last).toBeGreaterThan(0xffffff);
    expect(clock.reanchors).toBe(1);
  });

  it("keeps audio ahead of video as the input interleaves them", () => {
    const clock = new TagClock();
    const video: number[] = [];
    const audio: number[] = [];
    for (let i = 0; i < 10; i++) {
      video.push(clock.timestampMs(1_000_000 + i * 40 * MS, VIDEO));
      audio.push(clock.timestampMs(1_000_000 + (300 + i * 40) * MS, AUDIO));
    }
    expect(audio).toEqual(Array.from({ length: 10 }, (_, i) => 300 + i * 40));
    expect(video).toEqual(Array.from({ length: 10 }, (_, i) => i * 40));
  });

  it("never goes back when a backup input with another time base takes over", () => {
    const clock = new TagClock();
    const main = 5_000_000_000;
    let video = 0;
    let audio = 0;
    for (let i = 0; i < 25; i++) {
      video = clock.timestampMs(main + i * 40 * MS, VIDEO);
      audio = clock.timestampMs(main + (i * 40 + 20) * MS, AUDIO);
    }
    expect([video, audio]).toEqual([960, 980]);
    // The backup's clock is hours behind: a step no stream makes, so a new anchor 1 ms after the latest tag.
    const backup = 90_000;
    const after = [clock.timestampMs(backup, VIDEO), clock.timestampMs(backup + 20 * MS, AUDIO)];
    expect(after).toEqual([981, 1001]);
    expect(clock.timestampMs(backup + 40 * MS, VIDEO)).toBe(1021);
    expect(clock.reanchors).toBe(2);
  });

  it("re-anchors at a signalled switch even when the new time base is near the old one", () => {
    const clock = new TagClock();
    for (let i = 0; i < 5; i++) clock.timestampMs(900_000 + i * 40 * MS, VIDEO);
    clock.discontinuity();
    // 500 ms earlier than the last frame: within the interleaving tolerance, but the switch was signalled.
    expect(clock.timestampMs(900_000 + 160 * MS - 500 * MS, VIDEO)).toBe(161);
  });

  it("re-anchors when a track's own DTS goes back, rather than stacking its frames on one timestamp", () => {
    const clock = new TagClock();
    for (let i = 0; i < 25; i++) clock.timestampMs(2_000_000 + i * 40 * MS, VIDEO);
    // The input comes back on a clock 1 s behind the slate's last frame (within the interleaving tolerance).
    const back = 2_000_000 + 24 * 40 * MS - 1000 * MS;
    const after = Array.from({ length: 5 }, (_, i) => clock.timestampMs(back + i * 40 * MS, VIDEO));
    expect(after).toEqual([961, 1001, 1041, 1081, 1121]);
    expect(clock.reanchors).toBe(2);
  });

  it("holds audio older than the first video frame at 0", () => {
    const clock = new TagClock();
    expect(clock.timestampMs(1000 * MS, VIDEO)).toBe(0);
    expect(clock.timestampMs(900 * MS, AUDIO)).toBe(0);
    expect(clock.timestampMs(1023 * MS, AUDIO)).toBe(23);
  });

  it("holds a track at its last time rather than step back", () => {
    const clock = new TagClock();
    expect(clock.timestampMs(100 * MS, VIDEO)).toBe(0);
    expect(clock.timestampMs(140 * MS, VIDEO)).toBe(40);
    expect(clock.timestampMs(120 * MS, VIDEO)).toBe(40);
    expect(clock.timestampMs(180 * MS, VIDEO)).toBe(80);
  });
});

describe("TagClock.spliceMs", () => {
  it("maps a splice PTS as the next DTS would be: across the wrap, and after a switch on the new time base", () => {
    const clock = new TagClock();
    expect(clock.spliceMs(1000)).toBeNull();
    const start = PTS_WRAP - 100 * MS;
    expect(clock.timestampMs(start, VIDEO)).toBe(0);
    expect(clock.timestampMs(start + 40 * MS, VIDEO)).toBe(40);
    // 1.5 s after that frame, past the wrap; and 300 ms before it.
    expect(clock.spliceMs((start + 1540 * MS) % PTS_WRAP)).toBe(1540);
    expect(clock.spliceMs(start - 260 * MS)).toBe(-260);
    expect(clock.timestampMs(start + 80 * MS, VIDEO)).toBe(80);
    // A switch: nothing to map against until the new input's first DTS, then its own time base.
    clock.discontinuity();
    expect(clock.spliceMs(5000 * MS)).toBeNull();
    expect(clock.timestampMs(4000 * MS, VIDEO)).toBe(81);
    expect(clock.spliceMs(5000 * MS)).toBe(1081);
  });
});

describe("compositionMs", () => {
  it("is signed and takes the short way across the wrap", () => {
    expect(compositionMs(1000 * MS, 1000 * MS)).toBe(0);
    expect(compositionMs(1080 * MS, 1000 * MS)).toBe(80);
    expect(compositionMs(1000 * MS - 3060, 1000 * MS)).toBe(-34);
    expect(compositionMs((PTS_WRAP - 20 * MS + 100 * MS) % PTS_WRAP, PTS_WRAP - 20 * MS)).toBe(100);
    expect(compositionMs(PTS_WRAP - 34 * MS, 0)).toBe(-34);
  });
});
