/**
 * The event-loop delay a forwarding worker reports each second (p99 and max, in nanoseconds as perf_hooks
 * gives them), and the main thread at each scrape: how late a timer of `resolutionMs` ran beyond its
 * interval. Node.js and Bun measure it with perf_hooks.monitorEventLoopDelay; Deno's (2.9) is there but does
 * not see the loop being held (a 250 ms block reads as 0.02 ms), so on Deno a timer measures it instead: every
 * `resolutionMs` it records how late it fires, which is what the loop made it wait.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setInterval } from "node:timers";
import { runtimeName } from "../process/runtime.ts";

interface LoopDelay {
  /** The p-th percentile of the delays since the last reset, in nanoseconds. */
  readonly percentile: (p: number) => number;
  /** The longest delay since the last reset, in nanoseconds. */
  readonly max: () => number;
  readonly min: () => number;
  readonly mean: () => number;
  readonly stddev: () => number;
  readonly reset: () => void;
  /** Measures only while on (a thread with nothing to forward need not wake to be measured); on at first. */
  readonly measure: (on: boolean) => void;
}

/** Samples kept between two resets at most (the worker resets once a second). */
const MAX_SAMPLES = 10_000;

export const timerLoopDelay = (resolutionMs: number): LoopDelay => {
  let samples: number[] = [];
  let max = 0;
  let expected = 0;
  let timer: ReturnType<typeof setInterval> | null = null;
  const measure = (on: boolean) => {
    if (on === (timer !== null)) return;
    if (timer !== null) {
      clearInterval(timer);
      timer = null;
      return;
    }
    expected = performance.now() + resolutionMs;
    timer = setInterval(() => {
      const now = performance.now();
      const late = Math.max(0, now - expected) * 1e6;
      expected = now + resolutionMs;
      if (samples.length < MAX_SAMPLES) samples.push(late);
      if (late > max) max = late;
    }, resolutionMs);
    timer.unref();
  };
  measure(true);
  return {
    measure,
    percentile: (p) => {
      if (samples.length === 0) return 0;
      const sorted = [...samples].sort((a, b) => a - b);
      return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
    },
    max: () => max,
    min: () => (samples.length === 0 ? 0 : Math.min(...samples)),
    mean: () => (samples.length === 0 ? 0 : samples.reduce((sum, value) => sum + value, 0) / samples.length),
    stddev: () => {
      if (samples.length === 0) return 0;
      const mean = samples.reduce((sum, value) => sum + value, 0) / samples.length;
      return Math.sqrt(samples.reduce((sum, value) => sum + (value - mean) ** 2, 0) / samples.length);
    },
    reset: () => {
      samples = [];
      max = 0;
    },
  };
};

export const makeLoopDelay = (resolutionMs: number): LoopDelay => {
  if (runtimeName === "deno") return timerLoopDelay(resolutionMs);
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  let on = true;
  histogram.enable();
  // The monitor records the timer's whole interval; what the loop added is what lies beyond it.
  const late = (ns: number) => Math.max(0, ns - resolutionMs * 1e6);
  return {
    percentile: (p) => late(histogram.percentile(p)),
    max: () => late(histogram.max),
    // Before its first sample the monitor's min is the largest integer and its mean and spread NaN.
    min: () => (histogram.count === 0 ? 0 : late(histogram.min)),
    mean: () => (histogram.count === 0 ? 0 : late(histogram.mean)),
    // Each sample less the same interval: the spread is the monitor's own.
    stddev: () => (histogram.count === 0 ? 0 : histogram.stddev),
    reset: () => histogram.reset(),
    measure: (wanted) => {
      if (wanted === on) return;
      on = wanted;
      if (on) histogram.enable();
      else {
        histogram.disable();
        histogram.reset();
      }
    },
  };
};
