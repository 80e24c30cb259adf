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
 */
import { Buffer } from "node:buffer";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Fiber, Option, Runtime, type Scope } from "effect";
import { readClip, type SlateClip } from "../../core/slate/clip.ts";
import { type LiveReturn, makeLiveReturn } from "../../core/slate/live-return.ts";
import { type FormatProbe, makeFormatProbe } from "../../core/slate/probe.ts";
import { makeSplicer, type Splicer } from "../../core/slate/splicer.ts";
import { describeFormat, formatKey, type SlateFormat } from "../../core/slate/types.ts";
import { ccAt, PACKET, pidAt } from "../../core/ts/index.ts";
import type { NewEvent } from "../../domain/events.ts";
import type { ChannelId } from "../../domain/ids.ts";
import { settingNow, slateDir } from "../config/settings.ts";
import type { SlateSpec, SlateStatus } from "./channel-types.ts";
import { makeSlateClip } from "./slate-maker.ts";
import type { FanOutTaps } from "./taps.ts";

/** How long a returning input may take to show a random access point before it is taken as it comes. */
const RETURN_GIVE_UP_MS = 10_000;
/** How often the slate's TS is handed to the outputs: a few packets at a time, as an input would. */
const PACE_MS = 20;
/** How long a probe may read the stream before it gives up for this time. */
const PROBE_MS = 10_000;
/** How often a channel's format is read again while it runs live: a change of format gets a new clip. */
const REPROBE_MS = 60_000;
/** … and how often when no format could be read from it. */
const REPROBE_REFUSED_MS = 300_000;

export interface SlateHost {
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

type Mode = "live" | "slate" | "returning" | "bridging";

interface Prepared {
  readonly key: string;
  readonly format: SlateFormat;
  readonly clip: SlateClip;
}

const pictureKey = (spec: SlateSpec) =>
  spec.picture.kind === "image" ? `image:${spec.picture.sha256}` : `card:${spec.picture.title}`;

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
    const dir = Option.getOrElse(settingNow(slateDir, Option.none()), () =>
      join(tmpdir(), "distributary-slates"),
    );
    let spec = initial;
    let mode: Mode = "live";
    let reason: "input_lost" | "manual" | null = null;
    let since: number | null = null;
    let secondsBefore = 0;
    let prepared: Prepared | null = null;
    let preparing: string | null = null;
    let problem: string | null = null;
    let format: SlateFormat | null = null;
    let splicer: Splicer | null = null;
    let back: LiveReturn | null = null;
    /** An operator asked for the slate while the input's return was still bridging its PIDs: once it is live. */
    let manualWaiting = false;
    let pacer: Fiber.RuntimeFiber<unknown> | null = null;
    let timer: Fiber.RuntimeFiber<unknown> | null = null;
    let probe: { readonly reader: FormatProbe; readonly offer: (chunk: Uint8Array) => void } | null = null;
    let probedAt = 0;
    /** The slate's time came while its clip was still being made: it goes on once the clip is. */
    let awaitingClip = false;
    /** The CC of the last packet sent on each PID since the slate went on (-1: none yet). */
    const sentCc = new Int8Array(8192).fill(-1);

