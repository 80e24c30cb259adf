/**
 * A PES reassembled on one PID, for the slate's probe (probe.ts): the video's parameter sets and timestamps,
 * one frame header of each audio. Its own file because the probe, the audio headers and the video reader all
 * read the PES it hands over, and each only through `pesPayload`.
 */
import { nextCc } from "../ts/index.ts";

/** A PES is reassembled up to 2 MiB; a longer one is dropped. */
const MAX_PES = 2 * 1024 * 1024;

/**
 * A PES reassembled on one PID into a buffer that grows up to 2 MiB and is kept. `limit` keeps only the
 * PES's first bytes (its header, for the PTS) once nothing more is read from it; 0 keeps nothing.
 */
export class PesReader {
  private buf: Uint8Array;
  private readonly onPes: (pes: Uint8Array) => void;
  length = 0;
  limit = MAX_PES;
  private ok = false;
  private cc = -1;
  constructor(initial: number, onPes: (pes: Uint8Array) => void) {
    this.buf = new Uint8Array(initial);
    this.onPes = onPes;
  }

  packet(p: Uint8Array, at: number, pusi: boolean, cc: number): void {
    if (this.limit === 0) return;
    if (this.cc >= 0 && cc === this.cc) return;
    if (this.cc >= 0 && cc !== nextCc(this.cc)) this.ok = false;
    this.cc = cc;
    if (pusi) {
      if (this.ok && this.length > 0) this.onPes(this.buf.subarray(0, this.length));
      this.length = 0;
      this.ok = true;
    }
    if (!this.ok || at >= p.length) return;
    let n = p.length - at;
    if (this.length + n > this.limit) {
      if (this.limit === MAX_PES) {
        this.ok = false;
        return;
      }
      n = Math.max(0, this.limit - this.length);
    }
    if (this.length + n > this.buf.length) {
      const grown = new Uint8Array(Math.min(MAX_PES, Math.max(this.buf.length * 2, this.length + n)));
      grown.set(this.buf.subarray(0, this.length));
      this.buf = grown;
    }
    this.buf.set(p.subarray(at, at + n), this.length);
    this.length += n;
  }
}

/** Where a PES's payload begins, or -1 when it is no PES. */
export const pesPayload = (pes: Uint8Array): number => {
  if (pes.length < 9 || pes[0] !== 0 || pes[1] !== 0 || pes[2] !== 1) return -1;
  const at = 9 + (pes[8] ?? 0);
  return at <= pes.length ? at : -1;
};
