/**
 * "Insert a break now", the pure part: the operator's cue as a splice_info_section, and the channel-level
 * stage that puts it on the input's SCTE-35 PID (adding one to the PMT when the input has none).
 *
 *   const inserter = makeCueInserter()
 *   every chunk:  send(inserter.push(chunk))   (the chunk itself until the first insert)
 *   on request:   const r = inserter.insert(encodeOperatorCue(body, eventId), body.program ?? null)
 *                 if ("packets" in r) send(r.packets)
 *
 * Learning (always, cheap): push() reads each packet's PID and looks it up in one table; only PSI PIDs (the
 * PAT, the PMTs it lists) are parsed, and only the SCTE-35 and PMT PIDs have their last continuity counter noted.
 *
 * After the first insert:
 * - the SCTE-35 PID's later input packets keep their bytes but their CC is shifted by the number of packets
 *   inserted on it, so its counters stay continuous;
 * - when the programme had no SCTE-35 PID, one is chosen (500, else the highest free below 0x1FF0; a PID the
 *   input carries counts as used even when no table lists it) and the
 *   programme's PMT PID is re-packetized from its sections: that PMT gains an elementary stream entry
 *   (stream_type 0x86, no descriptors), a CUEI registration_descriptor at the start of program_info if it has
 *   none, version_number XOR 0x10 and a new CRC; other sections on that PID go out as they came, each starting
 *   a packet. Its counters continue from the input's, so they keep the input's values as long as no section
 *   needs more packets than before. A PMT that gains its own 0x86 entry goes out unchanged, and later inserts
 *   use its PID.
 * Nothing else in the input changes. insert() of the first cue on an added PID also returns the rewritten PMT
 * ahead of the cue, so that receivers know the PID before the cue arrives on it.
 */
import { type CueInsertBody, DEFAULT_SEGMENTATION_TYPE } from "../domain/cue-insert.ts";
import { encodeSection } from "./scte35/encode.ts";
import { CUEI_IDENTIFIER, type SectionHeader } from "./scte35/types.ts";
import {
  crc32Mpeg2,
  MAX_PSI_SECTION_LENGTH,
  MAX_SECTION,
  NULL_PID,
  nextCc,
  PACKET,
  PID_COUNT,
  PTS_HZ,
  pidAt,
  readPat,
  readPmt,
  STREAM_TYPE_SCTE35,
  SYNC,
  sameBytes,
  sectionLength,
  sectionPacketCount,
  u16,
  writeCrc,
  writeSectionPackets,
} from "./ts/index.ts";

const PREFERRED_PID = 0x01f4;
const HIGHEST_PID = 0x1ff0;
const LOWEST_PID = 0x0020;

const NOT_YET = "the input's PMT has not been seen yet: nothing to insert into";

const header = {
  table_id: 0xfc,
  section_syntax_indicator: false,
  private_indicator: false,
  sap_type: 3,
  section_length: 0,
  protocol_version: 0,
  encryption_algorithm: 0,
  pts_adjustment: 0,
  cw_index: 0,
  tier: 0xfff,
  splice_command_length: 0,
  crc32: "0x00000000",
} as const satisfies SectionHeader;

