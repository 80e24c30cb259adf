/**
 * "Insert a break now", the pure part: the channel-level stage that puts the operator's cue (operator-cue.ts)
 * on the input's SCTE-35 PID (adding one to the PMT when the input has none: pmt.ts).
 *
 *   const inserter = makeCueInserter()
 *   every chunk:  send(inserter.push(chunk))   (the chunk itself until the first insert)
 *   on request:   const r = inserter.insert(encodeOperatorCue(body, eventId), body.program ?? null)
 *                 if ("packets" in r) send(r.packets)
 *
 * Learning (always, cheap): push() reads each packet's PID and looks it up in one table; only PSI PIDs (the
 * PAT, the PMTs it lists) are parsed (the toolkit's SectionReader), and only the SCTE-35 and PMT PIDs have their last continuity counter noted.
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
import {
  ccAt,
  hasAdaptationAt,
  hasPayloadAt,
  PACKET,
  PacketOut,
  pidAt,
  readPat,
  SectionReader,
  SYNC,
  sameBytes,
  sectionPacketCount,
  setCcAt,
  u16,
  writeSectionPackets,
} from "../ts/index.ts";
import type { TsFilter } from "../ts-filter.ts";
import { PidBook, PSI, REPACK, TRACK } from "./pid-book.ts";
import { pmtPids, withScte35Entry } from "./pmt.ts";

const NOT_YET = "the input's PMT has not been seen yet: nothing to insert into";

export interface CueInserter extends TsFilter {
  /** Channel-level filter (ts-filter.ts) on the packets going to every output. Returns the chunk to deliver: `chunk` itself while the inserter has changed nothing yet (no insert so far), else a view into its own reusable memory, valid until the next push. Never null: it holds nothing back. */
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

interface KnownPmt {
  readonly pid: number;
  /** The input's section, CRC included. */
  readonly section: Uint8Array;
  /** Its first stream_type 0x86 PID, or -1. */
  readonly scte35Pid: number;
  /** PCR PID and elementary PIDs. */
  readonly pids: ReadonlyArray<number>;
}

/**
 * A channel's inserter. Most channels never insert a cue, and the working inserter keeps six tables of a byte
 * per PID (48 KiB): it is made at the first call that needs it, and until then nothing is active and no CC is
 * kept.
 */
export const makeCueInserter = (): CueInserter => {
  let working: CueInserter | null = null;
  const used = () => {
    working ??= makeWorkingInserter();
    return working;
  };
  return {
    push: (chunk) => used().push(chunk),
    insert: (section, program) => used().insert(section, program),
    teach: (packets) => used().teach(packets),
    noteCc: (pid, cc) => used().noteCc(pid, cc),
    lastCc: () => working?.lastCc() ?? new Map<number, number>(),
    get active() {
      return working?.active ?? false;
    },
  };
};

