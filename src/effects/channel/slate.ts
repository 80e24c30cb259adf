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
import { Buffer } from "node:buffer";
import * as Effect from "effect/Effect";
import * as Fiber from "effect/Fiber";
import * as Runtime from "effect/Runtime";
import type * as Scope from "effect/Scope";
import { readClip, type SlateClip } from "../../core/slate/clip.ts";
import { type LiveReturn, makeLiveReturn } from "../../core/slate/live-return.ts";
import { type FormatProbe, makeFormatProbe } from "../../core/slate/probe.ts";
import { makeSplicer } from "../../core/slate/splicer.ts";
import { makeSlateStates } from "../../core/slate/states.ts";
import { describeFormat, formatKey, type SlateFormat } from "../../core/slate/types.ts";
import { ccAt, PACKET, PID_COUNT, pidAt } from "../../core/ts/index.ts";
import type { NewEvent } from "../../domain/events.ts";
import type { ChannelId } from "../../domain/ids.ts";
import type { SlateReason } from "../../domain/slate.ts";
import type { SlateSpec, SlateStatus } from "./channel-types.ts";
import { keepSlateFormat, keptSlateFormat, makeSlateClip, pictureKey, slateDirNow } from "./slate-maker.ts";
import type { FanOutTaps } from "./taps.ts";

const SAID: Readonly<Record<SlateReason, string>> = {
  manual: "asked by an operator",
  input_lost: "every input is silent",
  unhealthy: "every input is unhealthy",
  scheduled: "the schedule's preroll or postroll",
};

/** How often the slate's TS is handed to the outputs: a few packets at a time, as an input would. */
const PACE_MS = 20;
/** How long a probe may read the stream before it gives up for this time. */
const PROBE_MS = 10_000;

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
  /** Whether the live TS goes through `live` (true from the slate's start until the return is whole). */
  readonly divert: (on: boolean) => void;
}

export interface Slate {
  /** The live TS while diverted: dropped while the slate plays, then the return. */
  readonly live: (view: Uint8Array) => void;
  /** The input path's events: input_lost starts the slate's timer, input_restored stops it. */
  readonly onEvent: (event: NewEvent) => void;
  /**
   * Every input is unhealthy by the channel's health rules (or no longer): with `on_unhealthy` the slate goes
   * on, and the input's return waits until one is healthy again.
   */
  readonly onHealth: (allUnhealthy: boolean) => void;
  /** Whether the picture and sound rules are suspended: the slate is on for another reason than health. */
  readonly suspendsContent: () => boolean;
  /** The input's PMT changed: its format is read again. */
  readonly onPmt: () => void;
  readonly setSpec: (spec: SlateSpec | undefined) => void;
  readonly status: () => SlateStatus | null;
  /**
   * While what goes out is not the input's own packets (the slate, its return): the continuity counter of the
   * last packet sent on each PID since the slate went on. Empty while live.
   */
  readonly lastCc: () => ReadonlyMap<number, number>;
}

interface Prepared {
  readonly key: string;
  readonly format: SlateFormat;
  readonly clip: SlateClip;
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
    let prepared: Prepared | null = null;
    let preparing: string | null = null;
    let problem: string | null = null;
    let format: SlateFormat | null = null;
    let back: LiveReturn | null = null;
    let pacer: Fiber.RuntimeFiber<unknown> | null = null;
    let timer: Fiber.RuntimeFiber<unknown> | null = null;
    let probe: { readonly reader: FormatProbe; readonly offer: (chunk: Uint8Array) => void } | null = null;
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
    /** Sleeps until the clock reads `at`: a timer may fire a fraction early, and then sleeps the rest. */
    const until = (at: number): Effect.Effect<void> =>
      Effect.flatMap(Effect.sleep(Math.max(0, at - now())), () => (now() >= at ? Effect.void : until(at)));

    // --- the format and the clip -------------------------------------------------------------------------
    const endProbe = () => {
      if (probe === null) return;
      host.taps.detach(probe.offer);
      probe = null;
    };
    const startProbe = () => {
      if (probe !== null || !states.mayProbe()) return;
      states.probing();
      const reader = makeFormatProbe();
      const offer = (chunk: Uint8Array) => {
        reader.push(chunk);
        const result = reader.result();
        if (result === null) return;
        endProbe();
        if ("refused" in result) {
          format = null;
          problem = `no slate can match this channel's stream: ${result.refused}`;
          return;
        }
        found(result.format);
      };
      probe = { reader, offer };
      host.taps.attach(offer);
      run(
        Effect.sleep(PROBE_MS).pipe(
          Effect.andThen(
            Effect.sync(() => {
              if (probe?.reader === reader) endProbe();
            }),
          ),
        ),
      );
    };

