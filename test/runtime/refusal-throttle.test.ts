import { afterEach, describe, expect, it, vi } from "vitest";
import { REFUSAL_EVENT_MS, throttledRefusals } from "../../src/effects/runtime/links/srt-listeners.ts";

afterEach(() => vi.useRealTimers());

describe("refusal events (SRT callers, RTMP publishers)", () => {
  it("tells one refusal per reason every REFUSAL_EVENT_MS, with how many came since the last one told", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const told: Array<[string, string, number]> = [];
    const refuse = throttledRefusals(REFUSAL_EVENT_MS, (refusal: { reason: string; who: string }, count) =>
      told.push([refusal.reason, refusal.who, count]),
    );
    refuse({ reason: "wrong_key", who: "a" });
    refuse({ reason: "wrong_key", who: "b" });
    refuse({ reason: "busy", who: "c" });
    vi.advanceTimersByTime(REFUSAL_EVENT_MS - 1);
    refuse({ reason: "wrong_key", who: "d" });
    expect(told).toEqual([
      ["wrong_key", "a", 1],
      ["busy", "c", 1],
    ]);
    vi.advanceTimersByTime(1);
    refuse({ reason: "wrong_key", who: "e" });
    // b and d were held back: e is told as the third refusal of its reason since a was told.
    expect(told.at(-1)).toEqual(["wrong_key", "e", 3]);
    expect(REFUSAL_EVENT_MS).toBe(10_000);
  });
});
