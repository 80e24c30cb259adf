import { readFileSync } from "node:fs";
import { Either } from "effect";
import { describe, expect, it } from "vitest";
import { decodeSection, parseCueText } from "../../src/core/scte35/index.ts";
import { crc32Mpeg2 } from "../../src/core/ts/crc32.ts";
import { cueVerdict } from "../../src/core/ts-policy/cue-verdict.ts";
import { moveBridges, untouchedRoute } from "../../src/core/ts-policy/move-bridges.ts";
import { makePolicyRewriter } from "../../src/core/ts-policy/rewriter.ts";
import type { OutputPolicy } from "../../src/domain/channel/output-policy-schema.ts";
import { fixturePath } from "../support/fixtures.ts";
import {
  buildPat,
  buildPmt,
  CUEI_REGISTRATION,
  concat,
  packetizeSections,
  STREAM_TYPE_AAC,
  STREAM_TYPE_H264,
  STREAM_TYPE_SCTE35,
  spliceNull,
  TsGenerator,
  timeSignal,
  tsPacket,
} from "../support/ts-generator.ts";

const P = 188;
const vectors: ReadonlyArray<{ readonly id: string; readonly encoded: string }> = JSON.parse(
  readFileSync(fixturePath("scte35", "vectors.json"), "utf8"),
);
/** A third-party vector's section bytes (see test/fixtures/PROVENANCE.md). */
const vector = (id: string): Uint8Array => {
  const found = vectors.find((v) => v.id === id);
  if (found === undefined) throw new Error(`no vector ${id}`);
  return Either.getOrThrow(parseCueText(found.encoded));
};
// v001: time_signal, type 0x34, delivery restricted, web not allowed, no regional blackout (SCTE 35 §14.1).
// v003: type 0x35, restricted, web allowed. v051: type 0x35, not restricted. v022: type 0x37, not restricted.
// v044: type 0x10, not restricted. v089: splice_schedule, a cancel, 0x10, and 0x34 with a regional blackout.
// v002: splice_insert. v030: five descriptors (0x23, 0x11, 0x10, 0x22, 0x05), 202 bytes: two packets.

const packetsOf = (ts: Uint8Array): Uint8Array[] => {
  const out: Uint8Array[] = [];
  for (let at = 0; at + P <= ts.length; at += P) out.push(ts.subarray(at, at + P));
  return out;
};
const pidOf = (packet: Uint8Array) => (((packet[1] ?? 0) & 0x1f) << 8) | (packet[2] ?? 0);
const pidsOf = (ts: Uint8Array) => new Set(packetsOf(ts).map(pidOf));

/** Runs `ts` through a rewriter for `policy` in chunks of 7 packets; copies what comes out. */
const run = (policy: OutputPolicy, ts: Uint8Array, chunkPackets = 7) => {
  const rewriter = makePolicyRewriter(policy);
  const cues: Array<{ pid: number; section: Uint8Array; kept: boolean; rule: string | null }> = [];
  rewriter.onCue = (pid, section, verdict) =>
    cues.push({ pid, section, kept: verdict.kept, rule: verdict.rule });
  const parts: Uint8Array[] = [];
  for (let at = 0; at < ts.length; at += chunkPackets * P) {
    const out = rewriter.push(ts.subarray(at, Math.min(ts.length, at + chunkPackets * P)));
    if (out !== null) parts.push(out.slice());
  }
  return { out: concat(parts), rewriter, cues };
};