/** Encodes the operator's cue: a splice_info_section (CRC included). */
export const encodeOperatorCue = (body: CueInsertBody, eventId: number): Uint8Array => {
  const duration = body.duration_s === undefined ? undefined : Math.round(body.duration_s * PTS_HZ);
  const at = body.at_pts;
  if (body.command === "splice_insert") {
    return encodeSection({
      ...header,
      encrypted_packet: false,
      splice_command_type: 0x05,
      splice_command: {
        splice_event_id: eventId,
        splice_event_cancel_indicator: false,
        out_of_network_indicator: body.out ?? true,
        program_splice_flag: true,
        duration_flag: duration !== undefined,
        splice_immediate_flag: at === undefined,
        event_id_compliance_flag: true,
        ...(at === undefined ? {} : { time_specified_flag: true, pts_time: at }),
        ...(duration === undefined ? {} : { break_duration: { auto_return: true, duration } }),
        unique_program_id: 0,
        avail_num: 0,
        avails_expected: 0,
      },
      descriptor_loop_length: 0,
      descriptors: [],
    });
  }
  return encodeSection({
    ...header,
    encrypted_packet: false,
    splice_command_type: 0x06,
    splice_command:
      at === undefined ? { time_specified_flag: false } : { time_specified_flag: true, pts_time: at },
    descriptor_loop_length: 0,
    descriptors: [
      {
        splice_descriptor_tag: 0x02,
        descriptor_length: 0,
        identifier: CUEI_IDENTIFIER,
        segmentation_event_id: eventId,
        segmentation_event_id_compliance_indicator: true,
        segmentation_event_cancel_indicator: false,
        program_segmentation_flag: true,
        segmentation_duration_flag: duration !== undefined,
        delivery_not_restricted_flag: true,
        ...(duration === undefined ? {} : { segmentation_duration: duration }),
        segmentation_upid_type: 0,
        segmentation_upid_length: 0,
        segmentation_upid: { format: "none" },
        segmentation_type_id: body.segmentation_type ?? DEFAULT_SEGMENTATION_TYPE,
        segment_num: 0,
        segments_expected: 0,
      },
    ],
  });
};

export interface CueInserter {
  /** Channel-level stage on the packets going to every output. Returns the chunk to deliver: `chunk` itself while the inserter has changed nothing yet (no insert so far), else a view into its own reusable memory, valid until the next call. Never throws on malformed input. */
  push(chunk: Uint8Array): Uint8Array;
  /** Puts one section on the SCTE-35 PID of `program` (null: the first programme in the PAT). Returns the TS packets to send now (whole packets, CCs set), and the PID used; or a refusal in words when the stream's PAT/PMT are not known yet or the programme is not there. */
  insert(
    section: Uint8Array,
    program: number | null,
  ): { readonly packets: Uint8Array; readonly pid: number } | { readonly refused: string };
  /**
   * Learns the PAT and PMTs from packets made again from the channel core's tables (psi-build.ts) while push()
   * is not called (before the first insert, the channel keeps its fast path): their CCs are not noted.
   */
  teach(packets: Uint8Array): void;
  /**
   * The input carries `pid`, and the last CC it sent on it was `cc`, as the channel's core saw it: inserted
   * packets continue from it, and an added SCTE-35 PID is never one the input carries.
   */
  noteCc(pid: number, cc: number): void;
  /** Whether push() has any work to do (false until the first insert): the channel keeps its fast path while false. */
  readonly active: boolean;
  /** Once active: the CC of the last packet that left this stage on each PID whose counters it keeps. */
  lastCc(): ReadonlyMap<number, number>;
}

/** PID roles, one byte per PID. */
const PSI = 1;
/** Its CC is noted (and, once active, shifted). */
const TRACK = 2;
/** Its packets are replaced by its sections, re-packetized (a PMT PID that gets our SCTE-35 entry). */
const REPACK = 4;

interface KnownPmt {
  readonly pid: number;
  /** The input's section, CRC included. */
  readonly section: Uint8Array;
  /** Its first stream_type 0x86 PID, or -1. */
  readonly scte35Pid: number;
  /** PCR PID and elementary PIDs. */
  readonly pids: ReadonlyArray<number>;
}

/** Reassembles the sections of one PID; `len` bytes of a section in progress (0: none). */
interface Assembler {
  readonly buf: Uint8Array;
  len: number;
  total: number;
  lastCc: number;
}

/** A whole section's bytes are `sec` (CRC included) and it is a current section_syntax section of length ok. */
const crcOk = (sec: Uint8Array): boolean => sec.length >= 12 && crc32Mpeg2(sec) === 0;

const hasCueiRegistration = (sec: Uint8Array, from: number, to: number): boolean => {
  for (let at = from; at + 2 <= to; ) {
    const tag = sec[at] ?? 0;
    const length = sec[at + 1] ?? 0;
    if (
      tag === 0x05 &&
      length >= 4 &&
      at + 6 <= to &&
      sec[at + 2] === 0x43 &&
      sec[at + 3] === 0x55 &&
      sec[at + 4] === 0x45 &&
      sec[at + 5] === 0x49
    )
      return true;
    at += 2 + length;
  }
  return false;
};

