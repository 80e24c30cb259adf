/**
 * The decode-only watcher of one input's picture and sound: one ffmpeg (core/content/args.ts) fed the
 * input's TS through a bounded pipe, whose detectors say when the picture turns black or freezes and the
 * sound falls silent (core/content/lines.ts), judged per rule against its `for_ms` (core/content/judge.ts).
 *
 * It is never on the forwarding path: `offer` hands the chunk to the pipe and returns, and when ffmpeg falls
 * behind by more than the pipe's bound the chunk is dropped and counted instead. A watcher that cannot judge
 * — ffmpeg starting, stalled, dead, or dropping — makes every rule null with the reason in words, never a
 * verdict. A dead ffmpeg is started again after a back-off (1 s, doubling to 30 s; back to 1 s once a run
 * has lasted a minute). What it costs is read from /proc: its ffmpeg's CPU, in % of one core.
 *
 * `offer` keeps the chunk by reference, as an output's queue does: the caller must not reuse its memory. In
 * key-frame mode it also rewrites the chunk in place (core/content/key-frame-copy.ts: its H.264 SPSs say the
 * pictures need no reordering, and only key frames go to ffmpeg while it probes): the caller hands it a copy
 * of the stream, never the bytes it forwards.
 */
import { readFileSync } from "node:fs";
import * as Clock from "effect/Clock";
import * as Duration from "effect/Duration";
import * as Effect from "effect/Effect";
import type * as Scope from "effect/Scope";
import { type ContentRule, contentWatchArgs, type DecodeMode, PROGRESS_MS } from "../../core/content/args.ts";
import { type ContentVerdict, judgeContentRule } from "../../core/content/judge.ts";
import { makeKeyFrameCopy } from "../../core/content/key-frame-copy.ts";
import {
  applyContentLine,
  type ContentReport,
  emptyReport,
  pictureSpacingMs,
  readContentLine,
} from "../../core/content/lines.ts";
import { isContentRule } from "../../domain/health/health.ts";
import type { HealthRule } from "../../domain/health/health-schema.ts";
import { type ChildExit, describeExit, spawnChild } from "../runtime/process/child-process.ts";

export interface ContentWatcherOptions {
  /** The channel's rules; only black, frozen and silent are the watcher's. */
  readonly rules: Readonly<Record<string, HealthRule>>;
  readonly mode?: DecodeMode;
  /** Bytes handed to ffmpeg and not yet read before chunks are dropped (default 1 MiB). */
  readonly pipeBytes?: number;
  /** No progress for this long is a stall (default 3 s). */
  readonly stallMs?: number;
  /** A drop keeps the rules unknown for this long (default 2 s). */
  readonly dropHoldMs?: number;
  /** The first back-off after ffmpeg dies (default 1 s), doubling to `restartMaxMs` (default 30 s). */
  readonly restartMs?: number;
  readonly restartMaxMs?: number;
  /** The executable (default `ffmpeg`). */
  readonly command?: string;
}

export interface ContentWatcherCost {
  /** Its ffmpeg's CPU since the last reading, in % of one core; null while no ffmpeg runs. */
  readonly cpuPercent: number | null;
  readonly droppedChunks: number;
  readonly restarts: number;
}

export interface ContentWatcher {
  /**
   * Hands one chunk of whole TS packets to ffmpeg, or drops it when the pipe is full; returns at once. While
   * no ffmpeg runs (starting, or waiting to start again) the chunk is let go: the rules say why meanwhile.
   */
  readonly offer: (chunk: Uint8Array) => void;
  /** Each of the watcher's rules: true, false, or null with the reason it cannot judge. */
  readonly verdicts: () => Readonly<Record<string, ContentVerdict>>;
  readonly cost: () => ContentWatcherCost;
  /** The running ffmpeg's process id, if one runs. */
  readonly pid: () => number | undefined;
  /** The spacing of the decoded pictures (the GOP, in key-frame mode), in ms, once measured. */
  readonly pictureSpacingMs: () => number | null;
}

const RESET_AFTER_MS = 60_000;
/** How long, at most, from its first chunk, a run's ffmpeg is handed no B-picture while it probes the stream. */
const PROBE_MS = 5000;

