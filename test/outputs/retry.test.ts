import { it } from "@effect/vitest";
import { Clock, Duration, Effect, Exit, Fiber, TestClock } from "effect";
import { describe, expect } from "vitest";
import { OutputError } from "../../src/domain/channel/output-error.ts";
import {
  type ReconnectOptions,
  reconnectSchedule,
  runWithReconnects,
} from "../../src/effects/outputs/retry.ts";

const refused = new OutputError({ reason: "connect_refused", message: "connection refused by 127.0.0.1:9" });
const stepMs = 200;

/**
 * Runs attempts that fail at once (or after `runFor(attempt)` ms) under the TestClock, advancing it in small
 * steps, and returns when each attempt began plus how the run ended.
 */
const runAttempts = (
  options: ReconnectOptions,
  totalMs: number,
  runFor: (attempt: number) => number = () => 0,
) =>
  Effect.gen(function* () {
    const starts: Array<number> = [];
    const retries: Array<number> = [];
    let reconnects = 0;
    const attempt = Effect.gen(function* () {
      starts.push(yield* Clock.currentTimeMillis);
      const ranFor = runFor(starts.length - 1);
      if (ranFor > 0) yield* Effect.sleep(Duration.millis(ranFor));
      return yield* refused;
    });
    const fiber = yield* Effect.fork(
      runWithReconnects(attempt, reconnectSchedule(options), {
        onRetry: (_, delay) => Effect.sync(() => retries.push(Duration.toMillis(delay))),
        onReconnect: Effect.sync(() => {
          reconnects += 1;
        }),
      }),
    );
    for (let elapsed = 0; elapsed < totalMs; elapsed += stepMs)
      yield* TestClock.adjust(Duration.millis(stepMs));
    const exit = yield* Fiber.poll(fiber);
    yield* Fiber.interrupt(fiber);
    return { starts, retries, reconnects, exit };
  });

const gaps = (starts: ReadonlyArray<number>, runFor: (attempt: number) => number = () => 0) =>
  // Jitter makes fractional milliseconds; whole ones are precise enough.
  starts.slice(1).map((start, i) => Math.round(start - (starts[i] ?? 0) - runFor(i)));

describe("reconnect schedule", () => {
  it.effect("waits 1 s, 2 s, 4 s … with ±20 % jitter, capped at 30 s", () =>
    Effect.gen(function* () {
      const { starts, retries, reconnects } = yield* runAttempts({}, 130_000);
      const nominal = [1, 2, 4, 8, 16, 30, 30, 30].map((s) => s * 1000);
      const measured = gaps(starts).slice(0, nominal.length);
      expect(measured).toHaveLength(nominal.length);
      measured.forEach((gap, i) => {
        const base = [1, 2, 4, 8, 16, 32, 64, 128][i] ?? 0;
        expect(gap).toBeGreaterThanOrEqual(Math.floor(Math.min(0.8 * base * 1000, 30_000)));
        expect(gap).toBeLessThanOrEqual(Math.min(1.2 * base * 1000, 30_000) + stepMs);
        expect(gap).toBeLessThanOrEqual((nominal[i] ?? 0) * 1.2 + stepMs);
      });
      // The reported delays are the ones actually waited.
      retries.slice(0, measured.length).forEach((delay, i) => {
        expect(measured[i]).toBeGreaterThanOrEqual(Math.floor(delay));
        expect(measured[i]).toBeLessThanOrEqual(delay + stepMs);
      });
      expect(reconnects).toBe(starts.length - 1);
    }),
  );

  it.effect("an attempt that stayed up a minute resets the backoff", () =>
    Effect.gen(function* () {
      const runFor = (attempt: number) => (attempt === 4 ? 61_000 : 0);
      const { starts } = yield* runAttempts({}, 110_000, runFor);
      const measured = gaps(starts, runFor);
      // Attempts 0-4 back off 1, 2, 4, 8 s; attempt 4 ran 61 s, so the next wait is the first one again.
      expect(measured[3]).toBeGreaterThanOrEqual(6_400);
      expect(measured[4]).toBeGreaterThanOrEqual(800);
      expect(measured[4]).toBeLessThanOrEqual(1_200 + stepMs);
      expect(measured[5]).toBeGreaterThanOrEqual(1_600);
      expect(measured[5]).toBeLessThanOrEqual(2_400 + stepMs);
    }),
  );

  it.effect("gives up after the maximum attempts with the last error", () =>
    Effect.gen(function* () {
      const { starts, retries, reconnects, exit } = yield* runAttempts({ maxAttempts: 3 }, 20_000);
      expect(starts).toHaveLength(3);
      expect(reconnects).toBe(2);
      // Two retries announced, not a third for an attempt that never comes.
      expect(retries).toHaveLength(2);
      const ended = exit._tag === "Some" ? exit.value : null;
      expect(ended !== null && Exit.isFailure(ended)).toBe(true);
      if (ended !== null && Exit.isFailure(ended))
        expect(String(ended.cause)).toContain("connection refused");
    }),
  );

  it.effect("does not retry what retrying cannot fix", () =>
    Effect.gen(function* () {
      let attempts = 0;
      const exit = yield* Effect.exit(
        runWithReconnects(
          Effect.suspend(() => {
            attempts += 1;
            return Effect.fail(
              new OutputError({ reason: "not_installed", message: "ffmpeg could not be started" }),
            );
          }),
          reconnectSchedule(),
          { onRetry: () => Effect.void, onReconnect: Effect.void },
        ),
      );
      expect(attempts).toBe(1);
      expect(Exit.isFailure(exit)).toBe(true);
    }),
  );
});
