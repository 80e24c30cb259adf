import { describe, expect, it } from "vitest";
import type { InputRole } from "../../src/domain/channel/redundancy.ts";
import {
  type FailoverPolicy,
  makeFailoverState,
  START_SETTLE_MS,
} from "../../src/effects/ingest/failover.ts";

// The pure state on plain numbers: when the selector's fiber must next look, and why.

const policy = (overrides: Partial<FailoverPolicy> = {}): FailoverPolicy => ({
  roles: ["primary", "backup"] satisfies InputRole[],
  switching: true,
  failoverAfterMs: 500,
  revert: "auto",
  revertAfterMs: 2_000,
  ...overrides,
});

describe("failover state: nextDeadline", () => {
  it("is null while nothing ever arrived: an idle channel has no timer", () => {
    const state = makeFailoverState(policy(), 0);
    expect(state.tick(0)).toEqual([]);
    expect(state.nextDeadline(0)).toBeNull();
    expect(state.nextDeadline(60_000)).toBeNull();
  });

  it("is the last arrival plus failover_after_ms while an input is alive, and null once it was lost", () => {
    const state = makeFailoverState(policy(), 0);
    expect(state.arrival("primary", 100)).toBe(true);
    // The restore is decided: due now.
    expect(state.nextDeadline(100)).toBe(100);
    expect(state.tick(100).map((event) => event.type)).toEqual(["input_restored"]);
    expect(state.nextDeadline(100)).toBe(600);
    // A datagram that continues the stretch only moves the deadline later.
    expect(state.arrival("primary", 300)).toBe(false);
    expect(state.nextDeadline(300)).toBe(800);
    expect(state.tick(799)).toEqual([]);
    expect(state.tick(800).map((event) => event.type)).toEqual(["input_lost"]);
    expect(state.nextDeadline(800)).toBeNull();
  });

  it("names the moment of a silence failover, measured from the start when the active input never sent", () => {
    const state = makeFailoverState(policy(), 0);
    state.arrival("backup", 100);
    state.tick(100);
    // The primary never sent: silent from 500 on, when the backup (alive until 600) takes over.
    expect(state.nextDeadline(100)).toBe(500);
    expect(state.tick(500)).toMatchObject([{ type: "switch", from: "primary", to: "backup" }]);
    state.arrival("backup", 550);
    expect(state.nextDeadline(550)).toBe(1_050);
  });

  it("inputs that begin long after the start leave the primary on air when the backup's datagram comes first", () => {
    const state = makeFailoverState(policy(), 0);
    // An encoder started 2 s after the channel: the backup's first datagram, then the primary's 30 ms later.
    expect(state.arrival("backup", 2_000)).toBe(true);
    expect(state.tick(2_000)).toEqual([{ type: "input_restored", at: 2_000, role: "backup" }]);
    expect(state.nextDeadline(2_000)).toBe(2_000 + START_SETTLE_MS);
    state.arrival("primary", 2_030);
    state.arrival("backup", 2_030);
    expect(state.tick(2_030)).toEqual([]);
    expect(state.active()).toBe("primary");
    // A primary that never shows up: the backup takes over START_SETTLE_MS after its first datagram.
    const alone = makeFailoverState(policy(), 0);
    alone.arrival("backup", 2_000);
    alone.tick(2_000);
    alone.arrival("backup", 2_050);
    expect(alone.tick(2_050)).toEqual([]);
    expect(alone.tick(2_000 + START_SETTLE_MS)).toMatchObject([
      { type: "switch", from: "primary", to: "backup", reason: "silence" },
    ]);
  });

  it("names the revert: the primary's new stretch plus revert_after_ms, gone under an operator's hold", () => {
    const state = makeFailoverState(policy(), 0);
    for (let at = 0; at <= 1_000; at += 100) state.arrival("backup", at);
    state.tick(1_000);
    expect(state.active()).toBe("backup");
    // The primary starts a stretch: the arrival says the timers need a look sooner.
    expect(state.arrival("primary", 1_050)).toBe(true);
    expect(state.nextDeadline(1_050)).toBe(1_500);
    for (let at = 1_100; at <= 3_000; at += 100) {
      state.arrival("primary", at);
      state.arrival("backup", at);
      expect(state.nextDeadline(at)).toBe(Math.min(at + 500, 3_050));
      state.tick(at);
    }
    expect(state.tick(3_050)).toMatchObject([{ type: "switch", reason: "primary_restored" }]);
    state.operator("backup", 3_060);
    state.arrival("primary", 3_100);
    state.arrival("backup", 3_100);
    state.tick(3_100);
    expect(state.nextDeadline(3_100)).toBe(3_600);
  });

  it("is never due right after a tick, whatever arrived (so the fiber cannot spin)", () => {
    const state = makeFailoverState(policy({ revertAfterMs: 0 }), 0);
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let at = 0; at < 60_000; at += Math.floor(random() * 300)) {
      if (random() < 0.6) state.arrival("primary", at);
      if (random() < 0.6) state.arrival("backup", at);
      if (random() < 0.01) state.setPolicy(policy({ failoverAfterMs: 200 + Math.floor(random() * 800) }), at);
      state.tick(at);
      const next = state.nextDeadline(at);
      if (next !== null) expect(next).toBeGreaterThan(at);
    }
  });

  it("after a silence of both inputs, the standby's datagram read first does not switch: the tick decides", () => {
    const state = makeFailoverState(policy(), 0);
    for (let at = 0; at <= 1_000; at += 100) {
      state.arrival("primary", at);
      state.arrival("backup", at);
      state.tick(at);
    }
    // Nothing read for 700 ms, and no tick meanwhile (this thread's turn came late); then the backup's datagram
    // is read before the primary's of the same turn.
    expect(state.arrival("backup", 1_700)).toBe(true);
    state.arrival("primary", 1_700);
    expect(state.tick(1_700)).toEqual([]);
    expect(state.active()).toBe("primary");
    // A primary that stays silent while the backup flows is failed over, at once on the backup's datagram.
    state.arrival("backup", 1_800);
    state.tick(1_800);
    expect(state.arrival("backup", 2_200)).toBe(true);
    expect(state.tick(2_200)).toMatchObject([
      { type: "switch", from: "primary", to: "backup", reason: "silence" },
    ]);
  });

  it("new settings that take the backup away are due at once", () => {
    const state = makeFailoverState(policy(), 0);
    for (let at = 0; at <= 1_000; at += 100) state.arrival("backup", at);
    state.tick(1_000);
    state.setPolicy(policy({ switching: false }), 1_000);
    expect(state.nextDeadline(1_000)).toBe(1_000);
    expect(state.tick(1_000)).toMatchObject([{ type: "switch", to: "primary", reason: "operator" }]);
  });
});

