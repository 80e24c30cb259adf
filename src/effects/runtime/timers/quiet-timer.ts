/**
 * A loop that usually finds nothing to do, at the cost of a plain timer. An Effect loop at rest
 * (`Effect.repeat(work, Schedule.spaced(…))`) costs about five times a plain timer per round (`npm run
 * bench:timers`): its schedule, clock and fiber machinery run even when the work is nothing, and a service in
 * a fleet of dozens of nodes on one machine runs several such loops a second. Here the timer's callback asks `due` in plain code and
 * starts `work` as an effect only when there is something to do (at once, then each round), one run at a
 * time: a round that comes while the last run goes on is skipped. A run still going when the scope closes is
 * interrupted, as a forked loop would be.
 *
 * A loop that can tell how long `due` stays false (`quietFor`, the fleet's guard: its next deadline) sleeps
 * that long at rest instead of a round's time, and `now` asks for a round at once (something happened that
 * may make it due).
 */
import * as Effect from "effect/Effect";
import * as Fiber from "effect/Fiber";
import * as Runtime from "effect/Runtime";
import type * as Scope from "effect/Scope";

interface QuietTimer {
  /** A round as soon as the event loop comes back to the timer, whatever it was waiting for. */
  readonly now: () => void;
}

export const quietly = (
  everyMs: number,
  due: () => boolean,
  work: Effect.Effect<void>,
  quietFor?: () => number,
): Effect.Effect<QuietTimer, never, Scope.Scope> =>
  Effect.gen(function* () {
    const run = Runtime.runFork(yield* Effect.runtime<never>());
    let busy = false;
    /** The run in progress, if it did not end as it started (a synchronous one does). */
    let running: Fiber.RuntimeFiber<void> | null = null;
    let closed = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let armedMs = 0;
    /** The next round in `ms`; the same wait as the last re-arms the same timer, as an interval would. */
    const arm = (ms: number) => {
      if (closed) return;
      const wait = Math.max(1, Math.ceil(ms));
      if (timer !== undefined && wait === armedMs) timer.refresh();
      else {
        clearTimeout(timer);
        timer = setTimeout(round, wait);
        armedMs = wait;
      }
    };
    const done = Effect.sync(() => {
      busy = false;
      running = null;
    });
    const round = () => {
      if (busy) return arm(everyMs);
      if (!due()) return arm(quietFor === undefined ? everyMs : quietFor());
      arm(everyMs);
      busy = true;
      const fiber = run(Effect.ensuring(work, done));
      if (busy) running = fiber;
    };
    round();
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true;
        clearTimeout(timer);
        return running === null ? Effect.void : Fiber.interrupt(running);
      }),
    );
    return { now: () => arm(0) };
  });
