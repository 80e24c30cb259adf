import { describe, expect, it } from "vitest";
import { worstLoopDelay } from "../../src/effects/channel/workers/threads.ts";

describe("a worker's reported event-loop delay", () => {
  const at = 1_000_000;
  const seconds = (delays: ReadonlyArray<[number, number]>) =>
    delays.map(([p99, max], i) => ({ at: at + i * 1000, p99, max }));

  it("is the worst second of the last 15 s, so a scrape 14 s after a spike still sees it", () => {
    // A 40 ms stall in the first second, quiet seconds after it.
    const samples = seconds([[12, 40], ...Array.from({ length: 14 }, (): [number, number] => [0.5, 1])]);
    expect(worstLoopDelay(samples, at + 14_000)).toEqual({ p99: 12, max: 40 });
  });

  it("lets a spike go once it is 15 s old, and reads 0 with nothing in the window", () => {
    const samples = seconds([
      [12, 40],
      [0.5, 1],
    ]);
    expect(worstLoopDelay(samples, at + 15_000)).toEqual({ p99: 0.5, max: 1 });
    expect(worstLoopDelay(samples, at + 16_000)).toEqual({ p99: 0, max: 0 });
    expect(worstLoopDelay([], at)).toEqual({ p99: 0, max: 0 });
  });
});
