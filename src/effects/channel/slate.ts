/**
 * A channel's slate: when every input has been silent for the slate's time (or an operator says so), the
 * channel's outputs carry a still picture with silent audio instead of nothing, so that every destination stays
 * connected and playing; when an input returns, the outputs take it again from its first random access point.
 *
 *   live ──(every input silent for after_ms, or an operator)──► slate ──(input back)──► returning ──(its first
 *   keyframe)──► bridging (live, each PID's first packet after a flagged discontinuity) ──► live
 *
 * Nothing is transcoded live. While the channel runs live, its format is read from its own TS now and then (a
 * probe that joins the fan-out for a moment: core/slate/probe.ts); a clip in exactly that format is prepared
 * once, by ffmpeg in the background (slate-maker.ts), and kept. On the slate, the splicer (core/slate/splicer.ts)
 * carries that clip on the channel's own PIDs under its own PAT and PMT, its clock continued from where the
 * input's stood; the return (core/slate/live-return.ts) starts at the input's keyframe and flags each PID's
 * discontinuity without changing a byte of the input. A slate that is not ready (no format read yet, one it
 * cannot match, a failed preparation) is said in words, and the channel then does what it does without one.
 * What the slate decides (when it goes on and off, the timers) is core/slate/states.ts, on the runtime's clock;
 * this file carries it out, and the files it keeps (the clips, the last format) are the maker's.
 */
import * as Effect from "effect/Effect";
import * as Fiber from "effect/Fiber";
import * as Runtime from "effect/Runtime";
import type * as Scope from "effect/Scope";
import { type LiveReturn, makeLiveReturn } from "../../core/slate/live-return.ts";
import { makeSplicer } from "../../core/slate/splicer.ts";
import { makeSlateStates } from "../../core/slate/states.ts";
import { describeFormat } from "../../core/slate/types.ts";
import { ccAt, PACKET, PID_COUNT, pidAt } from "../../core/ts/index.ts";
import type { ChannelId } from "../../domain/base/ids.ts";
import type { SlateReason } from "../../domain/channel/slate.ts";
import type { NewEvent } from "../../domain/events/events.ts";
import type { InputWatcher } from "../ingest/input-types.ts";
import type { SlateSpec, SlateStatus } from "./channel-types.ts";
import { keptSlateFormat, pictureKey, slateDirNow } from "./slate-maker.ts";
import { makeSlatePrep, type Readiness } from "./slate-prep.ts";
import type { FanOutTaps } from "./taps.ts";

const SAID: Readonly<Record<SlateReason, string>> = {
  manual: "asked by an operator",
  input_lost: "every input is silent",
  unhealthy: "every input is unhealthy",
  scheduled: "the schedule's preroll or postroll",
};

/** How often the slate's TS is handed to the outputs: a few packets at a time, as an input would. */
const PACE_MS = 20;

interface SlateHost {
  readonly channel: ChannelId;
  readonly emit: (event: NewEvent) => void;
  /** Hands TS to every output, as the input's TS is handed (one turn). */
  readonly send: (chunks: ReadonlyArray<Uint8Array>) => void;
  /** Where the probe joins the fan-out while it reads. */
  readonly taps: FanOutTaps;
  /** Whether an input receives now. */
  readonly inputOk: () => boolean;
  /** The input's last PCR on `pcrPid` (27 MHz) and how long ago its last datagram came; null when unknown. */
  readonly lastPcr: (pcrPid: number) => { readonly pcr: number; readonly ageMs: number } | null;
  /** Every PID the input has carried: each gets a bridge on the return, the SI tables the slate keeps silent too. */
  readonly livePids: () => ReadonlyArray<number>;
  readonly failoverAfterMs: () => number;
  /** Where the live TS goes: to the slate's `live` from its start until the return is whole, else null. */
  readonly divert: (to: ((view: Uint8Array) => void) | null) => void;
}

/**
 * The slate watches the input path (InputPath.watch): input_lost starts its timer and input_restored stops it;
 * every input unhealthy by the channel's health rules (with `on_unhealthy`) puts it on, and the input's return
 * waits until one is healthy again; a new PMT has the format read again. While it is on for another reason than
 * health, the picture and sound rules are suspended.
 */
export interface Slate extends InputWatcher {
  readonly setSpec: (spec: SlateSpec | undefined) => void;
  readonly status: () => SlateStatus | null;
  /**
   * While what goes out is not the input's own packets (the slate, its return): the continuity counter of the
   * last packet sent on each PID since the slate went on. Empty while live.
   */
  readonly lastCc: () => ReadonlyMap<number, number>;
}