/** A section reader written apart from the rewriter's: every complete section per PID, in order. */
const sectionsOn = (ts: Uint8Array, pid: number): Uint8Array[] => {
  const sections: Uint8Array[] = [];
  let buffer: number[] | null = null;
  const drain = () => {
    while (buffer !== null && buffer.length >= 3) {
      if (buffer[0] === 0xff) {
        buffer = null;
        return;
      }
      const length = 3 + (((buffer[1] ?? 0) & 0x0f) << 8) + (buffer[2] ?? 0);
      if (buffer.length < length) return;
      sections.push(Uint8Array.from(buffer.slice(0, length)));
      buffer = buffer.slice(length);
    }
  };
  for (const packet of packetsOf(ts)) {
    if (pidOf(packet) !== pid || ((packet[3] ?? 0) & 0x10) === 0) continue;
    let at = ((packet[3] ?? 0) & 0x20) !== 0 ? 5 + (packet[4] ?? 0) : 4;
    if (((packet[1] ?? 0) & 0x40) !== 0) {
      const pointer = packet[at] ?? 0;
      at++;
      if (buffer !== null) buffer.push(...packet.subarray(at, at + pointer));
      drain();
      buffer = [...packet.subarray(at + pointer)];
      drain();
    } else if (buffer !== null) {
      buffer.push(...packet.subarray(at));
      drain();
    }
  }
  return sections;
};

/** An adaptation-only packet whose discontinuity_indicator flags a jump of its PID's counter. */
const isBridge = (p: Uint8Array) =>
  (((p[3] ?? 0) >> 4) & 3) === 2 && (p[4] ?? 0) === 183 && ((p[5] ?? 0) & 0x80) !== 0;

/**
 * Every PID's continuity counters in `ts` follow on (ISO/IEC 13818-1 §2.4.3.3), or a bridge flags the jump, as
 * a receiver counts them: the PIDs that break, if any.
 */
const ccBreaks = (ts: Uint8Array): string[] => {
  const last = new Map<number, number>();
  const breaks: string[] = [];
  packetsOf(ts).forEach((packet, index) => {
    const pid = pidOf(packet);
    if (pid === 0x1fff) return;
    const cc = (packet[3] ?? 0) & 0x0f;
    const hasPayload = ((packet[3] ?? 0) & 0x10) !== 0;
    const before = last.get(pid);
    if (before !== undefined && !isBridge(packet) && cc !== (hasPayload ? (before + 1) & 0x0f : before))
      breaks.push(`PID ${pid} at packet ${index}: ${before} then ${cc}`);
    last.set(pid, cc);
  });
  return breaks;
};

interface PmtRead {
  readonly pcrPid: number;
  readonly version: number;
  readonly programInfo: Uint8Array;
  readonly streams: ReadonlyArray<{ readonly type: number; readonly pid: number }>;
}
const readPmt = (section: Uint8Array): PmtRead => {
  expect(crc32Mpeg2(section)).toBe(0);
  const infoLength = (((section[10] ?? 0) & 0x0f) << 8) | (section[11] ?? 0);
  const streams: Array<{ type: number; pid: number }> = [];
  for (let at = 12 + infoLength; at < section.length - 4; ) {
    streams.push({
      type: section[at] ?? 0,
      pid: (((section[at + 1] ?? 0) & 0x1f) << 8) | (section[at + 2] ?? 0),
    });
    at += 5 + ((((section[at + 3] ?? 0) & 0x0f) << 8) | (section[at + 4] ?? 0));
  }
  return {
    pcrPid: (((section[8] ?? 0) & 0x1f) << 8) | (section[9] ?? 0),
    version: ((section[5] ?? 0) >> 1) & 0x1f,
    programInfo: section.subarray(12, 12 + infoLength),
    streams,
  };
};
const readPat = (section: Uint8Array) => {
  expect(crc32Mpeg2(section)).toBe(0);
  const programs: Array<{ program: number; pid: number }> = [];
  for (let at = 8; at < section.length - 4; at += 4)
    programs.push({
      program: ((section[at] ?? 0) << 8) | (section[at + 1] ?? 0),
      pid: (((section[at + 2] ?? 0) & 0x1f) << 8) | (section[at + 3] ?? 0),
    });
  return programs;
};