const makeWorkingInserter = (): CueInserter => {
  const book = new PidBook();
  const { roles, present } = book;
  /** The PAT's programmes (not the NIT's entry 0) and their PMT PIDs. */
  let pat: ReadonlyArray<{ readonly program: number; readonly pmtPid: number }> | null = null;
  const pmts = new Map<number, KnownPmt>();
  /** Programme → the SCTE-35 PID chosen for it. */
  const added = new Map<number, number>();
  let active = false;
  const out = new PacketOut();

  /** Writes `section` as packets on `pid` at `target[at]`, CCs continuing. */
  const writeSection = (target: Uint8Array, at: number, section: Uint8Array, pid: number): number =>
    writeSectionPackets(target, at, section, pid, () => book.takeCc(pid));

  const learnPat = (sec: Uint8Array): void => {
    if (((sec[5] ?? 0) & 1) === 0 || sec[6] !== 0) return;
    const entries: Array<{ program: number; pmtPid: number }> = [];
    for (const { program, pid: pmtPid } of readPat(sec)?.programs ?? []) {
      if (program === 0) continue;
      entries.push({ program, pmtPid });
      book.give(pmtPid, PSI);
      book.track(pmtPid);
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
    if (parsed.scte35Pid >= 0) book.track(parsed.scte35Pid);
  };

  /** A section has been reassembled on `pid` (a view, valid during the call), its CRC right or not. */
  const onSection = (pid: number, sec: Uint8Array, crcRight: boolean): void => {
    const role = roles[pid] ?? 0;
    const intact = crcRight && ((sec[1] ?? 0) & 0x80) !== 0;
    if (intact) {
      if (pid === 0 && sec[0] === 0x00) learnPat(sec);
      else if (sec[0] === 0x02) learnPmt(pid, sec);
    }
    if ((role & REPACK) === 0) return;
    let section = sec;
    if (intact && sec[0] === 0x02) {
      const ours = added.get(u16(sec, 3));
      if (ours !== undefined) section = withScte35Entry(sec, ours) ?? sec;
    }
    out.reserve(sectionPacketCount(section) * PACKET);
    out.length += writeSection(out.bytes, out.length, section, pid);
  };

  /**
   * The PSI PIDs' sections, each handed over whole whatever its CRC: the sections of a PMT PID that is
   * re-packetized go on as they came, and the CRC is checked only to learn from them.
   */
  const readers = new Map<number, SectionReader>();
  const sections = {
    feed: (pid: number, data: Uint8Array, p: number): void => {
      let reader = readers.get(pid);
      if (reader === undefined) {
        reader = new SectionReader((sec, crcRight) => onSection(pid, sec, crcRight), { keepBadCrc: true });
        readers.set(pid, reader);
      }
      reader.read(data, p);
    },
    drop: (pid: number): void => readers.get(pid)?.drop(),
    restart: (): void => {
      for (const reader of readers.values()) reader.reset();
    },
  };

  const learnOnly = (chunk: Uint8Array): void => {
    const stop = chunk.length - PACKET;
    for (let p = 0; p <= stop; p += PACKET) {
      if (chunk[p] !== SYNC) continue;
      const pid = pidAt(chunk, p);
      present[pid] = 1;
      const role = roles[pid] ?? 0;
      if (role === 0) continue;
      if ((role & TRACK) !== 0) book.noteCc(pid, ccAt(chunk, p));
      if ((role & PSI) !== 0) sections.feed(pid, chunk, p);
    }
  };

  const rewrite = (chunk: Uint8Array): Uint8Array => {
    out.length = 0;
    out.reserve(chunk.length);
    const stop = chunk.length - PACKET;
    let p = 0;
    for (; p <= stop; p += PACKET) {
      const pid = chunk[p] === SYNC ? pidAt(chunk, p) : -1;
      if (pid >= 0) present[pid] = 1;
      const role = pid < 0 ? 0 : (roles[pid] ?? 0);
      if ((role & REPACK) === 0) {
        out.append(chunk, p, p + PACKET);
        if ((role & TRACK) !== 0) book.shiftCc(chunk, p, out.bytes, out.length - PACKET, pid);
      } else if (!hasPayloadAt(chunk, p) && hasAdaptationAt(chunk, p)) {
        // Adaptation only (a PCR, say): kept, with the CC of the packet before it.
        out.append(chunk, p, p + PACKET);
        setCcAt(out.bytes, out.length - PACKET, book.lastCcOf(pid));
      }
      if ((role & PSI) !== 0) sections.feed(pid, chunk, p);
    }
    if (p < chunk.length) out.append(chunk, p, chunk.length);
    return out.view();
  };

  const choosePid = (): number => {
    const used = new Set<number>();
    for (const entry of pat ?? []) used.add(entry.pmtPid);
    for (const pmt of pmts.values()) {
      used.add(pmt.pid);
      for (const pid of pmt.pids) used.add(pid);
    }
    for (const pid of added.values()) used.add(pid);
    return book.freePid(used);
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
        if (packets[p] === SYNC && ((roles[pid] ?? 0) & PSI) !== 0) sections.feed(pid, packets, p);
      }
      // What was taught is whole: the input's next packets start afresh.
      sections.restart();
    },
    noteCc: (pid, cc) => {
      present[pid] = 1;
      if (book.has(pid, TRACK)) book.noteCc(pid, cc);
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
      book.track(pid);
      const parts: Array<{ section: Uint8Array; pid: number }> = [];
      if (!book.has(pmt.pid, REPACK)) {
        book.give(pmt.pid, REPACK);
        // A section half sent as it came is not finished: the PMTs from now on are whole ones of ours.
        sections.drop(pmt.pid);
      }
      if (first) {
        // Receivers learn the new PID before its first cue.
        const pmtSection = withScte35Entry(pmt.section, pid);
        if (pmtSection !== null) parts.push({ section: pmtSection, pid: pmt.pid });
      }
      parts.push({ section, pid });
      return { packets: packetsOf(parts), pid };
    },
    lastCc: () => (active ? book.lastCcs() : new Map<number, number>()),
    get active() {
      return active;
    },
  };
};
