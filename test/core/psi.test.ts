import { describe, expect, it } from "vitest";
import { PacketCore } from "../../src/core/packet-core.ts";
import { crc32Mpeg2 } from "../../src/core/ts/crc32.ts";
import { drain, joinPackets, ofType, pidOf } from "../support/core.ts";
import {
  buildPat,
  buildPmt,
  CUEI_REGISTRATION,
  type PmtSpec,
  packetizeSections,
  scte35Section,
  spliceNull,
  TsGenerator,
  timeSignal,
  tsPacket,
} from "../support/ts-generator.ts";

const PMT_PID = 0x1000;
const SCTE_PID = 0x1f0;
const pat = buildPat({ transportStreamId: 0x42, version: 3, programs: [{ program: 1, pmtPid: PMT_PID }] });
const pmtSpec: PmtSpec = {
  program: 1,
  pcrPid: 0x100,
  programInfo: CUEI_REGISTRATION,
  streams: [
    { streamType: 0x1b, pid: 0x100 },
    { streamType: 0x86, pid: SCTE_PID },
  ],
};

/** A core that has seen the PAT and a PMT with a SCTE-35 PID; its events are drained. */
const tuned = (spec: PmtSpec = pmtSpec) => {
  const core = PacketCore.load();
  core.push(joinPackets([...packetizeSections(0, [pat]), ...packetizeSections(PMT_PID, [buildPmt(spec)])]));
  drain(core);
  return core;
};

describe("PSI", () => {
  it("reports PAT and PMT with programs, streams and descriptors", () => {
    const core = PacketCore.load();
    core.push(
      joinPackets([...packetizeSections(0, [pat]), ...packetizeSections(PMT_PID, [buildPmt(pmtSpec)])]),
      1000,
    );
    const events = drain(core);
    expect(ofType(events, "pat")).toEqual([
      {
        type: "pat",
        atMs: 1000,
        version: 3,
        transportStreamId: 0x42,
        programs: [{ program: 1, pmtPid: PMT_PID }],
        networkPid: null,
      },
    ]);
    const [pmt] = ofType(events, "pmt");
    expect(pmt).toMatchObject({
      pid: PMT_PID,
      program: 1,
      version: 0,
      pcrPid: 0x100,
      programInfo: CUEI_REGISTRATION,
    });
    expect(pmt?.streams.map((s) => [s.streamType, s.pid])).toEqual([
      [0x1b, 0x100],
      [0x86, SCTE_PID],
    ]);
    expect(core.snapshot().pat).toEqual({ version: 3, transportStreamId: 0x42 });
    expect(pidOf(core, SCTE_PID)).toMatchObject({ streamType: 0x86, scte35: true, packets: 0 });
  });

  it("reassembles a PMT spanning several packets", () => {
    const streams = Array.from({ length: 40 }, (_, i) => ({
      streamType: 0x06,
      pid: 0x200 + i,
      descriptors: Uint8Array.from({ length: 12 }, (_, k) => (i * 16 + k) & 0xff),
    }));
    const spec: PmtSpec = { program: 1, pcrPid: 0x200, streams };
    const section = buildPmt(spec);
    expect(section.length).toBeGreaterThan(3 * 184);
    const core = tuned({ ...pmtSpec, version: 1 });
    core.push(joinPackets(packetizeSections(PMT_PID, [section], 1)));
    const [pmt] = ofType(drain(core), "pmt");
    expect(pmt?.streams).toHaveLength(40);
    expect(pmt?.streams[39]).toEqual({ streamType: 0x06, pid: 0x227, descriptors: streams[39]?.descriptors });
    // The PIDs of the older PMT are no longer listed, except the SCTE-35 one, which keeps its role.
    expect(pidOf(core, 0x100)).toBeUndefined();
    expect(pidOf(core, SCTE_PID)).toMatchObject({ scte35: true, referenced: false });
  });

  it("reports a new version, and a same-version PMT whose content changed, but not a repeat", () => {
    const core = tuned();
    let cc = 1;
    const send = (spec: PmtSpec) => {
      const packets = packetizeSections(PMT_PID, [buildPmt(spec)], cc);
      cc = (cc + packets.length) & 0x0f;
      core.push(joinPackets(packets));
      return ofType(drain(core), "pmt");
    };
    expect(send(pmtSpec)).toEqual([]);
    expect(send({ ...pmtSpec, version: 1 }).map((e) => e.version)).toEqual([1]);
    const sameVersionNewStream = send({
      ...pmtSpec,
      version: 1,
      streams: [...pmtSpec.streams, { streamType: 0x0f, pid: 0x101 }],
    });
    expect(sameVersionNewStream.map((e) => [e.version, e.streams.length])).toEqual([[1, 3]]);
    expect(pidOf(core, 0x101)?.streamType).toBe(0x0f);
  });

  it("rejects sections with a bad CRC", () => {
    const core = PacketCore.load();
    const packets = packetizeSections(0, [pat]);
    const first = packets[0] ?? new Uint8Array(188);
    first[12] = (first[12] ?? 0) ^ 0x01;
    core.push(joinPackets(packets));
    const events = drain(core);
    expect(ofType(events, "pat")).toEqual([]);
    expect(ofType(events, "crcError")).toEqual([{ type: "crcError", atMs: null, pid: 0, tableId: 0 }]);
    expect(core.snapshot().tr101290.crcErrors).toBe(1);
  });

  it("counts a wrong table_id and scrambling on PID 0 as PAT errors", () => {
    const core = PacketCore.load();
    core.push(joinPackets(packetizeSections(0, [buildPmt(pmtSpec)])));
    const scrambled = packetizeSections(0, [pat], 1)[0] ?? new Uint8Array(188);
    scrambled[3] = (scrambled[3] ?? 0) | 0x80;
    core.push(scrambled);
    expect(core.snapshot().tr101290.patErrors).toBe(2);
    expect(ofType(drain(core), "tr101290").map((e) => e.indicator)).toEqual(["PAT_error", "PAT_error"]);
  });

  it("survives absurd section lengths and pointer fields", () => {
    const core = tuned();
    const absurd = tsPacket({
      pid: SCTE_PID,
      cc: 0,
      pusi: true,
      payload: Uint8Array.of(0, 0xfc, 0x3f, 0xff, 1, 2),
      stuffAfterPayload: true,
    });
    const pointerPastEnd = tsPacket({
      pid: SCTE_PID,
      cc: 1,
      pusi: true,
      payload: Uint8Array.of(200),
      stuffAfterPayload: true,
    });
    core.push(joinPackets([absurd, pointerPastEnd]));
    expect(core.snapshot().sectionErrors).toBe(2);
    // The PID still works afterwards.
    core.push(joinPackets(packetizeSections(SCTE_PID, [spliceNull()], 2)));
    expect(ofType(drain(core), "scte35")).toHaveLength(1);
  });
});

