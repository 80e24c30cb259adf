/**
 * The input decisions of one channel, as plain state over a millisecond clock the caller supplies: which
 * input is forwarded, when to fail over or revert, and whether any input is alive. The selector (selector.ts)
 * drives it from a fiber that sleeps until `nextDeadline`; nothing here waits or reads a clock.
 *
 * - An input is silent once nothing came for `failoverAfterMs`; it is healthy from the first datagram after
 *   such a silence, as long as it keeps coming.
 * - Failover: when the active input is silent and the other is not, switch (reason "silence"). A datagram on
 *   a flowing standby input while the active one is silent switches at once, so that datagram is already
 *   forwarded (so does the first input back after all were lost); the tick covers the rest. A standby the
 *   health rules find unhealthy is not taken, silent active input or not: the channel stays, says so once
 *   (a "held" event naming the standby's rules) and switches once the standby is healthy again.
 * - Auto revert: back to the primary once it has been healthy for `revertAfterMs` ("primary_restored"). An
 *   operator's choice is kept until the next silence failover: automation does not undo a person.
 * - Health rules (domain/health/health-judge.ts), when the channel has them: the caller says when an input turns
 *   unhealthy (and by which rules) and healthy again. An unhealthy active input is left for the other when that
 *   one flows and is healthy (reason "rule"); with both unhealthy nothing moves. Auto revert waits for the
 *   primary to be healthy too. An operator's choice is not undone by a rule either.
 * - When every input is silent the channel's input is "lost"; it is "ok" again with the first datagram.
 * - An active input that never sent is silent `failoverAfterMs` after the start, and never sooner than
 *   `START_SETTLE_MS` after the first datagram of any input: inputs that begin together (an encoder started
 *   after the channel) leave the primary on air even when the backup's first datagram comes a moment earlier.
 */
import type { InputEndpoint, InputRole, Redundancy, RevertPolicy } from "../../domain/channel/redundancy.ts";

export type SwitchReason = "silence" | "rule" | "operator" | "primary_restored";
export type InputHealth = "ok" | "lost";

/** `at` is epoch milliseconds. */
export type RedundancyEvent =
  | {
      readonly type: "switch";
      readonly at: number;
      readonly from: InputRole;
      readonly to: InputRole;
      readonly reason: SwitchReason;
      /** For "rule": the health rules that held on the input switched from, as the expression names them. */
      readonly rule?: string | undefined;
    }
  | {
      /** A failover that did not happen: the standby flows but its health rules find it unhealthy. */
      readonly type: "held";
      readonly at: number;
      readonly from: InputRole;
      readonly to: InputRole;
      /** Why the channel would have left `from`: it is silent, or unhealthy by its own rules. */
      readonly reason: "silence" | "rule";
      /** The rules that hold on the standby, as the expression names them. */
      readonly rule: string;
    }
  | { readonly type: "input_lost"; readonly at: number }
  | { readonly type: "input_restored"; readonly at: number; readonly role: InputRole };

export interface FailoverPolicy {
  readonly roles: ReadonlyArray<InputRole>;
  /** False in merge mode and without a backup: the primary stays active. */
  readonly switching: boolean;
  readonly failoverAfterMs: number;
  readonly revert: RevertPolicy;
  readonly revertAfterMs: number;
}

/** The policy a channel's redundancy settings ask for, with its backup input or without one. */
export const failoverPolicy = (backup: InputEndpoint | null, redundancy: Redundancy): FailoverPolicy => ({
  roles: backup === null ? ["primary"] : ["primary", "backup"],
  switching: redundancy.mode === "failover",
  failoverAfterMs: redundancy.failover_after_ms,
  revert: redundancy.revert,
  revertAfterMs: redundancy.revert_after_ms,
});

