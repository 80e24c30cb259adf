/**
 * The slate's decisions, as plain state over the clock it is handed (Effect's Clock: the channel's runtime's, a
 * TestClock in tests): when the slate goes on and why, when the input's return begins and when it is whole,
 * when an input that shows no keyframe is taken as it comes, when the last input's silence has lasted long
 * enough, when the channel's format is read again, and how long the channel has been on the slate. Nothing here
 * reads a stream, writes a file, sleeps or says anything: the slate (effects/channel/slate.ts) makes the clip,
 * the splicer and the return's bridges, runs the timers' fibers and emits the events, as these states decide.
 *
 *   live ──(the silence's deadline, or an operator)──► slate ──(input back)──► returning ──(its first
 *   keyframe)──► bridging (each PID's first packet after a flagged discontinuity) ──(all bridged)──► live
 */
import type * as Clock from "effect/Clock";

/** How long a returning input may take to show a random access point before it is taken as it comes. */
export const RETURN_GIVE_UP_MS = 10_000;
/** How often a channel's format is read again while it runs live: a change of format gets a new clip. */
export const REPROBE_MS = 60_000;
/** … and how often when no format could be read from it. */
export const REPROBE_REFUSED_MS = 300_000;

import type { SlateReason } from "../../domain/channel/slate.ts";

type SlateMode = "live" | "slate" | "returning" | "bridging";

/** What the states read of a channel's slate settings (the rest, the picture, is the clip's business). */
export interface SlateSwitches {
  /** The slate starts this long after the last input went silent (never before the failover time). */
  readonly afterMs: number;
  /** Put on by an operator: stays on, whatever the inputs do, until taken off. */
  readonly manual: boolean;
  /** Put on by the channel's schedule: held as an operator's is, lifted by the schedule alone. */
  readonly scheduled?: boolean;
}

/** The slates somebody put on (an operator, the schedule): held whatever the inputs do, until taken off. */
type HeldReason = "manual" | "scheduled";
const isHeld = (reason: SlateReason | null): reason is HeldReason =>
  reason === "manual" || reason === "scheduled";
/** The held slate the settings ask for: an operator's first (it outlasts the schedule's), or none. */
const heldBy = (spec: SlateSwitches | undefined): HeldReason | null =>
  spec?.manual === true ? "manual" : spec?.scheduled === true ? "scheduled" : null;

/**
 * What asking for the slate came to: "on" (it goes on now: the caller starts its splicer), "kept" (an operator's,
 * while a return still showed the slate: the slate stays and the return is given up), "later" (an operator's
 * while the return bridges its PIDs: once the return is whole), "already" (on the slate already) or "not_ready"
 * (no clip yet: a silence's slate goes on once it is, see `clipReady`).
 */
type SlateAsk = "on" | "kept" | "later" | "already" | "not_ready";

/**
 * What new settings ask of what goes out: the input's return begins ("return"), the input's packets go out at
 * once ("off": no slate any more and no input to return to), an operator's or the schedule's slate ("manual",
 * "scheduled"), or nothing (null).
 */
type SlateSettingsMove = "return" | "off" | HeldReason | null;

interface SlateStates<S extends SlateSwitches> {
  readonly spec: () => S | undefined;
  readonly mode: () => SlateMode;
  readonly reason: () => SlateReason | null;
  /** When (clock ms) this spell on the slate began; null when off. */
  readonly since: () => number | null;
  /** What status says of it: on (the slate, or waiting on it for the input's keyframe), why, since when, seconds in all. */
  readonly report: () => {
    readonly on: boolean;
    readonly reason: SlateReason | null;
    readonly since: number | null;
    readonly seconds: number;
  };
  /** New settings (undefined: no slate). `inputOk`: whether an input receives now. */
  readonly setSpec: (next: S | undefined, inputOk: boolean) => SlateSettingsMove;
  /** Every input went silent: the deadline (clock ms) at which the slate is due, or null when none is armed. */
  readonly inputLost: (failoverAfterMs: number) => number | null;
  /** An input receives again: the deadline is dropped, and so is a silence's wait for its clip. */
  readonly inputRestored: () => void;
  /** Whether the silence's deadline has come (true once: the deadline is then spent). */
  readonly silenceDue: () => boolean;
  /** The slate is asked for; `ready`: a clip in the input's format is prepared. */
  readonly goOn: (why: SlateReason, ready: boolean) => SlateAsk;
  /** A clip is ready: the slate that waited for it, if any (an operator's, or a silence that goes on). */
  readonly clipReady: (inputOk: boolean) => SlateReason | null;
  /** The input is back while the slate plays: true when its return begins now (the caller makes it). */
  readonly inputBack: () => boolean;
  /** The input's packets go out again: the seconds this spell on the slate lasted. */
  readonly resumed: () => number;
  /** Whether the return has waited for a keyframe long enough: the input is then taken as it comes. */
  readonly returnGivenUp: () => boolean;
  /**
   * What goes out is the input's own again. `whole`: its return bridged every PID; the held slate (an operator's
   * or the schedule's) that waited for that and goes on now, or null.
   */
  readonly liveAgain: (whole: boolean) => HeldReason | null;
  /** Whether the format may be read now (a slate is set and the channel runs live). */
  readonly mayProbe: () => boolean;
  /** A probe starts reading the format now. */
  readonly probing: () => void;
  /** Whether the format is due to be read again; `formatKnown`: the last probe read one. */
  readonly reprobeDue: (formatKnown: boolean) => boolean;
}