describe("SCTE-35 sections", () => {
  it("delivers sections packed in one packet and spanning several, byte for byte, with the last PCR", () => {
    const core = tuned();
    const pcrPacket = tsPacket({
      pid: 0x100,
      cc: 0,
      adaptation: { pcr: 27_000_000 * 3 + 7 },
      payload: new Uint8Array(10),
    });
    const long = scte35Section(
      0xff,
      Uint8Array.from({ length: 600 }, (_, i) => i & 0xff),
    );
    const sections = [spliceNull(), timeSignal(2 ** 33 - 1), long, spliceNull(), timeSignal(90_000)];
    const packets = packetizeSections(SCTE_PID, sections);
    expect(packets.length).toBeLessThan(sections.length);
    core.push(joinPackets([pcrPacket, ...packets]));
    const cues = ofType(drain(core), "scte35");
    expect(cues.map((e) => e.section)).toEqual(sections);
    expect(cues.every((e) => e.pid === SCTE_PID && e.pcr === 27_000_000 * 3 + 7)).toBe(true);
    expect(cues.every((e) => crc32Mpeg2(e.section) === 0)).toBe(true);
    expect(core.snapshot().scte35Sections).toBe(5);
  });

  it("drops a section with a bad CRC and one broken by a continuity gap", () => {
    const core = tuned();
    const bad = spliceNull();
    bad[5] = 1;
    const long = scte35Section(0xff, new Uint8Array(400));
    const split = packetizeSections(SCTE_PID, [long], 1);
    core.push(
      joinPackets([
        ...packetizeSections(SCTE_PID, [bad], 0),
        split[0] ?? new Uint8Array(0),
        split[2] ?? new Uint8Array(0),
      ]),
    );
    const events = drain(core);
    expect(ofType(events, "scte35")).toEqual([]);
    expect(ofType(events, "crcError")).toEqual([
      { type: "crcError", atMs: null, pid: SCTE_PID, tableId: 0xfc },
    ]);
    // The gap drops the section begun before it.
    expect(core.snapshot().sectionErrors).toBe(1);
    core.push(joinPackets(packetizeSections(SCTE_PID, [spliceNull()], 4)));
    expect(ofType(drain(core), "scte35")).toHaveLength(1);
    expect(core.snapshot().sectionErrors).toBe(1);
  });

  it("reads a rewritten packet with the same continuity counter, but not a true duplicate", () => {
    const core = tuned();
    const first = packetizeSections(SCTE_PID, [spliceNull()], 5);
    const rewrite = packetizeSections(SCTE_PID, [timeSignal(1234)], 5);
    core.push(joinPackets([...first, ...first, ...rewrite]));
    expect(ofType(drain(core), "scte35").map((e) => e.section)).toEqual([spliceNull(), timeSignal(1234)]);
  });

  it("sends generated cues at their times", () => {
    const generator = new TsGenerator({ seed: 9 });
    // The last one is a splice_insert from the SCTE 35 standard's samples, as the fixtures carry it.
    const cues = [
      timeSignal(1),
      spliceNull(),
      new Uint8Array(
        Buffer.from("/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=", "base64"),
      ),
    ];
    cues.forEach((cue, i) => {
      generator.insertScte35(cue, 200 + i * 300);
    });
    const core = PacketCore.load();
    const seen: Array<{ atMs: number | null; section: Uint8Array }> = [];
    while (generator.nowMs < 1200) {
      core.push(generator.datagram(), generator.nowMs);
      for (const event of ofType(drain(core), "scte35")) seen.push(event);
    }
    expect(seen.map((e) => e.section)).toEqual(cues);
    seen.forEach((event, i) => {
      expect(event.atMs).toBeGreaterThanOrEqual(200 + i * 300);
      expect(event.atMs).toBeLessThan(200 + i * 300 + 10);
    });
  });
});