/** A generated channel (video 0x100 with the PCR, audio 0x101, SCTE-35 0x1f0, PMT 0x1000) carrying `cues`. */
const channel = (cues: ReadonlyArray<Uint8Array>, packets = 3000) => {
  const generator = new TsGenerator({ psiIntervalMs: 20 });
  cues.forEach((cue, i) => {
    generator.insertScte35(cue, 10 + i * 15);
  });
  return { generator, ts: generator.packets(packets) };
};

const cuesOut = (ts: Uint8Array) => sectionsOn(ts, 0x1f0);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("scte35: strip", () => {
  it("drops the SCTE-35 PID and its PMT entry, keeps the CUEI registration and every other packet byte for byte", () => {
    const { generator, ts } = channel([vector("v001"), spliceNull()]);
    const { out, cues, rewriter } = run({ scte35: "strip" }, ts);
    expect(pidsOf(out)).toEqual(new Set([0, 0x1000, 0x100, 0x101]));
    const pmts = sectionsOn(out, 0x1000);
    expect(pmts.length).toBeGreaterThan(10);
    for (const section of pmts) {
      const pmt = readPmt(section);
      expect(pmt.streams).toEqual([
        { type: STREAM_TYPE_H264, pid: 0x100 },
        { type: STREAM_TYPE_AAC, pid: 0x101 },
      ]);
      expect(hex(pmt.programInfo)).toBe(hex(CUEI_REGISTRATION));
    }
    // Apart from the PMT and the SCTE-35 PID, the output is the input, packet for packet.
    const others = (t: Uint8Array) =>
      packetsOf(t)
        .filter((p) => pidOf(p) !== 0x1000 && pidOf(p) !== 0x1f0)
        .map(hex);
    expect(others(out)).toEqual(others(ts));
    expect(packetsOf(out).filter((p) => pidOf(p) === 0x1000).length).toBe(
      packetsOf(ts).filter((p) => pidOf(p) === 0x1000).length,
    );
    expect(ccBreaks(out)).toEqual([]);
    expect(cues.map((c) => [c.kept, c.rule])).toEqual([
      [false, "strip"],
      [false, "strip"],
    ]);
    expect(rewriter.counts.cuesWithheld).toBe(2);
    expect(rewriter.counts.packetsDropped).toBe(packetsOf(ts).filter((p) => pidOf(p) === 0x1f0).length);
    expect(rewriter.problems()).toEqual([]);
    expect(generator.scte35Pid).toBe(0x1f0);
  });

  it("returns the chunk itself when none of its packets changes", () => {
    const { ts } = channel([], 400);
    const rewriter = makePolicyRewriter({ scte35: "strip" });
    rewriter.push(ts.subarray(0, 20 * P));
    const video = packetsOf(ts).filter((p) => pidOf(p) === 0x100);
    const chunk = concat(video.slice(0, 7));
    expect(rewriter.push(chunk)).toBe(chunk);
  });
});

