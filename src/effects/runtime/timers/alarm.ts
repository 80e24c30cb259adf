/**
 * A sleep that a ring cuts short: what a loop waits on when it runs at its own pace and also at once when
 * told. One suspension on one timer per round, where `Effect.race(Effect.sleep(…), Queue.take(…))` forks two
 * fibers and a schedule each round; rings while the loop is busy are kept as one, so the next sleep ends at
 * once. One loop sleeps on an alarm at a time.
 */
import * as Effect from "effect/Effect";

interface Alarm {
  readonly ring: () => void;
  /** Sleeps `ms`, or until rung (true then). */
  readonly sleep: (ms: number) => Effect.Effect<boolean>;
}

export const makeAlarm = (): Alarm => {
  let rung = false;
  let wake: (() => void) | null = null;
  return {
    ring: () => {
      if (wake === null) rung = true;
      else wake();
    },
    sleep: (ms) =>
      Effect.async<boolean>((resume) => {
        if (rung) {
          rung = false;
          resume(Effect.succeed(true));
          return;
        }
        const end = (byRing: boolean) => {
          clearTimeout(timer);
          wake = null;
          resume(Effect.succeed(byRing));
        };
        const timer = setTimeout(() => end(false), Math.max(0, ms));
        wake = () => end(true);
        return Effect.sync(() => {
          clearTimeout(timer);
          wake = null;
        });
      }),
  };
};
