import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PacketCore } from "../../src/core/packet-core.ts";
import type { CoreEvent } from "../../src/core/packet-core-events.ts";
import {
  ccAt,
  crc32Mpeg2,
  firstProgram,
  longSection,
  NULL_PID,
  nextCc,
  PACKET,
  type PatEntry,
  type Pmt,
  patSection,
  payloadOffset,
  pcrOf,
  pidAt,
  pmtSection,
  previousCc,
  ptsAt,
  readPat,
  readPmt,
  readTimestamp,
  rewritePat,
  rewritePmt,
  SectionReader,
  sealSection,
  sectionOf,
  sectionOk,
  sectionPacketCount,
  sectionPackets,
  signalsDiscontinuity,
  unitStartAt,
  writeAdaptationOnly,
  writeSectionPackets,
  writeTimestamp,
} from "../../src/core/ts/index.ts";
import { drain } from "../support/core.ts";
import { fixturePath } from "../support/fixtures.ts";
import { buildPat, buildPmt, packetizeSections, TsGenerator, tsPacket } from "../support/ts-generator.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/**
 * The PAT and PMT tables the packet core reports for `ts`, each once, in the order first reported; and what
 * its own memory holds at the end (programmes and the PIDs its current PMTs list), read without the host's
 * section parser.
 */
const coreTables = (ts: Uint8Array): { tables: string[]; state: string } => {
  const core = PacketCore.load();
  const tables = new Set<string>();
  const note = (event: CoreEvent) => {
    if (event.type === "pat")
      tables.add(
        JSON.stringify({
          pat: event.transportStreamId,
          version: event.version,
          programs: event.programs.map((p) => [p.program, p.pmtPid]),
          network: event.networkPid,
        }),
      );
    if (event.type === "pmt")
      tables.add(
        JSON.stringify({
          pmt: event.pid,
          program: event.program,
          version: event.version,
          pcrPid: event.pcrPid,
          info: hex(event.programInfo),
          streams: event.streams.map((s) => [s.streamType, s.pid, hex(s.descriptors)]),
        }),
      );
  };
  for (let at = 0; at < ts.length; at += 7 * PACKET) {
    core.push(ts.subarray(at, Math.min(ts.length, at + 7 * PACKET)));
    for (const event of drain(core)) note(event);
  }
  const snapshot = core.snapshot();
  const state = JSON.stringify({
    programs: snapshot.programs.map((p) => [p.program, p.pmtPid, p.pcrPid, p.pmtVersion]),
    listed: snapshot.pids.filter((p) => p.referenced).map((p) => [p.pid, p.streamType]),
  });
  return { tables: [...tables], state };
};

