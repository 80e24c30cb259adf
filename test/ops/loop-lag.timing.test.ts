/**
 * The main thread's event-loop delay on /metrics (nodejs_eventloop_lag_*_seconds, what the
 * DistributaryEventLoopLag alert reads): how late a 100 ms timer ran beyond its interval, so an idle service
 * reads near 0 and a held loop reads what it was held for; sampling every 100 ms instead of 20 spares an idle
 * service 40 wake-ups a second.
 */
import { expect, it } from "vitest";
import { MAIN_LOOP_RESOLUTION_MS } from "../../src/effects/status/metric-families.ts";
import { makeMetrics } from "../../src/effects/status/metrics.ts";

const seconds = async (metrics: ReturnType<typeof makeMetrics>, name: string) => {
  const text = await metrics.registry.getSingleMetricAsString(`nodejs_eventloop_lag_${name}_seconds`);
  const value = /^nodejs_eventloop_lag_\w+_seconds (\S+)$/m.exec(text)?.[1];
  return Number(value);
};
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it("reads what the main loop was held for beyond a 100 ms timer, and near 0 while it is free", async () => {
  expect(MAIN_LOOP_RESOLUTION_MS).toBe(100);
  const metrics = makeMetrics(
    () => {
      throw new Error("no snapshot is read for these series");
    },
    () => true,
  );
  await wait(5 * MAIN_LOOP_RESOLUTION_MS);
  // Only the lateness: not the timer's own interval, which the raw monitor adds to every sample.
  expect(await seconds(metrics, "min")).toBeLessThan(0.01);
  // p99 is read last: it resets the samples, as a scrape does.
  expect(await seconds(metrics, "max")).toBeLessThan(0.05);
  expect(await seconds(metrics, "p99")).toBeLessThan(0.05);

  await wait(MAIN_LOOP_RESOLUTION_MS);
  const until = performance.now() + 300;
  while (performance.now() < until) {
    // the main loop held for 300 ms
  }
  await wait(2 * MAIN_LOOP_RESOLUTION_MS);
  expect(await seconds(metrics, "max")).toBeGreaterThan(0.15);
  expect(await seconds(metrics, "max")).toBeLessThan(0.4);
  expect(await seconds(metrics, "p99")).toBeGreaterThan(0.15);
});