    /** A format was read: a clip for it (and the picture) is prepared unless the one kept already is. */
    const found = (next: SlateFormat) => {
      if (
        format === null ||
        formatKey(format) !== formatKey(next) ||
        Buffer.compare(format.pmt, next.pmt) !== 0 ||
        format.ptsLead !== next.ptsLead
      )
        runSync(
          Effect.catchAll(keepSlateFormat(dir, host.channel, next), (error) =>
            Effect.sync(() => log(error.message)),
          ),
        );
      format = next;
      const spec = states.spec();
      if (spec === undefined) return;
      const key = `${formatKey(next)}|${pictureKey(spec.picture)}`;
      if (prepared?.key === key || preparing === key) {
        // Same format and picture; the PIDs and tables may still have moved.
        if (prepared !== null && prepared.key === key) prepared = { ...prepared, format: next };
        return;
      }
      preparing = key;
      const picture =
        spec.picture.kind === "image"
          ? {
              kind: "image" as const,
              bytes: Buffer.from(spec.picture.data, "base64"),
              sha256: spec.picture.sha256,
            }
          : spec.picture;
      run(
        makeSlateClip({ dir, format: next, picture }).pipe(
          Effect.flatMap((made) => {
            const clip = readClip(made.bytes, next.audio.length);
            return "unusable" in clip
              ? Effect.fail({ message: `the prepared clip cannot be used: ${clip.unusable}` })
              : Effect.succeed(clip);
          }),
          Effect.match({
            onFailure: (error) => {
              if (preparing !== key) return;
              preparing = null;
              problem = `the slate could not be prepared: ${error.message}`;
              log(problem);
            },
            onSuccess: (clip) => {
              if (preparing !== key) return;
              preparing = null;
              problem = null;
              prepared = { key, format: next, clip };
              // An operator who asked, or an input that went silent, before the clip was ready: the slate now.
              const waited = states.clipReady(host.inputOk());
              if (waited !== null) goOn(waited);
            },
          }),
        ),
      );
    };

    // --- on and off ----------------------------------------------------------------------------------------
    const goOn = (why: SlateReason) => {
      const asked = states.goOn(why, prepared !== null);
      // An operator's slate while it still showed: it stays, and the return is given up.
      if (asked === "kept") back = null;
      if (asked === "not_ready") {
        const words =
          problem ??
          (preparing !== null
            ? "its clip is still being prepared"
            : "the input's format has not been read yet");
        log(`the slate cannot go on (${SAID[why]}): ${words}`);
      }
      const started = states.since();
      if (asked !== "on" || prepared === null || started === null) return;
      endProbe();
      const { clip, format: shown } = prepared;
      // The slate's clock goes on from the input's (its last PCR and the time since), its first picture after
      // the input's last (the input's pictures run ahead of its PCR by its lead).
      const last = host.lastPcr(shown.pcrPid);
      const play = makeSplicer(clip, shown, {
        startPcr: last === null ? null : last.pcr + last.ageMs * 27_000,
        lastPts: last === null ? null : Math.floor(last.pcr / 300) + shown.ptsLead,
      });
      sentCc?.fill(-1);
      host.divert(true);
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
      if (prepared !== null && states.inputBack()) back = makeLiveReturn(prepared.format, host.livePids());
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
      host.divert(false);
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
        if (before !== undefined && pictureKey(before.picture) !== pictureKey(next.picture)) prepared = null;
        if (format !== null && prepared === null) found(format);
      }
      if (move === "return") startReturn();
      else if (move === "off") {
        resumed([]);
        liveAgain(false);
      } else if (move === "manual" || move === "scheduled") goOn(move);
      if (next === undefined) prepared = null;
      else if (format === null) startProbe();
    };

    // Read the format again now and then while live, and go on the slate at start when nothing comes.
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.zipRight(
          Effect.sleep(1000),
          Effect.sync(() => {
            if (states.reprobeDue(format !== null) && host.inputOk()) startProbe();
          }),
        ),
      ),
    );
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        endProbe();
      }),
    );
    if (initial !== undefined) format = yield* keptSlateFormat(dir, host.channel);
    setSpec(initial);
    if (initial !== undefined && !initial.manual && initial.scheduled !== true) armTimer();

    return {
      live,
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
          ready: prepared !== null,
          preparing: preparing !== null,
          format: format === null ? null : describeFormat(format),
          problem,
        };
      },
    } satisfies Slate;
  });
