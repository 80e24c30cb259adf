/**
 * The selector of one channel: the failover state (failover.ts) on the Effect clock, ticked by one fiber in the
 * channel's scope. Arrivals are recorded synchronously from the socket callbacks; every decision is taken on
 * a tick, so a TestClock drives the timers in tests. Each event is kept in a short recent list and handed to
 * `onEvent` (the channel passes it to the event bus, which logs it).
 *
 * Timers run on the clock's monotonic time (nanoseconds since an arbitrary origin), so a step of the wall
 * clock cannot cause or prevent a switch; events carry wall-clock time for people.
 */
import { Duration, Effect, Schedule, type Scope } from "effect";
import type { InputRole } from "../../domain/redundancy.ts";
import {
  type FailoverPolicy,
  type InputHealth,
  makeFailoverState,
  type RedundancyEvent,
} from "./failover.ts";

/** How often the timers are looked at: the failover delay is met to within this. */
export const SELECTOR_TICK = Duration.millis(50);
const RECENT_EVENTS = 50;

export interface Selector {
  /** Records a datagram on `role`; returns the time it used (monotonic ms). */
  readonly arrival: (role: InputRole) => number;
  readonly now: () => number;
  readonly active: () => InputRole;
  readonly health: () => InputHealth;
  readonly lastArrival: (role: InputRole) => number | null;
  readonly failovers: (role: InputRole) => number;
  /** Switches at once (reason "operator"); nothing happens when `role` is already active. */
  readonly switchTo: (role: InputRole) => Effect.Effect<void>;
  /** Recent events, oldest first; `at` is epoch ms. */
  readonly events: () => ReadonlyArray<RedundancyEvent>;
  readonly lastSwitch: () => Extract<RedundancyEvent, { readonly type: "switch" }> | null;
  /** New timers, inputs or mode, live: nothing restarts (see FailoverState.setPolicy). */
  readonly setPolicy: (policy: FailoverPolicy) => void;
}

export const makeSelector = (options: {
  /** Names the channel in logs. */
  readonly channel: string;
  readonly policy: FailoverPolicy;
  /** Runs first on every tick, with the tick's time: the merge buffers give up their expired gaps here. */
  readonly onTick?: (nowMs: number) => void;
  /** Each event as it is decided (`at` in epoch ms); a throw here is logged and does not stop the timers. */
  readonly onEvent?: (event: RedundancyEvent) => void;
}): Effect.Effect<Selector, never, Scope.Scope> =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock;
    const now = () => Number(clock.unsafeCurrentTimeNanos()) / 1e6;
    const state = makeFailoverState(options.policy, now());
    const recent: RedundancyEvent[] = [];
    let lastSwitch: Extract<RedundancyEvent, { readonly type: "switch" }> | null = null;

    const publish = (decided: RedundancyEvent) =>
      Effect.suspend(() => {
        const event = { ...decided, at: clock.unsafeCurrentTimeMillis() };
        if (event.type === "switch") lastSwitch = event;
        recent.push(event);
        if (recent.length > RECENT_EVENTS) recent.shift();
        options.onEvent?.(event);
        return Effect.void;
      }).pipe(
        Effect.catchAllDefect((defect) => Effect.logError("a redundancy event listener failed", defect)),
        Effect.annotateLogs({ channel: options.channel }),
      );

    const tick = Effect.suspend(() => {
      const at = now();
      options.onTick?.(at);
      const events = state.tick(at);
      return events.length === 0 ? Effect.void : Effect.forEach(events, publish, { discard: true });
    });
    yield* Effect.forkScoped(Effect.repeat(tick, Schedule.spaced(SELECTOR_TICK)));

    return {
      arrival: (role) => {
        const at = now();
        state.arrival(role, at);
        return at;
      },
      now,
      active: state.active,
      health: state.health,
      lastArrival: state.lastArrival,
      failovers: state.failovers,
      switchTo: (role) =>
        Effect.suspend(() => {
          const event = state.operator(role, now());
          return event === null ? Effect.void : publish(event);
        }),
      events: () => [...recent],
      lastSwitch: () => lastSwitch,
      setPolicy: (policy) => state.setPolicy(policy, now()),
    } satisfies Selector;
  });