/** The same as the toolkit reads them: sections reassembled on PID 0 and the PMT PIDs the PAT names. */
const toolkitTables = (ts: Uint8Array): { tables: string[]; state: string } => {
  const tables = new Set<string>();
  let programs: ReadonlyArray<PatEntry> = [];
  const pmts = new Map<number, Pmt>();
  const pmtReaders = new Map<number, SectionReader>();
  const current = (s: Uint8Array) => ((s[5] ?? 0) & 1) === 1;
  const patReader = new SectionReader((section) => {
    const pat = readPat(section);
    if (pat === null || !sectionOk(section, 0x00) || !current(section)) return;
    const network = pat.programs.filter((p) => p.program === 0).at(-1);
    programs = pat.programs.filter((p) => p.program !== 0);
    tables.add(
      JSON.stringify({
        pat: pat.transportStreamId,
        version: pat.version,
        programs: pat.programs.filter((p) => p.program !== 0).map((p) => [p.program, p.pid]),
        network: network?.pid ?? null,
      }),
    );
    for (const { program, pid } of pat.programs) {
      if (program === 0 || pmtReaders.has(pid)) continue;
      pmtReaders.set(
        pid,
        new SectionReader((pmtSection) => {
          const pmt = readPmt(pmtSection);
          if (pmt === null || !pmt.whole || !sectionOk(pmtSection, 0x02) || !current(pmtSection)) return;
          pmts.set(pmt.program, pmt);
          tables.add(
            JSON.stringify({
              pmt: pid,
              program: pmt.program,
              version: pmt.version,
              pcrPid: pmt.pcrPid,
              info: hex(pmtSection.subarray(12, pmt.infoEnd)),
              streams: pmt.streams.map((s) => [
                s.streamType,
                s.pid,
                hex(pmtSection.subarray(s.start + 5, s.end)),
              ]),
            }),
          );
        }),
      );
    }
  });
  for (let at = 0; at + PACKET <= ts.length; at += PACKET) {
    const packet = ts.subarray(at, at + PACKET);
    if (packet[0] !== 0x47 || ((packet[1] ?? 0) & 0x80) !== 0 || ((packet[3] ?? 0) & 0x10) === 0) continue;
    const pid = pidAt(packet);
    const reader = pid === 0 ? patReader : pmtReaders.get(pid);
    reader?.packet(packet, payloadOffset(packet), unitStartAt(packet), ccAt(packet));
  }
  const listed = new Map<number, number>();
  const known = programs.map(({ program, pid }) => {
    const pmt = pmts.get(program);
    for (const stream of pmt?.streams ?? []) listed.set(stream.pid, stream.streamType);
    const pcrPid = pmt === undefined || pmt.pcrPid === NULL_PID ? null : pmt.pcrPid;
    return [program, pid, pcrPid, pmt?.version ?? null];
  });
  const state = JSON.stringify({
    programs: known.sort((a, b) => Number(a[0]) - Number(b[0])),
    listed: [...listed].sort((a, b) => a[0] - b[0]),
  });
  return { tables: [...tables], state };
};

const fixtureFiles = (): string[] => {
  const root = fixturePath("scte35", "ts");
  return readdirSync(root, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".ts"))
    .sort();
};

describe("the toolkit and the packet core read the same tables", () => {
  it.each(fixtureFiles())("%s", (file) => {
    const ts = new Uint8Array(readFileSync(fixturePath("scte35", "ts", ...file.split("/"))));
    const core = coreTables(ts);
    expect(core.tables.length).toBeGreaterThanOrEqual(2);
    expect(toolkitTables(ts)).toEqual(core);
  });

  it("a generated stream with a PMT that changes and a PAT that grows a NIT entry", () => {
    const first = new TsGenerator({ seed: 7, pmtPid: 0x100, videoPid: 0x101, audioPid: 0x102 });
    const pmt2 = buildPmt({
      program: 1,
      version: 4,
      pcrPid: 0x101,
      programInfo: Uint8Array.of(0x05, 0x04, 0x43, 0x55, 0x45, 0x49),
      streams: [
        { streamType: 0x1b, pid: 0x101, descriptors: Uint8Array.of(0x0a, 0x04, 0x65, 0x6e, 0x67, 0x00) },
        { streamType: 0x86, pid: 0x1f0 },
      ],
    });
    const pat2 = buildPat({
      transportStreamId: 9,
      version: 2,
      programs: [
        { program: 0, pmtPid: 0x10 },
        { program: 1, pmtPid: 0x100 },
      ],
    });
    const ts = Buffer.concat([
      first.packets(400),
      ...packetizeSections(0x100, [pmt2], 3),
      ...packetizeSections(0, [pat2], 5),
      ...packetizeSections(0x100, [pmt2], 4),
    ]);
    const core = coreTables(ts);
    expect(core.tables.length).toBe(4);
    expect(toolkitTables(ts)).toEqual(core);
  });
});

