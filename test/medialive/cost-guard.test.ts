/**
 * The cost guard's rules as pure functions (domain/medialive/cost-guard.ts): the linger, a new sending output calling
 * the stop off, no stop of an unlinked channel or one that is STARTING, an operator's "keep running"; then the
 * same rules stepped on Effect's TestClock minute by minute, as the service's loop steps them.
 */
import { Effect, TestClock, TestContext } from "effect";
import { describe, expect, it } from "vitest";
import {
  type GuardInput,
  type GuardState,
  type GuardVerdict,
  holdGuard,
  idleGuard,
  stepGuard,
} from "../../src/domain/medialive/cost-guard.ts";
import { guardLingerMs, type MediaLiveLink } from "../../src/domain/medialive/medialive.ts";

const MINUTE = 60_000;
const link: MediaLiveLink = { channel_id: "1234567", region: "eu-west-1", stop_when_idle: true };
const LINGER = guardLingerMs(link);

/** Steps the guard through `inputs` in order; every verdict. */
const run = (inputs: ReadonlyArray<Omit<GuardInput, "lingerMs"> & { lingerMs?: number | null }>) => {
  let guard: GuardState = idleGuard;
  const verdicts: GuardVerdict[] = [];
  for (const input of inputs) {
    const { next, verdict } = stepGuard(guard, { lingerMs: LINGER, ...input });
    guard = next;
    verdicts.push(verdict);
  }
  return { guard, verdicts };
};

describe("the cost guard's rules", () => {
  it("waits 15 minutes by default, MediaLive's 10-minute billing minimum and some; 10 to 1440 can be chosen", () => {
    expect(LINGER).toBe(15 * MINUTE);
    expect(guardLingerMs({ ...link, idle_minutes: 30 })).toBe(30 * MINUTE);
    expect(guardLingerMs({ ...link, stop_when_idle: false })).toBeNull();
    expect(guardLingerMs(null)).toBeNull();
  });

  it("stops a RUNNING channel only once nothing has sent for the whole linger", () => {
    const { verdicts } = run([
      { now: 0, state: "RUNNING", sending: false },
      { now: 14 * MINUTE, state: "RUNNING", sending: false },
      { now: 15 * MINUTE - 1, state: "RUNNING", sending: false },
      { now: 15 * MINUTE, state: "RUNNING", sending: false },
    ]);
    expect(verdicts.map((verdict) => verdict.kind)).toEqual(["pending", "pending", "pending", "stop"]);
    expect(verdicts[0]).toEqual({ kind: "pending", stopAt: 15 * MINUTE, held: false });
  });

  it("an output that becomes enabled and sending calls the pending stop off, and the linger starts again after it", () => {
    const { verdicts } = run([
      { now: 0, state: "RUNNING", sending: false },
      { now: 10 * MINUTE, state: "RUNNING", sending: true },
      { now: 12 * MINUTE, state: "RUNNING", sending: false },
      { now: 20 * MINUTE, state: "RUNNING", sending: false },
      { now: 27 * MINUTE, state: "RUNNING", sending: false },
    ]);
    expect(verdicts.map((verdict) => verdict.kind)).toEqual([
      "pending",
      "none",
      "pending",
      "pending",
      "stop",
    ]);
    expect(verdicts[2]).toEqual({ kind: "pending", stopAt: 27 * MINUTE, held: false });
  });

  it("never stops a channel that is not linked, or whose guard is off", () => {
    const { verdicts } = run(
      [0, 20, 60, 600].map((minutes) => ({
        now: minutes * MINUTE,
        state: "RUNNING",
        sending: false,
        lingerMs: null,
      })),
    );
    expect(verdicts.every((verdict) => verdict.kind === "none")).toBe(true);
  });

  it("never stops while STARTING, and counts the linger from when it runs", () => {
    const { verdicts } = run([
      { now: 0, state: "STARTING", sending: false },
      { now: 20 * MINUTE, state: "STARTING", sending: false },
      { now: 21 * MINUTE, state: "RUNNING", sending: false },
      { now: 35 * MINUTE, state: "RUNNING", sending: false },
      { now: 36 * MINUTE, state: "RUNNING", sending: false },
    ]);
    expect(verdicts.map((verdict) => verdict.kind)).toEqual(["none", "none", "pending", "pending", "stop"]);
  });

  it("counts while RECOVERING (it bills), forgets when the channel is IDLE, STOPPING or not known", () => {
    expect(
      run([
        { now: 0, state: "RUNNING", sending: false },
        { now: 16 * MINUTE, state: "RECOVERING", sending: false },
      ]).verdicts.at(-1),
    ).toEqual({ kind: "stop" });
    for (const state of ["IDLE", "STOPPING", null]) {
      const { guard, verdicts } = run([
        { now: 0, state: "RUNNING", sending: false },
        { now: 16 * MINUTE, state, sending: false },
      ]);
      expect(verdicts.at(-1)).toEqual({ kind: "none" });
      expect(guard).toEqual(idleGuard);
    }
  });

  it("an operator's keep holds the stop off until an output sends again", () => {
    let guard = stepGuard(idleGuard, { now: 0, lingerMs: LINGER, state: "RUNNING", sending: false }).next;
    guard = holdGuard(guard);
    const held = stepGuard(guard, { now: 60 * MINUTE, lingerMs: LINGER, state: "RUNNING", sending: false });
    expect(held.verdict).toEqual({ kind: "pending", stopAt: 15 * MINUTE, held: true });
    const sent = stepGuard(held.next, {
      now: 61 * MINUTE,
      lingerMs: LINGER,
      state: "RUNNING",
      sending: true,
    });
    const idleAgain = stepGuard(sent.next, {
      now: 62 * MINUTE,
      lingerMs: LINGER,
      state: "RUNNING",
      sending: false,
    });
    const later = stepGuard(idleAgain.next, {
      now: 77 * MINUTE,
      lingerMs: LINGER,
      state: "RUNNING",
      sending: false,
    });
    expect(later.verdict).toEqual({ kind: "stop" });
    expect(holdGuard(idleGuard)).toEqual(idleGuard);
  });
});

