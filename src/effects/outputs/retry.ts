/**
 * How outputs reconnect. A writer runs in attempts: each attempt opens its destination and runs until it
 * fails. Between attempts the reconnect schedule decides the wait; an attempt that stayed up for a stable
 * minute counts as a success, so the next failure starts again from the shortest wait (and from a fresh
 * attempt budget).
 */
import * as Clock from "effect/Clock";
import * as Duration from "effect/Duration";
import * as Effect from "effect/Effect";
import * as Schedule from "effect/Schedule";
import * as ScheduleDecision from "effect/ScheduleDecision";
import type * as Scope from "effect/Scope";
import { isRetryable, type OutputError } from "../../domain/channel/output-error.ts";

/** What the schedule is told when an attempt ends. */
interface AttemptEnded {
  readonly error: OutputError;
  readonly ranFor: Duration.Duration;
}

export interface ReconnectOptions {
  /** Attempts before giving up, the first one included; 0 tries forever. */
  readonly maxAttempts?: number;
  readonly firstDelay?: Duration.DurationInput;
  readonly maxDelay?: Duration.DurationInput;
  /** An attempt that ran at least this long resets the backoff. */
  readonly stableAfter?: Duration.DurationInput;
}

/** The waits alone: from `firstDelay` (1 s), doubling, jittered by ±20 %, capped at `maxDelay` (30 s). */
export const backoff = (options: ReconnectOptions = {}): Schedule.Schedule<Duration.Duration> => {
  const maxDelay = Duration.decode(options.maxDelay ?? "30 seconds");
  return Schedule.exponential(options.firstDelay ?? "1 second", 2).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((_, delay) => Duration.min(delay, maxDelay)),
  );
};

/**
 * Exponential backoff from `firstDelay` (1 s), doubling, each delay jittered by ±20 % and then capped at
 * `maxDelay` (30 s); reset after a stable attempt (60 s). Outputs the delay it is about to wait.
 */
export const reconnectSchedule = (
  options: ReconnectOptions = {},
): Schedule.Schedule<Duration.Duration, AttemptEnded> => {
  const stableAfter = Duration.decode(options.stableAfter ?? "60 seconds");
  const maxAttempts = options.maxAttempts ?? 0;
  const delays = backoff(options);
  const budgeted: Schedule.Schedule<unknown> =
    maxAttempts > 0 ? Schedule.intersect(delays, Schedule.recurs(maxAttempts - 1)) : delays;
  return budgeted.pipe(
    Schedule.intersect(Schedule.identity<AttemptEnded>()),
    Schedule.resetWhen(([, ended]) => Duration.greaterThanOrEqualTo(ended.ranFor, stableAfter)),
    Schedule.delays,
  );
};

interface ReconnectHooks {
  /** Called when an attempt failed and another will follow after `delay`. */
  readonly onRetry: (error: OutputError, delay: Duration.Duration) => Effect.Effect<void>;
  /** Called as each new attempt after the first begins: one reconnect. */
  readonly onReconnect: Effect.Effect<void>;
}

/**
 * Runs `attempt` (each in its own scope, so a child process or socket is released before the wait) until
 * the schedule gives up or the error cannot be fixed by retrying; then fails with the last error.
 */
export const runWithReconnects = <R>(
  attempt: Effect.Effect<never, OutputError, R | Scope.Scope>,
  policy: Schedule.Schedule<Duration.Duration, AttemptEnded>,
  hooks: ReconnectHooks,
): Effect.Effect<never, OutputError, Exclude<R, Scope.Scope>> =>
  Effect.gen(function* () {
    let pendingError: OutputError | null = null;
    // Only a decision to go on announces a retry: when the budget is spent there is no next attempt to wait for.
    const driver = yield* Schedule.driver(
      Schedule.onDecision(policy, (delay, decision) =>
        pendingError === null || !ScheduleDecision.isContinue(decision)
          ? Effect.void
          : hooks.onRetry(pendingError, delay),
      ),
    );
    while (true) {
      const startedAt = yield* Clock.currentTimeMillis;
      const error = yield* Effect.flip(Effect.scoped(attempt));
      if (!isRetryable(error)) return yield* error;
      const endedAt = yield* Clock.currentTimeMillis;
      pendingError = error;
      const more = yield* driver.next({ error, ranFor: Duration.millis(endedAt - startedAt) }).pipe(
        Effect.as(true),
        Effect.catchAll(() => Effect.succeed(false)),
      );
      if (!more) return yield* error;
      yield* hooks.onReconnect;
    }
  });
