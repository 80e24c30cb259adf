/**
 * The agreed cut of a fleet hand-over (src/core/handover/ring.ts): the old holder names the last datagrams it
 * sent; the new holder, which kept the same stream in its ring, finds the place after them — also inside a run
 * of identical datagrams (null packets only), placed by the last datagram before it that differs — and a
 * datagram the ring does not hold is not found.
 */
import { describe, expect, it } from "vitest";
import { CONTEXT, DatagramRing, nullOnly } from "../../src/core/handover/ring.ts";

/** A datagram of 7 TS packets: PID `pid`, the payload filled with `fill`. */
const datagram = (pid: number, fill: number) => {
  const bytes = new Uint8Array(7 * 188).fill(fill);
  for (let at = 0; at < bytes.length; at += 188) {
    bytes[at] = 0x47;
    bytes[at + 1] = (pid >> 8) & 0x1f;
    bytes[at + 2] = pid & 0xff;
    bytes[at + 3] = 0x10;
  }
  return bytes;
};
const nulls = () => datagram(0x1fff, 0xff);
const content = (n: number) => datagram(0x100, n & 0xff);

const ringOf = (datagrams: ReadonlyArray<Uint8Array>, startMs = 0, stepMs = 10) => {
  const ring = new DatagramRing();
  datagrams.forEach((bytes, i) => {
    ring.push(bytes, startMs + i * stepMs);
  });
  return ring;
};

describe("the agreed cut", () => {
  it("is found in another ring holding the same stream: the new holder goes on with the next datagram", () => {
    const stream = Array.from({ length: 200 }, (_, i) => content(i));
    const old = ringOf(stream.slice(0, 120));
    const cut = old.cut();
    expect(cut?.hashes.length).toBe(CONTEXT);
    // The new holder's ring began earlier and runs further: the cut is the 120th datagram.
    const taker = ringOf(stream.slice(30, 160));
    expect(taker.after(cut ?? { hashes: [], anchor: null })).toBe(120 - 30);
    expect(taker.at(90)).toEqual(stream[120]);
    // The cut is the taker's newest datagram: it goes on with the next one to come.
    expect(ringOf(stream.slice(50, 120)).after(cut ?? { hashes: [], anchor: null })).toBe(70);
  });

  it("inside a run of null-only datagrams, is placed by the last datagram before the run", () => {
    const stream = [
      ...Array.from({ length: 20 }, (_, i) => content(i)),
      ...Array.from({ length: 40 }, nulls),
      content(99),
    ];
    expect(nullOnly(nulls())).toBe(true);
    expect(nullOnly(content(1))).toBe(false);
    // The old holder cut after the 30th null datagram (index 49): the last 8 it sent are all nulls.
    const cut = ringOf(stream.slice(0, 50)).cut();
    expect(cut?.anchor).toMatchObject({ after: 30 });
    const taker = ringOf(stream);
    expect(taker.after(cut ?? { hashes: [], anchor: null })).toBe(50);
  });

  it("is not found where the ring holds another stream, or not yet the datagram cut at", () => {
    const stream = Array.from({ length: 100 }, (_, i) => content(i));
    const cut = ringOf(stream.slice(0, 80)).cut() ?? { hashes: [], anchor: null };
    expect(ringOf(stream.slice(0, 70)).after(cut)).toBe(-1);
    expect(ringOf(Array.from({ length: 100 }, (_, i) => datagram(0x200, i))).after(cut)).toBe(-1);
  });

  it("keeps about its time bound, and finds where a margin before a moment begins", () => {
    const ring = new DatagramRing(1000, 1 << 30);
    for (let i = 0; i < 300; i++) ring.push(content(i), i * 10);
    // 2990 ms is the newest: kept from 1990 ms on.
    expect(ring.arrivedAt(0)).toBe(1990);
    expect(ring.length).toBe(101);
    expect(ring.since(2500)).toBe(51);
    expect(ring.since(5000)).toBe(ring.length);
    const small = new DatagramRing(60_000, 10 * 1316);
    for (let i = 0; i < 50; i++) small.push(content(i), i);
    expect(small.length).toBe(10);
  });
});
