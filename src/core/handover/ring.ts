/**
 * A fleet hand-over's agreed cut (docs/fleet.md, "Hitless moves and drains"): the datagrams a channel's input
 * brought lately, kept in a ring bounded in time and in bytes, and the cut — the identity of the last datagram
 * the old holder sent — that the new holder looks for in its own ring to send exactly what follows.
 *
 * A datagram's identity is a strong hash of its bytes (the TS payload the outputs get: the same on two nodes
 * that receive one stream, RTP or plain UDP). A stream may repeat a datagram byte for byte (null packets only,
 * a still picture): the cut names the last `CONTEXT` datagrams, and the last one before them that is not null
 * packets only (the anchor) with how many came after it, so a run of identical datagrams is placed by what
 * came before it. Pure: the forwarding thread keeps the ring (src/effects/channel/cut-stage.ts).
 */
import { createHash } from "node:crypto";
import { NULL_PID, PACKET, pidAt } from "../ts/index.ts";

/** How long the ring keeps a datagram, at most (ms), and how many bytes it keeps at most. */
export const RING_MS = 4000;
export const RING_BYTES = 4 * 1024 * 1024;
/** How many of the last datagrams sent a cut names. */
export const CONTEXT = 8;

/** The last datagrams an old holder sent, oldest first, and what places them in a run of identical ones. */
export interface AgreedCut {
  readonly hashes: ReadonlyArray<string>;
  /**
   * How many TS packets of the last datagram named were sent, when not all: a cut before a random access point
   * inside a datagram sends the packets before it; the next holder sends the rest, so no unit is cut short.
   */
  readonly packets?: number;
  /** The last datagram before them that is not null packets only, and how many came after it up to the cut. */
  readonly anchor: { readonly hash: string; readonly after: number } | null;
}

/** A datagram's identity: sha-256 of its bytes, the first 16 bytes as hex. */
export const datagramHash = (bytes: Uint8Array): string =>
  createHash("sha256").update(bytes).digest("hex").slice(0, 32);

/** Whether every whole TS packet of the datagram is a null packet. */
export const nullOnly = (bytes: Uint8Array): boolean => {
  if (bytes.length < PACKET) return false;
  for (let at = 0; at + PACKET <= bytes.length; at += PACKET) if (pidAt(bytes, at) !== NULL_PID) return false;
  return true;
};

interface Entry {
  readonly bytes: Uint8Array;
  /** When it came (the caller's clock, ms). */
  readonly at: number;
  hash: string | undefined;
}

export class DatagramRing {
  private entries: Entry[] = [];
  private first = 0;
  private bytes = 0;

  private readonly maxMs: number;
  private readonly maxBytes: number;
  private readonly copy: (view: Uint8Array) => Uint8Array;

  constructor(
    maxMs = RING_MS,
    maxBytes = RING_BYTES,
    /** A copy of the datagram the ring may keep (the caller's buffers are reused). */
    copy: (view: Uint8Array) => Uint8Array = (view) => view.slice(),
  ) {
    this.maxMs = maxMs;
    this.maxBytes = maxBytes;
    this.copy = copy;
  }

  get length(): number {
    return this.entries.length - this.first;
  }

  /** Keeps a copy of `view`, which came at `at`; forgets what is older than the bounds allow. */
  push(view: Uint8Array, at: number): void {
    this.entries.push({ bytes: this.copy(view), at, hash: undefined });
    this.bytes += view.length;
    while (this.length > 1) {
      const oldest = this.entries[this.first] as Entry;
      if (this.bytes <= this.maxBytes && at - oldest.at <= this.maxMs) break;
      this.bytes -= oldest.bytes.length;
      this.first += 1;
    }
    if (this.first > 1024 && this.first * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.first);
      this.first = 0;
    }
  }

  /** The datagram `i` places from the oldest kept. */
  at(i: number): Uint8Array {
    return (this.entries[this.first + i] as Entry).bytes;
  }

  /** When datagram `i` came. */
  arrivedAt(i: number): number {
    return (this.entries[this.first + i] as Entry).at;
  }

  hashAt(i: number): string {
    const entry = this.entries[this.first + i] as Entry;
    entry.hash ??= datagramHash(entry.bytes);
    return entry.hash;
  }

  /** The cut after the newest datagram kept (the last one sent; its first `packets` only, when given). */
  cut(packets?: number): AgreedCut | null {
    const count = this.length;
    if (count === 0) return null;
    const from = Math.max(0, count - CONTEXT);
    const hashes: string[] = [];
    for (let i = from; i < count; i++) hashes.push(this.hashAt(i));
    let anchor: AgreedCut["anchor"] = null;
    for (let i = from - 1; i >= 0; i--) {
      if (nullOnly(this.at(i))) continue;
      anchor = { hash: this.hashAt(i), after: count - 1 - i };
      break;
    }
    return packets === undefined ? { hashes, anchor } : { hashes, anchor, packets };
  }

  /**
   * Where the datagram after `cut` sits in the ring: its index (the ring's length when the cut is the newest
   * datagram), or -1 when the ring does not hold the cut. Of several places that match, the newest.
   */
  after(cut: AgreedCut): number {
    const k = cut.hashes.length;
    if (k === 0) return -1;
    const last = cut.hashes[k - 1] as string;
    for (let end = this.length - 1; end >= 0; end--) {
      if (this.hashAt(end) !== last) continue;
      let same = true;
      for (let j = 1; j < k && same; j++) {
        const i = end - j;
        // The cut's context reaches further back than the ring: not this place.
        if (i < 0) same = false;
        else same = this.hashAt(i) === cut.hashes[k - 1 - j];
      }
      if (!same) continue;
      if (cut.anchor !== null) {
        const i = end - cut.anchor.after;
        if (i < 0 || this.hashAt(i) !== cut.anchor.hash) continue;
      }
      return end + 1;
    }
    return -1;
  }

  /** The index of the first datagram that came at or after `at` (the ring's length when none did). */
  since(at: number): number {
    for (let i = 0; i < this.length; i++) if (this.arrivedAt(i) >= at) return i;
    return this.length;
  }
}
