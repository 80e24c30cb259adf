/**
 * Judges one input's health from what is measured of it, over time: each rule of the channel's
 * `redundancy.health` true, false or unknown with the figure it read, and the input healthy or unhealthy by the
 * `unhealthy_when` expression. The caller hands it a sample now and then (the packet core's counters and the
 * content watcher's states, at a time on the caller's clock); nothing here reads a clock or a stream.
 *
 * - A rule "for N ms" holds once its condition has held without a break for N ms; a rule "in a window" counts
 *   what its counters gained over the last window (over what there is of it, at first).
 * - The input turns unhealthy the moment the expression is surely true, and healthy again once it has been
 *   surely false for `clear_after_ms`. An expression that cannot be judged (a rule unknown) never turns an
 *   input unhealthy, nor healthy again.
 */

import type { Health, RuleState } from "./health.ts";
import { evaluate } from "./health.ts";
import type { HealthRule, P2Indicator } from "./health-schema.ts";

/** The content watcher's verdict on one picture or sound rule: its `for_ms` is judged on the stream's clock. */
export interface ContentVerdict {
  /** true: it has held for the rule's for_ms; false: not; null: the watcher cannot judge now (`reason`). */
  readonly state: RuleState;
  /** The figure behind a true or false, or why it cannot judge, in words. */
  readonly reason: string;
}

/** One input's measures at `atMs`: counters only grow; "last" times are on the same clock, null if never. */
export interface InputSample {
  readonly atMs: number;
  readonly bytes: number;
  readonly ccErrors: number;
  readonly p2: Readonly<Record<P2Indicator, number>>;
  readonly lastPcrAtMs: number | null;
  /** The last PTS on the programme's video PID. */
  readonly lastPtsAtMs: number | null;
  /** When a packet of the programme's video or audio, or of a PID by number, was last seen; undefined: unknown. */
  readonly lastSeenAtMs: (pid: "video" | "audio" | number) => number | null | undefined;
  /** The watcher's verdict on each picture and sound rule, by the rule's name; absent: none yet. */
  readonly content: Readonly<Record<string, ContentVerdict>>;
}

export interface RuleView {
  readonly state: RuleState;
  /** What the rule read, in words with its unit ("1200 ms without a PCR", "3 in 1000 ms", "640 kbit/s"). */
  readonly figure: string;
}

export interface HealthView {
  readonly state: "healthy" | "unhealthy";
  /** When it turned so (the caller's clock); the judge's start while it has always been healthy. */
  readonly sinceMs: number;
  readonly rules: Readonly<Record<string, RuleView>>;
}

/** How far back a windowed rule may look, and so how long samples are kept. */
const horizonOf = (rules: Readonly<Record<string, HealthRule>>): number =>
  Math.max(1000, ...Object.values(rules).map((rule) => ("window_ms" in rule ? rule.window_ms : 0)));

export const makeHealthJudge = (health: Health, startMs: number) => {
  const horizon = horizonOf(health.rules) + 1000;
  const samples: InputSample[] = [];
  /** Since when each "for N ms" condition has held without a break (rule name → ms), while it holds. */
  const holding = new Map<string, number>();
  let state: HealthView["state"] = "healthy";
  let sinceMs = startMs;
  /** Since when the expression has not been surely true, while unhealthy. */
  let clearingSince: number | null = null;

  /** The sample at or just before `atMs`, or the oldest kept. */
  const at = (atMs: number): InputSample | undefined => {
    let found = samples[0];
    for (const sample of samples) {
      if (sample.atMs > atMs) break;
      found = sample;
    }
    return found;
  };

  const held = (name: string, now: number, condition: boolean, forMs: number): boolean => {
    if (!condition) {
      holding.delete(name);
      return false;
    }
    const since = holding.get(name) ?? now;
    holding.set(name, since);
    return now - since >= forMs;
  };

  const absentFor = (last: number | null | undefined, now: number): number | null =>
    last === undefined ? null : now - (last ?? startMs);

  const judge = (name: string, rule: HealthRule, now: InputSample): RuleView => {
    const t = now.atMs;
    if ("pid_missing" in rule) {
      const age = absentFor(now.lastSeenAtMs(rule.pid_missing), t);
      if (age === null) return { state: null, figure: `no ${rule.pid_missing} PID in the PMT yet` };
      return { state: age >= rule.for_ms, figure: `${Math.round(age)} ms since its last packet` };
    }
    if ("pcr_missing_ms" in rule) {
      const age = absentFor(now.lastPcrAtMs, t) ?? 0;
      return { state: age >= rule.pcr_missing_ms, figure: `${Math.round(age)} ms since the last PCR` };
    }
    if ("pts_missing_ms" in rule) {
      const age = absentFor(now.lastPtsAtMs, t) ?? 0;
      return { state: age >= rule.pts_missing_ms, figure: `${Math.round(age)} ms since the last video PTS` };
    }
    if ("cc_errors" in rule) {
      const gained = now.ccErrors - (at(t - rule.window_ms)?.ccErrors ?? now.ccErrors);
      return { state: gained >= rule.cc_errors, figure: `${gained} in ${rule.window_ms} ms` };
    }
    if ("bitrate_below_bps" in rule) {
      const before = at(t - 1000);
      if (before === undefined || before.atMs >= t) return { state: null, figure: "not measured yet" };
      const bps = ((now.bytes - before.bytes) * 8 * 1000) / (t - before.atMs);
      return {
        state: held(name, t, bps < rule.bitrate_below_bps, rule.for_ms),
        figure: `${Math.round(bps / 1000)} kbit/s`,
      };
    }
    if ("tr101290" in rule) {
      const then = at(t - rule.window_ms) ?? now;
      const gained = rule.tr101290.reduce(
        (sum, indicator) => sum + now.p2[indicator] - then.p2[indicator],
        0,
      );
      return { state: gained >= rule.count, figure: `${gained} in ${rule.window_ms} ms` };
    }
    const verdict = now.content[name];
    if (verdict === undefined) return { state: null, figure: "the watcher has not judged yet" };
    return { state: verdict.state, figure: verdict.reason };
  };

  return {
    /** Takes a sample and judges the input as of its time. */
    sample: (next: InputSample): HealthView => {
      samples.push(next);
      const oldest = next.atMs - horizon;
      // Samples come in time order: the old ones are at the front, one or two a sample.
      while ((samples[0]?.atMs ?? next.atMs) < oldest) samples.shift();
      const rules: Record<string, RuleView> = {};
      for (const [name, rule] of Object.entries(health.rules)) rules[name] = judge(name, rule, next);
      const value = evaluate(health.unhealthyWhen, (name) => rules[name]?.state ?? null);
      if (state === "healthy" && value === true) {
        state = "unhealthy";
        sinceMs = next.atMs;
        clearingSince = null;
      } else if (state === "unhealthy") {
        // Healthy again only after clear_after_ms judged not unhealthy: a spell that cannot be judged starts it over.
        if (value !== false) clearingSince = null;
        else {
          clearingSince ??= next.atMs;
          if (next.atMs - clearingSince >= health.clearAfterMs) {
            state = "healthy";
            sinceMs = next.atMs;
            clearingSince = null;
          }
        }
      }
      return { state, sinceMs, rules };
    },
  };
};

export type HealthJudge = ReturnType<typeof makeHealthJudge>;
