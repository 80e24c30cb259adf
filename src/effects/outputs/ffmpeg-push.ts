/**
 * The RTSP output's push (RTMP runs in process, outputs/rtmp.ts): an `ffmpeg -c copy` child fed the channel's
 * TS on stdin through the start gate (core/ts-start.ts: PAT, PMT, then the stream from the next video keyframe), whatever queued before
 * the attempt dropped, bytes counted as sent once the server accepted the stream, the pipe's backpressure
 * letting this output's queue drop its oldest data. The protocol module gives the arguments, how the server's
 * acceptance shows, and how an exit reads in words.
 *
 * The URL may hold secrets, so argv is never logged and the stderr tail is masked.
 */
import * as Clock from "effect/Clock";
import * as Deferred from "effect/Deferred";
import * as Duration from "effect/Duration";
import * as Effect from "effect/Effect";
import type * as Redacted from "effect/Redacted";
import type * as Scope from "effect/Scope";
import { makeStartGate } from "../../core/ts-start.ts";
import { OutputError } from "../../domain/channel/output-error.ts";
import { type ChildExit, describeExit, spawnChild } from "../runtime/process/child-process.ts";
import type { WriterContext } from "./context.ts";

/** How long a stopped push may take to send what ffmpeg still holds before it is terminated. */
const stopGraceMs = 2_000;

/** One pipe write gathers this much; ffmpeg reads in 32 KiB blocks. */
const writeBatchBytes = 64 * 1024;

/** ffmpeg's input side, the same for every push: TS on stdin, probed for one second at most. */
export const ffmpegTsInputArgs: ReadonlyArray<string> = [
  "-hide_banner",
  "-nostats",
  "-loglevel",
  "level+debug",
  // Bytes are not the limit that should end probing: at 10 Mbit/s half a megabyte holds too little audio to
  // learn its sample rate. The one-second analyzeduration below bounds the start-up delay instead.
  "-probesize",
  "5000000",
  "-analyzeduration",
  "1000000",
  "-f",
  "mpegts",
  "-i",
  "pipe:0",
  "-map",
  "0:v:0?",
  "-map",
  "0:a:0?",
  "-c",
  "copy",
];

/** A line with `-loglevel level+…`: `[context @ 0x…] [level] message`, the context optional. */
const levelled = /^((?:\[[^\]]+ @ 0x[0-9a-f]+\] )?)\[(\w+)\] (.*)$/;
const kept = new Set(["error", "fatal", "panic"]);

/** The line as `-loglevel error` would have printed it, or null for the chatter below that level. */
const errorLine = (line: string): string | null => {
  const match = levelled.exec(line);
  if (match === null) return null;
  return kept.has(match[2] ?? "") ? `${match[1]}${match[3]}` : null;
};

export const hasLine = (exit: ChildExit, pattern: RegExp) => exit.tail.some((line) => pattern.test(line));

/**
 * The failures every push reads the same way, in the same words (`server` is host:port, `what` the protocol's
 * name, as in "is the RTMP server running?"); null when the exit needs the protocol's own reading.
 */
export const commonExitError = (exit: ChildExit, host: string, server: string, what: string) => {
  if (exit.spawnFailed) {
    return new OutputError({
      reason: "not_installed",
      message: "ffmpeg could not be started: install ffmpeg and make sure it is on PATH",
    });
  }
  if (hasLine(exit, /Failed to resolve hostname/)) {
    return new OutputError({ reason: "resolve_failed", message: `cannot resolve ${host}` });
  }
  if (hasLine(exit, /Connection refused/)) {
    return new OutputError({
      reason: "connect_refused",
      message: `connection refused by ${server} (is the ${what} server running?)`,
    });
  }
  if (hasLine(exit, /Connection timed out|Operation timed out/)) {
    return new OutputError({
      reason: "connect_timeout",
      message: `no answer from ${server} (check the address and the firewall)`,
    });
  }
  if (hasLine(exit, /TLS|SSL|certificate/i)) {
    return new OutputError({ reason: "connect_refused", message: `the TLS handshake with ${server} failed` });
  }
  return null;
};

/** ffmpeg could not make sense of the channel's TS, or it ended otherwise (its status and last error). */
export const unreadableOrExited = (exit: ChildExit): OutputError =>
  hasLine(
    exit,
    /Invalid data found|Could not find codec parameters|does not contain any stream|Could not write header|sample rate not set/,
  )
    ? new OutputError({
        reason: "child_exited",
        message: "ffmpeg could not read the channel's TS (no H.264/AAC found in time)",
      })
    : new OutputError({ reason: "child_exited", message: describeExit("ffmpeg", exit) });