/** ffmpeg's error lines, without the level tag, for the reason a run ended. */
const errorLine = (line: string): string | null => {
  const match = /^(?:(\[[^\]]+ @ 0x[0-9a-f]+\] ))?\[(error|fatal|panic)\] (.*)$/.exec(line);
  return match === null ? null : `${match[1] ?? ""}${match[3]}`;
};

/** How a run ended, in words: a stream without the picture or the sound the rules need, else ffmpeg's own. */
const endedBecause = (exit: ChildExit): string => {
  const missing = exit.tail
    .map((line) => /Stream specifier ':([av]):0' in filtergraph description/.exec(line)?.[1])
    .find((kind) => kind !== undefined);
  if (missing === "a") return "the stream has no audio to judge silence by";
  if (missing === "v") return "the stream has no video to judge black or frozen pictures by";
  return describeExit("ffmpeg", exit);
};

/** utime + stime of a process, in seconds (USER_HZ is 100 on Linux); null when it is gone. */
const cpuSeconds = (pid: number): number | null => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
};

interface Run {
  readonly pid: number | undefined;
  readonly stdin: NodeJS.WritableStream & { readonly writableLength: number; readonly destroyed: boolean };
  readonly startedAtMs: number;
  /** Key-frame mode: the copy of the stream its ffmpeg gets (core/content/key-frame-copy.ts). */
  readonly copy: ReturnType<typeof makeKeyFrameCopy> | null;
  report: ContentReport;
  /** When this run was first handed a chunk. */
  firstOfferAtMs: number | null;
  /** When the stream time ffmpeg reached last moved. */
  movedAtMs: number;
}

/**
 * Starts the watcher for these rules in the scope (its ffmpeg ends with it); null when no rule is the
 * watcher's.
 */
