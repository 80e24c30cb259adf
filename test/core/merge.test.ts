import { describe, expect, it } from "vitest";
import { MergeCore, MergeInsert } from "../../src/core/redundancy-core.ts";
import { prng, RtpWrapper, rtpPacket, TsGenerator } from "../support/ts-generator.ts";

const WINDOW = 200;

const stream = (count: number, firstSequence = 0): Uint8Array[] => {
  const generator = new TsGenerator({ seed: 3 });
  const rtp = new RtpWrapper({ sequence: firstSequence });
  return Array.from({ length: count }, (_, i) => rtp.wrap(generator.datagram(), i * 90));
};

const nth = <T>(items: ReadonlyArray<T>, index: number): T => {
  const item = items[index];
  if (item === undefined) throw new Error(`no item ${index}`);
  return item;
};

const sequenceOf = (datagram: Uint8Array) => ((datagram[2] ?? 0) << 8) | (datagram[3] ?? 0);

const releaseAll = (core: MergeCore, nowMs: number, windowMs = WINDOW): Uint8Array[] => {
  const out: Uint8Array[] = [];
  for (
    let datagram = core.release(nowMs, windowMs);
    datagram !== null;
    datagram = core.release(nowMs, windowMs)
  )
    out.push(datagram.slice());
  return out;
};

describe("2022-7 merge core", () => {
  it("merges two lossy paths into one stream: first copies, in order, only double losses skipped", () => {
    const packets = stream(4000, 60_000); // wraps the 16-bit sequence
    const random = prng(11);
    const lostA = new Set<number>();
    const lostB = new Set<number>();
    for (let i = 0; i < packets.length; i++) {
      if (random() < 0.05) lostA.add(i);
      if (random() < 0.05) lostB.add(i);
    }
    const core = MergeCore.load();
    const pages = core.memoryBytes;
    const out: Uint8Array[] = [];
    // Path B runs 30 packets (30 ms) behind path A.
    for (let tick = 0; tick < packets.length + 30; tick++) {
      const a = packets[tick];
      const b = packets[tick - 30];
      if (a !== undefined && !lostA.has(tick)) core.insert(a, 0, tick);
      if (b !== undefined && !lostB.has(tick - 30)) core.insert(b, 1, tick);
      out.push(...releaseAll(core, tick));
    }
    out.push(...releaseAll(core, packets.length + 30 + WINDOW));
    const both = packets.flatMap((packet, i) => (lostA.has(i) && lostB.has(i) ? [] : [packet]));
    expect(both.length).toBeLessThan(packets.length);
    expect(out.length).toBe(both.length);
    expect(Buffer.compare(Buffer.concat(out), Buffer.concat(both))).toBe(0);
    const snapshot = core.snapshot();
    expect(snapshot.skipped).toBe(packets.length - both.length);
    expect(nth(snapshot.firstCopies, 0) + nth(snapshot.firstCopies, 1)).toBe(both.length);
    expect(snapshot.duplicates).toBe(
      nth(snapshot.received, 0) + nth(snapshot.received, 1) - both.length - snapshot.late,
    );
    expect(core.memoryBytes).toBe(pages);
  });

  it("holds a gap for the window, then gives it up; a copy that comes later is late", () => {
    const packets = stream(4);
    const p = (i: number) => nth(packets, i);
    const core = MergeCore.load();
    expect(core.insert(p(0), 0, 0)).toBe(MergeInsert.Stored);
    expect(core.insert(p(2), 0, 10)).toBe(MergeInsert.Stored);
    expect(releaseAll(core, 10).map(sequenceOf)).toEqual([0]);
    expect(releaseAll(core, 10 + WINDOW - 1)).toEqual([]);
    expect(core.insert(p(3), 0, 20)).toBe(MergeInsert.Stored);
    expect(releaseAll(core, 10 + WINDOW).map(sequenceOf)).toEqual([2, 3]);
    expect(core.insert(p(1), 1, 300)).toBe(MergeInsert.Late);
    expect(core.insert(p(2), 1, 300)).toBe(MergeInsert.Duplicate);
    expect(core.snapshot()).toMatchObject({ released: 3, skipped: 1, late: 1, duplicates: 1 });
  });

  it("a late copy within the window fills the gap in order", () => {
    const packets = stream(3);
    const p = (i: number) => nth(packets, i);
    const core = MergeCore.load();
    core.insert(p(0), 0, 0);
    core.insert(p(2), 0, 1);
    expect(releaseAll(core, 1).map(sequenceOf)).toEqual([0]);
    expect(core.insert(p(1), 1, 150)).toBe(MergeInsert.Stored);
    expect(releaseAll(core, 150).map(sequenceOf)).toEqual([1, 2]);
    expect(core.insert(p(1), 0, 160)).toBe(MergeInsert.Duplicate);
  });

  it("makes room when a packet runs past the buffer, and follows a sender that restarts", () => {
    const packets = stream(2);
    const core = MergeCore.load();
    core.insert(nth(packets, 0), 0, 0);
    core.insert(rtpPacket(new Uint8Array(188), { sequence: 2 }), 0, 0);
    const far = rtpPacket(new Uint8Array(188), { sequence: 5000 });
    expect(core.insert(far, 0, 1)).toBe(MergeInsert.Ahead);
    expect(releaseAll(core, 1, -1).map(sequenceOf)).toEqual([0, 2]);
    expect(core.insert(far, 0, 1)).toBe(MergeInsert.Stored);
    expect(releaseAll(core, 1).map(sequenceOf)).toEqual([5000]);
    expect(core.snapshot()).toMatchObject({ resyncs: 1, skipped: 1 });
  });

  it("refuses what is not RTP or does not fit a slot, with a status code", () => {
    const core = MergeCore.load();
    expect(core.insert(new TsGenerator().datagram(), 0, 0)).toBe(MergeInsert.NotRtp);
    expect(core.insert(new Uint8Array(4), 0, 0)).toBe(MergeInsert.NotRtp);
    expect(core.insert(new Uint8Array(3000).fill(0x80), 0, 0)).toBe(MergeInsert.TooLong);
    expect(core.release(0, WINDOW)).toBeNull();
    expect(core.snapshot()).toMatchObject({ notRtp: 2, tooLong: 1, released: 0 });
  });
});

describe("2022-7 merge core robustness", () => {
  it("takes random sequence numbers, lengths and paths without throwing, hanging or growing", () => {
    const random = prng(77);
    const core = MergeCore.load();
    const pages = core.memoryBytes;
    const payload = new TsGenerator().datagram();
    let released = 0;
    for (let round = 0; round < 50_000; round++) {
      const sequence = random() < 0.9 ? round & 0xffff : (random() * 0x10000) | 0;
      const datagram = rtpPacket(payload.subarray(0, ((random() * 8) | 0) * 188), { sequence });
      let status = core.insert(datagram, (random() * 4) | 0, round);
      while (status === MergeInsert.Ahead) {
        if (core.release(round, -1) !== null) released++;
        status = core.insert(datagram, 0, round);
      }
      released += releaseAll(core, round, random() * WINDOW).length;
    }
    expect(released).toBe(core.snapshot().released);
    expect(core.memoryBytes).toBe(pages);
  });
});
