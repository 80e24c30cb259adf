import { describe, expect, it } from "vitest";
import { FecCore, FecStatus } from "../../src/core/redundancy-core.ts";
import { encodeFec } from "../support/fec.ts";
import { prng, RtpWrapper, TsGenerator } from "../support/ts-generator.ts";

const media = (count: number, firstSequence = 0): Uint8Array[] => {
  const generator = new TsGenerator({ seed: 5 });
  const rtp = new RtpWrapper({ sequence: firstSequence, ssrc: 0x2022_0001 });
  // Varying lengths and markers exercise the length and bit recovery.
  return Array.from({ length: count }, (_, i) => {
    const packet = rtp.wrap(generator.datagram(1 + (i % 7)), i * 90);
    if (i % 5 === 0) packet[1] = (packet[1] ?? 0) | 0x80;
    return packet;
  });
};

/** Feeds the schedule minus the lost media; returns every rebuilt datagram by sequence number. */
const run = (
  core: FecCore,
  schedule: ReturnType<typeof encodeFec>["schedule"],
  lost: ReadonlySet<number>,
) => {
  const rebuilt = new Map<number, Uint8Array>();
  for (const item of schedule) {
    if (item.stream === "media" && lost.has(item.index)) continue;
    const count = item.stream === "media" ? core.media(item.datagram) : core.fec(item.datagram);
    expect(count).toBeGreaterThanOrEqual(0);
    for (let i = 0; i < count; i++) {
      const datagram = core.recovered(i);
      rebuilt.set(((datagram[2] ?? 0) << 8) | (datagram[3] ?? 0), datagram.slice());
    }
  }
  return rebuilt;
};

describe("2022-1 FEC core", () => {
  it("recovers 1% random loss completely with L=10, D=10 column and row FEC", () => {
    const packets = media(5000, 65_000);
    const { schedule } = encodeFec(packets, 10, 10);
    const random = prng(2022);
    const lost = new Set(packets.flatMap((_, i) => (random() < 0.01 ? [i] : [])));
    expect(lost.size).toBeGreaterThan(30);
    const core = FecCore.load();
    const pages = core.memoryBytes;
    const rebuilt = run(core, schedule, lost);
    for (const index of lost) {
      expect(rebuilt.get((65_000 + index) & 0xffff), `packet ${index}`).toEqual(packets[index]);
    }
    expect(core.snapshot()).toMatchObject({
      recovered: lost.size,
      unrecoverable: 0,
      columnPackets: 500,
      rowPackets: 500,
      malformedFec: 0,
    });
    expect(core.memoryBytes).toBe(pages);
  });

  it("column FEC alone rebuilds a burst as long as a row", () => {
    const packets = media(200);
    const { schedule } = encodeFec(packets, 10, 10);
    const lost = new Set([33, 34, 35, 36, 37, 38, 39, 40, 41, 42]);
    const core = FecCore.load();
    const rebuilt = run(
      core,
      schedule.filter((item) => item.stream !== "row"),
      lost,
    );
    expect([...rebuilt.keys()].sort((a, b) => a - b)).toEqual([...lost]);
    for (const index of lost) expect(rebuilt.get(index)).toEqual(packets[index]);
  });

  it("counts a loss pattern no FEC packet can undo as unrecoverable", () => {
    const packets = media(400);
    const { schedule } = encodeFec(packets, 10, 10);
    // A 2×2 square: two losses in each of two rows and each of two columns.
    const lost = new Set([11, 12, 21, 22]);
    const core = FecCore.load();
    const rebuilt = run(core, schedule, lost);
    expect(rebuilt.size).toBe(0);
    expect(core.snapshot()).toMatchObject({ recovered: 0, unrecoverable: 4 });
  });

  it("counts only rebuilds that fill a real gap when FEC is read before the media datagram of the same moment", () => {
    // The service may read the FEC sockets before the media socket: each FEC packet then arrives before the
    // last media datagram it protects, which it rebuilds although that datagram is on its way.
    const packets = media(2000, 65_000);
    const { schedule } = encodeFec(packets, 10, 10);
    const fecFirst: Array<(typeof schedule)[number]> = [];
    let held: (typeof schedule)[number] | undefined;
    for (const item of schedule) {
      if (item.stream === "media") {
        if (held !== undefined) fecFirst.push(held);
        held = item;
      } else fecFirst.push(item);
    }
    if (held !== undefined) fecFirst.push(held);

    const clean = FecCore.load();
    run(clean, fecFirst, new Set());
    expect(clean.snapshot(), "nothing was lost").toMatchObject({ recovered: 0, unrecoverable: 0 });

    const random = prng(2023);
    // The last datagram stays: nothing after a lost one would tell the decoder it was not merely late.
    const lost = new Set(packets.flatMap((_, i) => (i < packets.length - 1 && random() < 0.01 ? [i] : [])));
    expect(lost.size).toBeGreaterThan(10);
    const lossy = FecCore.load();
    const rebuilt = run(lossy, fecFirst, lost);
    for (const index of lost) {
      expect(rebuilt.get((65_000 + index) & 0xffff), `packet ${index}`).toEqual(packets[index]);
    }
    expect(lossy.snapshot(), "each lost datagram once").toMatchObject({
      recovered: lost.size,
      unrecoverable: 0,
    });
  });

  it("refuses malformed FEC packets with a status code and keeps going", () => {
    const packets = media(100);
    const { fec } = encodeFec(packets, 10, 10);
    const row = fec.find((packet) => packet.kind === "row")?.datagram ?? new Uint8Array(0);
    const core = FecCore.load();
    expect(core.fec(row.subarray(0, 20))).toBe(FecStatus.MalformedFec);
    const wrongType = row.slice();
    wrongType[24] = 0x40 | (1 << 3);
    expect(core.fec(wrongType)).toBe(FecStatus.MalformedFec);
    const noCount = row.slice();
    noCount[26] = 0;
    expect(core.fec(noCount)).toBe(FecStatus.MalformedFec);
    expect(core.fec(new Uint8Array(5000))).toBe(FecStatus.TooLong);
    expect(core.media(new TsGenerator().datagram())).toBe(FecStatus.NotRtp);
    expect(core.snapshot()).toMatchObject({ malformedFec: 3, tooLong: 1, notRtp: 1 });
    const rebuilt = run(core, encodeFec(packets, 10, 10).schedule, new Set([5]));
    expect(rebuilt.get(5)).toEqual(packets[5]);
  });
});

describe("2022-1 FEC core robustness", () => {
  it("takes mutated media and FEC datagrams without throwing or growing", () => {
    const packets = media(300);
    const { schedule } = encodeFec(packets, 10, 10);
    const random = prng(404);
    const core = FecCore.load();
    const pages = core.memoryBytes;
    for (let round = 0; round < 20_000; round++) {
      const item = schedule[(random() * schedule.length) | 0];
      if (item === undefined) continue;
      const datagram = item.datagram.slice(0, 1 + ((random() * item.datagram.length) | 0));
      for (let flips = (random() * 4) | 0; flips > 0; flips--)
        datagram[(random() * datagram.length) | 0] = (random() * 256) | 0;
      const count = random() < 0.5 ? core.media(datagram) : core.fec(datagram);
      for (let i = 0; i < count; i++) expect(core.recovered(i).length).toBeLessThanOrEqual(2048);
    }
    expect(core.memoryBytes).toBe(pages);
  });
});