export interface FailoverState {
  /**
   * Records a datagram on `role`: the per-datagram call, so it compares and stores numbers. A switch or a
   * restored input it decides is returned by the next `tick`. True when the timers need a look sooner than
   * `nextDeadline` said: it decided something, or `role` starts a new stretch after a silence (a new revert
   * timer). A datagram that only continues a stretch moves deadlines later, never earlier.
   */
  readonly arrival: (role: InputRole, nowMs: number) => boolean;
  /** Applies the timers; returns what changed since the last tick, oldest first. */
  readonly tick: (nowMs: number) => ReadonlyArray<RedundancyEvent>;
  /**
   * When `tick` next has something to do if no datagram comes: the earliest silence, failover or revert
   * deadline (ms, on the caller's clock; `nowMs` or earlier when due), or null when nothing is pending (no
   * input alive, nothing decided). Right after `tick(nowMs)` it is later than `nowMs` or null.
   */
  readonly nextDeadline: (nowMs: number) => number | null;
  /**
   * The health judge's verdict on `role`: `rule` names what holds while unhealthy, null once healthy again.
   * True when the next `tick` has something to decide.
   */
  readonly judged: (role: InputRole, rule: string | null, nowMs: number) => boolean;
  /** An operator's switch: at once, whatever the timers say. Null when `role` is already active. */
  readonly operator: (role: InputRole, nowMs: number) => RedundancyEvent | null;
  readonly active: () => InputRole;
  readonly health: () => InputHealth;
  readonly lastArrival: (role: InputRole) => number | null;
  /** Switches away from `role`, whatever the reason. */
  readonly failovers: (role: InputRole) => number;
  /**
   * New timers, inputs or mode, from the next arrival or tick on; what was learnt about each input stays.
   * Where the backup may no longer be active (no switching, or no backup), the primary takes over at once
   * (reason "operator": a person changed the settings); that switch is returned by the next `tick`.
   */
  readonly setPolicy: (next: FailoverPolicy, nowMs: number) => void;
}

/** How long, from the first datagram of any input, an active input that never sent has to show up. */
export const START_SETTLE_MS = 100;

interface Track {
  lastAt: number | null;
  healthySince: number | null;
  failovers: number;
  /** The rules that make it unhealthy, while they do. */
  unhealthy: string | null;
  /** When the health judge last found it healthy again (−∞ while it never found it unhealthy). */
  clearedAt: number;
}

