/**
 * The plain timers the service's resting loops run on (src/effects/runtime/timers/quiet-timer.ts, alarm.ts) and the
 * send gates' watch (send-gates.ts), which wakes at the gates' instants and at the main thread's signal rather
 * than on a period: each does what the loop it replaced did, on real timers.
 */
import { Deferred, Effect, Exit, Scope } from "effect";
import { expect, it } from "vitest";
import { gateSlot, monotonicMs, sendUntil, watchGate } from "../../src/effects/runtime/sockets/send-gates.ts";
import { makeAlarm } from "../../src/effects/runtime/timers/alarm.ts";
import { quietly } from "../../src/effects/runtime/timers/quiet-timer.ts";
import { eventually } from "../support/app.ts";

it("an alarm's sleep ends at its time, or at once when rung, a ring while awake ending the next sleep", async () => {
  const alarm = makeAlarm();
  const timed = performance.now();
  expect(await Effect.runPromise(alarm.sleep(30))).toBe(false);
  expect(performance.now() - timed).toBeGreaterThanOrEqual(29);

  const rungAt = performance.now();
  setTimeout(alarm.ring, 20);
  expect(await Effect.runPromise(alarm.sleep(60_000))).toBe(true);
  expect(performance.now() - rungAt).toBeLessThan(10_000);

  // Two rings while nobody sleeps are one: the next sleep ends at once, the one after waits its time.
  alarm.ring();
  alarm.ring();
  expect(await Effect.runPromise(alarm.sleep(60_000))).toBe(true);
  expect(await Effect.runPromise(alarm.sleep(10))).toBe(false);
});

it("a quiet loop runs its work only when due, one run at a time, first at once, and interrupts a run when its scope closes", async () => {
  const scope = await Effect.runPromise(Scope.make());
  let due = true;
  let runs = 0;
  let asked = 0;
  const release = await Effect.runPromise(Deferred.make<void>());
  const interrupted = await Effect.runPromise(Deferred.make<void>());
  const work = Effect.suspend(() => {
    runs += 1;
    // The first run waits to be released, so rounds meanwhile find it going on; the second runs until the end.
    return runs === 1
      ? Deferred.await(release)
      : Effect.onInterrupt(Effect.never, () => Deferred.succeed(interrupted, undefined));
  });
  await Effect.runPromise(
    Scope.extend(
      quietly(
        10,
        () => {
          asked += 1;
          return due;
        },
        work,
      ),
      scope,
    ),
  );
  expect(runs).toBe(1);
  // Ten rounds' time while the first run goes on: none starts another.
  await new Promise((done) => setTimeout(done, 100));
  expect(runs).toBe(1);

  // Not due: released, and rounds go on, but nothing runs.
  due = false;
  await Effect.runPromise(Deferred.succeed(release, undefined));
  const askedBefore = asked;
  await eventually("more rounds", () => (asked > askedBefore + 3 ? true : undefined));
  expect(runs).toBe(1);

  // Due again: the second run starts, and the scope's end interrupts it.
  due = true;
  await eventually("the second run", () => (runs === 2 ? true : undefined));
  await Effect.runPromise(Scope.close(scope, Exit.void));
  await Effect.runPromise(Deferred.await(interrupted));
  const after = asked;
  await new Promise((done) => setTimeout(done, 60));
  expect(asked).toBe(after);
});

it("a quiet loop that knows how long it stays not due sleeps that long at rest, and `now` brings a round at once", async () => {
  const scope = await Effect.runPromise(Scope.make());
  let due = false;
  let asked = 0;
  let runs = 0;
  const timer = await Effect.runPromise(
    Scope.extend(
      quietly(
        10,
        () => {
          asked += 1;
          return due;
        },
        Effect.sync(() => {
          runs += 1;
        }),
        () => 60_000,
      ),
      scope,
    ),
  );
  // Asked once at the start, then asleep for the minute it said, not every 10 ms.
  await new Promise((done) => setTimeout(done, 100));
  expect(asked).toBe(1);
  expect(runs).toBe(0);

  // Something happened: a round at once, which finds the work due and runs it.
  due = true;
  timer.now();
  await eventually("the run asked for", () => (runs >= 1 ? true : undefined));
  // Due, it goes on at its pace.
  await eventually("runs at the loop's pace", () => (runs >= 3 ? true : undefined));
  await Effect.runPromise(Scope.close(scope, Exit.void));
  const after = asked;
  await new Promise((done) => setTimeout(done, 60));
  expect(asked).toBe(after);
});

it("a send gate's watcher hears its instant pass unrenewed, and the main thread's open and close at once", async () => {
  const changes: Array<{ open: boolean; lapsed: boolean; atMs: number }> = [];
  sendUntil("gate-test", monotonicMs() + 60_000);
  const stop = watchGate(gateSlot("gate-test"), (open, lapsed) =>
    changes.push({ open, lapsed, atMs: monotonicMs() }),
  );
  try {
    // Renewed in time: nothing to tell.
    const until = monotonicMs() + 150;
    sendUntil("gate-test", until);
    await new Promise((done) => setTimeout(done, 50));
    expect(changes).toEqual([]);
    // Not renewed: it closes by itself when its instant passes, said as lapsed.
    const lapsed = await eventually("the gate to lapse", () => changes[0]);
    expect(lapsed.open).toBe(false);
    expect(lapsed.lapsed).toBe(true);
    expect(lapsed.atMs).toBeGreaterThanOrEqual(until);
    expect(lapsed.atMs - until).toBeLessThan(1000);

    // Opened again by the main thread: told without waiting for any period.
    const openedAt = monotonicMs();
    sendUntil("gate-test", monotonicMs() + 60_000);
    const opened = await eventually("the gate to open", () => changes[1]);
    expect(opened.open).toBe(true);
    expect(opened.atMs - openedAt).toBeLessThan(1000);

    // Closed by the main thread (a release): told at once, not as lapsed.
    sendUntil("gate-test", 0);
    const closed = await eventually("the gate to close", () => changes[2]);
    expect(closed).toMatchObject({ open: false, lapsed: false });
  } finally {
    stop();
  }
});