/** The PMT's PCR PID and elementary PIDs and its first SCTE-35 PID (-1: none); null when its loop does not add up. */
const pmtPids = (sec: Uint8Array): { infoEnd: number; scte35Pid: number; pids: number[] } | null => {
  const pmt = readPmt(sec);
  if (pmt === null || !pmt.whole) return null;
  const scte35 = pmt.streams.find((s) => s.streamType === STREAM_TYPE_SCTE35);
  return {
    infoEnd: pmt.infoEnd,
    scte35Pid: scte35?.pid ?? -1,
    pids: [pmt.pcrPid, ...pmt.streams.map((s) => s.pid)],
  };
};

/**
 * The PMT `sec` with an elementary stream entry for `pid` (stream_type 0x86), a CUEI registration at the start
 * of program_info if it has none, version XOR 0x10, and its CRC; null when it already has an 0x86 entry, does
 * not parse, or would grow beyond a PMT's size.
 */
const rewritePmt = (sec: Uint8Array, pid: number): Uint8Array | null => {
  const pmt = pmtPids(sec);
  if (pmt === null || pmt.scte35Pid >= 0) return null;
  const loopEnd = sec.length - 4;
  const registration = hasCueiRegistration(sec, 12, pmt.infoEnd) ? 0 : 6;
  const out = new Uint8Array(sec.length + registration + 5);
  const sectionLength = out.length - 3;
  if (sectionLength > MAX_PSI_SECTION_LENGTH) return null;
  out.set(sec.subarray(0, 12));
  out[1] = ((sec[1] ?? 0) & 0xf0) | (sectionLength >> 8);
  out[2] = sectionLength & 0xff;
  const versionByte = sec[5] ?? 0;
  out[5] = (versionByte & 0xc1) | ((((versionByte >> 1) & 0x1f) ^ 0x10) << 1);
  const programInfoLength = pmt.infoEnd - 12 + registration;
  out[10] = ((sec[10] ?? 0) & 0xf0) | (programInfoLength >> 8);
  out[11] = programInfoLength & 0xff;
  let at = 12;
  if (registration > 0) {
    out.set([0x05, 0x04, 0x43, 0x55, 0x45, 0x49], at);
    at += registration;
  }
  out.set(sec.subarray(12, loopEnd), at);
  at += loopEnd - 12;
  out.set([STREAM_TYPE_SCTE35, 0xe0 | (pid >> 8), pid & 0xff, 0xf0, 0x00], at);
  writeCrc(out, at + 5);
  return out;
};

