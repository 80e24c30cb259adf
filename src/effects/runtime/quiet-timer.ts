/**
 * A loop that usually finds nothing to do, at the cost of a plain timer. An Effect loop at rest
 * (`Effect.repeat(work, Schedule.spaced(…))`) costs about five times a plain timer per round (`npm run
 * bench:timers`): its schedule, clock and fiber machinery run even when the work is nothing, and a service in
 * a fleet of dozens of nodes on one machine runs several such loops a second. Here the timer's callback asks `due` in plain code and
 * starts `work` as an effect only when there is something to do (at once, then each round), one run at a
 * time: a round that comes while the last run goes on is skipped. A run still going when the scope closes is
 * interrupted, as a forked loop would be.
 */
import { Effect, Fiber, Runtime, type Scope } from "effect";

export const quietly = (
  everyMs: number,
  due: () => boolean,
  work: Effect.Effect<void>,
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const run = Runtime.runFork(yield* Effect.runtime<never>());
    let busy = false;
    /** The run in progress, if it did not end as it started (a synchronous one does). */
    let running: Fiber.RuntimeFiber<void> | null = null;
    const done = Effect.sync(() => {
      busy = false;
      running = null;
    });
    const round = () => {
      if (busy || !due()) return;
      busy = true;
      const fiber = run(Effect.ensuring(work, done));
      if (busy) running = fiber;
    };
    const timer = setInterval(round, everyMs);
    round();
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        clearInterval(timer);
        return running === null ? Effect.void : Fiber.interrupt(running);
      }),
    );
  });