export const makeSlateStates = <S extends SlateSwitches>(
  clock: Clock.Clock,
  initial: S | undefined,
): SlateStates<S> => {
  const now = () => clock.unsafeCurrentTimeMillis();
  let spec = initial;
  let mode: SlateMode = "live";
  let reason: SlateReason | null = null;
  let since: number | null = null;
  let secondsBefore = 0;
  let returningSince = 0;
  let silenceAt: number | null = null;
  let probedAt: number | null = null;
  /** An operator asked for the slate while the input's return was still bridging its PIDs: once it is live. */
  let manualWaiting = false;
  /** The slate's time came while its clip was still being made: it goes on once the clip is. */
  let awaitingClip = false;

  const mayProbe = () => spec !== undefined && mode === "live";
  return {
    spec: () => spec,
    mode: () => mode,
    reason: () => reason,
    since: () => since,
    report: () => ({
      on: mode === "slate" || mode === "returning",
      reason,
      since,
      seconds: secondsBefore + (since === null ? 0 : (now() - since) / 1000),
    }),
    setSpec: (next, inputOk) => {
      const before = spec;
      spec = next;
      if (next === undefined) {
        silenceAt = null;
        if (mode !== "slate" && mode !== "returning") return null;
        if (!inputOk) return "off";
        mode = "slate";
        reason = "input_lost";
        return "return";
      }
      const held = heldBy(next);
      const wasHeld = heldBy(before);
      if (held === null) manualWaiting = false;
      if (held !== null && wasHeld === null) return held;
      if (held === null && wasHeld !== null && mode === "slate" && isHeld(reason)) {
        if (inputOk) return "return";
        reason = "input_lost";
      }
      // One held slate handed to the other (the schedule's lifted under an operator's, or the reverse): it stays.
      if (held !== null && isHeld(reason) && mode !== "live") reason = held;
      return null;
    },
    inputLost: (failoverAfterMs) => {
      silenceAt = null;
      if (spec === undefined || mode !== "live") return null;
      silenceAt = now() + Math.max(0, spec.afterMs - failoverAfterMs);
      return silenceAt;
    },
    inputRestored: () => {
      silenceAt = null;
      awaitingClip = false;
    },
    silenceDue: () => {
      if (silenceAt === null || now() < silenceAt) return false;
      silenceAt = null;
      return true;
    },
    goOn: (why, ready) => {
      if (isHeld(why) && mode === "returning") {
        mode = "slate";
        reason = why;
        return "kept";
      }
      if (isHeld(why) && mode === "bridging") {
        manualWaiting = true;
        return "later";
      }
      if (mode !== "live") {
        if (isHeld(why)) reason = why;
        return "already";
      }
      if (!ready) {
        awaitingClip = why === "input_lost";
        return "not_ready";
      }
      mode = "slate";
      reason = why;
      since = now();
      return "on";
    },
    clipReady: (inputOk) => {
      // A clip that was still being made when the slate was taken away puts nothing on the air.
      if (spec === undefined || mode !== "live") return null;
      const held = heldBy(spec);
      if (held !== null) return held;
      return awaitingClip && !inputOk ? "input_lost" : null;
    },
    inputBack: () => {
      if (mode !== "slate") return false;
      mode = "returning";
      returningSince = now();
      return true;
    },
    resumed: () => {
      const seconds = since === null ? 0 : (now() - since) / 1000;
      secondsBefore += seconds;
      since = null;
      reason = null;
      mode = "bridging";
      return seconds;
    },
    returnGivenUp: () => now() - returningSince >= RETURN_GIVE_UP_MS,
    liveAgain: (whole) => {
      mode = "live";
      if (!whole || !manualWaiting) return null;
      manualWaiting = false;
      return heldBy(spec);
    },
    mayProbe,
    probing: () => {
      probedAt = now();
    },
    reprobeDue: (formatKnown) => {
      if (!mayProbe()) return false;
      if (probedAt === null) return true;
      // A stream the probe could not read (a refused format, nothing found within its time) is read again only
      // every few minutes: the input's format may change, but a probe reads each packet while it runs.
      return now() - probedAt >= (formatKnown ? REPROBE_MS : REPROBE_REFUSED_MS);
    },
  };
};