export const makeFailoverState = (initial: FailoverPolicy, startedAtMs: number): FailoverState => {
  let policy = initial;
  const tracks: Record<InputRole, Track> = {
    primary: {
      lastAt: null,
      healthySince: null,
      failovers: 0,
      unhealthy: null,
      clearedAt: Number.NEGATIVE_INFINITY,
    },
    backup: {
      lastAt: null,
      healthySince: null,
      failovers: 0,
      unhealthy: null,
      clearedAt: Number.NEGATIVE_INFINITY,
    },
  };
  let active: InputRole = "primary";
  let health: InputHealth = "lost";
  let operatorHold = false;
  let decided: RedundancyEvent[] = [];
  // Where the silence of an input that never sent is measured from (see the rule on the start above).
  let neverSentFrom = startedAtMs;
  let anyArrived = false;
  /** The failover held back last (and said), while it still is: said once, not at every tick. */
  let held: { reason: "silence" | "rule"; rule: string } | null = null;

  const alive = (entry: Track, nowMs: number) =>
    entry.lastAt !== null && nowMs - entry.lastAt < policy.failoverAfterMs;
  // Measured from the start too, so that a backup whose first datagram beats the primary's by a moment does
  // not take over.
  const silent = (entry: Track, nowMs: number) =>
    nowMs - (entry.lastAt ?? neverSentFrom) >= policy.failoverAfterMs;

  const switchTo = (to: InputRole, reason: SwitchReason, nowMs: number): RedundancyEvent => {
    const from = active;
    tracks[from].failovers++;
    active = to;
    operatorHold = reason === "operator";
    const rule = reason === "rule" ? (tracks[from].unhealthy ?? undefined) : undefined;
    return { type: "switch", at: nowMs, from, to, reason, ...(rule === undefined ? {} : { rule }) };
  };
  /** Whether `role` may take the air: it flows, and its health rules do not find it unhealthy. */
  const mayTakeAir = (role: InputRole, nowMs: number) =>
    alive(tracks[role], nowMs) && tracks[role].unhealthy === null;
  /** Since when the primary has flowed and been healthy by the rules: what auto revert counts from. */
  const primaryGoodSince = (): number | null => {
    const { healthySince, unhealthy, clearedAt } = tracks.primary;
    return healthySince === null || unhealthy !== null ? null : Math.max(healthySince, clearedAt);
  };

  return {
    arrival: (role, nowMs) => {
      const entry = tracks[role];
      let sooner = false;
      if (!anyArrived) {
        anyArrived = true;
        const settle = Math.min(START_SETTLE_MS, policy.failoverAfterMs);
        neverSentFrom = Math.max(neverSentFrom, nowMs + settle - policy.failoverAfterMs);
      }
      const flowing = entry.lastAt !== null && nowMs - entry.lastAt < policy.failoverAfterMs;
      if (!flowing) {
        entry.healthySince = nowMs;
        sooner = true;
      }
      entry.lastAt = nowMs;
      // A standby that was flowing switches at once, and so does the first input back after every input was
      // lost. A silence of both that no tick saw (this thread's turn came late) does not: whichever datagram
      // the late turn reads first says nothing, and the tick decides once the turn has read them all.
      const switchNow = (flowing || health === "lost") && entry.unhealthy === null;
      if (switchNow && role !== active && policy.switching && silent(tracks[active], nowMs)) {
        decided.push(switchTo(role, "silence", nowMs));
        sooner = true;
      }
      if (health === "lost" && policy.roles.includes(role)) {
        health = "ok";
        decided.push({ type: "input_restored", at: nowMs, role });
        sooner = true;
      }
      return sooner;
    },
    tick: (nowMs) => {
      const events = decided;
      decided = [];
      const emit = (event: RedundancyEvent) => events.push(event);
      let anyAlive = false;
      for (const role of policy.roles) {
        if (alive(tracks[role], nowMs)) anyAlive = true;
        else tracks[role].healthySince = null;
      }
      let holding: typeof held = null;
      if (policy.switching) {
        const other: InputRole = active === "primary" ? "backup" : "primary";
        const goodSince = primaryGoodSince();
        const leaving: "silence" | "rule" | null = silent(tracks[active], nowMs)
          ? "silence"
          : tracks[active].unhealthy !== null && !operatorHold
            ? "rule"
            : null;
        const standbyRule = tracks[other].unhealthy;
        if (leaving !== null && mayTakeAir(other, nowMs)) {
          emit(switchTo(other, leaving, nowMs));
        } else if (leaving !== null && standbyRule !== null && alive(tracks[other], nowMs)) {
          holding = { reason: leaving, rule: standbyRule };
          if (held?.reason !== leaving || held.rule !== standbyRule)
            emit({ type: "held", at: nowMs, from: active, to: other, reason: leaving, rule: standbyRule });
        } else if (
          active === "backup" &&
          policy.revert === "auto" &&
          !operatorHold &&
          goodSince !== null &&
          nowMs - goodSince >= policy.revertAfterMs
        ) {
          emit(switchTo("primary", "primary_restored", nowMs));
        }
      }
      held = holding;
      if (health === "ok" && !anyAlive) {
        health = "lost";
        emit({ type: "input_lost", at: nowMs });
      }
      return events;
    },
    nextDeadline: (nowMs) => {
      if (decided.length > 0) return nowMs;
      let next = Number.POSITIVE_INFINITY;
      let anyAlive = false;
      for (const role of policy.roles) {
        const entry = tracks[role];
        // An alive input's silence: a failover, a lost input, or the end of its healthy stretch.
        if (entry.lastAt !== null && alive(entry, nowMs)) {
          anyAlive = true;
          next = Math.min(next, entry.lastAt + policy.failoverAfterMs);
        } else if (entry.healthySince !== null) return nowMs;
      }
      if (health === "ok" && !anyAlive) return nowMs;
      if (policy.switching) {
        const other: InputRole = active === "primary" ? "backup" : "primary";
        // The active input's silence counts from the start when it never sent: the other may take over then,
        // or, unhealthy, be said to be held back (once: then its verdict wakes the timers).
        if (alive(tracks[other], nowMs) && (tracks[other].unhealthy === null || held?.reason !== "silence"))
          next = Math.min(next, (tracks[active].lastAt ?? neverSentFrom) + policy.failoverAfterMs);
        const since = primaryGoodSince();
        if (active === "backup" && policy.revert === "auto" && !operatorHold && since !== null)
          next = Math.min(next, since + policy.revertAfterMs);
      }
      return next === Number.POSITIVE_INFINITY ? null : next;
    },
    judged: (role, rule, nowMs) => {
      const entry = tracks[role];
      if (entry.unhealthy === rule) return false;
      if (rule === null) entry.clearedAt = nowMs;
      entry.unhealthy = rule;
      return true;
    },
    operator: (role, nowMs) => (role === active ? null : switchTo(role, "operator", nowMs)),
    active: () => active,
    health: () => health,
    lastArrival: (role) => tracks[role].lastAt,
    failovers: (role) => tracks[role].failovers,
    setPolicy: (next, nowMs) => {
      policy = next;
      if (active === "backup" && (!next.switching || !next.roles.includes("backup")))
        decided.push(switchTo("primary", "operator", nowMs));
    },
  };
};
