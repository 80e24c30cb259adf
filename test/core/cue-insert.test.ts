import { Either } from "effect";
import { describe, expect, it } from "vitest";
import { type CueInserter, makeCueInserter } from "../../src/core/cue-insert/inserter.ts";
import { encodeOperatorCue } from "../../src/core/cue-insert/operator-cue.ts";
import { decodeSection, type SpliceInfoSection } from "../../src/core/scte35/index.ts";
import { crc32Mpeg2 } from "../../src/core/ts/crc32.ts";
import {
  buildPat,
  buildPmt,
  CUEI_REGISTRATION,
  concat,
  type PmtSpec,
  packetizeSections,
  prng,
  spliceNull,
  TsGenerator,
  timeSignal,
  tsPacket,
} from "../support/ts-generator.ts";

const PACKET = 188;

// ---------------------------------------------------------------------------------------------- helpers

const packetsOf = (ts: Uint8Array): Uint8Array[] => {
  expect(ts.length % PACKET).toBe(0);
  const out: Uint8Array[] = [];
  for (let at = 0; at < ts.length; at += PACKET) out.push(ts.slice(at, at + PACKET));
  return out;
};

const pidOf = (packet: Uint8Array): number => (((packet[1] ?? 0) & 0x1f) << 8) | (packet[2] ?? 0);
const ccOf = (packet: Uint8Array): number => (packet[3] ?? 0) & 0x0f;
const hasPayload = (packet: Uint8Array): boolean => ((packet[3] ?? 0) & 0x10) !== 0;

/**
 * Every continuity error in `ts`: a payload packet whose CC is not the previous one's + 1, unless it repeats
 * the previous packet byte for byte (a duplicate, which the standard allows).
 */
const ccErrors = (ts: Uint8Array): string[] => {
  const last = new Map<number, Uint8Array>();
  const errors: string[] = [];
  packetsOf(ts).forEach((packet, i) => {
    const pid = pidOf(packet);
    const cc = ccOf(packet);
    const previous = last.get(pid);
    if (previous !== undefined) {
      const before = ccOf(previous);
      const expected = hasPayload(packet) ? (before + 1) & 0x0f : before;
      const duplicate = hasPayload(packet) && cc === before && packet.every((b, j) => b === previous[j]);
      if (cc !== expected && !duplicate) errors.push(`packet ${i} on PID ${pid}: CC ${cc} after ${before}`);
    }
    last.set(pid, packet);
  });
  return errors;
};

/** The sections carried on `pid` (each starting a packet after pointer_field, or packed after another). */
const sectionsOn = (ts: Uint8Array, pid: number): Uint8Array[] => {
  const sections: Uint8Array[] = [];
  let buffer: number[] = [];
  const drain = () => {
    while (buffer.length >= 3 && buffer[0] !== 0xff) {
      const total = 3 + ((((buffer[1] ?? 0) & 0x0f) << 8) | (buffer[2] ?? 0));
      if (buffer.length < total) return;
      sections.push(Uint8Array.from(buffer.slice(0, total)));
      buffer = buffer.slice(total);
    }
  };
  for (const packet of packetsOf(ts)) {
    if (pidOf(packet) !== pid || !hasPayload(packet)) continue;
    const afc = ((packet[3] ?? 0) >> 4) & 3;
    const start = afc === 3 ? 5 + (packet[4] ?? 0) : 4;
    if (((packet[1] ?? 0) & 0x40) !== 0) {
      const pointer = packet[start] ?? 0;
      buffer.push(...packet.subarray(start + 1, start + 1 + pointer));
      drain();
      buffer = [...packet.subarray(start + 1 + pointer)];
    } else buffer.push(...packet.subarray(start));
    drain();
  }
  return sections;
};

interface ParsedPmt {
  readonly program: number;
  readonly version: number;
  readonly programInfo: Uint8Array;
  readonly streams: ReadonlyArray<{ streamType: number; pid: number; descriptors: Uint8Array }>;
  readonly crcOk: boolean;
}

const parsePmt = (sec: Uint8Array): ParsedPmt => {
  expect(sec[0]).toBe(0x02);
  const end = sec.length - 4;
  const infoLength = (((sec[10] ?? 0) & 0x0f) << 8) | (sec[11] ?? 0);
  const streams: Array<{ streamType: number; pid: number; descriptors: Uint8Array }> = [];
  let at = 12 + infoLength;
  while (at < end) {
    const length = (((sec[at + 3] ?? 0) & 0x0f) << 8) | (sec[at + 4] ?? 0);
    streams.push({
      streamType: sec[at] ?? 0,
      pid: (((sec[at + 1] ?? 0) & 0x1f) << 8) | (sec[at + 2] ?? 0),
      descriptors: sec.slice(at + 5, at + 5 + length),
    });
    at += 5 + length;
  }
  expect(at).toBe(end);
  return {
    program: ((sec[3] ?? 0) << 8) | (sec[4] ?? 0),
    version: ((sec[5] ?? 0) >> 1) & 0x1f,
    programInfo: sec.slice(12, 12 + infoLength),
    streams,
    crcOk: crc32Mpeg2(sec) === 0,
  };
};

