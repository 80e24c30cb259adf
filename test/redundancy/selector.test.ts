import { describe, expect, it } from "@effect/vitest";
import { Clock, Duration, Effect, TestClock } from "effect";
import type { InputRole } from "../../src/domain/channel/redundancy.ts";
import type { RedundancyEvent } from "../../src/effects/ingest/failover.ts";
import { makeSelector, type Selector } from "../../src/effects/ingest/selector.ts";

// Every timer here runs on the TestClock: arrivals are synthetic, time moves only when the test moves it.

// Arrivals every 100 ms: well inside the 500 ms silence, and few enough clock adjustments to keep the test fast.
const STEP_MS = 100;

const selectorWith = (
  policy: { readonly revert?: "auto" | "sticky"; readonly revertAfterMs?: number } = {},
  onEvent?: (event: RedundancyEvent) => void,
) =>
  makeSelector({
    ...(onEvent === undefined ? {} : { onEvent }),
    channel: "test",
    policy: {
      roles: ["primary", "backup"],
      switching: true,
      failoverAfterMs: 500,
      revert: policy.revert ?? "auto",
      revertAfterMs: policy.revertAfterMs ?? 10_000,
    },
  });

/** Moves the clock by `ms` in steps; before each step, each role that is `on` at that time sends. */
const feed = (
  selector: Selector,
  ms: number,
  on: { readonly primary: boolean | ((atMs: number) => boolean); readonly backup: boolean },
) =>
  Effect.gen(function* () {
    for (let elapsed = 0; elapsed < ms; elapsed += STEP_MS) {
      const primary = typeof on.primary === "function" ? on.primary(selector.now()) : on.primary;
      if (primary) selector.arrival("primary");
      if (on.backup) selector.arrival("backup");
      yield* TestClock.adjust(Duration.millis(STEP_MS));
    }
  });

const switches = (events: ReadonlyArray<RedundancyEvent>) =>
  events.flatMap((event) => (event.type === "switch" ? [`${event.from}→${event.to} ${event.reason}`] : []));

const both = { primary: true, backup: true } as const;
const backupOnly = { primary: false, backup: true } as const;

