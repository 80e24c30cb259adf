/**
 * The fleet lab's measurements (test/support/fleet-analysis.ts) on made-up arrivals, so that a lab test that
 * passes passes because the service did well, not because the measure could not see a fault.
 */
import { describe, expect, it } from "vitest";
import {
  continuation,
  doubleSending,
  handovers,
  longestSilence,
  outputLine,
  type Received,
  streamIndex,
} from "../support/fleet-analysis.ts";
import { cuedStream, newGenerator } from "../support/lab-channel.ts";

const A = "198.18.128.2";
const B = "198.18.128.3";

/** A datagram every `everyMs` from `source` between `fromMs` and `toMs`. */
const steady = (source: string, fromMs: number, toMs: number, everyMs = 10): Received[] => {
  const arrivals: Received[] = [];
  for (let at = fromMs; at < toMs; at += everyMs)
    arrivals.push({ atMs: at, source, port: 7000, length: 1316 });
  return arrivals;
};

const byTime = (arrivals: ReadonlyArray<Received>) => [...arrivals].sort((x, y) => x.atMs - y.atMs);

describe("longest silence", () => {
  it("is the longest gap between two arrivals, with where it was", () => {
    const arrivals = [...steady(A, 0, 1000), ...steady(B, 1800, 3000)];
    expect(longestSilence(arrivals)).toEqual({ ms: 810, fromMs: 990, toMs: 1800 });
  });

  it("counts an output that never came back as silent up to the window's end", () => {
    expect(longestSilence(steady(A, 0, 1000), { untilMs: 5000 })).toEqual({
      ms: 4010,
      fromMs: 990,
      toMs: 5000,
    });
  });

  it("counts from the window's start when nothing came yet", () => {
    expect(longestSilence([], { fromMs: 100, untilMs: 600 }).ms).toBe(500);
  });
});

describe("senders", () => {
  it("a clean handover, however short, is one handover and no double sending", () => {
    const arrivals = [...steady(A, 0, 1000), ...steady(B, 1005, 2000)];
    expect(handovers(arrivals)).toEqual([{ atMs: 1005, from: A, to: B, gapMs: 15 }]);
    expect(doubleSending(arrivals)).toEqual([]);
  });

  it("two nodes sending at once for a while are double sending, reported once per stretch", () => {
    const arrivals = byTime([...steady(A, 0, 2000), ...steady(B, 1003, 1500)]);
    const doubles = doubleSending(arrivals);
    expect(doubles.length).toBe(1);
    expect(doubles[0]?.sources).toEqual([B, A]);
    expect(doubles[0]?.atMs).toBeGreaterThanOrEqual(1003);
  });

  it("one stray datagram of the old holder after the new one started is double sending", () => {
    const arrivals = byTime([
      ...steady(A, 0, 1000),
      ...steady(B, 1500, 2500),
      { atMs: 1555, source: A, port: 7000, length: 1316 },
    ]);
    expect(doubleSending(arrivals).length).toBe(1);
  });

  it("a report line names the nodes, the silence and the handovers", () => {
    const line = outputLine(
      "channel 1",
      [...steady(A, 0, 1000), ...steady(B, 1800, 2000)],
      new Map([
        [A, "a"],
        [B, "b"],
      ]),
    );
    expect(line).toMatch(
      /longest silence 810 ms .*senders a, b; handovers a→b at .* \(\+810 ms\); double sending: none/,
    );
  });
});

describe("what came after a takeover", () => {
  const stream = cuedStream(newGenerator(29, 1_000_000), 1_000_000, 8, 1);
  const index = streamIndex(stream.datagrams);
  const arrive = (from: number, to: number, startMs: number): Received[] =>
    stream.datagrams.slice(from, to).map((datagram, i) => ({
      atMs: startMs + i,
      source: B,
      port: 7000,
      length: datagram.length,
      datagram: Buffer.from(datagram),
    }));

  it("a whole stretch of the stream is contiguous and its cues are the stream's, byte for byte", () => {
    const found = continuation(arrive(200, 700, 5000), 5000, stream.datagrams, index);
    expect(found).toMatchObject({ count: 500, firstIndex: 200, contiguous: true });
    expect(found.cues.length).toBeGreaterThan(0);
    expect(found.cues).toEqual(found.expectedCues);
  });

  it("a datagram missing, or one changed, is not contiguous", () => {
    const arrivals = arrive(200, 700, 5000);
    const missing = continuation(arrivals.toSpliced(100, 1), 5000, stream.datagrams, index);
    expect(missing.contiguous).toBe(false);
    expect(missing.breaks).toEqual([{ atMs: 5101, expected: 300, got: 301 }]);
    const changed = arrivals.map((arrival, i) =>
      i === 10
        ? {
            ...arrival,
            datagram: Buffer.from(arrival.datagram ?? [])
              .fill(0x47, 0, 1)
              .fill(1, 5, 6),
          }
        : arrival,
    );
    expect(continuation(changed, 5000, stream.datagrams, index)).toMatchObject({ contiguous: false });
  });
});
