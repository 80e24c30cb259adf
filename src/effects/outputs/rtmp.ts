/**
 * RTMP/RTMPS output: RTMP cannot carry TS, so this is the one output that remuxes. An `ffmpeg` child reads
 * TS on stdin and publishes FLV, copying the codecs. It takes the first video and first audio stream (FLV
 * carries one of each; SCTE-35 and other data PIDs cannot go).
 *
 * Each attempt starts from live data: what queued while nobody was connected is dropped (as the SRT writer
 * does), and the TS handed to ffmpeg begins with the PAT, the PMT and a video keyframe (core/ts-start.ts), so
 * that the recording at the server holds every frame from there on, audio and video starting together.
 * ffmpeg keeps what it read while probing (no `-fflags +nobuffer`, which threw that second away).
 *
 * Bytes count as sent once the server accepted the publish: an output that never published sent nothing.
 * ffmpeg logs at debug level so that the RTMP exchange tells a refused application from a refused stream
 * key; only its error lines are kept for messages.
 *
 * The URL holds the stream key, so argv is never logged and the stderr tail is masked.
 */
import { Clock, Deferred, Effect, Redacted, type Scope } from "effect";
import { makeStartGate } from "../../core/ts-start.ts";
import { OutputError } from "../../domain/errors.ts";
import type { RtmpTarget } from "../../domain/url.ts";
import { type ChildExit, describeExit, spawnChild } from "../child-process.ts";
import type { WriterContext } from "./context.ts";

/** One pipe write gathers this much; ffmpeg reads in 32 KiB blocks. */
const writeBatchBytes = 64 * 1024;
/** A server that drops the connection this soon after publishing began most likely refused the key. */
const earlyCloseMs = 5_000;

export const ffmpegRtmpArgs = (target: RtmpTarget): ReadonlyArray<string> => [
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
  "-f",
  "flv",
  "-flvflags",
  "no_duration_filesize",
  "-progress",
  "pipe:1",
  "-stats_period",
  "1",
  Redacted.value(target.url),
];

/** ffmpeg's report that the destination failed: `<url>: <reason>`, or a failed write or trailer. */
const outputFailure = /^rtmps?:\/\/\S*: |av_interleaved_write_frame\(\)|Error writing trailer/;

/** How far the RTMP exchange got before the child ended. */
export type RtmpStage = "starting" | "connecting" | "app_accepted" | "publish_sent";

/** A line with `-loglevel level+…`: `[context @ 0x…] [level] message`, the context optional. */
const levelled = /^((?:\[[^\]]+ @ 0x[0-9a-f]+\] )?)\[(\w+)\] (.*)$/;
const kept = new Set(["error", "fatal", "panic"]);

/** The line as `-loglevel error` would have printed it, or null for the chatter below that level. */
export const errorLine = (line: string): string | null => {
  const match = levelled.exec(line);
  if (match === null) return null;
  return kept.has(match[2] ?? "") ? `${match[1]}${match[3]}` : null;
};

/** The stage a debug line of ffmpeg's RTMP client reports, if any. */
const stageOf = (line: string): RtmpStage | null => {
  if (!line.startsWith("[rtmp @ ")) return null;
  if (line.includes("Sending publish command")) return "publish_sent";
  if (/Releasing stream|FCPublish stream|Creating stream/.test(line)) return "app_accepted";
  if (line.includes("Proto = ")) return "connecting";
  return null;
};

const order: ReadonlyArray<RtmpStage> = ["starting", "connecting", "app_accepted", "publish_sent"];

/** The application name of the URL: the path's first segment (never the key). */
const applicationOf = (target: RtmpTarget): string => {
  const path = /^rtmps?:\/\/[^/]+\/([^/?]*)/.exec(target.masked)?.[1];
  return path === undefined || path === "" ? "(none)" : path;
};

const has = (exit: ChildExit, pattern: RegExp) => exit.tail.some((line) => pattern.test(line));

