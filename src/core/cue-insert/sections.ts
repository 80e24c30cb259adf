/**
 * The sections of the PSI PIDs the cue inserter (inserter.ts) reads, reassembled packet by packet. Unlike the
 * toolkit's SectionReader it hands over every section whole, its CRC right or not: the inserter sends the
 * sections of a PMT PID it re-packetizes as they came, and checks the CRC only to learn from them. A packet
 * with the CC of the one before is a duplicate and skipped; one out of sequence drops the section in progress.
 */
import { MAX_SECTION, nextCc, PACKET, sectionLength } from "../ts/index.ts";

/** Reassembles the sections of one PID; `len` bytes of a section in progress (0: none). */
interface Assembler {
  readonly buf: Uint8Array;
  len: number;
  total: number;
  lastCc: number;
}

interface SectionFeed {
  /** One input packet at `data[p]` on the PSI PID `pid`. */
  feed(pid: number, data: Uint8Array, p: number): void;
  /** Drops the section in progress on `pid`. */
  drop(pid: number): void;
  /** Drops every section in progress and forgets the CCs: the next packets start afresh. */
  restart(): void;
}

/** `onSection` gets each section reassembled on a PID (a view, valid during the call). */
export const makeSectionFeed = (onSection: (pid: number, sec: Uint8Array) => void): SectionFeed => {
  const assemblers = new Map<number, Assembler>();

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

  return {
    feed,
    drop: (pid) => {
      const a = assemblerOf(pid);
      a.len = 0;
      a.total = 0;
    },
    restart: () => {
      for (const a of assemblers.values()) {
        a.len = 0;
        a.total = 0;
        a.lastCc = -1;
      }
    },
  };
};