const decoded = (section: Uint8Array): SpliceInfoSection => {
  const result = decodeSection(section);
  if (Either.isLeft(result)) throw new Error(result.left.message);
  return result.right;
};

const commandType = (section: SpliceInfoSection): number =>
  section.encrypted_packet ? -1 : section.splice_command_type;

/** Pushes `chunks` through `inserter`, copying each result (it is only valid until the next call). */
const pushAll = (inserter: CueInserter, chunks: ReadonlyArray<Uint8Array>): Uint8Array =>
  concat(chunks.map((chunk) => inserter.push(chunk).slice()));

const datagrams = (gen: TsGenerator, count: number): Uint8Array[] =>
  Array.from({ length: count }, () => gen.datagram());

/** A hand-built input: PAT, PMT (as given), a video PID with PCRs in adaptation fields, CCs counted per PID. */
class Mux {
  readonly #cc = new Map<number, number>();
  readonly #packets: Uint8Array[] = [];
  #frame = 0;

  #next(pid: number): number {
    const cc = ((this.#cc.get(pid) ?? 15) + 1) & 0x0f;
    this.#cc.set(pid, cc);
    return cc;
  }

  sections(pid: number, sections: ReadonlyArray<Uint8Array>): this {
    for (const packet of packetizeSections(pid, sections)) {
      packet[3] = ((packet[3] ?? 0) & 0xf0) | this.#next(pid);
      this.#packets.push(packet);
    }
    return this;
  }

  video(pid: number, count: number): this {
    for (let i = 0; i < count; i++) {
      this.#frame++;
      const payload = new Uint8Array(170).fill(this.#frame & 0xff);
      this.#packets.push(
        tsPacket({
          pid,
          cc: this.#next(pid),
          pusi: i === 0,
          payload,
          adaptation: i === 0 ? { pcr: this.#frame * 27_000 } : undefined,
        }),
      );
    }
    return this;
  }

  /** An adaptation-only packet (no payload: the CC does not move). */
  adaptationOnly(pid: number): this {
    const cc = this.#cc.get(pid) ?? 15;
    this.#cc.set(pid, cc);
    this.#packets.push(tsPacket({ pid, cc, adaptation: { pcr: this.#frame * 27_000 } }));
    return this;
  }

  /** Sends the packet `back` places from the end twice (a duplicate: same CC, same bytes). */
  duplicate(back: number): this {
    const packet = this.#packets.at(-back);
    if (packet !== undefined) this.#packets.splice(this.#packets.length - back + 1, 0, packet.slice());
    return this;
  }

  /** Drops the packet `back` places from the end (as if lost on the way). */
  lose(back: number): this {
    this.#packets.splice(this.#packets.length - back, 1);
    return this;
  }

  take(): Uint8Array {
    const out = concat(this.#packets);
    this.#packets.length = 0;
    return out;
  }
}

const PMT_PID = 0x1000;
const VIDEO_PID = 0x100;
const AUDIO_PID = 0x101;
const pat = buildPat({ programs: [{ program: 1, pmtPid: PMT_PID }] });
const plainPmtSpec: PmtSpec = {
  program: 1,
  version: 3,
  pcrPid: VIDEO_PID,
  streams: [
    { streamType: 0x1b, pid: VIDEO_PID },
    { streamType: 0x0f, pid: AUDIO_PID, descriptors: Uint8Array.of(0x0a, 4, 0x65, 0x6e, 0x67, 0) },
  ],
};
const plainPmt = buildPmt(plainPmtSpec);

/** `rounds` rounds of PAT, PMT and video, as datagram-sized chunks. */
const plainInput = (mux: Mux, rounds: number, pmt: Uint8Array = plainPmt): Uint8Array[] => {
  const chunks: Uint8Array[] = [];
  for (let r = 0; r < rounds; r++) {
    mux.sections(0, [pat]).sections(PMT_PID, [pmt]).video(VIDEO_PID, 4);
    if (r % 2 === 1) mux.adaptationOnly(VIDEO_PID);
    const round = mux.take();
    for (let at = 0; at < round.length; at += 7 * PACKET) chunks.push(round.subarray(at, at + 7 * PACKET));
  }
  return chunks;
};

const insertOk = (inserter: CueInserter, section: Uint8Array, program: number | null = null) => {
  const result = inserter.insert(section, program);
  if ("refused" in result) throw new Error(`refused: ${result.refused}`);
  return result;
};

// ---------------------------------------------------------------------------------------- encodeOperatorCue

describe("encodeOperatorCue", () => {
  const commonHeader = (section: SpliceInfoSection) => {
    expect(section.table_id).toBe(0xfc);
    expect(section.pts_adjustment).toBe(0);
    expect(section.tier).toBe(0xfff);
    expect(section.sap_type).toBe(3);
    expect(section.protocol_version).toBe(0);
    expect(section.encrypted_packet).toBe(false);
  };

  it("an immediate splice_insert out of the network, open-ended, by default", () => {
    const bytes = encodeOperatorCue({ command: "splice_insert" }, 77);
    expect(crc32Mpeg2(bytes)).toBe(0);
    const section = decoded(bytes);
    commonHeader(section);
    if (section.encrypted_packet || section.splice_command_type !== 0x05)
      throw new Error("not a splice_insert");
    expect(section.descriptors).toEqual([]);
    const command = section.splice_command;
    if (command.splice_event_cancel_indicator) throw new Error("cancelled");
    expect(command.splice_event_id).toBe(77);
    expect(command.out_of_network_indicator).toBe(true);
    expect(command.program_splice_flag).toBe(true);
    expect(command.splice_immediate_flag).toBe(true);
    expect(command.duration_flag).toBe(false);
    expect(command.break_duration).toBeUndefined();
    expect(command.pts_time).toBeUndefined();
    expect(command.unique_program_id).toBe(0);
    expect(command.avail_num).toBe(0);
    expect(command.avails_expected).toBe(0);
  });

  it("a splice_insert with a duration, a splice time and out: false", () => {
    const section = decoded(
      encodeOperatorCue(
        { command: "splice_insert", duration_s: 30.5, at_pts: 2 ** 33 - 5, out: false },
        0xffffffff,
      ),
    );
    commonHeader(section);
    if (section.encrypted_packet || section.splice_command_type !== 0x05)
      throw new Error("not a splice_insert");
    const command = section.splice_command;
    if (command.splice_event_cancel_indicator) throw new Error("cancelled");
    expect(command.splice_event_id).toBe(0xffffffff);
    expect(command.out_of_network_indicator).toBe(false);
    expect(command.splice_immediate_flag).toBe(false);
    expect(command.time_specified_flag).toBe(true);
    expect(command.pts_time).toBe(2 ** 33 - 5);
    expect(command.duration_flag).toBe(true);
    expect(command.break_duration).toEqual({ auto_return: true, duration: 2_745_000 });
  });

  it("rounds the duration to the nearest 90 kHz tick", () => {
    const section = decoded(encodeOperatorCue({ command: "splice_insert", duration_s: 0.10001 }, 1));
    if (section.encrypted_packet || section.splice_command_type !== 0x05)
      throw new Error("not a splice_insert");
    const command = section.splice_command;
    if (command.splice_event_cancel_indicator) throw new Error("cancelled");
    expect(command.break_duration?.duration).toBe(9001);
  });

  it("an immediate time_signal with one segmentation descriptor, type 0x34 by default", () => {
    const section = decoded(encodeOperatorCue({ command: "time_signal" }, 12345));
    commonHeader(section);
    if (section.encrypted_packet || section.splice_command_type !== 0x06)
      throw new Error("not a time_signal");
    expect(section.splice_command).toEqual({ time_specified_flag: false });
    expect(section.descriptors).toHaveLength(1);
    const d = section.descriptors[0];
    if (d === undefined || !("segmentation_event_id" in d) || d.segmentation_event_cancel_indicator)
      throw new Error("not a segmentation descriptor");
    expect(d.identifier).toBe(0x43554549);
    expect(d.segmentation_event_id).toBe(12345);
    expect(d.program_segmentation_flag).toBe(true);
    expect(d.segmentation_duration_flag).toBe(false);
    expect(d.segmentation_duration).toBeUndefined();
    expect(d.delivery_not_restricted_flag).toBe(true);
    expect(d.segmentation_upid_type).toBe(0);
    expect(d.segmentation_upid).toEqual({ format: "none" });
    expect(d.segmentation_type_id).toBe(0x34);
    expect(d.segment_num).toBe(0);
    expect(d.segments_expected).toBe(0);
  });

  it("a time_signal at a PTS, with a duration and a chosen segmentation type", () => {
    const section = decoded(
      encodeOperatorCue(
        { command: "time_signal", segmentation_type: 0x30, duration_s: 60, at_pts: 900_000 },
        9,
      ),
    );
    if (section.encrypted_packet || section.splice_command_type !== 0x06)
      throw new Error("not a time_signal");
    expect(section.splice_command).toEqual({ time_specified_flag: true, pts_time: 900_000 });
    const d = section.descriptors[0];
    if (d === undefined || !("segmentation_event_id" in d) || d.segmentation_event_cancel_indicator)
      throw new Error("not a segmentation descriptor");
    expect(d.segmentation_type_id).toBe(0x30);
    expect(d.segmentation_duration_flag).toBe(true);
    expect(d.segmentation_duration).toBe(5_400_000);
    expect(d.segmentation_event_id).toBe(9);
  });
});

// ------------------------------------------------------------------------------------------- refusals

describe("makeCueInserter: refusals", () => {
  const cue = encodeOperatorCue({ command: "splice_insert" }, 1);

  it("refuses before the PAT and PMT are known, in words", () => {
    const inserter = makeCueInserter();
    expect(inserter.insert(cue, null)).toEqual({
      refused: "the input's PMT has not been seen yet: nothing to insert into",
    });
    inserter.push(new Mux().sections(0, [pat]).video(VIDEO_PID, 3).take());
    expect(inserter.insert(cue, null)).toEqual({
      refused: "the input's PMT has not been seen yet: nothing to insert into",
    });
    expect(inserter.active).toBe(false);
  });

  it("does not learn a PMT whose CRC is wrong", () => {
    const inserter = makeCueInserter();
    const broken = plainPmt.slice();
    broken[14] = (broken[14] ?? 0) ^ 1;
    inserter.push(new Mux().sections(0, [pat]).sections(PMT_PID, [broken]).take());
    expect(inserter.insert(cue, null)).toHaveProperty("refused");
  });

  it("refuses a programme the PAT does not list, naming it and the ones there are", () => {
    const inserter = makeCueInserter();
    for (const chunk of plainInput(new Mux(), 2)) inserter.push(chunk);
    const result = inserter.insert(cue, 7);
    expect(result).toHaveProperty("refused");
    if ("refused" in result) {
      expect(result.refused).toContain("7");
      expect(result.refused).toContain("(it has 1)");
    }
    expect(inserter.active).toBe(false);
  });
});

// ------------------------------------------------------------------------------ input with a SCTE-35 PID

describe("makeCueInserter: the input has a SCTE-35 PID", () => {
  it("before any insert, push hands back the chunk itself and stays inactive", () => {
    const gen = new TsGenerator({ seed: 3 });
    const inserter = makeCueInserter();
    for (const chunk of datagrams(gen, 50)) expect(inserter.push(chunk)).toBe(chunk);
    expect(inserter.active).toBe(false);
  });

  it("inserts on that PID with continuous CCs, and leaves every other byte of the input alone", () => {
    const gen = new TsGenerator({ seed: 5 });
    const inserter = makeCueInserter();
    const before = datagrams(gen, 40);
    gen.insertScte35(spliceNull()); // the input's own cues on the PID, before and after ours
    before.push(...datagrams(gen, 40));
    const outBefore = pushAll(inserter, before);
    expect(concat(before)).toEqual(outBefore);

    const cue = encodeOperatorCue({ command: "splice_insert", duration_s: 30 }, 42);
    const result = insertOk(inserter, cue);
    expect(result.pid).toBe(gen.scte35Pid);
    expect(inserter.active).toBe(true);
    const inserted = packetsOf(result.packets);
    expect(inserted).toHaveLength(1);
    expect(inserted.every((p) => pidOf(p) === gen.scte35Pid)).toBe(true);
    expect(sectionsOn(result.packets, gen.scte35Pid)).toEqual([cue]);
    // A second cue right after the first, then more input with its own cues.
    const second = insertOk(inserter, encodeOperatorCue({ command: "time_signal" }, 43));

    const after: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) {
      gen.insertScte35(timeSignal(1000 * i));
      after.push(...datagrams(gen, 30));
    }
    const outAfter = pushAll(inserter, after);
    const output = concat([outBefore, result.packets, second.packets, outAfter]);
    expect(ccErrors(concat([...before, ...after]))).toEqual([]); // the input was fine
    expect(ccErrors(output)).toEqual([]);

    // Other PIDs byte for byte; the SCTE-35 PID differs only in its CC nibble.
    const input = packetsOf(concat(after));
    const out = packetsOf(outAfter);
    expect(out).toHaveLength(input.length);
    let shifted = 0;
    input.forEach((packet, i) => {
      const o = out[i] ?? new Uint8Array(0);
      if (pidOf(packet) !== gen.scte35Pid) expect(o).toEqual(packet);
      else {
        shifted++;
        expect(o.subarray(4)).toEqual(packet.subarray(4));
        expect(o.subarray(0, 3)).toEqual(packet.subarray(0, 3));
        expect((o[3] ?? 0) & 0xf0).toBe((packet[3] ?? 0) & 0xf0);
        expect(ccOf(o)).toBe((ccOf(packet) + 2) & 0x0f);
      }
    });
    expect(shifted).toBeGreaterThan(0);
    // The SCTE-35 PID carries the input's cues and ours, in order.
    expect(sectionsOn(output, gen.scte35Pid).map((s) => commandType(decoded(s)))).toEqual([
      0, 5, 6, 6, 6, 6, 6, 6,
    ]);
  });

  it("a PID listed in the PMT but not carried yet: our CCs start it, and the input's later packets follow them", () => {
    const scte = 0x1f0;
    const pmt = buildPmt({
      ...plainPmtSpec,
      programInfo: CUEI_REGISTRATION,
      streams: [...plainPmtSpec.streams, { streamType: 0x86, pid: scte }],
    });
    const mux = new Mux();
    const inserter = makeCueInserter();
    const first = pushAll(inserter, plainInput(mux, 3, pmt));
    const result = insertOk(inserter, encodeOperatorCue({ command: "splice_insert" }, 1));
    expect(result.pid).toBe(scte);
    // The input's own SCTE-35 packets start at some CC of theirs, the first without a payload.
    mux.adaptationOnly(scte);
    for (let i = 0; i < 6; i++) mux.sections(scte, [spliceNull()]);
    const later = mux.take();
    const rest = pushAll(inserter, [later, ...plainInput(mux, 2, pmt)]);
    const output = concat([first, result.packets, rest]);
    expect(ccErrors(output)).toEqual([]);
    expect(sectionsOn(output, scte)).toHaveLength(7);
    // The input's first packet on the PID had CC 0, like ours: without the shift this would be a repeat.
    expect(ccOf(packetsOf(later)[1] ?? new Uint8Array(0))).toBe(0);
  });

  it("keeps the input's own continuity errors and duplicates on that PID as they were", () => {
    const gen = new TsGenerator({ seed: 9 });
    const inserter = makeCueInserter();
    gen.insertScte35(spliceNull());
    const outBefore = pushAll(inserter, datagrams(gen, 30));
    const result = insertOk(inserter, encodeOperatorCue({ command: "splice_insert" }, 1));
    const after: Uint8Array[] = [];
    // The input's very next packet on the PID skips a count: the output skips it too.
    gen.injectCcGap(gen.scte35Pid);
    gen.insertScte35(spliceNull());
    after.push(...datagrams(gen, 10));
    gen.insertScte35(spliceNull());
    after.push(...datagrams(gen, 10));
    gen.injectDuplicate(gen.scte35Pid);
    gen.insertScte35(spliceNull());
    after.push(...datagrams(gen, 10));
    gen.insertScte35(spliceNull());
    after.push(...datagrams(gen, 10));
    const output = concat([outBefore, result.packets, pushAll(inserter, after)]);
    const ccs = packetsOf(output)
      .filter((p) => pidOf(p) === gen.scte35Pid)
      .map(ccOf);
    expect(ccs).toEqual([0, 1, 3, 4, 5, 5, 6]);
    expect(ccErrors(output)).toEqual([expect.stringContaining("CC 3 after 1")]);
  });

  it("picks the programme asked for, else the first in the PAT", () => {
    const twoPat = buildPat({
      programs: [
        { program: 5, pmtPid: 0x1005 },
        { program: 9, pmtPid: 0x1009 },
      ],
    });
    const pmt5 = buildPmt({ program: 5, pcrPid: 0x105, streams: [{ streamType: 0x86, pid: 0x505 }] });
    const pmt9 = buildPmt({ program: 9, pcrPid: 0x109, streams: [{ streamType: 0x86, pid: 0x509 }] });
    const inserter = makeCueInserter();
    inserter.push(new Mux().sections(0, [twoPat]).sections(0x1005, [pmt5]).sections(0x1009, [pmt9]).take());
    const cue = encodeOperatorCue({ command: "splice_insert" }, 1);
    expect(insertOk(inserter, cue, null).pid).toBe(0x505);
    expect(insertOk(inserter, cue, 9).pid).toBe(0x509);
    expect(insertOk(inserter, cue, 5).pid).toBe(0x505);
  });
});

// ---------------------------------------------------------------------------- input without a SCTE-35 PID

describe("makeCueInserter: the input has no SCTE-35 PID", () => {
  const run = (pmt: Uint8Array, section: Uint8Array) => {
    const mux = new Mux();
    const inserter = makeCueInserter();
    const before = plainInput(mux, 3, pmt);
    const outBefore = pushAll(inserter, before);
    const result = insertOk(inserter, section);
    const after = plainInput(mux, 6, pmt);
    const outAfter = pushAll(inserter, after);
    return {
      inserter,
      before,
      after,
      outBefore,
      outAfter,
      result,
      output: concat([outBefore, result.packets, outAfter]),
    };
  };

  it("adds PID 500 to the PMT (0x86, CUEI registration, new version and CRC) and carries exactly the cue on it", () => {
    const cue = encodeOperatorCue({ command: "time_signal", duration_s: 120 }, 8);
    const { result, output, outAfter, after } = run(plainPmt, cue);
    expect(result.pid).toBe(500);
    expect(ccErrors(output)).toEqual([]);

    // Exactly the cue on PID 500.
    expect(sectionsOn(output, 500)).toEqual([cue]);
    const cuePackets = packetsOf(result.packets).filter((p) => pidOf(p) === 500);
    expect(cuePackets).toHaveLength(1);
    expect(cuePackets[0]?.subarray(0, 5)).toEqual(Uint8Array.of(0x47, 0x41, 0xf4, 0x10, 0x00));

    // The PMT before the insert is the input's; every one from the insert on (its own first) is ours.
    const pmts = sectionsOn(output, PMT_PID);
    expect(pmts).toHaveLength(3 + 1 + 6);
    for (const sec of pmts.slice(0, 3)) expect(sec).toEqual(plainPmt);
    const expected = parsePmt(plainPmt);
    for (const sec of pmts.slice(3)) {
      const pmt = parsePmt(sec);
      expect(pmt.crcOk).toBe(true);
      expect(pmt.version).toBe(3 ^ 0x10);
      expect(pmt.program).toBe(1);
      expect(pmt.programInfo).toEqual(CUEI_REGISTRATION);
      expect(pmt.streams).toEqual([
        ...expected.streams,
        { streamType: 0x86, pid: 500, descriptors: new Uint8Array(0) },
      ]);
      expect(sec.subarray(8, 10)).toEqual(plainPmt.subarray(8, 10)); // PCR PID
    }
    // The rewritten PMT is sent with the first cue, ahead of it.
    expect(packetsOf(result.packets).map(pidOf)).toEqual([PMT_PID, 500]);

    // Every packet not on the PMT PID is the input's, byte for byte and in order.
    const notPmt = (ts: Uint8Array) => packetsOf(ts).filter((p) => pidOf(p) !== PMT_PID);
    expect(notPmt(outAfter)).toEqual(notPmt(concat(after)));
    // The rewritten PMT fits the packet the input's took, so its CCs are the input's.
    const pmtCcs = (ts: Uint8Array) =>
      packetsOf(ts)
        .filter((p) => pidOf(p) === PMT_PID)
        .map(ccOf);
    expect(pmtCcs(outAfter)).toEqual(pmtCcs(concat(after)).map((cc) => (cc + 1) & 0x0f));
  });

  it("keeps a CUEI registration the PMT already has, and its other descriptors", () => {
    const language = Uint8Array.of(0x0a, 4, 0x65, 0x6e, 0x67, 0);
    const pmtIn = buildPmt({ ...plainPmtSpec, programInfo: concat([language, CUEI_REGISTRATION]) });
    const { output } = run(pmtIn, encodeOperatorCue({ command: "splice_insert" }, 1));
    const last = sectionsOn(output, PMT_PID).at(-1) ?? new Uint8Array(0);
    const pmt = parsePmt(last);
    expect(pmt.crcOk).toBe(true);
    expect(pmt.programInfo).toEqual(concat([language, CUEI_REGISTRATION]));
    expect(pmt.streams.at(-1)).toEqual({ streamType: 0x86, pid: 500, descriptors: new Uint8Array(0) });
  });

  it("puts the registration first when program_info has other descriptors only", () => {
    const other = Uint8Array.of(0x09, 4, 0x01, 0x00, 0xe1, 0x23);
    const pmtIn = buildPmt({ ...plainPmtSpec, programInfo: other });
    const { output } = run(pmtIn, encodeOperatorCue({ command: "splice_insert" }, 1));
    const pmt = parsePmt(sectionsOn(output, PMT_PID).at(-1) ?? new Uint8Array(0));
    expect(pmt.programInfo).toEqual(concat([CUEI_REGISTRATION, other]));
  });

  it("a PMT that no longer fits its packets gets one more, and the PMT PID's CCs stay continuous", () => {
    // A 180-byte section and its pointer_field fill one packet; 11 bytes more need two.
    const filler = new Uint8Array(180 - 12 - 5 - 4);
    filler[0] = 0x80;
    filler[1] = filler.length - 2;
    const pmtIn = buildPmt({
      ...plainPmtSpec,
      streams: [{ streamType: 0x1b, pid: VIDEO_PID, descriptors: filler }],
    });
    expect(pmtIn.length).toBe(180);
    const { output, outAfter, after, result } = run(
      pmtIn,
      encodeOperatorCue({ command: "splice_insert" }, 1),
    );
    expect(ccErrors(output)).toEqual([]);
    // An adaptation-only packet on the PMT PID keeps its place, with the CC of the packet before it.
    const mux = new Mux();
    const inserter = makeCueInserter();
    const first = pushAll(inserter, plainInput(mux, 2, pmtIn));
    const cue = insertOk(inserter, encodeOperatorCue({ command: "splice_insert" }, 1));
    const rest = pushAll(inserter, [mux.adaptationOnly(PMT_PID).take(), ...plainInput(mux, 2, pmtIn)]);
    expect(ccErrors(concat([first, cue.packets, rest]))).toEqual([]);
    expect(packetsOf(rest).filter((p) => pidOf(p) === PMT_PID && !hasPayload(p))).toHaveLength(1);
    const pmtPackets = (ts: Uint8Array) => packetsOf(ts).filter((p) => pidOf(p) === PMT_PID).length;
    expect(pmtPackets(outAfter)).toBe(2 * pmtPackets(concat(after)));
    expect(pmtPackets(result.packets)).toBe(2);
    const pmts = sectionsOn(output, PMT_PID);
    for (const sec of pmts.slice(3)) {
      const pmt = parsePmt(sec);
      expect(pmt.crcOk).toBe(true);
      expect(pmt.streams.at(-1)?.pid).toBe(500);
    }
    const notPmt = (ts: Uint8Array) => packetsOf(ts).filter((p) => pidOf(p) !== PMT_PID);
    expect(notPmt(outAfter)).toEqual(notPmt(concat(after)));
  });

  it("a PMT split over packets and chunks is rewritten whole", () => {
    const filler = new Uint8Array(300);
    filler[0] = 0x80;
    filler[1] = 255;
    filler[257] = 0x81;
    filler[258] = 41;
    const pmtIn = buildPmt({ ...plainPmtSpec, programInfo: filler });
    const mux = new Mux();
    const inserter = makeCueInserter();
    const outBefore = pushAll(inserter, plainInput(mux, 2, pmtIn));
    const result = insertOk(inserter, encodeOperatorCue({ command: "splice_insert" }, 1));
    // One packet per chunk: each PMT's two packets come in different pushes.
    const after = packetsOf(concat(plainInput(mux, 4, pmtIn)));
    const outAfter = pushAll(inserter, after);
    const output = concat([outBefore, result.packets, outAfter]);
    expect(ccErrors(output)).toEqual([]);
    const pmts = sectionsOn(output, PMT_PID).slice(2);
    expect(pmts).toHaveLength(5);
    for (const sec of pmts) {
      const pmt = parsePmt(sec);
      expect(pmt.crcOk).toBe(true);
      expect(pmt.programInfo).toEqual(concat([CUEI_REGISTRATION, filler]));
      expect(pmt.streams.at(-1)?.pid).toBe(500);
    }
  });

  it("a lost or repeated packet inside a PMT does not make a broken PMT of ours", () => {
    const filler = new Uint8Array(400);
    filler[0] = 0x80;
    filler[1] = 255;
    filler[257] = 0x81;
    filler[258] = 141;
    const pmtIn = buildPmt({ ...plainPmtSpec, programInfo: filler });
    const mux = new Mux();
    const inserter = makeCueInserter();
    pushAll(inserter, plainInput(mux, 1, pmtIn));
    const result = insertOk(inserter, encodeOperatorCue({ command: "splice_insert" }, 1));
    // A PMT in three packets that loses its middle one, then one whose middle one comes twice, then a whole one.
    mux.sections(PMT_PID, [pmtIn]).lose(2).video(VIDEO_PID, 2);
    mux.sections(PMT_PID, [pmtIn]).duplicate(2).video(VIDEO_PID, 2);
    const damaged = mux.take();
    expect(packetsOf(damaged).filter((p) => pidOf(p) === PMT_PID)).toHaveLength(6);
    const rest = pushAll(inserter, [damaged, ...plainInput(mux, 1, pmtIn)]);
    const sections = sectionsOn(concat([result.packets, rest]), PMT_PID);
    // Ours at the insert, the one with the duplicate, the whole one: the damaged one is dropped.
    expect(sections).toHaveLength(3);
    for (const sec of sections) {
      const pmt = parsePmt(sec);
      expect(pmt.crcOk).toBe(true);
      expect(pmt.streams.at(-1)?.pid).toBe(500);
    }
  });

  it("chooses the highest free PID below 0x1FF0 when 500 is taken, and skips used ones", () => {
    const pmtIn = buildPmt({
      ...plainPmtSpec,
      streams: [...plainPmtSpec.streams, { streamType: 0x06, pid: 500 }, { streamType: 0x06, pid: 0x1ff0 }],
    });
    const { result, output } = run(pmtIn, encodeOperatorCue({ command: "splice_insert" }, 1));
    expect(result.pid).toBe(0x1fef);
    expect(parsePmt(sectionsOn(output, PMT_PID).at(-1) ?? new Uint8Array(0)).streams.at(-1)?.pid).toBe(
      0x1fef,
    );
  });

  it("never takes a PID the input carries that no table lists, seen in its packets or told by the core", () => {
    // Unlisted data on PID 500 (a private stream the PMT leaves out), seen by push() before the insert.
    const mux = new Mux();
    const inserter = makeCueInserter();
    for (const chunk of plainInput(mux, 2)) inserter.push(chunk);
    inserter.push(mux.video(500, 2).take());
    expect(insertOk(inserter, encodeOperatorCue({ command: "splice_insert" }, 1)).pid).toBe(0x1ff0);

    // The same PID known only from the channel's core (the channel's fast path pushes nothing until then).
    const told = makeCueInserter();
    told.teach(concat(plainInput(new Mux(), 1)));
    told.noteCc(500, 3);
    told.noteCc(0x1ff0, 9);
    expect(insertOk(told, encodeOperatorCue({ command: "splice_insert" }, 1)).pid).toBe(0x1fef);
  });

  it("later inserts go on the same added PID, continuing its CCs; the PMT is sent again only with the first", () => {
    const { inserter, output } = run(plainPmt, encodeOperatorCue({ command: "splice_insert" }, 1));
    const again = insertOk(inserter, encodeOperatorCue({ command: "splice_insert", out: false }, 2));
    expect(again.pid).toBe(500);
    expect(packetsOf(again.packets).map(pidOf)).toEqual([500]);
    expect(ccErrors(concat([output, again.packets]))).toEqual([]);
    expect(ccOf(packetsOf(again.packets)[0] ?? new Uint8Array(0))).toBe(1);
  });

  it("when a new PMT version brings its own SCTE-35 PID, the input's PMT goes out as it is and cues go there", () => {
    const cue = encodeOperatorCue({ command: "splice_insert" }, 1);
    const { inserter, output } = run(plainPmt, cue);
    const theirs = buildPmt({
      ...plainPmtSpec,
      version: 4,
      streams: [...plainPmtSpec.streams, { streamType: 0x86, pid: 0x1f0 }],
    });
    const mux = new Mux();
    // Continue the input's CCs: replay its rounds so far on a fresh mux, then the new version.
    plainInput(mux, 9);
    const next = pushAll(inserter, plainInput(mux, 3, theirs));
    const all = concat([output, next]);
    expect(ccErrors(all)).toEqual([]);
    const lastPmts = sectionsOn(next, PMT_PID);
    expect(lastPmts).toHaveLength(3);
    for (const sec of lastPmts) expect(sec).toEqual(theirs);
    const later = insertOk(inserter, cue);
    expect(later.pid).toBe(0x1f0);
    expect(packetsOf(later.packets).map(pidOf)).toEqual([0x1f0]);
  });

  it("keeps other programmes' PMTs on a shared PMT PID as they are", () => {
    const sharedPat = buildPat({
      programs: [
        { program: 1, pmtPid: PMT_PID },
        { program: 2, pmtPid: PMT_PID },
      ],
    });
    const pmt2 = buildPmt({ program: 2, pcrPid: 0x200, streams: [{ streamType: 0x1b, pid: 0x200 }] });
    const mux = new Mux();
    const inserter = makeCueInserter();
    const round = () =>
      mux.sections(0, [sharedPat]).sections(PMT_PID, [plainPmt, pmt2]).video(VIDEO_PID, 3).take();
    const outBefore = pushAll(inserter, [round()]);
    const result = insertOk(inserter, encodeOperatorCue({ command: "splice_insert" }, 1), 1);
    expect(result.pid).toBe(500);
    const outAfter = pushAll(inserter, [round(), round()]);
    const output = concat([outBefore, result.packets, outAfter]);
    expect(ccErrors(output)).toEqual([]);
    const sections = sectionsOn(outAfter, PMT_PID);
    expect(sections).toHaveLength(4);
    expect(sections.filter((s) => parsePmt(s).program === 2)).toEqual([pmt2, pmt2]);
    expect(
      sections.filter((s) => parsePmt(s).program === 1).map((s) => parsePmt(s).streams.at(-1)?.pid),
    ).toEqual([500, 500]);
  });
});

// ------------------------------------------------------------------------------------------------ garbage

describe("makeCueInserter: malformed input", () => {
  const garbage = (seed: number): Uint8Array[] => {
    const random = prng(seed);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < 400; i++) {
      const length = random() < 0.3 ? Math.floor(random() * 2000) : 7 * PACKET;
      const chunk = Uint8Array.from({ length }, () => Math.floor(random() * 256));
      // Mostly sync bytes, PSI and SCTE-35 PIDs, PUSI: the parsers get to see it.
      for (let at = 0; at + 4 <= length; at += PACKET) {
        if (random() < 0.9) chunk[at] = 0x47;
        const pid = [0, PMT_PID, 500, 0x1f0, VIDEO_PID][Math.floor(random() * 5)] ?? 0;
        chunk[at + 1] = (random() < 0.5 ? 0x40 : 0) | (pid >> 8);
        chunk[at + 2] = pid & 0xff;
      }
      chunks.push(chunk);
    }
    return chunks;
  };

  it("never throws, before or after an insert, and keeps the bytes it does not understand", () => {
    const mux = new Mux();
    const inserter = makeCueInserter();
    for (const chunk of garbage(1)) expect(inserter.push(chunk)).toBe(chunk);
    pushAll(inserter, plainInput(mux, 2));
    insertOk(inserter, encodeOperatorCue({ command: "splice_insert" }, 1));
    for (const chunk of garbage(2)) {
      const out = inserter.push(chunk);
      // Only whole, synced packets can be touched; the rest goes out as it came.
      const tail = chunk.length % PACKET;
      if (tail > 0) expect(out.subarray(out.length - tail)).toEqual(chunk.subarray(chunk.length - tail));
    }
    expect(() => inserter.insert(new Uint8Array(0), null)).not.toThrow();
    expect(() => inserter.insert(new Uint8Array(5000), 1)).not.toThrow();
    expect(() => inserter.push(new Uint8Array(0))).not.toThrow();
  });

  it("a truncated or inconsistent PMT is not learned and not rewritten", () => {
    const inserter = makeCueInserter();
    // program_info_length larger than the section, with a correct CRC.
    const bad = plainPmt.slice(0, -4);
    bad[10] = 0xf3;
    bad[11] = 0xff;
    const crc = crc32Mpeg2(bad);
    const badPmt = concat([
      bad,
      Uint8Array.of(crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff),
    ]);
    inserter.push(new Mux().sections(0, [pat]).sections(PMT_PID, [badPmt]).take());
    expect(inserter.insert(encodeOperatorCue({ command: "splice_insert" }, 1), null)).toHaveProperty(
      "refused",
    );
  });
});