export const rtmpExitError = (
  target: RtmpTarget,
  exit: ChildExit,
  connectedForMs: number | null,
  stage: RtmpStage = "starting",
): OutputError => {
  const server = `${target.host}:${target.port}`;
  if (exit.spawnFailed) {
    return new OutputError({
      reason: "not_installed",
      message: "ffmpeg could not be started: install ffmpeg and make sure it is on PATH",
    });
  }
  const serverError = exit.tail
    .map((line) => /Server error: (.*)$/.exec(line)?.[1])
    .find((why) => why !== undefined);
  if (serverError !== undefined) {
    return new OutputError({
      reason: "auth_rejected",
      message: `the RTMP server rejected the stream: ${serverError}`,
    });
  }
  if (has(exit, /Failed to resolve hostname/)) {
    return new OutputError({ reason: "resolve_failed", message: `cannot resolve ${target.host}` });
  }
  if (has(exit, /Connection refused/)) {
    return new OutputError({
      reason: "connect_refused",
      message: `connection refused by ${server} (is the RTMP server running?)`,
    });
  }
  if (has(exit, /Connection timed out|Operation timed out/)) {
    return new OutputError({
      reason: "connect_timeout",
      message: `no answer from ${server} (check the address and the firewall)`,
    });
  }
  if (has(exit, /TLS|SSL|certificate/i)) {
    return new OutputError({ reason: "connect_refused", message: `the TLS handshake with ${server} failed` });
  }
  const closedEarly = has(exit, /Input\/output error|Broken pipe|Connection reset/);
  if (connectedForMs === null && closedEarly && stage === "publish_sent") {
    return new OutputError({
      reason: "auth_rejected",
      message: `the server refused the stream key: the RTMP server at ${server} accepted the application "${applicationOf(target)}" and closed the connection when publishing began (a wrong key, or the key is already in use)`,
    });
  }
  if (connectedForMs === null && closedEarly && stage === "connecting") {
    return new OutputError({
      reason: "auth_rejected",
      message: `the RTMP server at ${server} refused the application "${applicationOf(target)}": check the application name in the URL`,
    });
  }
  if (connectedForMs === null && has(exit, /Input\/output error/)) {
    return new OutputError({
      reason: "auth_rejected",
      message: `the RTMP server at ${server} refused the connection: check the application name in the URL`,
    });
  }
  if (has(exit, /Broken pipe|Connection reset/)) {
    return connectedForMs !== null && connectedForMs >= earlyCloseMs
      ? new OutputError({
          reason: "disconnected",
          message: `the RTMP server at ${server} closed the connection`,
        })
      : new OutputError({
          reason: "auth_rejected",
          message: `the RTMP server at ${server} closed the connection as publishing began: it rejected the stream key, or the key is already in use`,
        });
  }
  if (
    has(
      exit,
      /Invalid data found|Could not find codec parameters|does not contain any stream|Could not write header|sample rate not set/,
    )
  ) {
    return new OutputError({
      reason: "child_exited",
      message: "ffmpeg could not read the channel's TS (no H.264/AAC found in time)",
    });
  }
  return new OutputError({ reason: "child_exited", message: describeExit("ffmpeg", exit) });
};

export const rtmpAttempt = (
  target: RtmpTarget,
  context: WriterContext,
): Effect.Effect<never, OutputError, Scope.Scope> =>
  Effect.gen(function* () {
    // Whatever queued while nobody was connected is stale now.
    context.queue.clear();
    const gate = makeStartGate();
    const published = yield* Deferred.make<void>();
    const outputFailed = yield* Deferred.make<void>();
    let stage: RtmpStage = "starting";
    const child = yield* spawnChild({
      command: "ffmpeg",
      args: ffmpegRtmpArgs(target),
      secrets: target.secrets,
      stdin: true,
      tailLine: errorLine,
      onStderrLine: (line) => {
        const next = stageOf(line);
        if (next !== null && order.indexOf(next) > order.indexOf(stage)) stage = next;
        const error = errorLine(line);
        if (error !== null && outputFailure.test(error)) Deferred.unsafeDone(outputFailed, Effect.void);
      },
      // ffmpeg writes the FLV header only once the server accepted the publish.
      onStdoutLine: (line) => {
        const written = /^total_size=(\d+)$/.exec(line)?.[1];
        if (written !== undefined && Number(written) > 0) Deferred.unsafeDone(published, Effect.void);
      },
    });
    const stdin = child.stdin;
    if (stdin === null)
      return yield* new OutputError({ reason: "child_exited", message: "ffmpeg has no stdin" });

    let connectedAt: number | null = null;
    // Handed to ffmpeg before the publish succeeded: sent only if it does.
    let pendingBytes = 0;
    const ended = child.exit.pipe(
      Effect.flatMap((exit) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.fail(rtmpExitError(target, exit, connectedAt === null ? null : now - connectedAt, stage)),
        ),
      ),
    );

    const drained = Effect.async<void>((resume) => {
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
          for (const part of gate.push(segment)) {
            open = stdin.write(part);
            bytes += part.length;
          }
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