interface FfmpegPush<Stage extends string> {
  readonly args: ReadonlyArray<string>;
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>;
  /** The stages in order, the first where every attempt starts. */
  readonly stages: ReadonlyArray<Stage>;
  /** The stage a stderr line reports, if any. */
  readonly stageOf: (line: string) => Stage | null;
  /** The server accepted the stream: from a stderr line, or a `-progress` line on stdout. */
  readonly acceptedOnStderr: (line: string) => boolean;
  readonly acceptedOnStdout: (line: string) => boolean;
  /** ffmpeg's report (an error line) that the destination failed. */
  readonly outputFailure: RegExp;
  /** The exit in words, knowing how long the stream was accepted (null: never) and the last stage reached. */
  readonly exitError: (exit: ChildExit, connectedForMs: number | null, stage: Stage) => OutputError;
}

export const ffmpegPushAttempt = <Stage extends string>(
  push: FfmpegPush<Stage>,
  context: WriterContext,
): Effect.Effect<never, OutputError, Scope.Scope> =>
  Effect.gen(function* () {
    // Whatever queued while nobody was connected is stale now.
    context.queue.clear();
    const gate = makeStartGate();
    const published = yield* Deferred.make<void>();
    const outputFailed = yield* Deferred.make<void>();
    let stage: Stage = push.stages[0] as Stage;
    const child = yield* spawnChild({
      command: "ffmpeg",
      args: push.args,
      secrets: push.secrets,
      stdin: true,
      tailLine: errorLine,
      onStderrLine: (line) => {
        const next = push.stageOf(line);
        if (next !== null && push.stages.indexOf(next) > push.stages.indexOf(stage)) stage = next;
        if (push.acceptedOnStderr(line)) Deferred.unsafeDone(published, Effect.void);
        const error = errorLine(line);
        if (error !== null && push.outputFailure.test(error)) Deferred.unsafeDone(outputFailed, Effect.void);
      },
      onStdoutLine: (line) => {
        if (push.acceptedOnStdout(line)) Deferred.unsafeDone(published, Effect.void);
      },
    });
    const stdin = child.stdin;
    if (stdin === null)
      return yield* new OutputError({ reason: "child_exited", message: "ffmpeg has no stdin" });

    // Stopped: end ffmpeg's input so it sends what it still holds (the server then has every frame it was
    // handed) and leaves by itself; the child's own release sends SIGTERM only if it has not by then.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => stdin.end()).pipe(
        Effect.zipRight(child.exit),
        Effect.timeout(Duration.millis(stopGraceMs)),
        Effect.ignore,
      ),
    );

    let connectedAt: number | null = null;
    // Handed to ffmpeg before the server accepted the stream: sent only if it does.
    let pendingBytes = 0;
    const ended = child.exit.pipe(
      Effect.flatMap((exit) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.fail(push.exitError(exit, connectedAt === null ? null : now - connectedAt, stage)),
        ),
      ),
    );

    // The pump may be rescheduled between a refused write and this wait, and the pipe drained meanwhile: ask
    // the stream, not only its next event.
    const drained = Effect.async<void>((resume) => {
      if (!stdin.writableNeedDrain || stdin.destroyed) return resume(Effect.void);
      const done = () => resume(Effect.void);
      stdin.once("drain", done);
      stdin.once("close", done);
      return Effect.sync(() => {
        stdin.off("drain", done);
        stdin.off("close", done);
      });
    });

    const pump = Effect.forever(
      Effect.gen(function* () {
        const segments = yield* context.queue.takeUpTo(writeBatchBytes);
        let open = true;
        let bytes = 0;
        for (const segment of segments) {
          const part = gate.push(segment);
          if (part === null) continue;
          open = stdin.write(part);
          bytes += part.length;
        }
        if (connectedAt === null) pendingBytes += bytes;
        else context.countSent(bytes);
        // A stuck server fills the pipe: wait here, and let this output's queue drop its oldest data.
        if (!open) yield* drained;
      }),
    );

    yield* Effect.forkScoped(
      Effect.gen(function* () {
        yield* Deferred.await(published);
        connectedAt = yield* Clock.currentTimeMillis;
        context.countSent(pendingBytes);
        pendingBytes = 0;
        yield* context.markConnected;
      }),
    );
    // After reporting a failed output ffmpeg still waits on its input before it exits; end that input.
    const feed = Effect.raceFirst(pump, Deferred.await(outputFailed)).pipe(
      Effect.zipRight(Effect.sync(() => stdin.end())),
      Effect.zipRight(Effect.never),
    );
    return yield* Effect.raceFirst(feed, ended);
  });
