/**
 * The selector of one channel: the failover state (failover.ts) on the Effect clock, ticked by one fiber in the
 * channel's scope. Arrivals are recorded synchronously from the socket callbacks; every decision is taken on
 * a tick, so a TestClock drives the timers in tests. Each event is kept in a short recent list and handed to
 * `onEvent` (the channel passes it to the event bus, which logs it).
 *
 * The fiber sleeps until the next deadline (the failover state's, or a merge buffer's gap) and not at all
 * when nothing is pending, so an idle channel costs nothing over time. Whatever makes a deadline earlier
 * wakes it: an arrival that starts a stretch or decides a switch, an operator's switch, new settings, a gap
 * (`wakeBy`). Deadlines are met to the millisecond, on the clock's timer.
 *
 * Timers run on the clock's monotonic time (nanoseconds since an arbitrary origin), so a step of the wall
 * clock cannot cause or prevent a switch; events carry wall-clock time for people.
 */
import * as Duration from "effect/Duration";
import * as Effect from "effect/Effect";
import type * as Scope from "effect/Scope";
import type { InputRole } from "../../domain/channel/redundancy.ts";
import { makeAlarm } from "../runtime/timers/alarm.ts";
import {
  type FailoverPolicy,
  type InputHealth,
  makeFailoverState,
  type RedundancyEvent,
} from "./failover.ts";

const RECENT_EVENTS = 50;

export interface Selector {
  /** Records a datagram on `role` at `atMs` (`now()` when left out); returns the time it used (monotonic ms). */
  readonly arrival: (role: InputRole, atMs?: number) => number;
  readonly now: () => number;
  readonly active: () => InputRole;
  readonly health: () => InputHealth;
  readonly lastArrival: (role: InputRole) => number | null;
  readonly failovers: (role: InputRole) => number;
  /** The health rules' verdict on `role`: the rules that hold while it is unhealthy, null once healthy. */
  readonly judged: (role: InputRole, rule: string | null) => void;
  /** Switches at once (reason "operator"); nothing happens when `role` is already active. */
  readonly switchTo: (role: InputRole) => Effect.Effect<void>;
  /** Recent events, oldest first; `at` is epoch ms. */
  readonly events: () => ReadonlyArray<RedundancyEvent>;
  readonly lastSwitch: () => Extract<RedundancyEvent, { readonly type: "switch" }> | null;
  /** New timers, inputs or mode, live: nothing restarts (see FailoverState.setPolicy). */
  readonly setPolicy: (policy: FailoverPolicy) => void;
  /** Asks for a tick by `atMs` (monotonic ms): a merge buffer now holds a gap that expires then. */
  readonly wakeBy: (atMs: number) => void;
}

export const makeSelector = (options: {
  /** Names the channel in logs. */
  readonly channel: string;
  readonly policy: FailoverPolicy;
  /** Runs first on every tick, with the tick's time: the merge buffers give up their expired gaps here. */
  readonly onTick?: (nowMs: number) => void;
  /** After each tick: when `onTick` next has work (the earliest gap a merge buffer holds), or null. */
  readonly nextFlush?: () => number | null;
  /** Each event as it is decided (`at` in epoch ms); a throw here is logged and does not stop the timers. */
  readonly onEvent?: (event: RedundancyEvent) => void;
  /**
   * The monotonic clock in ms, when the Effect clock is the live one: it is read for every datagram, and the
   * Effect clock's nanoseconds are a new BigInt each time. Left out, the Effect clock's (a TestClock in tests).
   */
  readonly nowMs?: () => number;
}): Effect.Effect<Selector, never, Scope.Scope> =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock;
    const now = options.nowMs ?? (() => Number(clock.unsafeCurrentTimeNanos()) / 1e6);
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

    // When the fiber next runs (monotonic ms): +Infinity while it waits for a wake-up, -Infinity while it runs.
    let wakeAt = Number.NEGATIVE_INFINITY;
    let woken = false;
    let resume: (() => void) | null = null;
    // On the live clock (`nowMs` given) the fiber sleeps on a plain timer that a wake-up cuts short
    // (runtime/timers/alarm.ts): `Effect.race` of a wake-up and `Effect.sleep` forked two fibers each round, about
    // 0.4 ms of CPU on this machine against a timer's 0.05, twice a second per channel on a steady stream (the
    // next deadline is the input's silence). A TestClock keeps the race, on the clock it drives.
    const alarm = options.nowMs === undefined ? null : makeAlarm();
    const wakeBy = (atMs: number) => {
      if (atMs >= wakeAt) return;
      wakeAt = atMs;
      woken = true;
      const waiting = resume;
      resume = null;
      if (waiting !== null) waiting();
      else alarm?.ring();
    };
    const wake = () => wakeBy(Number.NEGATIVE_INFINITY);
    const wakeUp = Effect.async<void>((done) => {
      // A wake-up between the tick and this wait is not lost.
      if (woken) return done(Effect.void);
      const self = () => done(Effect.void);
      resume = self;
      return Effect.sync(() => {
        if (resume === self) resume = null;
      });
    });

    const step = Effect.suspend(() => {
      woken = false;
      wakeAt = Number.NEGATIVE_INFINITY;
      const at = now();
      options.onTick?.(at);
      const events = state.tick(at);
      const deadline = state.nextDeadline(at);
      const flush = options.nextFlush?.() ?? null;
      const next = deadline === null ? flush : flush === null ? deadline : Math.min(deadline, flush);
      wakeAt = next ?? Number.POSITIVE_INFINITY;
      // At least a millisecond: a timer may fire a fraction early, and nothing is due right after a tick.
      const ms = next === null ? 0 : Math.max(1, Math.ceil(next - at));
      const wait =
        next === null
          ? wakeUp
          : alarm !== null
            ? Effect.asVoid(alarm.sleep(ms))
            : Effect.race(wakeUp, Effect.sleep(Duration.millis(ms)));
      return events.length === 0
        ? wait
        : Effect.zipRight(Effect.forEach(events, publish, { discard: true }), wait);
    });
    yield* Effect.forkScoped(Effect.forever(step));

    return {
      arrival: (role, atMs) => {
        const at = atMs ?? now();
        if (state.arrival(role, at)) wake();
        return at;
      },
      now,
      active: state.active,
      health: state.health,
      lastArrival: state.lastArrival,
      failovers: state.failovers,
      judged: (role, rule) => {
        if (state.judged(role, rule, now())) wake();
      },
      switchTo: (role) =>
        Effect.suspend(() => {
          const event = state.operator(role, now());
          if (event === null) return Effect.void;
          // The operator's hold cancels a pending revert.
          wake();
          return publish(event);
        }),
      events: () => [...recent],
      lastSwitch: () => lastSwitch,
      setPolicy: (policy) => {
        state.setPolicy(policy, now());
        wake();
      },
      wakeBy,
    } satisfies Selector;
  });
