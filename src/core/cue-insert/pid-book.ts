/**
 * The cue inserter's book of PIDs (inserter.ts): each PID's role, whether the input carries it, and on the PIDs
 * whose counters it keeps (TRACK) the last CC that went out and the shift the input's CCs take past the packets
 * it inserted, so that each such PID's counters stay continuous.
 */
import { ccAt, hasPayloadAt, NULL_PID, nextCc, PID_COUNT, setCcAt } from "../ts/index.ts";

/** PID roles, one byte per PID: a PSI PID, its sections read (the PAT, the PMTs it lists). */
export const PSI = 1;
/** Its CC is noted (and, once active, shifted). */
export const TRACK = 2;
/** Its packets are replaced by its sections, re-packetized (a PMT PID that gets our SCTE-35 entry). */
export const REPACK = 4;

const PREFERRED_PID = 0x01f4;
const HIGHEST_PID = 0x1ff0;
const LOWEST_PID = 0x0020;

export class PidBook {
  readonly roles = new Uint8Array(PID_COUNT);
  /** PIDs the input carries, listed in a table or not: never chosen for an added SCTE-35 PID. */
  readonly present = new Uint8Array(PID_COUNT);
  /** Last CC that went out on a TRACK PID (-1: none seen); the shift applied to its input CCs. */
  private readonly lastOut = new Int8Array(PID_COUNT).fill(-1);
  private readonly shift = new Uint8Array(PID_COUNT);
  /** An input packet seen on the PID since it was tracked. */
  private readonly seen = new Uint8Array(PID_COUNT);
  /** Packets inserted before any input packet was seen: the shift is set by the next input packet. */
  private readonly pending = new Uint8Array(PID_COUNT);

  constructor() {
    this.roles[0] = PSI;
  }

  has(pid: number, role: number): boolean {
    return ((this.roles[pid] ?? 0) & role) !== 0;
  }

  give(pid: number, role: number): void {
    this.roles[pid] = (this.roles[pid] ?? 0) | role;
  }

  /** Keeps `pid`'s counters from now on. */
  track(pid: number): void {
    if (this.has(pid, TRACK)) return;
    this.give(pid, TRACK);
    this.seen[pid] = 0;
  }

  /** The input's last CC on a TRACK PID was `cc` (before the first insert, what went out is what came in). */
  noteCc(pid: number, cc: number): void {
    this.lastOut[pid] = cc & 0x0f;
    this.seen[pid] = 1;
  }

  /** The CC of the next packet we put on `pid`. */
  takeCc(pid: number): number {
    const last = this.lastOut[pid] ?? -1;
    const cc = last < 0 ? 0 : nextCc(last);
    this.lastOut[pid] = cc;
    if (this.seen[pid] === 1) this.shift[pid] = nextCc(this.shift[pid] ?? 0);
    else this.pending[pid] = 1;
    return cc;
  }

  /** The input's packet `chunk[p]` on a TRACK PID, copied to `out[q]`: its CC shifted past what we inserted. */
  shiftCc(chunk: Uint8Array, p: number, out: Uint8Array, q: number, pid: number): void {
    const cc = ccAt(chunk, p);
    if (this.pending[pid] === 1) {
      this.shift[pid] = ((this.lastOut[pid] ?? 0) + (hasPayloadAt(chunk, p) ? 1 : 0) - cc) & 0x0f;
      this.pending[pid] = 0;
    }
    const shifted = (cc + (this.shift[pid] ?? 0)) & 0x0f;
    setCcAt(out, q, shifted);
    this.lastOut[pid] = shifted;
    this.seen[pid] = 1;
  }

  /** The CC of the packet that went out last on `pid` (0 when none): an adaptation-only packet repeats it. */
  lastCcOf(pid: number): number {
    return Math.max(0, this.lastOut[pid] ?? 0);
  }

  /** The last CC that went out on each TRACK PID that has one. */
  lastCcs(): Map<number, number> {
    const last = new Map<number, number>();
    for (let pid = 0; pid < PID_COUNT; pid++)
      if (this.has(pid, TRACK) && (this.lastOut[pid] ?? -1) >= 0) last.set(pid, this.lastOut[pid] ?? 0);
    return last;
  }

  /**
   * A PID for an added SCTE-35 stream: 500, else the highest free below 0x1FF0; neither one of `used` (the
   * tables' PIDs) nor one the input carries.
   */
  freePid(used: ReadonlySet<number>): number {
    const free = (pid: number) => pid !== NULL_PID && !used.has(pid) && this.present[pid] !== 1;
    if (free(PREFERRED_PID)) return PREFERRED_PID;
    for (let pid = HIGHEST_PID; pid >= LOWEST_PID; pid--) if (free(pid)) return pid;
    return PREFERRED_PID;
  }
}