describe("packets", () => {
  it("reads the header and the adaptation field where the packet lies", () => {
    const packet = tsPacket({
      pid: 0x1abc,
      cc: 9,
      pusi: true,
      payload: Uint8Array.of(1, 2, 3),
      adaptation: { pcr: 27_000_123 },
    });
    const chunk = new Uint8Array(2 * PACKET);
    chunk.set(packet, PACKET);
    expect(pidAt(chunk, PACKET)).toBe(0x1abc);
    expect(ccAt(chunk, PACKET)).toBe(9);
    expect(unitStartAt(chunk, PACKET)).toBe(true);
    expect(unitStartAt(chunk, 0)).toBe(false);
    expect(pcrOf(chunk, PACKET)).toBe(27_000_123);
    expect(packet[payloadOffset(packet)]).toBe(1);
  });

  it("counts continuity forwards and back, round the 4-bit circle", () => {
    expect([0, 7, 15].map(nextCc)).toEqual([1, 8, 0]);
    expect([0, 7, 15].map(previousCc)).toEqual([15, 6, 14]);
  });

  it("writes an adaptation-only packet with a PCR and the discontinuity flag, read back the same", () => {
    const out = new Uint8Array(PACKET);
    writeAdaptationOnly(out, 0, 0x44, 7, true, 2 ** 33 * 300 - 1);
    expect([out[0], pidAt(out), ccAt(out), payloadOffset(out)]).toEqual([0x47, 0x44, 7, PACKET]);
    expect(signalsDiscontinuity(out)).toBe(true);
    expect(pcrOf(out)).toBe(2 ** 33 * 300 - 1);
    writeAdaptationOnly(out, 0, 0x44, 7, false, -1);
    expect([signalsDiscontinuity(out), pcrOf(out)]).toEqual([false, -1]);
  });

  it("writes and reads 33-bit timestamps, and finds a PES header's PTS", () => {
    const pes = Uint8Array.of(0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 0, 0, 0);
    for (const value of [0, 1, 90_000, 2 ** 32 + 12345, 2 ** 33 - 1]) {
      writeTimestamp(pes, 9, value);
      expect(readTimestamp(pes, 9)).toBe(value);
      expect(ptsAt(pes, 0)).toBe(value);
    }
    expect(ptsAt(pes.subarray(0, 13), 0)).toBe(-1);
    expect(ptsAt(Uint8Array.of(0, 0, 1, 0xe0, 0, 0, 0x80, 0x00, 0, 0, 0, 0, 0, 0), 0)).toBe(-1);
  });
});

