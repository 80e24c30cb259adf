/**
 * The slate's decisions (src/core/slate/states.ts) on the TestClock: time moves only when the test moves it.
 * Input lost → the silence's deadline → slate → input back → returning → bridging → live, an operator's slate
 * held against the input and waiting for a return to end, and each timer just before and just after its edge:
 * the slate's time after the failover time, the return's wait for a keyframe, the format's reading again.
 */
import { describe, expect, it } from "@effect/vitest";
import { Clock, Effect, TestClock } from "effect";
import {
  makeSlateStates,
  REPROBE_MS,
  REPROBE_REFUSED_MS,
  RETURN_GIVE_UP_MS,
  type SlateSwitches,
} from "../../src/core/slate/states.ts";

const FAILOVER_MS = 500;
const AFTER_MS = 2_000;
const spec = (manual = false): SlateSwitches => ({ afterMs: AFTER_MS, manual });
const states = (initial: SlateSwitches | undefined = spec()) =>
  Effect.map(Effect.clock, (clock) => makeSlateStates(clock, initial));

describe("the slate's states", () => {
  it.effect("input lost → slate at its time → input back → returning → bridging → live", () =>
    Effect.gen(function* () {
      yield* TestClock.adjust(1_000);
      const slate = yield* states();
      expect(slate.mode()).toBe("live");
      // The slate is due after_ms after the silence began, which the failover time already waited.
      expect(slate.inputLost(FAILOVER_MS)).toBe(1_000 + AFTER_MS - FAILOVER_MS);
      yield* TestClock.adjust(AFTER_MS - FAILOVER_MS - 1);
      expect(slate.silenceDue()).toBe(false);
      yield* TestClock.adjust(1);
      expect(slate.silenceDue()).toBe(true);
      expect(slate.silenceDue()).toBe(false);

      expect(slate.goOn("input_lost", true)).toBe("on");
      expect(slate.mode()).toBe("slate");
      expect(slate.since()).toBe(2_500);
      expect(slate.report()).toEqual({ on: true, reason: "input_lost", since: 2_500, seconds: 0 });
      expect(slate.inputLost(FAILOVER_MS)).toBeNull();
      expect(slate.mayProbe()).toBe(false);
      yield* TestClock.adjust(3_000);
      expect(slate.report().seconds).toBe(3);

      expect(slate.inputBack()).toBe(true);
      expect(slate.mode()).toBe("returning");
      expect(slate.report().on).toBe(true);
      expect(slate.inputBack()).toBe(false);
      yield* TestClock.adjust(1_500);
      expect(slate.resumed()).toBe(4.5);
      expect(slate.mode()).toBe("bridging");
      expect(slate.report()).toEqual({ on: false, reason: null, since: null, seconds: 4.5 });
      expect(slate.liveAgain(true)).toBeNull();
      expect(slate.mode()).toBe("live");

      // A second spell adds to the first.
      slate.inputLost(FAILOVER_MS);
      yield* TestClock.adjust(AFTER_MS);
      expect(slate.silenceDue()).toBe(true);
      expect(slate.goOn("input_lost", true)).toBe("on");
      yield* TestClock.adjust(500);
      expect(slate.report().seconds).toBe(5);
    }),
  );

  it.effect("an input back before the slate's time drops the deadline", () =>
    Effect.gen(function* () {
      const slate = yield* states();
      slate.inputLost(FAILOVER_MS);
      yield* TestClock.adjust(AFTER_MS - FAILOVER_MS - 1);
      slate.inputRestored();
      yield* TestClock.adjust(10_000);
      expect(slate.silenceDue()).toBe(false);
      // A slate time shorter than the failover time starts at once, once the failover time has passed.
      const soon = yield* states({ afterMs: 100, manual: false });
      expect(soon.inputLost(FAILOVER_MS)).toBe(yield* Clock.currentTimeMillis);
      expect(soon.silenceDue()).toBe(true);
    }),
  );

  it.effect("a silence whose clip is not ready goes on once the clip is, unless an input came back", () =>
    Effect.gen(function* () {
      const slate = yield* states();
      expect(slate.goOn("input_lost", false)).toBe("not_ready");
      expect(slate.clipReady(true)).toBeNull();
      expect(slate.clipReady(false)).toBe("input_lost");
      slate.inputRestored();
      expect(slate.clipReady(false)).toBeNull();
    }),
  );

  it.effect("a clip ready after the slate was taken away puts nothing on the air", () =>
    Effect.gen(function* () {
      const slate = yield* states();
      expect(slate.goOn("input_lost", false)).toBe("not_ready");
      expect(slate.setSpec(undefined, false)).toBeNull();
      expect(slate.clipReady(false)).toBeNull();
    }),
  );

  it.effect("the return waits for a keyframe up to its limit, then takes the input as it comes", () =>
    Effect.gen(function* () {
      const slate = yield* states();
      slate.goOn("input_lost", true);
      yield* TestClock.adjust(700);
      slate.inputBack();
      yield* TestClock.adjust(RETURN_GIVE_UP_MS - 1);
      expect(slate.returnGivenUp()).toBe(false);
      yield* TestClock.adjust(1);
      expect(slate.returnGivenUp()).toBe(true);
    }),
  );

  it.effect("an operator's slate holds against the input, waits for a return to end, and hands back", () =>
    Effect.gen(function* () {
      const slate = yield* states();
      expect(slate.setSpec(spec(true), true)).toBe("manual");
      expect(slate.goOn("manual", true)).toBe("on");
      expect(slate.reason()).toBe("manual");
      // Taken off with the input there: its return begins; without an input, the slate stays for the silence.
      expect(slate.setSpec(spec(false), true)).toBe("return");
      expect(slate.setSpec(spec(true), true)).toBe("manual");
      expect(slate.setSpec(spec(false), false)).toBeNull();
      expect(slate.reason()).toBe("input_lost");

      // Asked again while the return still shows the slate: the slate stays.
      slate.inputBack();
      expect(slate.goOn("manual", true)).toBe("kept");
      expect(slate.mode()).toBe("slate");
      expect(slate.reason()).toBe("manual");

      // Asked while the return bridges its PIDs: once the return is whole.
      slate.resumed();
      slate.setSpec(spec(true), true);
      expect(slate.goOn("manual", true)).toBe("later");
      expect(slate.liveAgain(true)).toBe("manual");
      expect(slate.mode()).toBe("live");
      expect(slate.goOn("manual", true)).toBe("on");
      expect(slate.goOn("input_lost", true)).toBe("already");
    }),
  );

  it.effect(
    "the schedule's slate holds as an operator's does; lifting it leaves an operator's own slate on",
    () =>
      Effect.gen(function* () {
        const held = (manual: boolean, scheduled: boolean): SlateSwitches => ({
          afterMs: AFTER_MS,
          manual,
          scheduled,
        });
        const slate = yield* states();
        expect(slate.setSpec(held(false, true), true)).toBe("scheduled");
        expect(slate.goOn("scheduled", true)).toBe("on");
        expect(slate.report()).toMatchObject({ on: true, reason: "scheduled" });
        // An operator's hand on top: the operator's reason shows, and the schedule's lift leaves it on.
        expect(slate.setSpec(held(true, true), true)).toBeNull();
        expect(slate.goOn("manual", true)).toBe("already");
        expect(slate.reason()).toBe("manual");
        expect(slate.setSpec(held(true, false), true)).toBeNull();
        expect(slate.mode()).toBe("slate");
        // The operator's lift under the schedule's slate: the schedule's stays; the schedule's lift returns.
        expect(slate.setSpec(held(true, true), true)).toBeNull();
        expect(slate.setSpec(held(false, true), true)).toBeNull();
        expect(slate.reason()).toBe("scheduled");
        expect(slate.setSpec(held(false, false), true)).toBe("return");
        // A clip made while the schedule held the slate puts it on.
        const waiting = yield* states(held(false, true));
        expect(waiting.clipReady(true)).toBe("scheduled");
      }),
  );

  it.effect("no slate any more: the return, or the input's packets at once", () =>
    Effect.gen(function* () {
      const slate = yield* states();
      slate.goOn("input_lost", true);
      expect(slate.setSpec(undefined, true)).toBe("return");
      expect(slate.inputBack()).toBe(true);
      const other = yield* states();
      other.goOn("input_lost", true);
      expect(other.setSpec(undefined, false)).toBe("off");
      expect(other.report().on).toBe(true);
      const live = yield* states();
      expect(live.setSpec(undefined, false)).toBeNull();
      expect(live.inputLost(FAILOVER_MS)).toBeNull();
      expect(live.mayProbe()).toBe(false);
    }),
  );

  it.effect("the format is read at once, then every minute, or every five when none could be read", () =>
    Effect.gen(function* () {
      const slate = yield* states();
      expect(slate.reprobeDue(false)).toBe(true);
      slate.probing();
      yield* TestClock.adjust(REPROBE_MS - 1);
      expect(slate.reprobeDue(true)).toBe(false);
      yield* TestClock.adjust(1);
      expect(slate.reprobeDue(true)).toBe(true);
      expect(slate.reprobeDue(false)).toBe(false);
      yield* TestClock.adjust(REPROBE_REFUSED_MS - REPROBE_MS - 1);
      expect(slate.reprobeDue(false)).toBe(false);
      yield* TestClock.adjust(1);
      expect(slate.reprobeDue(false)).toBe(true);
      slate.goOn("manual", true);
      expect(slate.reprobeDue(false)).toBe(false);
    }),
  );
});