describe("scte35: filters", () => {
  it("segmentation_types keeps exactly the cues of those types, byte for byte", () => {
    const input = ["v001", "v051", "v022", "v044", "v003"].map(vector);
    const { ts } = channel([...input, spliceNull()]);
    const { out, cues } = run({ scte35: { segmentation_types: [0x34, 0x35] } }, ts);
    expect(cuesOut(out).map(hex)).toEqual(["v001", "v051", "v003"].map((id) => hex(vector(id))));
    for (const section of cuesOut(out)) expect(Either.isRight(decodeSection(section))).toBe(true);
    expect(cues.map((c) => c.kept)).toEqual([true, true, false, false, true, false]);
    expect(cues[2]?.rule).toBe("segmentation type 0x37 is not in segmentation_types");
    expect(ccBreaks(out)).toEqual([]);
    expect(packetsOf(out).length).toBe(packetsOf(ts).length);
    // The PMT is untouched: the SCTE-35 PID is still announced.
    expect(sectionsOn(out, 0x1000).map(hex)).toEqual(sectionsOn(ts, 0x1000).map(hex));
  });

  it("drop_web_delivery_restricted drops only the cues restricting delivery without web delivery", () => {
    const { ts } = channel(["v001", "v003", "v051", "v089"].map(vector));
    const { out, cues } = run({ scte35: { drop_web_delivery_restricted: true } }, ts);
    expect(cuesOut(out).map(hex)).toEqual(["v003", "v051", "v089"].map((id) => hex(vector(id))));
    expect(cues[0]?.rule).toBe("web delivery not allowed");
    expect(ccBreaks(out)).toEqual([]);
  });

  it("drop_regional_blackout drops only the cues with a regional blackout", () => {
    const { ts } = channel(["v001", "v003", "v051", "v089"].map(vector));
    const { out, cues } = run({ scte35: { drop_regional_blackout: true } }, ts);
    expect(cuesOut(out).map(hex)).toEqual(["v001", "v003", "v051"].map((id) => hex(vector(id))));
    expect(cues[3]).toMatchObject({ kept: false, rule: "regional blackout" });
  });

  it("drop_commands drops the named commands only", () => {
    const { ts } = channel([spliceNull(), timeSignal(900_000), vector("v002"), vector("v089")]);
    const { out, rewriter } = run({ scte35: { drop_commands: ["splice_null", "time_signal"] } }, ts);
    expect(cuesOut(out).map(hex)).toEqual([hex(vector("v002")), hex(vector("v089"))]);
    expect(rewriter.counts.cuesWithheld).toBe(2);
    expect(ccBreaks(out)).toEqual([]);
  });

  it("keeps a cue split over two packets byte for byte when a dropped one shares its packets", () => {
    const pmt = buildPmt({
      program: 1,
      pcrPid: 0x100,
      programInfo: CUEI_REGISTRATION,
      streams: [
        { streamType: STREAM_TYPE_H264, pid: 0x100 },
        { streamType: STREAM_TYPE_SCTE35, pid: 0x1f0 },
      ],
    });
    const big = vector("v030");
    expect(big.length).toBeGreaterThan(183);
    // splice_null, then the big cue straddling packets 1 and 2, then another splice_null in packet 2.
    const cuePackets = packetizeSections(0x1f0, [spliceNull(), big, spliceNull()], 5);
    expect(cuePackets.length).toBe(2);
    const ts = concat([
      ...packetizeSections(0, [buildPat({ programs: [{ program: 1, pmtPid: 0x1000 }] })]),
      ...packetizeSections(0x1000, [pmt]),
      ...cuePackets,
      tsPacket({ pid: 0x100, cc: 0, payload: new Uint8Array(184) }),
    ]);
    for (const chunkPackets of [1, 7]) {
      const { out, cues } = run({ scte35: { drop_commands: ["splice_null"] } }, ts, chunkPackets);
      expect(cues.map((c) => c.kept)).toEqual([false, true, false]);
      expect(cuesOut(out).map(hex)).toEqual([hex(big)]);
      const outCue = packetsOf(out).filter((p) => pidOf(p) === 0x1f0);
      expect(outCue.map((p) => (p[3] ?? 0) & 0x0f)).toEqual([5, 6]);
    }
  });

  it("verdicts: undecodable cues are kept under pass only", () => {
    const broken = vector("v001").slice();
    broken[20] = (broken[20] ?? 0) ^ 0xff;
    expect(cueVerdict("pass", broken)).toEqual({ kept: true, rule: null });
    expect(cueVerdict("strip", vector("v001"))).toEqual({ kept: false, rule: "strip" });
    expect(cueVerdict({ drop_regional_blackout: true }, broken)).toEqual({
      kept: false,
      rule: "undecodable",
    });
    expect(cueVerdict({ segmentation_types: [0x10] }, vector("v089")).kept).toBe(true);
    expect(cueVerdict({ segmentation_types: [0x34] }, vector("v002")).kept).toBe(false);
  });
});