export const makeContentWatcher = (
  options: ContentWatcherOptions,
): Effect.Effect<ContentWatcher | null, never, Scope.Scope> =>
  Effect.gen(function* () {
    const rules = Object.fromEntries(
      Object.entries(options.rules).filter(([, rule]) => isContentRule(rule)),
    ) as Record<string, ContentRule>;
    const mode = options.mode ?? "key";
    const args = contentWatchArgs(rules, mode);
    if (args === null) return null;
    const pipeBytes = options.pipeBytes ?? 1024 * 1024;
    const stallMs = options.stallMs ?? 3000;
    const dropHoldMs = options.dropHoldMs ?? 2000;
    const firstBackOff = options.restartMs ?? 1000;
    const maxBackOff = options.restartMaxMs ?? 30_000;
    const clock = yield* Effect.clock;
    const now = () => clock.unsafeCurrentTimeMillis();

    let run: Run | null = null;
    let ended: string | null = null;
    let restarts = 0;
    let dropped = 0;
    let droppedAtMs: number | null = null;
    let droppedSince = 0;
    let offeredAtMs: number | null = null;
    let cpuSample: { pid: number; seconds: number; atMs: number } | null = null;

    const once = Effect.scoped(
      Effect.gen(function* () {
        const child = yield* spawnChild({
          command: options.command ?? "ffmpeg",
          args,
          stdin: true,
          tailLine: errorLine,
          killGraceMs: 500,
          onStderrLine: (line) => {
            if (run !== null) run.report = applyContentLine(run.report, readContentLine(line));
          },
          onStdoutLine: (line) => {
            if (run === null) return;
            const before = run.report.reached;
            run.report = applyContentLine(run.report, readContentLine(line));
            if (run.report.reached !== before) run.movedAtMs = now();
          },
        });
        if (child.stdin === null) return "ffmpeg has no stdin";
        const startedAtMs = now();
        run = {
          pid: child.pid,
          stdin: child.stdin as Run["stdin"],
          startedAtMs,
          copy: mode === "key" ? makeKeyFrameCopy() : null,
          report: emptyReport,
          firstOfferAtMs: null,
          movedAtMs: startedAtMs,
        };
        ended = null;
        return endedBecause(yield* child.exit);
      }),
    ).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          run = null;
        }),
      ),
    );

    const supervise = Effect.gen(function* () {
      let backOff = firstBackOff;
      for (;;) {
        const startedAt = yield* Clock.currentTimeMillis;
        const why = yield* once;
        const lasted = (yield* Clock.currentTimeMillis) - startedAt;
        if (lasted >= RESET_AFTER_MS) backOff = firstBackOff;
        ended = `the watcher's ffmpeg ended (${why}): starting it again in ${(backOff / 1000).toFixed(1)} s`;
        yield* Effect.sleep(Duration.millis(backOff));
        backOff = Math.min(backOff * 2, maxBackOff);
        restarts += 1;
        ended = `the watcher's ffmpeg is starting again after it ended (${why})`;
      }
    });
    yield* Effect.forkScoped(supervise);

    const blocked = (at: number): string | null => {
      if (run === null) return ended ?? "the watcher's ffmpeg is starting";
      if (droppedAtMs !== null && at - droppedAtMs < dropHoldMs)
        return `the watcher dropped ${dropped - droppedSince} chunks in the last ${(dropHoldMs / 1000).toFixed(0)} s: its ffmpeg does not keep up with the stream`;
      const still = at - run.movedAtMs;
      if (still < stallMs) return null;
      if (offeredAtMs === null || at - offeredAtMs >= stallMs)
        return `no stream has reached the watcher for ${(Math.min(still, at - (offeredAtMs ?? run.startedAtMs)) / 1000).toFixed(1)} s`;
      return run.report.reached === null
        ? `the watcher's ffmpeg has not found the stream's picture and sound after ${(still / 1000).toFixed(1)} s`
        : `the watcher's ffmpeg has made no progress for ${(still / 1000).toFixed(1)} s`;
    };

    return {
      offer: (chunk) => {
        const current = run;
        if (current === null || current.stdin.destroyed) return;
        const at = now();
        offeredAtMs = at;
        if (current.stdin.writableLength + chunk.length > pipeBytes) {
          if (droppedAtMs === null || at - droppedAtMs >= dropHoldMs) droppedSince = dropped;
          dropped += 1;
          droppedAtMs = at;
          return;
        }
        // Key frames only: the copy says they need no reordering, and ffmpeg's probe sees no B-frame, so a
        // decoded key frame is judged at once, not a GOP later.
        current.firstOfferAtMs ??= at;
        const probing = current.report.reached === null && at - current.firstOfferAtMs < PROBE_MS;
        current.stdin.write(current.copy === null ? chunk : current.copy.copy(chunk, probing));
      },
      verdicts: () => {
        const at = now();
        const reason = blocked(at);
        const said = run?.report ?? emptyReport;
        // ffmpeg says where it is every PROGRESS_MS: judged on a timer, the stream is taken to have moved on
        // with the clock since, up to that period (beyond it, ffmpeg is late, and says so next time).
        const moved = run === null ? 0 : Math.min(Math.max(0, at - run.movedAtMs), PROGRESS_MS);
        const report = said.reached === null ? said : { ...said, reached: said.reached + moved / 1000 };
        return Object.fromEntries(
          Object.entries(rules).map(([name, rule]) => [
            name,
            judgeContentRule(name, rule, report, reason, mode),
          ]),
        );
      },
      cost: () => {
        const pid = run?.pid;
        const seconds = pid === undefined ? null : cpuSeconds(pid);
        const at = now();
        let cpuPercent: number | null = null;
        if (pid !== undefined && seconds !== null) {
          const from =
            cpuSample !== null && cpuSample.pid === pid
              ? cpuSample
              : { pid, seconds: 0, atMs: run?.startedAtMs ?? at };
          const elapsed = (at - from.atMs) / 1000;
          cpuPercent = elapsed > 0 ? ((seconds - from.seconds) / elapsed) * 100 : null;
          cpuSample = { pid, seconds, atMs: at };
        }
        return { cpuPercent, droppedChunks: dropped, restarts };
      },
      pid: () => run?.pid,
      pictureSpacingMs: () => (run === null ? null : pictureSpacingMs(run.report)),
    } satisfies ContentWatcher;
  });
