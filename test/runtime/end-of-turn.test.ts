/**
 * The end of a turn (src/effects/runtime/timers/end-of-turn.ts): the thread's sends go first, then what may wait
 * for them (the remux, the RTMP writes).
 */
import { expect, it } from "vitest";
import { afterTheSends, asOneTurn, atEndOfTurn } from "../../src/effects/runtime/timers/end-of-turn.ts";

it("runs the sends asked in a turn before the work that waits for them, even when that was asked first", () => {
  const order: string[] = [];
  const send = () => order.push("send");
  const remux = () => {
    order.push("remux");
    // The remux's frames ask for their RTMP writes; a send asked meanwhile still goes before them.
    afterTheSends(() => order.push("rtmp write"));
    atEndOfTurn(() => order.push("late send"));
  };
  asOneTurn(() => {
    afterTheSends(remux);
    atEndOfTurn(send);
    atEndOfTurn(send);
    expect(order).toEqual([]);
  });
  expect(order).toEqual(["send", "remux", "late send", "rtmp write"]);
});