describe("sections", () => {
  const pmt = pmtSection(1, 5, 0x101, Uint8Array.of(0x05, 0x04, 0x43, 0x55, 0x45, 0x49), [
    { streamType: 0x1b, pid: 0x101, descriptors: new Uint8Array(0) },
    { streamType: 0x0f, pid: 0x102, descriptors: Uint8Array.of(0x0a, 0x04, 0x65, 0x6e, 0x67, 0x00) },
  ]);

  it("writes PAT and PMT as the test generator does, and reads them back", () => {
    const pat = patSection(0x42, 3, [{ program: 1, pid: 0x1000 }]);
    expect(hex(pat)).toBe(
      hex(buildPat({ transportStreamId: 0x42, version: 3, programs: [{ program: 1, pmtPid: 0x1000 }] })),
    );
    expect(sectionOk(pat, 0x00)).toBe(true);
    expect(readPat(pat)).toEqual({
      transportStreamId: 0x42,
      version: 3,
      programs: [{ program: 1, pid: 0x1000 }],
    });
    expect(firstProgram(readPat(pat))).toEqual({ program: 1, pid: 0x1000 });
    expect(sectionOk(pmt, 0x02)).toBe(true);
    const read = readPmt(pmt);
    expect(read).toMatchObject({ program: 1, version: 5, pcrPid: 0x101, infoEnd: 18, whole: true });
    expect(read?.streams.map((s) => [s.streamType, s.pid, s.end - s.start])).toEqual([
      [0x1b, 0x101, 5],
      [0x0f, 0x102, 11],
    ]);
  });

  it("reads a PMT as far as one packet holds it, and says when its loop does not add up", () => {
    expect(readPmt(pmt.subarray(0, 24))?.streams.map((s) => s.pid)).toEqual([0x101]);
    const short = pmt.slice();
    short[2] = (short[2] ?? 0) - 2;
    expect(readPmt(short)?.whole).toBe(false);
    expect(readPmt(patSection(1, 0, []))).toBeNull();
    expect(readPat(pmt)).toBeNull();
  });

  it("rewrites a PAT and a PMT with entries left out and PIDs moved, sealed with a new version", () => {
    const pat = rewritePat(
      patSection(1, 0, [
        { program: 1, pid: 0x100 },
        { program: 2, pid: 0x200 },
      ]),
      [{ program: 2, pid: 0x300 }],
    );
    sealSection(pat, 9);
    expect(readPat(pat)).toEqual({
      transportStreamId: 1,
      version: 9,
      programs: [{ program: 2, pid: 0x300 }],
    });
    const read = readPmt(pmt);
    if (read === null) throw new Error("no PMT");
    const out = rewritePmt(pmt, read, { keep: (s) => s.streamType !== 0x1b, pidOut: (pid) => pid + 0x10 });
    sealSection(out, 6);
    expect(sectionOk(out, 0x02)).toBe(true);
    expect(readPmt(out)).toMatchObject({ pcrPid: 0x111, version: 6, whole: true });
    expect(readPmt(out)?.streams.map((s) => s.pid)).toEqual([0x112]);
  });

  it("packetizes a long section across packets and reassembles it, CRC checked, CC gaps dropping it", () => {
    const body = new Uint8Array(700).map((_, i) => i & 0x7f);
    const section = longSection(0x02, 1, 0, body);
    expect(crc32Mpeg2(section)).toBe(0);
    const run = sectionPackets(section, 0x100, 14);
    expect(run.length).toBe(4 * PACKET);
    expect([0, 1, 2, 3].map((k) => ccAt(run, k * PACKET))).toEqual([14, 15, 0, 1]);
    expect(hex(sectionOf(run.subarray(0, PACKET)) ?? new Uint8Array(0))).toBe(hex(section.subarray(0, 183)));
    const got: string[] = [];
    const reader = new SectionReader((s) => got.push(hex(s)));
    const feed = (bytes: Uint8Array) => {
      for (let at = 0; at < bytes.length; at += PACKET) {
        const packet = bytes.subarray(at, at + PACKET);
        reader.packet(packet, payloadOffset(packet), unitStartAt(packet), ccAt(packet));
      }
    };
    feed(run);
    expect(got).toEqual([hex(section)]);
    const gap = sectionPackets(section, 0x100, 2);
    feed(Buffer.concat([gap.subarray(0, PACKET), gap.subarray(2 * PACKET)]));
    expect(got.length).toBe(1);
    const broken = section.slice();
    broken[100] = (broken[100] ?? 0) ^ 1;
    feed(sectionPackets(broken, 0x100, 5));
    expect(got.length).toBe(1);
  });

  it("packetizes a section behind a discontinuity flag when asked, as the FLV muxer does at a join", () => {
    // 367 bytes and the pointer_field fill two packets exactly; the 2-byte adaptation field needs a third.
    const exact = longSection(
      0x02,
      1,
      0,
      new Uint8Array(355).map((_, i) => i & 0x7f),
    );
    expect([sectionPacketCount(exact), sectionPacketCount(exact, true)]).toEqual([2, 3]);
    let cc = 7;
    const run = new Uint8Array(3 * PACKET);
    expect(writeSectionPackets(run, 0, exact, 0x100, () => cc++, true)).toBe(3 * PACKET);
    expect(signalsDiscontinuity(run.subarray(0, PACKET))).toBe(true);
    expect(signalsDiscontinuity(run.subarray(PACKET, 2 * PACKET))).toBe(false);
    expect([0, 1, 2].map((k) => ccAt(run, k * PACKET))).toEqual([7, 8, 9]);
    const got: string[] = [];
    const reader = new SectionReader((s) => got.push(hex(s)));
    for (let at = 0; at < run.length; at += PACKET) {
      const packet = run.subarray(at, at + PACKET);
      reader.packet(packet, payloadOffset(packet), unitStartAt(packet), ccAt(packet));
    }
    expect(got).toEqual([hex(exact)]);
  });

  it("reassembles several sections in one packet, up to the stuffing", () => {
    const a = patSection(1, 1, [{ program: 1, pid: 0x100 }]);
    const b = patSection(1, 2, [{ program: 1, pid: 0x101 }]);
    const got: number[] = [];
    const reader = new SectionReader((s) => got.push(readPat(s)?.version ?? -1));
    for (const packet of packetizeSections(0, [a, b]))
      reader.packet(packet, payloadOffset(packet), unitStartAt(packet), ccAt(packet));
    expect(got).toEqual([1, 2]);
  });
});
