/**
 * A picture or sound rule's verdict from what the watcher's ffmpeg reported (content/lines.ts): true when
 * its state has held for the rule's `for_ms` on the stream's own clock, false when not, and null, with the
 * reason in words, when the watcher cannot judge — its ffmpeg is starting, stalled, dead or dropping (the
 * watcher says why), it has not seen `for_ms` of the stream yet, or a frozen rule's `for_ms` is shorter than
 * the key frames allow. A null never fails an input over (domain/health/health.ts reads it as unknown).
 */
import type { ContentVerdict as JudgedContent } from "../../domain/health/health-judge.ts";
import { type ContentRule, type DecodeMode, frozenRefusal } from "./args.ts";
import { type ContentReport, pictureSpacingMs } from "./lines.ts";

/** The judge's verdict on a picture or sound rule (domain/health/health-judge.ts), and when it last changed. */
export interface ContentVerdict extends JudgedContent {
  /** The stream time (s) its state last changed, when ffmpeg said so. */
  readonly since: number | null;
}

const what = (rule: ContentRule) => ("black" in rule ? "black" : "frozen" in rule ? "frozen" : "silent");
const secondsText = (seconds: number) => `${seconds.toFixed(1)} s`;

/** How late, at most, a black stretch is counted from in key-frame mode, after the key frame before it (s). */
const BLACK_LATE_S = 0.5;

/**
 * In key-frame mode, how long before its first black key frame a black stretch is counted from (s): it began
 * after the key frame before, a GOP earlier, and no one can tell when. Counted from the black key frame, a
 * 2 s GOP would make the rule up to 2 s late; counted from half a second after the key frame before (the
 * black key frame itself when the GOP is that short), it is at most half a second late (then the watcher's
 * own delay, a few tenths, and the switch stays within for_ms + 1 s), and at most a GOP less half a second
 * early. Nothing in every-picture mode, nor before the GOP is measured.
 */
const blackLead = (rule: ContentRule, report: ContentReport, mode: DecodeMode): number => {
  if (mode !== "key" || !("black" in rule)) return 0;
  const gop = pictureSpacingMs(report);
  return gop === null ? 0 : Math.max(0, gop / 1000 - BLACK_LATE_S);
};

export const judgeContentRule = (
  name: string,
  rule: ContentRule,
  report: ContentReport,
  /** Why the watcher cannot judge anything now (its ffmpeg is starting, stalled, dead, dropping), or null. */
  blocked: string | null,
  mode: DecodeMode = "key",
): ContentVerdict => {
  if (blocked !== null) return { state: null, reason: blocked, since: null };
  const word = what(rule);
  if ("frozen" in rule) {
    const spacing = pictureSpacingMs(report);
    const refusal = spacing === null ? null : frozenRefusal(rule.for_ms, spacing, mode);
    if (refusal !== null) return { state: null, reason: refusal, since: null };
  }
  const { reached, startedAt } = report;
  if (reached === null || startedAt === null)
    return { state: null, reason: "the watcher has not read any of the stream yet", since: null };
  const needed = rule.for_ms / 1000;
  const state = report.states.get(name);
  if (state?.on === true) {
    const since = state.since - blackLead(rule, report, mode);
    const held = Math.max(0, reached - since);
    return held >= needed
      ? { state: true, reason: `${word} for ${secondsText(held)}`, since }
      : {
          state: false,
          reason: `${word} for ${secondsText(held)}, not yet ${secondsText(needed)}`,
          since,
        };
  }
  if (state === undefined && reached - startedAt < needed)
    return {
      state: null,
      reason: `the watcher has seen ${secondsText(reached - startedAt)} of the stream and needs ${secondsText(needed)} to judge ${word}`,
      since: null,
    };
  return {
    state: false,
    reason: state === undefined ? `not ${word}` : `not ${word} since ${secondsText(state.since)}`,
    since: state?.since ?? null,
  };
};