export const makeSlate = (
  host: SlateHost,
  initial: SlateSpec | undefined,
): Effect.Effect<Slate, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope;
    // The slate's fibers and lines run in the channel's runtime: in a forwarding thread its logger hands
    // them to the service's, masked there, as every other line of the thread.
    const runtime = yield* Effect.runtime<never>();
    const runSync = Runtime.runSync(runtime);
    const runFork = Runtime.runFork(runtime);
    const clock = yield* Effect.clock;
    const now = () => clock.unsafeCurrentTimeMillis();
    const dir = slateDirNow();
    /** What the slate decides (on, returning, the timers' deadlines); what follows carries it out. */
    const states = makeSlateStates(clock, initial);
    /** The format and the clip (slate-prep.ts). */
    const ready: Readiness = { prepared: null, preparing: null, problem: null, format: null };
    let back: LiveReturn | null = null;
    let pacer: Fiber.RuntimeFiber<unknown> | null = null;
    let timer: Fiber.RuntimeFiber<unknown> | null = null;
    /** Every input is unhealthy by the health rules (input-health.ts). */
    let allUnhealthy = false;
    /** The CC of the last packet sent on each PID since the slate went on (-1: none yet); made when it first does. */
    let sentCc: Int8Array | null = null;

    /** Hands TS to the outputs, noting each PID's last continuity counter. */
    const send = (chunks: ReadonlyArray<Uint8Array>) => {
      sentCc ??= new Int8Array(PID_COUNT).fill(-1);
      for (const chunk of chunks)
        for (let at = 0; at + PACKET <= chunk.length; at += PACKET)
          sentCc[pidAt(chunk, at)] = ccAt(chunk, at);
      host.send(chunks);
    };

    /** Forks `effect` into the channel's scope: it ends with the channel at the latest. */
    const run = <A>(effect: Effect.Effect<A>): Fiber.RuntimeFiber<A> => runSync(Effect.forkIn(effect, scope));
    const stop = (fiber: Fiber.RuntimeFiber<unknown> | null) => {
      if (fiber !== null) runFork(Fiber.interrupt(fiber));
    };
    const log = (message: string) => runFork(Effect.logWarning(`channel ${host.channel}: ${message}`));
    const { startProbe, endProbe, found } = makeSlatePrep({
      channel: host.channel,
      dir,
      taps: host.taps,
      states,
      ready,
      run,
      runSync,
      log,
      // An operator who asked, or an input that went silent, before the clip was ready: the slate now.
      clipMade: () => {
        const waited = states.clipReady(host.inputOk());
        if (waited !== null) goOn(waited);
      },
    });
    /** Sleeps until the clock reads `at`: a timer may fire a fraction early, and then sleeps the rest. */
    const until = (at: number): Effect.Effect<void> =>
      Effect.flatMap(Effect.sleep(Math.max(0, at - now())), () => (now() >= at ? Effect.void : until(at)));

    // --- on and off ----------------------------------------------------------------------------------------
    const goOn = (why: SlateReason) => {
      const asked = states.goOn(why, ready.prepared !== null);
      // An operator's slate while it still showed: it stays, and the return is given up.
      if (asked === "kept") back = null;
      if (asked === "not_ready") {
        const words =
          ready.problem ??
          (ready.preparing !== null
            ? "its clip is still being prepared"
            : "the input's format has not been read yet");
        log(`the slate cannot go on (${SAID[why]}): ${words}`);
      }
      const started = states.since();
      if (asked !== "on" || ready.prepared === null || started === null) return;
      endProbe();
      const { clip, format: shown } = ready.prepared;
      // The slate's clock goes on from the input's (its last PCR and the time since), its first picture after
      // the input's last (the input's pictures run ahead of its PCR by its lead).
      const last = host.lastPcr(shown.pcrPid);
      const play = makeSplicer(clip, shown, {
        startPcr: last === null ? null : last.pcr + last.ageMs * 27_000,
        lastPts: last === null ? null : Math.floor(last.pcr / 300) + shown.ptsLead,
      });
      sentCc?.fill(-1);
      host.divert(live);
      host.emit({ type: "slate_on", channel: host.channel, reason: why });
      pacer = run(
        Effect.forever(
          Effect.zipRight(
            Effect.sync(() => {
              const chunks = play.take(now() - started);
              if (chunks.length > 0) send(chunks);
            }),
            Effect.sleep(PACE_MS),
          ),
        ),
      );
    };
    /** The input is back: the slate plays on until the input's first random access point. */
    const startReturn = () => {
      if (ready.prepared !== null && states.inputBack())
        back = makeLiveReturn(ready.prepared.format, host.livePids());
    };
    const resumed = (chunks: ReadonlyArray<Uint8Array>) => {
      stop(pacer);
      pacer = null;
      host.emit({ type: "slate_off", channel: host.channel, seconds: states.resumed() });
      send(chunks);
    };
    /** What goes out is the input's own again; true when an operator's slate waited for the return's end. */
    const liveAgain = (whole: boolean) => {
      back = null;
      const waited = states.liveAgain(whole);
      host.divert(null);
      return waited;
    };

    const live = (view: Uint8Array) => {
      if (states.mode() === "slate") {
        if (states.reason() === "manual" || states.reason() === "scheduled") return;
        if (states.reason() === "unhealthy" && allUnhealthy && states.spec()?.onUnhealthy === true) return;
        startReturn();
      }
      if (back === null) return;
      const out = back.push(view);
      if (out === null) {
        // An input that shows no random access point on the video PID the slate knows (its PIDs changed, a
        // stream of another kind) is taken as it comes after a while rather than kept off air.
        if (!states.returnGivenUp()) return;
        resumed([view]);
        liveAgain(false);
        log(
          `the input came back without a keyframe on the video PID the slate knew: it is forwarded as it comes`,
        );
        return;
      }
      if (states.mode() === "returning") resumed([out]);
      else send([out]);
      if (back.done()) {
        const waited = liveAgain(true);
        if (waited !== null) goOn(waited);
      }
    };

    const armTimer = () => {
      stop(timer);
      timer = null;
      const at = states.inputLost(host.failoverAfterMs());
      if (at === null) return;
      timer = run(
        until(at).pipe(
          Effect.andThen(
            Effect.sync(() => {
              timer = null;
              if (states.silenceDue() && !host.inputOk()) goOn("input_lost");
            }),
          ),
        ),
      );
    };

    const onEvent = (event: NewEvent) => {
      if (states.spec() === undefined) return;
      if (event.type === "input_lost") armTimer();
      else if (event.type === "input_restored") {
        stop(timer);
        timer = null;
        states.inputRestored();
      }
    };

    const setSpec = (next: SlateSpec | undefined) => {
      const before = states.spec();
      const move = states.setSpec(next, host.inputOk());
      if (next === undefined) {
        // No slate any more: the outputs go back to the input at once (from its next keyframe when it has one).
        stop(timer);
        endProbe();
      } else {
        if (before !== undefined && pictureKey(before.picture) !== pictureKey(next.picture))
          ready.prepared = null;
        if (ready.format !== null && ready.prepared === null) found(ready.format);
      }
      if (move === "return") startReturn();
      else if (move === "off") {
        resumed([]);
        liveAgain(false);
      } else if (move === "manual" || move === "scheduled") goOn(move);
      if (next === undefined) ready.prepared = null;
      else if (ready.format === null) startProbe();
    };

    // Read the format again now and then while live, and go on the slate at start when nothing comes.
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.zipRight(
          Effect.sleep(1000),
          Effect.sync(() => {
            if (states.reprobeDue(ready.format !== null) && host.inputOk()) startProbe();
          }),
        ),
      ),
    );
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        endProbe();
      }),
    );
    if (initial !== undefined) ready.format = yield* keptSlateFormat(dir, host.channel);
    setSpec(initial);
    if (initial !== undefined && !initial.manual && initial.scheduled !== true) armTimer();

    return {
      onEvent,
      onHealth: (all) => {
        allUnhealthy = all;
        if (all && states.spec()?.onUnhealthy === true) goOn("unhealthy");
      },
      suspendsContent: () => states.mode() !== "live" && states.reason() !== "unhealthy",
      onPmt: () => {
        if (states.mayProbe()) {
          endProbe();
          startProbe();
        }
      },
      setSpec,
      lastCc: () => {
        const last = new Map<number, number>();
        if (states.mode() === "live") return last;
        sentCc?.forEach((cc, pid) => {
          if (cc >= 0) last.set(pid, cc);
        });
        return last;
      },
      status: () => {
        if (states.spec() === undefined) return null;
        return {
          ...states.report(),
          ready: ready.prepared !== null,
          preparing: ready.preparing !== null,
          format: ready.format === null ? null : describeFormat(ready.format),
          problem: ready.problem,
        };
      },
    } satisfies Slate;
  });
