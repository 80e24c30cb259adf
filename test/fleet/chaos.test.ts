/**
 * The chaos run's schedule and judgements (test/support/chaos.ts) on made-up faults, arrivals and writes: the
 * run itself is test/lab/fleet-chaos.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  doubleSenders,
  FAULT_KINDS,
  faultSchedule,
  lostWrites,
  offAirMs,
  type Write,
} from "../support/chaos.ts";
import type { Received } from "../support/fleet-analysis.ts";

const arrival = (atMs: number, source: string, ssrc = 1, sourcePort = 40000): Received => ({
  atMs,
  source,
  port: 7000,
  length: 1328,
  sourcePort,
  ssrc,
});

describe("the fault schedule", () => {
  it("is the same for the same seed, another for another, and meets every kind within its first five faults", () => {
    const one = faultSchedule(20261128, 20, ["a", "b", "c"], 6000);
    expect(faultSchedule(20261128, 20, ["a", "b", "c"], 6000)).toEqual(one);
    expect(faultSchedule(7, 20, ["a", "b", "c"], 6000)).not.toEqual(one);
    expect(new Set(one.slice(0, 5).map((fault) => fault.kind))).toEqual(new Set(FAULT_KINDS));
    // About one fault every half minute over 20 minutes, in order, the last before the end.
    expect(one.length).toBeGreaterThanOrEqual(30);
    expect(one.length).toBeLessThanOrEqual(80);
    for (let i = 1; i < one.length; i++)
      expect((one[i]?.atMs ?? 0) - (one[i - 1]?.atMs ?? 0)).toBeGreaterThanOrEqual(8000);
    expect(one.at(-1)?.atMs ?? Infinity).toBeLessThan(20 * 60_000);
  });

  it("stops the nodes for less and for more than the lease, cuts them 2–9 s, and strikes the database with no node", () => {
    const faults = faultSchedule(20261128, 60, ["a", "b", "c"], 6000);
    const stops = faults.filter((fault) => fault.kind === "stop").map((fault) => fault.holdMs);
    expect(stops.some((ms) => ms < 6000)).toBe(true);
    expect(stops.some((ms) => ms > 6000)).toBe(true);
    for (const ms of stops) expect(ms).toBeGreaterThanOrEqual(1300);
    for (const fault of faults.filter((f) => f.kind === "cut from the database")) {
      expect(fault.holdMs).toBeGreaterThanOrEqual(2000);
      expect(fault.holdMs).toBeLessThanOrEqual(9000);
    }
    for (const fault of faults)
      expect(fault.node === null).toBe(
        fault.kind === "backends terminated" || fault.kind === "PostgreSQL restarted",
      );
    expect(new Set(faults.flatMap((fault) => fault.node ?? []))).toEqual(new Set(["a", "b", "c"]));
  });
});

describe("what the report judges", () => {
  it("two senders interleaving are one window; a clean handover is none; a restarted process is another sender", () => {
    const clean = [arrival(0, "n1"), arrival(35, "n1"), arrival(300, "n2"), arrival(335, "n2")];
    expect(doubleSenders(clean)).toEqual([]);
    const both = [
      arrival(0, "n1"),
      arrival(10, "n2"),
      arrival(20, "n1"),
      arrival(30, "n2"),
      arrival(40, "n1"),
    ];
    expect(doubleSenders(both)).toHaveLength(1);
    expect([...(doubleSenders(both)[0]?.senders ?? [])].sort()).toEqual([
      "n1:40000/00000001",
      "n2:40000/00000001",
    ]);
    // One address, two SSRCs interleaving: a stale process and its successor.
    const stale = [arrival(0, "n1", 1), arrival(10, "n1", 2), arrival(20, "n1", 1), arrival(30, "n1", 2)];
    expect(doubleSenders(stale)).toHaveLength(1);
  });

  it("off air is the sum of the gaps over 250 ms, the window's edges included", () => {
    const arrivals = [100, 135, 170, 900, 935, 1900].map((at) => arrival(at, "n1"));
    expect(offAirMs(arrivals, 0, 2000)).toBe(730 + 965);
    expect(offAirMs([], 0, 2000)).toBe(2000);
  });

  it("an acknowledged write must be the last word, unless a later unanswered one may have been made", () => {
    const w = (value: string, acknowledged: boolean | null): Write => ({
      object: "ch",
      value,
      via: "a",
      atMs: 0,
      acknowledged,
    });
    const writes = [w("1", true), w("2", null), w("3", true), w("4", false), w("5", null)];
    expect(lostWrites(writes, new Map([["ch", "3"]]))).toEqual([]);
    expect(lostWrites(writes, new Map([["ch", "5"]]))).toEqual([]);
    expect(lostWrites(writes, new Map([["ch", "1"]]))).toEqual([
      { object: "ch", kind: "overwritten", expected: "3", found: "1" },
    ]);
    expect(lostWrites(writes, new Map([["ch", "2"]]))[0]?.kind).toBe("overwritten");
    expect(lostWrites(writes, new Map([["ch", "4"]]))[0]?.kind).toBe("missing");
    expect(lostWrites(writes, new Map([["ch", undefined]]))[0]?.kind).toBe("missing");
    // Nothing acknowledged: nothing to lose.
    expect(lostWrites([w("1", null)], new Map([["ch", "0"]]))).toEqual([]);
  });
});