describe("remap", () => {
  it("moves a PID and the PMT follows", () => {
    const { ts } = channel([vector("v001")], 800);
    const { out, rewriter } = run({ remap: { "256": 0x300 } }, ts);
    expect(pidsOf(out)).toEqual(new Set([0, 0x1000, 0x300, 0x101, 0x1f0]));
    expect(packetsOf(out).filter((p) => pidOf(p) === 0x300).length).toBe(
      packetsOf(ts).filter((p) => pidOf(p) === 0x100).length,
    );
    const pmt = readPmt(sectionsOn(out, 0x1000)[0] as Uint8Array);
    expect(pmt.pcrPid).toBe(0x300);
    expect(pmt.streams.map((s) => s.pid)).toEqual([0x300, 0x101, 0x1f0]);
    expect(ccBreaks(out)).toEqual([]);
    expect(rewriter.problems()).toEqual([]);
  });

  it("does not make two PIDs one, and says so", () => {
    const { ts } = channel([], 800);
    const { out, rewriter } = run({ remap: { "256": 0x101 } }, ts);
    expect(hex(out)).toBe(hex(ts));
    expect(rewriter.problems()).toEqual([
      "remap: PID 0x0100 (256) would become 0x0101 (257), which the input already carries: left as it is",
    ]);
  });
});

describe("pids", () => {
  it("keep: only those PIDs, the PAT and the PMT listing them", () => {
    const { ts } = channel([vector("v001")], 800);
    const { out, rewriter } = run({ pids: { keep: [0x100, 0x300] } }, ts);
    expect(pidsOf(out)).toEqual(new Set([0, 0x1000, 0x100]));
    expect(readPmt(sectionsOn(out, 0x1000)[0] as Uint8Array).streams).toEqual([
      { type: STREAM_TYPE_H264, pid: 0x100 },
    ]);
    expect(rewriter.problems()).toEqual(["pids.keep: PID 0x0300 (768) is not in the input"]);
    expect(ccBreaks(out)).toEqual([]);
  });

  it("drop: all but those; the PCR PID stays", () => {
    const { ts } = channel([vector("v001")], 800);
    const { out, rewriter } = run({ pids: { drop: [0x101, 0x100] } }, ts);
    expect(pidsOf(out)).toEqual(new Set([0, 0x1000, 0x100, 0x1f0]));
    expect(readPmt(sectionsOn(out, 0x1000)[0] as Uint8Array).streams.map((s) => s.pid)).toEqual([
      0x100, 0x1f0,
    ]);
    expect(rewriter.problems()).toEqual(["PID 0x0100 (256) carries programme 1's PCR: kept"]);
  });

  it("a PMT named in drop or remap goes out as ever, and the output's problems say why", () => {
    const { ts } = channel([vector("v001")], 800);
    const dropped = run({ pids: { drop: [0x1000] } }, ts);
    expect(hex(dropped.out)).toBe(hex(ts));
    expect(dropped.rewriter.problems()).toEqual([
      `pids.drop: PID 0x1000 (4096) is programme 1's PMT, which always stays: drop its streams, or keep another programme with "program"`,
    ]);
    const moved = run({ remap: { "4096": 0x1100 } }, ts);
    expect(hex(moved.out)).toBe(hex(ts));
    expect(moved.rewriter.problems()).toEqual([
      "remap: PID 0x1000 (4096) is programme 1's PMT, which is never remapped: left as it is",
    ]);
  });
});