describe("the cost guard on the TestClock", () => {
  /** Looks once a minute, as a loop on the Effect clock does, until it stops or `minutes` pass. */
  const watchFor = (
    minutes: number,
    sending: (minute: number) => boolean,
    state: (minute: number) => string,
  ) =>
    Effect.gen(function* () {
      let guard: GuardState = idleGuard;
      const seen: Array<{ minute: number; kind: GuardVerdict["kind"] }> = [];
      const loop = Effect.gen(function* () {
        for (;;) {
          const now = yield* TestClock.currentTimeMillis;
          const minute = Math.round(now / MINUTE);
          const step = stepGuard(guard, {
            now,
            lingerMs: LINGER,
            state: state(minute),
            sending: sending(minute),
          });
          guard = step.next;
          seen.push({ minute, kind: step.verdict.kind });
          if (step.verdict.kind === "stop") return;
          yield* Effect.sleep("1 minute");
        }
      });
      const fiber = yield* Effect.fork(loop);
      yield* TestClock.adjust(`${minutes} minutes`);
      yield* Effect.yieldNow();
      yield* fiber.pipe(Effect.timeout("1 second"), Effect.ignore);
      return seen;
    }).pipe(Effect.provide(TestContext.TestContext));

  it("an idle RUNNING channel is stopped at minute 15, not before", async () => {
    const seen = await Effect.runPromise(
      watchFor(
        30,
        () => false,
        () => "RUNNING",
      ),
    );
    expect(seen.find((step) => step.kind === "stop")?.minute).toBe(15);
    expect(seen.filter((step) => step.minute < 15).every((step) => step.kind === "pending")).toBe(true);
  });

  it("an output sending at minute 10 moves the stop to minute 26; one STARTING for 5 minutes, to minute 20", async () => {
    const resumed = await Effect.runPromise(
      watchFor(
        40,
        (minute) => minute === 10,
        () => "RUNNING",
      ),
    );
    expect(resumed.find((step) => step.kind === "stop")?.minute).toBe(26);
    const starting = await Effect.runPromise(
      watchFor(
        40,
        () => false,
        (minute) => (minute < 5 ? "STARTING" : "RUNNING"),
      ),
    );
    expect(starting.find((step) => step.kind === "stop")?.minute).toBe(20);
    expect(starting.filter((step) => step.minute < 5).every((step) => step.kind === "none")).toBe(true);
  });
});