export const makeCueInserter = (): CueInserter => {
  const roles = new Uint8Array(PID_COUNT);
  roles[0] = PSI;
  /** Last CC that went out on a TRACK PID (-1: none seen); the shift applied to its input CCs. */
  const lastOut = new Int8Array(PID_COUNT).fill(-1);
  const shift = new Uint8Array(PID_COUNT);
  /** An input packet seen on the PID since it was tracked. */
  const seen = new Uint8Array(PID_COUNT);
  /** PIDs the input carries, listed in a table or not: never chosen for an added SCTE-35 PID. */
  const present = new Uint8Array(PID_COUNT);
  /** Packets inserted before any input packet was seen: the shift is set by the next input packet. */
  const pending = new Uint8Array(PID_COUNT);
  const assemblers = new Map<number, Assembler>();
  /** The PAT's programmes (not the NIT's entry 0) and their PMT PIDs. */
  let pat: ReadonlyArray<{ readonly program: number; readonly pmtPid: number }> | null = null;
  const pmts = new Map<number, KnownPmt>();
  /** Programme → the SCTE-35 PID chosen for it. */
  const added = new Map<number, number>();
  let active = false;
  let out = new Uint8Array(64 * PACKET);
  let q = 0;

  const ensure = (bytes: number): void => {
    if (q + bytes <= out.length) return;
    const bigger = new Uint8Array(Math.max(out.length * 2, q + bytes));
    bigger.set(out.subarray(0, q));
    out = bigger;
  };

  /** The CC of the next packet we put on `pid`. */
  const takeCc = (pid: number): number => {
    const last = lastOut[pid] ?? -1;
    const cc = last < 0 ? 0 : nextCc(last);
    lastOut[pid] = cc;
    if (seen[pid] === 1) shift[pid] = nextCc(shift[pid] ?? 0);
    else pending[pid] = 1;
    return cc;
  };

  /** Writes `section` as packets on `pid` at `target[at]`, CCs continuing. */
  const writeSection = (target: Uint8Array, at: number, section: Uint8Array, pid: number): number =>
    writeSectionPackets(target, at, section, pid, () => takeCc(pid));

  const track = (pid: number): void => {
    if (((roles[pid] ?? 0) & TRACK) === 0) {
      roles[pid] = (roles[pid] ?? 0) | TRACK;
      seen[pid] = 0;
    }
  };

  const learnPat = (sec: Uint8Array): void => {
    if (((sec[5] ?? 0) & 1) === 0 || sec[6] !== 0) return;
    const entries: Array<{ program: number; pmtPid: number }> = [];
    for (const { program, pid: pmtPid } of readPat(sec)?.programs ?? []) {
      if (program === 0) continue;
      entries.push({ program, pmtPid });
      roles[pmtPid] = (roles[pmtPid] ?? 0) | PSI;
      track(pmtPid);
    }
    pat = entries;
  };

  const learnPmt = (pid: number, sec: Uint8Array): void => {
    if (((sec[5] ?? 0) & 1) === 0 || sec[6] !== 0) return;
    const parsed = pmtPids(sec);
    if (parsed === null) return;
    const program = u16(sec, 3);
    const known = pmts.get(program);
    if (known !== undefined && known.pid === pid && sameBytes(known.section, sec)) return;
    pmts.set(program, { pid, section: sec.slice(), scte35Pid: parsed.scte35Pid, pids: parsed.pids });
    if (parsed.scte35Pid >= 0) track(parsed.scte35Pid);
  };

  /** A section has been reassembled on `pid` (a view, valid during the call). */
  const onSection = (pid: number, sec: Uint8Array): void => {
    const role = roles[pid] ?? 0;
    const intact = crcOk(sec) && ((sec[1] ?? 0) & 0x80) !== 0;
    if (intact) {
      if (pid === 0 && sec[0] === 0x00) learnPat(sec);
      else if (sec[0] === 0x02) learnPmt(pid, sec);
    }
    if ((role & REPACK) === 0) return;
    let section = sec;
    if (intact && sec[0] === 0x02) {
      const ours = added.get(u16(sec, 3));
      if (ours !== undefined) section = rewritePmt(sec, ours) ?? sec;
    }
    ensure(sectionPacketCount(section) * PACKET);
    q += writeSection(out, q, section, pid);
  };

  const assemblerOf = (pid: number): Assembler => {
    let a = assemblers.get(pid);
    if (a === undefined) {
      a = { buf: new Uint8Array(MAX_SECTION), len: 0, total: 0, lastCc: -1 };
      assemblers.set(pid, a);
    }
    return a;
  };

  /** Adds `data[s, end)` to sections on `pid`; with `startNew`, a new section may begin once one ends. */
  const consume = (
    a: Assembler,
    pid: number,
    data: Uint8Array,
    s: number,
    end: number,
    startNew: boolean,
  ) => {
    let at = s;
    while (at < end) {
      if (a.len === 0) {
        if (!startNew || data[at] === 0xff) return;
      }
      const want = a.total === 0 ? 3 - a.len : a.total - a.len;
      const n = Math.min(want, end - at);
      a.buf.set(data.subarray(at, at + n), a.len);
      a.len += n;
      at += n;
      if (a.total === 0 && a.len >= 3) a.total = 3 + sectionLength(a.buf);
      if (a.total > 0 && a.len >= a.total) {
        const total = a.total;
        a.len = 0;
        a.total = 0;
        onSection(pid, a.buf.subarray(0, total));
        if (!startNew) return;
      }
    }
  };

  /** One input packet at `data[p]` on a PSI PID. */
  const feed = (pid: number, data: Uint8Array, p: number): void => {
    const b3 = data[p + 3] ?? 0;
    if ((b3 & 0x10) === 0) return;
    const a = assemblerOf(pid);
    const cc = b3 & 0x0f;
    if (cc === a.lastCc) return; // a duplicate
    const continuous = a.lastCc < 0 || cc === nextCc(a.lastCc);
    a.lastCc = cc;
    if (!continuous) {
      a.len = 0;
      a.total = 0;
    }
    const end = p + PACKET;
    const start = (b3 & 0x20) !== 0 ? p + 5 + (data[p + 4] ?? 0) : p + 4;
    if (start >= end) return;
    if (((data[p + 1] ?? 0) & 0x40) === 0) {
      if (a.len > 0) consume(a, pid, data, start, end, false);
      return;
    }
    const pointer = data[start] ?? 0;
    const first = start + 1 + pointer;
    if (first > end) {
      a.len = 0;
      a.total = 0;
      return;
    }
    if (a.len > 0) consume(a, pid, data, start + 1, first, false);
    a.len = 0;
    a.total = 0;
    consume(a, pid, data, first, end, true);
  };

  const learnOnly = (chunk: Uint8Array): void => {
    const stop = chunk.length - PACKET;
    for (let p = 0; p <= stop; p += PACKET) {
      if (chunk[p] !== SYNC) continue;
      const pid = pidAt(chunk, p);
      present[pid] = 1;
      const role = roles[pid] ?? 0;
      if (role === 0) continue;
      if ((role & TRACK) !== 0) {
        lastOut[pid] = (chunk[p + 3] ?? 0) & 0x0f;
        seen[pid] = 1;
      }
      if ((role & PSI) !== 0) feed(pid, chunk, p);
    }
  };

  const rewrite = (chunk: Uint8Array): Uint8Array => {
    q = 0;
    ensure(chunk.length);
    const stop = chunk.length - PACKET;
    let p = 0;
    for (; p <= stop; p += PACKET) {
      const pid = chunk[p] === SYNC ? pidAt(chunk, p) : -1;
      if (pid >= 0) present[pid] = 1;
      const role = pid < 0 ? 0 : (roles[pid] ?? 0);
      if ((role & REPACK) === 0) {
        ensure(PACKET);
        out.set(chunk.subarray(p, p + PACKET), q);
        if ((role & TRACK) !== 0) {
          const b3 = chunk[p + 3] ?? 0;
          const cc = b3 & 0x0f;
          if (pending[pid] === 1) {
            shift[pid] = ((lastOut[pid] ?? 0) + ((b3 & 0x10) !== 0 ? 1 : 0) - cc) & 0x0f;
            pending[pid] = 0;
          }
          const shifted = (cc + (shift[pid] ?? 0)) & 0x0f;
          out[q + 3] = (b3 & 0xf0) | shifted;
          lastOut[pid] = shifted;
          seen[pid] = 1;
        }
        q += PACKET;
      } else {
        const b3 = chunk[p + 3] ?? 0;
        if ((b3 & 0x30) === 0x20) {
          // Adaptation only (a PCR, say): kept, with the CC of the packet before it.
          ensure(PACKET);
          out.set(chunk.subarray(p, p + PACKET), q);
          out[q + 3] = (b3 & 0xf0) | Math.max(0, lastOut[pid] ?? 0);
          q += PACKET;
        }
      }
      if ((role & PSI) !== 0) feed(pid, chunk, p);
    }
    if (p < chunk.length) {
      ensure(chunk.length - p);
      out.set(chunk.subarray(p), q);
      q += chunk.length - p;
    }
    return out.subarray(0, q);
  };

  const choosePid = (): number => {
    const used = new Set<number>([NULL_PID]);
    for (const entry of pat ?? []) used.add(entry.pmtPid);
    for (const pmt of pmts.values()) {
      used.add(pmt.pid);
      for (const pid of pmt.pids) used.add(pid);
    }
    for (const pid of added.values()) used.add(pid);
    const free = (pid: number) => !used.has(pid) && present[pid] !== 1;
    if (free(PREFERRED_PID)) return PREFERRED_PID;
    for (let pid = HIGHEST_PID; pid >= LOWEST_PID; pid--) if (free(pid)) return pid;
    return PREFERRED_PID;
  };

  const packetsOf = (parts: ReadonlyArray<{ section: Uint8Array; pid: number }>): Uint8Array => {
    const packets = new Uint8Array(
      parts.reduce((n, part) => n + sectionPacketCount(part.section) * PACKET, 0),
    );
    let at = 0;
    for (const part of parts) at += writeSection(packets, at, part.section, part.pid);
    return packets;
  };

  return {
    teach: (packets) => {
      for (let p = 0; p + PACKET <= packets.length; p += PACKET) {
        const pid = pidAt(packets, p);
        if (packets[p] === SYNC && ((roles[pid] ?? 0) & PSI) !== 0) feed(pid, packets, p);
      }
      // What was taught is whole: the input's next packets start afresh.
      for (const a of assemblers.values()) {
        a.len = 0;
        a.total = 0;
        a.lastCc = -1;
      }
    },
    noteCc: (pid, cc) => {
      present[pid] = 1;
      if (((roles[pid] ?? 0) & TRACK) === 0) return;
      lastOut[pid] = cc & 0x0f;
      seen[pid] = 1;
    },
    push: (chunk) => {
      try {
        if (!active) {
          learnOnly(chunk);
          return chunk;
        }
        return rewrite(chunk);
      } catch {
        // Not expected: every read above is bounded. The input goes out as it came rather than not at all.
        return chunk;
      }
    },
    insert: (section, program) => {
      if (pat === null) return { refused: NOT_YET };
      const programmes = pat;
      const entry = program === null ? programmes[0] : programmes.find((e) => e.program === program);
      if (entry === undefined) {
        if (program === null)
          return { refused: "the input's PAT lists no programme: nothing to insert into" };
        const listed = programmes.map((e) => e.program).join(", ");
        return {
          refused: `programme ${program} is not in the input's PAT (it has ${listed === "" ? "none" : listed})`,
        };
      }
      const pmt = pmts.get(entry.program);
      if (pmt === undefined || pmt.pid !== entry.pmtPid) return { refused: NOT_YET };
      active = true;
      if (pmt.scte35Pid >= 0) {
        return { packets: packetsOf([{ section, pid: pmt.scte35Pid }]), pid: pmt.scte35Pid };
      }
      const first = !added.has(entry.program);
      const pid = added.get(entry.program) ?? choosePid();
      added.set(entry.program, pid);
      track(pid);
      const parts: Array<{ section: Uint8Array; pid: number }> = [];
      if (((roles[pmt.pid] ?? 0) & REPACK) === 0) {
        roles[pmt.pid] = (roles[pmt.pid] ?? 0) | REPACK;
        // A section half sent as it came is not finished: the PMTs from now on are whole ones of ours.
        const a = assemblerOf(pmt.pid);
        a.len = 0;
        a.total = 0;
      }
      if (first) {
        // Receivers learn the new PID before its first cue.
        const pmtSection = rewritePmt(pmt.section, pid);
        if (pmtSection !== null) parts.push({ section: pmtSection, pid: pmt.pid });
      }
      parts.push({ section, pid });
      return { packets: packetsOf(parts), pid };
    },
    lastCc: () => {
      const last = new Map<number, number>();
      if (!active) return last;
      for (let pid = 0; pid < PID_COUNT; pid++)
        if (((roles[pid] ?? 0) & TRACK) !== 0 && (lastOut[pid] ?? -1) >= 0) last.set(pid, lastOut[pid] ?? 0);
      return last;
    },
    get active() {
      return active;
    },
  };
};