    /** Hands TS to the outputs, noting each PID's last continuity counter. */
    const send = (chunks: ReadonlyArray<Uint8Array>) => {
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

    // --- the format and the clip -------------------------------------------------------------------------
    const endProbe = () => {
      if (probe === null) return;
      host.taps.detach(probe.offer);
      probe = null;
    };
    const startProbe = () => {
      if (spec === undefined || probe !== null || mode !== "live") return;
      probedAt = Date.now();
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
    /**
     * The channel's last format, kept beside the clips: a new copy of the channel (a move to another thread, a
     * restart, a fleet node taking it over) can then go on the slate before it has read its input.
     */
    const formatFile = join(dir, `format-${encodeURIComponent(host.channel)}.json`);
    const keepFormat = (next: SlateFormat) => {
      try {
        mkdirSync(dir, { recursive: true });
        const text = JSON.stringify({
          ...next,
          pat: Buffer.from(next.pat).toString("base64"),
          pmt: Buffer.from(next.pmt).toString("base64"),
        });
        writeFileSync(`${formatFile}.tmp`, text);
        renameSync(`${formatFile}.tmp`, formatFile);
      } catch (thrown) {
        log(
          `could not keep the slate's format: ${thrown instanceof Error ? thrown.message : String(thrown)}`,
        );
      }
    };
    const keptFormat = (): SlateFormat | null => {
      try {
        const kept = JSON.parse(readFileSync(formatFile, "utf8")) as SlateFormat & {
          pat: string;
          pmt: string;
        };
        if (typeof kept.video?.pid !== "number" || !Array.isArray(kept.audio)) return null;
        return {
          ...kept,
          ptsLead: typeof kept.ptsLead === "number" ? kept.ptsLead : 0,
          pat: new Uint8Array(Buffer.from(kept.pat, "base64")),
          pmt: new Uint8Array(Buffer.from(kept.pmt, "base64")),
        };
      } catch {
        return null;
      }
    };

    /** A format was read: a clip for it (and the picture) is prepared unless the one kept already is. */
    const found = (next: SlateFormat) => {
      if (
        format === null ||
        formatKey(format) !== formatKey(next) ||
        Buffer.compare(format.pmt, next.pmt) !== 0 ||
        format.ptsLead !== next.ptsLead
      )
        keepFormat(next);
      format = next;
      if (spec === undefined) return;
      const key = `${formatKey(next)}|${pictureKey(spec)}`;
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
              if (spec?.manual === true && mode === "live") goOn("manual");
              else if (awaitingClip && mode === "live" && !host.inputOk()) goOn("input_lost");
            },
          }),
        ),
      );
    };

    // --- on and off ----------------------------------------------------------------------------------------
    const goOn = (why: "input_lost" | "manual") => {
      if (why === "manual" && mode === "returning") {
        // The slate is still what goes out: it stays, and the return is given up.
        mode = "slate";
        reason = "manual";
        back = null;
        return;
      }
      if (why === "manual" && mode === "bridging") {
        // The input is on air, a PID still waiting for its bridge: the slate goes on once the return is whole.
        manualWaiting = true;
        return;
      }
      if (mode !== "live") {
        if (why === "manual") reason = "manual";
        return;
      }
      if (prepared === null) {
        awaitingClip = why === "input_lost";
        const words =
          problem ??
          (preparing !== null
            ? "its clip is still being prepared"
            : "the input's format has not been read yet");
        log(
          `the slate cannot go on (${why === "manual" ? "asked by an operator" : "every input is silent"}): ${words}`,
        );
        return;
      }
      endProbe();
      const { clip, format: now } = prepared;
      const started = Date.now();
      // The slate's clock goes on from the input's (its last PCR and the time since), its first picture after
      // the input's last (the input's pictures run ahead of its PCR by its lead).
      const last = host.lastPcr(now.pcrPid);
      splicer = makeSplicer(clip, now, {
        startPcr: last === null ? null : last.pcr + last.ageMs * 27_000,
        lastPts: last === null ? null : Math.floor(last.pcr / 300) + now.ptsLead,
      });
      mode = "slate";
      reason = why;
      since = started;
      sentCc.fill(-1);
      host.divert(true);
      host.emit({ type: "slate_on", channel: host.channel, reason: why });
      const play = splicer;
      pacer = run(
        Effect.forever(
          Effect.zipRight(
            Effect.sync(() => {
              const chunks = play.take(Date.now() - started);
              if (chunks.length > 0) send(chunks);
            }),
            Effect.sleep(PACE_MS),
          ),
        ),
      );
    };
    /** The input is back: the slate plays on until the input's first random access point. */
    let returningSince = 0;
    const startReturn = () => {
      if (mode !== "slate" || prepared === null) return;
      mode = "returning";
      returningSince = Date.now();
      back = makeLiveReturn(prepared.format, host.livePids());
    };
    const resumed = (chunks: ReadonlyArray<Uint8Array>) => {
      stop(pacer);
      pacer = null;
      splicer = null;
      const seconds = since === null ? 0 : (Date.now() - since) / 1000;
      secondsBefore += seconds;
      since = null;
      reason = null;
      mode = "bridging";
      host.emit({ type: "slate_off", channel: host.channel, seconds });
      send(chunks);
    };

    const live = (view: Uint8Array) => {
      if (mode === "slate") {
        if (reason === "manual") return;
        startReturn();
      }
      if (back === null) return;
      const chunks = back.push(view);
      if (chunks === null) {
        // An input that shows no random access point on the video PID the slate knows (its PIDs changed, a
        // stream of another kind) is taken as it comes after a while rather than kept off air.
        if (Date.now() - returningSince < RETURN_GIVE_UP_MS) return;
        resumed([view]);
        back = null;
        mode = "live";
        host.divert(false);
        log(
          `the input came back without a keyframe on the video PID the slate knew: it is forwarded as it comes`,
        );
        return;
      }
      if (mode === "returning") resumed(chunks);
      else send(chunks);
      if (back.done()) {
        back = null;
        mode = "live";
        host.divert(false);
        if (manualWaiting) {
          manualWaiting = false;
          if (spec?.manual === true) goOn("manual");
        }
      }
    };

    const armTimer = () => {
      stop(timer);
      timer = null;
      if (spec === undefined || mode !== "live") return;
      const wait = Math.max(0, spec.afterMs - host.failoverAfterMs());
      timer = run(
        Effect.sleep(wait).pipe(
          Effect.andThen(
            Effect.sync(() => {
              timer = null;
              if (!host.inputOk()) goOn("input_lost");
            }),
          ),
        ),
      );
    };

    const onEvent = (event: NewEvent) => {
      if (spec === undefined) return;
      if (event.type === "input_lost") armTimer();
      else if (event.type === "input_restored") {
        stop(timer);
        timer = null;
        awaitingClip = false;
      }
    };

    const setSpec = (next: SlateSpec | undefined) => {
      const before = spec;
      spec = next;
      if (next === undefined) {
        // No slate any more: the outputs go back to the input at once (from its next keyframe when it has one).
        stop(timer);
        endProbe();
        if (mode === "slate" || mode === "returning") {
          if (host.inputOk()) {
            mode = "slate";
            reason = "input_lost";
            startReturn();
          } else {
            resumed([]);
            back = null;
            mode = "live";
            host.divert(false);
          }
        }
        prepared = null;
        return;
      }
      if (before !== undefined && pictureKey(before) !== pictureKey(next)) prepared = null;
      if (format !== null && prepared === null) found(format);
      if (!next.manual) manualWaiting = false;
      if (next.manual && !(before?.manual ?? false)) goOn("manual");
      else if (!next.manual && (before?.manual ?? false) && mode === "slate" && reason === "manual") {
        if (host.inputOk()) startReturn();
        else reason = "input_lost";
      }
      if (format === null) startProbe();
    };

    // Read the format again now and then while live, and go on the slate at start when nothing comes.
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.zipRight(
          Effect.sleep(1000),
          Effect.sync(() => {
            if (spec === undefined || mode !== "live") return;
            // A stream the probe could not read (a refused format, nothing found within its time) is read again
            // only every few minutes: the input's format may change, but a probe reads each packet while it runs.
            const every = format === null && probedAt > 0 ? REPROBE_REFUSED_MS : REPROBE_MS;
            const due = probedAt === 0 || Date.now() - probedAt >= every;
            if (due && host.inputOk()) startProbe();
          }),
        ),
      ),
    );
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        endProbe();
      }),
    );
    if (initial !== undefined) format = keptFormat();
    setSpec(initial);
    if (initial !== undefined && !initial.manual) armTimer();

    return {
      live,
      onEvent,
      onPmt: () => {
        if (mode === "live" && spec !== undefined) {
          endProbe();
          startProbe();
        }
      },
      setSpec,
      lastCc: () => {
        const last = new Map<number, number>();
        if (mode === "live") return last;
        sentCc.forEach((cc, pid) => {
          if (cc >= 0) last.set(pid, cc);
        });
        return last;
      },
      status: () => {
        if (spec === undefined) return null;
        const current = since === null ? 0 : (Date.now() - since) / 1000;
        return {
          on: mode === "slate" || mode === "returning",
          reason,
          since,
          seconds: secondsBefore + current,
          ready: prepared !== null,
          preparing: preparing !== null,
          format: format === null ? null : describeFormat(format),
          problem,
        };
      },
    } satisfies Slate;
  });