describe("failover state: health rules", () => {
  /** Both inputs flowing from 0 to `until`, every 100 ms, ticking as it goes; the events of the last tick. */
  const flow = (state: ReturnType<typeof makeFailoverState>, from: number, until: number) => {
    let events: ReturnType<typeof state.tick> = [];
    for (let at = from; at <= until; at += 100) {
      state.arrival("primary", at);
      state.arrival("backup", at);
      events = [...events, ...state.tick(at)];
    }
    return events;
  };

  it("an unhealthy active input is left for a healthy flowing one (reason rule, naming the rules); revert waits for the primary to be healthy and revert_after_ms", () => {
    const state = makeFailoverState(policy(), 0);
    flow(state, 0, 1_000);
    expect(state.judged("primary", "black && silent", 1_050)).toBe(true);
    expect(state.judged("primary", "black && silent", 1_060)).toBe(false);
    expect(state.tick(1_050)).toEqual([
      { type: "switch", at: 1_050, from: "primary", to: "backup", reason: "rule", rule: "black && silent" },
    ]);
    // Flowing all along, but unhealthy: no revert, however long.
    expect(flow(state, 1_100, 6_000)).toEqual([]);
    state.judged("primary", null, 6_050);
    expect(flow(state, 6_100, 8_000)).toEqual([]);
    // The revert is due revert_after_ms after the primary turned healthy, not after its stretch began.
    expect(state.nextDeadline(8_000)).toBe(8_050);
    expect(state.tick(8_050)).toMatchObject([{ type: "switch", to: "primary", reason: "primary_restored" }]);
  });

  it("with both inputs unhealthy nothing moves, said once; a standby that turns healthy is taken", () => {
    const state = makeFailoverState(policy({ revert: "sticky" }), 0);
    flow(state, 0, 1_000);
    state.judged("backup", "no_pcr", 900);
    state.judged("primary", "cc", 1_000);
    expect(flow(state, 1_100, 3_000)).toEqual([
      { type: "held", at: 1_100, from: "primary", to: "backup", reason: "rule", rule: "no_pcr" },
    ]);
    expect(state.active()).toBe("primary");
    state.judged("backup", null, 3_050);
    expect(state.tick(3_050)).toMatchObject([{ type: "switch", to: "backup", reason: "rule", rule: "cc" }]);
  });

  it("a standby that does not flow is not taken for a rule, and an operator's choice is kept", () => {
    const state = makeFailoverState(policy(), 0);
    for (let at = 0; at <= 1_000; at += 100) {
      state.arrival("primary", at);
      state.tick(at);
    }
    state.judged("primary", "frozen", 1_000);
    expect(state.tick(1_000)).toEqual([]);
    const held = makeFailoverState(policy(), 0);
    flow(held, 0, 1_000);
    held.operator("primary", 1_000);
    held.operator("backup", 1_010);
    held.operator("primary", 1_020);
    held.judged("primary", "black", 1_100);
    expect(flow(held, 1_100, 2_000).filter((event) => event.type === "switch")).toEqual([]);
    expect(held.active()).toBe("primary");
  });

  it("a silent active input is not left for a flowing standby its rules find unhealthy: said once, taken once healthy", () => {
    const state = makeFailoverState(policy({ revert: "sticky" }), 0);
    flow(state, 0, 1_000);
    // The backup flows but is itself silent (its sound); then the primary stops.
    state.judged("backup", "silent", 900);
    const events: Array<ReturnType<typeof state.tick>[number]> = [];
    for (let at = 1_100; at <= 4_000; at += 100) {
      // Its datagrams while the primary is silent do not switch either.
      state.arrival("backup", at);
      events.push(...state.tick(at));
      // Never due right after a tick: held, the fiber does not spin.
      expect(state.nextDeadline(at) ?? Number.POSITIVE_INFINITY).toBeGreaterThan(at);
    }
    expect(events).toEqual([
      { type: "held", at: 1_500, from: "primary", to: "backup", reason: "silence", rule: "silent" },
    ]);
    expect(state.active()).toBe("primary");
    // Healthy again: taken at once, for the primary's silence.
    expect(state.judged("backup", null, 4_050)).toBe(true);
    expect(state.tick(4_050)).toMatchObject([
      { type: "switch", from: "primary", to: "backup", reason: "silence" },
    ]);
  });

  it("the first input back after all were lost is not taken while its rules find it unhealthy", () => {
    const state = makeFailoverState(policy(), 0);
    flow(state, 0, 1_000);
    state.judged("backup", "black && silent", 1_000);
    // Both silent: lost; then only the backup comes back.
    expect(state.tick(1_600).map((event) => event.type)).toEqual(["input_lost"]);
    state.arrival("backup", 2_000);
    expect(state.tick(2_000)).toEqual([
      { type: "input_restored", at: 2_000, role: "backup" },
      { type: "held", at: 2_000, from: "primary", to: "backup", reason: "silence", rule: "black && silent" },
    ]);
    expect(state.active()).toBe("primary");
  });
});