/** Two programmes: 1 (PMT 0x1000, video 0x100 with PCR, audio 0x101) and 2 (PMT 0x1100, 0x200, 0x201), an SDT. */
const twoProgrammes = (): Uint8Array => {
  const pat = buildPat({
    programs: [
      { program: 0, pmtPid: 0x10 },
      { program: 1, pmtPid: 0x1000 },
      { program: 2, pmtPid: 0x1100 },
    ],
  });
  const pmt = (program: number, base: number) =>
    buildPmt({
      program,
      pcrPid: base,
      streams: [
        { streamType: STREAM_TYPE_H264, pid: base },
        { streamType: STREAM_TYPE_AAC, pid: base + 1 },
      ],
    });
  const cc = new Map<number, number>();
  const next = (pid: number) => {
    const value = ((cc.get(pid) ?? -1) + 1) & 0x0f;
    cc.set(pid, value);
    return value;
  };
  const packets: Uint8Array[] = [];
  for (let round = 0; round < 40; round++) {
    for (const [pid, section] of [
      [0, pat],
      [0x1000, pmt(1, 0x100)],
      [0x1100, pmt(2, 0x200)],
    ] as const)
      packets.push(...packetizeSections(pid, [section], next(pid)));
    for (const pid of [0x100, 0x101, 0x200, 0x201, 0x11, 0x1fff])
      packets.push(tsPacket({ pid, cc: next(pid), payload: new Uint8Array(184).fill(round) }));
  }
  return concat(packets);
};

describe("program", () => {
  it("takes one programme out of two: a PAT naming it alone, its PMT and PIDs", () => {
    const ts = twoProgrammes();
    const { out, rewriter } = run({ program: 2 }, ts);
    expect(pidsOf(out)).toEqual(new Set([0, 0x1100, 0x200, 0x201]));
    for (const section of sectionsOn(out, 0)) expect(readPat(section)).toEqual([{ program: 2, pid: 0x1100 }]);
    expect(sectionsOn(out, 0x1100).map(hex)).toEqual(sectionsOn(ts, 0x1100).map(hex));
    expect(ccBreaks(out)).toEqual([]);
    expect(rewriter.problems()).toEqual([]);
  });

  it("an unknown programme: nothing goes out, and the problem names the programmes carried", () => {
    const { out, rewriter } = run({ program: 3 }, twoProgrammes());
    expect(out.length).toBe(0);
    expect(rewriter.problems()).toEqual(["programme 3 is not in the input (it carries 1, 2)"]);
  });
});

describe("version numbers", () => {
  it("the same content gets the same version; changed content a different one", () => {
    const { ts } = channel([], 400);
    const versions = (policy: OutputPolicy, input: Uint8Array) =>
      sectionsOn(run(policy, input).out, 0x1000).map((s) => readPmt(s).version);
    const first = versions({ scte35: "strip" }, ts);
    expect(new Set(first).size).toBe(1);
    expect(versions({ scte35: "strip" }, ts)).toEqual(first);

    // The input's PMT changes (a second audio PID): the rewritten one changes too, so must its version.
    const pmtB = buildPmt({
      program: 1,
      version: 1,
      pcrPid: 0x100,
      programInfo: CUEI_REGISTRATION,
      streams: [
        { streamType: STREAM_TYPE_H264, pid: 0x100 },
        { streamType: STREAM_TYPE_AAC, pid: 0x101 },
        { streamType: STREAM_TYPE_AAC, pid: 0x102 },
        { streamType: STREAM_TYPE_SCTE35, pid: 0x1f0 },
      ],
    });
    const changed = concat([ts, ...packetizeSections(0x1000, [pmtB], 0), ts]);
    const all = sectionsOn(run({ scte35: "strip" }, changed).out, 0x1000).map(readPmt);
    const b = all.find((p) => p.streams.length === 3) as PmtRead;
    expect(b.version).not.toBe(first[0]);
    expect(all.at(-1)?.version).toBe(first[0]);
  });
});