describe("failover selector", () => {
  it.scoped("fails over once the primary has been silent for failover_after_ms, not before", () =>
    Effect.gen(function* () {
      const seen: RedundancyEvent[] = [];
      const selector = yield* selectorWith({}, (event) => seen.push(event));
      yield* feed(selector, 1_000, both);
      expect(selector.active()).toBe("primary");
      expect(selector.health()).toBe("ok");
      const lastPrimary = selector.lastArrival("primary") ?? 0;
      // The last primary datagram came a step before the feed ended.
      yield* feed(selector, 300, backupOnly);
      expect(selector.active()).toBe("primary");
      yield* feed(selector, 200, backupOnly);
      expect(selector.active()).toBe("backup");
      const event = seen.find((e) => e.type === "switch");
      expect(event).toMatchObject({ type: "switch", from: "primary", to: "backup", reason: "silence" });
      const delay = (event?.at ?? 0) - lastPrimary;
      expect(delay).toBeGreaterThanOrEqual(500);
      expect(delay).toBeLessThanOrEqual(500 + 50);
      expect(selector.failovers("primary")).toBe(1);
      expect(selector.failovers("backup")).toBe(0);
      expect(selector.events()).toEqual(seen);
    }),
  );

  it.scoped("new timers and mode apply live: a shorter revert, then no switching puts the primary back", () =>
    Effect.gen(function* () {
      const selector = yield* selectorWith({ revertAfterMs: 10_000 });
      yield* feed(selector, 1_000, both);
      yield* feed(selector, 1_000, backupOnly);
      expect(selector.active()).toBe("backup");
      const live = {
        roles: ["primary", "backup"] as const,
        switching: true,
        failoverAfterMs: 500,
        revert: "auto" as const,
      };
      selector.setPolicy({ ...live, roles: [...live.roles], revertAfterMs: 1_000 });
      yield* feed(selector, 1_200, both);
      expect(selector.active()).toBe("primary");
      yield* feed(selector, 1_000, backupOnly);
      expect(selector.active()).toBe("backup");
      selector.setPolicy({ ...live, roles: [...live.roles], revertAfterMs: 1_000, switching: false });
      yield* feed(selector, 100, backupOnly);
      expect(selector.active()).toBe("primary");
      expect(switches(selector.events())).toEqual([
        "primary→backup silence",
        "backup→primary primary_restored",
        "primary→backup silence",
        "backup→primary operator",
      ]);
    }),
  );

  it.scoped("auto revert: back to the primary after revert_after_ms of healthy primary", () =>
    Effect.gen(function* () {
      const selector = yield* selectorWith({ revertAfterMs: 10_000 });
      yield* feed(selector, 1_000, both);
      yield* feed(selector, 1_000, backupOnly);
      expect(selector.active()).toBe("backup");
      yield* feed(selector, 9_900, both);
      expect(selector.active()).toBe("backup");
      yield* feed(selector, 200, both);
      expect(selector.active()).toBe("primary");
      expect(switches(selector.events())).toEqual([
        "primary→backup silence",
        "backup→primary primary_restored",
      ]);
    }),
  );

  it.scoped("sticky: stays on the backup while it keeps delivering", () =>
    Effect.gen(function* () {
      const selector = yield* selectorWith({ revert: "sticky" });
      yield* feed(selector, 1_000, both);
      yield* feed(selector, 1_000, backupOnly);
      yield* feed(selector, 15_000, both);
      expect(selector.active()).toBe("backup");
      expect(switches(selector.events())).toEqual(["primary→backup silence"]);
      // Sticky is not stuck: a silent backup still fails over to a live primary.
      yield* feed(selector, 600, { primary: true, backup: false });
      expect(selector.active()).toBe("primary");
    }),
  );

  it.scoped("an operator switch takes effect at once and is not undone by auto revert", () =>
    Effect.gen(function* () {
      const selector = yield* selectorWith({ revertAfterMs: 1_000 });
      yield* feed(selector, 500, both);
      yield* selector.switchTo("backup");
      expect(selector.active()).toBe("backup");
      yield* feed(selector, 5_000, both);
      expect(selector.active()).toBe("backup");
      yield* selector.switchTo("backup");
      yield* selector.switchTo("primary");
      expect(selector.active()).toBe("primary");
      expect(switches(selector.events())).toEqual(["primary→backup operator", "backup→primary operator"]);
      expect(selector.failovers("primary")).toBe(1);
      expect(selector.failovers("backup")).toBe(1);
    }),
  );

  it.scoped("a flapping primary costs one switch, and the revert waits until it is steady", () =>
    Effect.gen(function* () {
      const selector = yield* selectorWith({ revertAfterMs: 10_000 });
      yield* feed(selector, 1_000, both);
      // For 21 s the primary drops for 1 s out of every 3: never healthy for the 10 s a revert needs.
      const start = selector.now();
      yield* feed(selector, 21_000, { primary: (atMs) => (atMs - start) % 3_000 >= 1_000, backup: true });
      expect(selector.active()).toBe("backup");
      expect(switches(selector.events())).toEqual(["primary→backup silence"]);
      yield* feed(selector, 10_100, both);
      expect(switches(selector.events())).toEqual([
        "primary→backup silence",
        "backup→primary primary_restored",
      ]);
    }),
  );

  it.scoped("reports the input lost when every input is silent, and restored when data returns", () =>
    Effect.gen(function* () {
      const selector = yield* selectorWith();
      expect(selector.health()).toBe("lost");
      yield* feed(selector, 200, both);
      expect(selector.health()).toBe("ok");
      yield* feed(selector, 600, { primary: false, backup: false });
      expect(selector.health()).toBe("lost");
      // Whichever input returns first carries the channel.
      yield* feed(selector, 100, backupOnly);
      expect(selector.health()).toBe("ok");
      expect(selector.active()).toBe("backup");
      const kinds = selector
        .events()
        .map((event) =>
          event.type === "switch"
            ? `switch ${event.reason}`
            : `${event.type}${"role" in event ? ` ${event.role}` : ""}`,
        );
      expect(kinds).toEqual([
        "input_restored primary",
        "input_lost",
        "switch silence",
        "input_restored backup",
      ]);
    }),
  );

  it.scoped("without switching (merge, or no backup) the primary stays active", () =>
    Effect.gen(function* () {
      const selector = yield* makeSelector({
        channel: "merge",
        policy: {
          roles: ["primary", "backup"] satisfies InputRole[],
          switching: false,
          failoverAfterMs: 500,
          revert: "auto",
          revertAfterMs: 0,
        },
      });
      yield* feed(selector, 2_000, backupOnly);
      expect(selector.active()).toBe("primary");
      expect(selector.health()).toBe("ok");
      expect(switches(selector.events())).toEqual([]);
    }),
  );

  it.scoped("a listener that throws is logged and the timers go on", () =>
    Effect.gen(function* () {
      let calls = 0;
      const selector = yield* selectorWith({ revertAfterMs: 1_000 }, () => {
        calls += 1;
        throw new Error("listener bug");
      });
      yield* feed(selector, 1_000, both);
      yield* feed(selector, 1_000, backupOnly);
      expect(selector.active()).toBe("backup");
      // The primary comes back: the revert needs the tick fiber alive after the listener threw.
      yield* feed(selector, 1_500, both);
      expect(selector.active()).toBe("primary");
      expect(switches(selector.events())).toEqual([
        "primary→backup silence",
        "backup→primary primary_restored",
      ]);
      expect(calls).toBeGreaterThanOrEqual(2);
    }),
  );

  it.scoped("a step of the wall clock causes no switch: the timers run on monotonic time", () =>
    Effect.gen(function* () {
      const test = yield* Effect.clock;
      // Wall time jumps an hour ahead after the first second; monotonic time (nanoseconds) does not.
      let wallOffsetMs = 0;
      const stepping: Clock.Clock = {
        [Clock.ClockTypeId]: Clock.ClockTypeId,
        unsafeCurrentTimeMillis: () => test.unsafeCurrentTimeMillis() + wallOffsetMs,
        currentTimeMillis: Effect.sync(() => test.unsafeCurrentTimeMillis() + wallOffsetMs),
        unsafeCurrentTimeNanos: () => test.unsafeCurrentTimeNanos(),
        currentTimeNanos: Effect.sync(() => test.unsafeCurrentTimeNanos()),
        sleep: (duration) => test.sleep(duration),
      };
      const selector = yield* selectorWith().pipe(Effect.withClock(stepping));
      yield* feed(selector, 1_000, both);
      wallOffsetMs = 3_600_000;
      yield* feed(selector, 1_000, both);
      wallOffsetMs = -3_600_000;
      yield* feed(selector, 1_000, both);
      expect(selector.active()).toBe("primary");
      expect(switches(selector.events())).toEqual([]);
      // The same selector still fails over on real silence.
      yield* feed(selector, 1_000, backupOnly);
      expect(switches(selector.events())).toEqual(["primary→backup silence"]);
    }),
  );
  it.scoped("an idle selector does not tick, and a datagram after a silence starts its timers again", () =>
    Effect.gen(function* () {
      let ticks = 0;
      const selector = yield* makeSelector({
        channel: "idle",
        policy: {
          roles: ["primary", "backup"] satisfies InputRole[],
          switching: true,
          failoverAfterMs: 500,
          revert: "auto",
          revertAfterMs: 10_000,
        },
        onTick: () => {
          ticks += 1;
        },
      });
      yield* TestClock.adjust(Duration.minutes(10));
      // One tick as the fiber starts, then nothing is pending.
      expect(ticks).toBe(1);
      yield* feed(selector, 1_000, both);
      yield* feed(selector, 2_000, { primary: false, backup: false });
      expect(selector.health()).toBe("lost");
      const busy = ticks;
      yield* TestClock.adjust(Duration.minutes(10));
      expect(ticks).toBe(busy);
      // Both back after the loss, then the primary stops: its failover comes on time, from a sleeping fiber.
      yield* feed(selector, 1_000, both);
      const lastPrimary = selector.lastArrival("primary") ?? 0;
      yield* feed(selector, 1_000, backupOnly);
      const event = selector.lastSwitch();
      expect(event).toMatchObject({ from: "primary", to: "backup", reason: "silence" });
      expect((event?.at ?? 0) - lastPrimary).toBe(500);
    }),
  );

  it.scoped("a merge gap wakes the fiber for its expiry, and only then", () =>
    Effect.gen(function* () {
      const flushes: number[] = [];
      let gap: number | null = null;
      const selector = yield* makeSelector({
        channel: "gap",
        policy: {
          roles: ["primary"] satisfies InputRole[],
          switching: false,
          failoverAfterMs: 500,
          revert: "auto",
          revertAfterMs: 0,
        },
        onTick: (nowMs) => {
          flushes.push(nowMs);
          if (gap !== null && nowMs >= gap) gap = null;
        },
        nextFlush: () => gap,
      });
      yield* TestClock.adjust(Duration.seconds(1));
      const start = selector.now();
      gap = start + 30;
      selector.wakeBy(gap);
      yield* TestClock.adjust(Duration.millis(100));
      // The wake-up itself, then the gap's expiry to the millisecond.
      expect(flushes.slice(1).map((at) => at - start)).toEqual([0, 30]);
      yield* TestClock.adjust(Duration.seconds(10));
      expect(flushes).toHaveLength(3);
    }),
  );
});
