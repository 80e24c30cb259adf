/**
 * The fleet's time: every instant the coordinator, its guard, the lease book, the pass over the leases, the
 * watch of the peers and the hand-overs reckon with is read here, from Effect's `Clock` as the layer that made
 * the fleet found it (the runtime's own, or a test's TestClock, so that the fence and isolation rules can be
 * driven by moving time by hand: test/fleet/fence-clock.test.ts). Nothing else in src/effects/fleet reads a
 * clock of the process's or the platform's own.
 *
 * Two readings, as the clock has two:
 * - `now()`: the monotonic clock (`Clock.currentTimeNanos`, in ms), for every deadline and age. Lease times
 *   are the database's; what the node reckons from them is this clock, so clocks that disagree between nodes
 *   never matter.
 * - `wallMs()`: the wall clock (`Clock.currentTimeMillis`, epoch ms), only for what crosses processes: the time
 *   an old holder cut a channel, written with the lease row and read by the next holder.
 *
 * What the forwarding threads read has no Effect runtime behind it: a send gate's instant
 * (runtime/sockets/send-gates.ts) and the instant a hand-over's margin begins (channel/cut-stage.ts) are on the
 * clock every thread of the process shares (`monotonicMs`, `process.hrtime`). `sharedInstant` carries an
 * instant of this clock over to that one, by the distance from now: with the runtime's clock (whose nanoseconds
 * are `process.hrtime` plus a fixed origin) it is the same instant; on a TestClock, as far from now.
 */
import * as Effect from "effect/Effect";
import { monotonicMs } from "../runtime/sockets/send-gates.ts";

export interface FleetClock {
  /** The monotonic clock, in ms: deadlines and ages. */
  readonly now: () => number;
  /** The wall clock, epoch ms: what another process reads (a cut's time). */
  readonly wallMs: () => number;
  /** `at` (on `now`'s clock) as an instant of the clock the process's threads share (`monotonicMs`). */
  readonly sharedInstant: (at: number) => number;
}

/** The clock of the running effect's context, read once: its readings cost a call, not an effect. */
export const fleetClock: Effect.Effect<FleetClock> = Effect.map(Effect.clock, (clock) => {
  const now = () => Number(clock.unsafeCurrentTimeNanos()) / 1e6;
  return {
    now,
    wallMs: () => clock.unsafeCurrentTimeMillis(),
    sharedInstant: (at) => monotonicMs() + (at - now()),
  };
});
