// A bounded cursor over a section's bytes and the small helpers every part of the SCTE 35 decoder shares.
import * as Either from "effect/Either";
import { Scte35Error } from "./types.ts";

/** 2³², the weight of a 33-bit field's top bit. */
export const TWO_POW_32 = 2 ** 32;

/**
 * A cursor over `bytes[pos, end)` that never reads past `end`. A read that would is answered with zeros and
 * leaves `overrun` set, so a parser reads a whole structure straight through and checks once at the end.
 */
export class Reader {
  readonly bytes: Uint8Array;
  readonly end: number;
  pos: number;
  overrun = false;

  constructor(bytes: Uint8Array, start: number, end: number) {
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private take(n: number): number {
    const at = this.pos;
    if (n > this.remaining) {
      this.overrun = true;
      this.pos = this.end;
      return -1;
    }
    this.pos += n;
    return at;
  }

  uint(n: number): number {
    const at = this.take(n);
    if (at < 0) return 0;
    let value = 0;
    for (let i = 0; i < n; i++) value = value * 256 + (this.bytes[at + i] ?? 0);
    return value;
  }

  u8 = (): number => this.uint(1);
  u16 = (): number => this.uint(2);
  u32 = (): number => this.uint(4);

  /** A 33-bit value whose top bit is the low bit of `lead`, the byte that carries the flags before it. */
  u33After(lead: number): number {
    return (lead & 1) * TWO_POW_32 + this.u32();
  }

  slice(n: number): Uint8Array {
    const at = this.take(n);
    return at < 0 ? new Uint8Array(0) : this.bytes.subarray(at, at + n);
  }

  /** A reader over the next `n` bytes; this one moves past them. */
  sub(n: number): Reader {
    const at = this.take(n);
    return at < 0 ? new Reader(this.bytes, this.end, this.end) : new Reader(this.bytes, at, at + n);
  }

  rest(): Uint8Array {
    return this.slice(this.remaining);
  }
}

export const fail = (reason: Scte35Error["reason"], message: string) =>
  Either.left(new Scte35Error({ reason, message }));

export const hex8 = (n: number): string => `0x${n.toString(16).padStart(2, "0")}`;
export const hex32 = (n: number): string => `0x${n.toString(16).padStart(8, "0")}`;
export const bit = (byte: number, position: number): boolean => ((byte >> position) & 1) === 1;
export const latin1 = (bytes: Uint8Array): string => String.fromCharCode(...bytes);