describe("malformed input", () => {
  it("never throws", () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed & 0xff;
    };
    const policies: OutputPolicy[] = [
      { scte35: "strip" },
      { scte35: { segmentation_types: [0x34] } },
      { pids: { keep: [0x100] } },
      { program: 1, remap: { "256": 0x300 } },
    ];
    const { ts } = channel([vector("v001")], 300);
    for (const policy of policies) {
      const rewriter = makePolicyRewriter(policy);
      for (let round = 0; round < 200; round++) {
        const chunk = ts.slice((round % 40) * P, (round % 40) * P + 7 * P);
        // Flip bytes, with the sync byte and PID 0, the PMT or the SCTE-35 PID often left in place.
        for (let k = 0; k < 20; k++) chunk[random() % chunk.length] = random();
        expect(() => rewriter.push(chunk)).not.toThrow();
        expect(() => rewriter.push(chunk.subarray(0, 100 + random()))).not.toThrow();
        const noise = new Uint8Array(7 * P).map(() => random());
        for (let at = 0; at < noise.length; at += P) noise[at] = 0x47;
        expect(() => rewriter.push(noise)).not.toThrow();
      }
    }
  });
});

describe("moving an output between policies (move-bridges.ts)", () => {
  /** Last CC per PID in `ts`, as the channel's core reports it. */
  const lastCcs = (ts: Uint8Array) => {
    const last = new Map<number, number>();
    for (const packet of packetsOf(ts)) last.set(pidOf(packet), (packet[3] ?? 0) & 0x0f);
    return last;
  };
  const flaggedBridges = (ts: Uint8Array) =>
    packetsOf(ts)
      .filter(isBridge)
      .map((p) => ({ pid: pidOf(p), cc: (p[3] ?? 0) & 0x0f }));

  it("flags each PID the output gets back or newly gets, with the CC its next packet follows, and only those", () => {
    // Untouched, then the SCTE-35 PID stripped and the audio on 0x103, then untouched again.
    // A cue every 15 ms through the whole 1.1 s, so the SCTE-35 PID has packets in each third.
    const { ts } = channel(
      Array.from({ length: 70 }, () => spliceNull()),
      6000,
    );
    const part = (i: number) => ts.subarray(i * 2000 * P, (i + 1) * 2000 * P);
    const strip = makePolicyRewriter({ scte35: "strip", remap: { "257": 0x103 } });
    const untouched = makePolicyRewriter({});
    const through = (rewriter: typeof strip, input: Uint8Array) => rewriter.push(input) ?? new Uint8Array(0);
    // The new group is taught the tables before it takes its first chunk, as the channel's are.
    through(strip, part(0));
    const first = through(untouched, part(0));
    const into = moveBridges(untouchedRoute, strip.outputPid, lastCcs(part(0))) ?? new Uint8Array(0);
    const second = through(strip, part(1));
    const last = lastCcs(concat([part(0), part(1)]));
    const back = moveBridges(strip.outputPid, untouched.outputPid, last) ?? new Uint8Array(0);
    const third = through(untouched, part(2));
    // Into the strip only the remapped audio is new (0x103); back, the SCTE-35 PID and the audio on 0x101, each
    // with the CC of the input's last packet on it.
    expect(flaggedBridges(into)).toEqual([{ pid: 0x103, cc: lastCcs(part(0)).get(0x101) }]);
    expect(flaggedBridges(back)).toEqual([
      { pid: 0x101, cc: last.get(0x101) },
      { pid: 0x1f0, cc: last.get(0x1f0) },
    ]);
    expect(ccBreaks(concat([first, into, second, back, third]))).toEqual([]);
    // Without them the receiver counts both jumps.
    expect(ccBreaks(concat([first, second, third])).map((text) => text.split(" ")[1])).toEqual([
      "257",
      "496",
    ]);
    // Into the same policy, or one that gives nothing back: none.
    expect(moveBridges(strip.outputPid, strip.outputPid, last)).toBeNull();
    expect(moveBridges(untouchedRoute, makePolicyRewriter({ scte35: "strip" }).outputPid, last)).toBeNull();
  });
});
