/**
 * A filter's own reusable output memory (ts-filter.ts): packets are appended to it push after push, and what
 * the filter answers is a view into it, valid until the next push. It grows when a push needs more, and is
 * never given back.
 */
import { PACKET } from "./packet.ts";

export class PacketOut {
  /** The memory; it moves when it grows, so read it after `reserve`. */
  bytes: Uint8Array;
  /** Bytes written so far in this push. */
  length = 0;

  constructor(packets = 64) {
    this.bytes = new Uint8Array(packets * PACKET);
  }

  /** Room for `n` more bytes after `length`. */
  reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    const bigger = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
    bigger.set(this.bytes.subarray(0, this.length));
    this.bytes = bigger;
  }

  /** Appends `from[start, end)`. */
  append(from: Uint8Array, start: number, end: number): void {
    this.reserve(end - start);
    this.bytes.set(from.subarray(start, end), this.length);
    this.length += end - start;
  }

  /** What has been written in this push. */
  view(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}
