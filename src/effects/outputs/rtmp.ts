/**
 * RTMP/RTMPS output: RTMP cannot carry TS, so this output remuxes. An `ffmpeg` child reads TS on stdin and
 * publishes FLV, copying the codecs. It takes the first video and first audio stream (FLV carries one of
 * each; SCTE-35 and other data PIDs cannot go).
 *
 * Each attempt starts from live data: what queued while nobody was connected is dropped (as the SRT writer
 * does), and the TS handed to ffmpeg begins with the PAT, the PMT and a video keyframe (core/ts-start.ts), so
 * that the recording at the server holds every frame from there on, audio and video starting together.
 * ffmpeg keeps what it read while probing (no `-fflags +nobuffer`, which threw that second away). The child,
 * its feeding and the words for the failures RTSP shares live in ffmpeg-push.ts.
 *
 * Bytes count as sent once the server accepted the publish: an output that never published sent nothing.
 * ffmpeg logs at debug level so that the RTMP exchange tells a refused application from a refused stream
 * key; only its error lines are kept for messages.
 *
 * The URL holds the stream key, so argv is never logged and the stderr tail is masked.
 */
import { type Effect, Redacted, type Scope } from "effect";
import { OutputError } from "../../domain/errors.ts";
import type { RtmpTarget } from "../../domain/url.ts";
import type { ChildExit } from "../runtime/child-process.ts";
import type { WriterContext } from "./context.ts";
import {
  commonExitError,
  ffmpegPushAttempt,
  ffmpegTsInputArgs,
  hasLine as has,
  unreadableOrExited,
} from "./ffmpeg-push.ts";

export { errorLine } from "./ffmpeg-push.ts";

/** A server that drops the connection this soon after publishing began most likely refused the key. */
const earlyCloseMs = 5_000;

export const ffmpegRtmpArgs = (target: RtmpTarget): ReadonlyArray<string> => [
  ...ffmpegTsInputArgs,
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

export const rtmpExitError = (
  target: RtmpTarget,
  exit: ChildExit,
  connectedForMs: number | null,
  stage: RtmpStage = "starting",
): OutputError => {
  const server = `${target.host}:${target.port}`;
  if (exit.spawnFailed) return commonExitError(exit, target.host, server, "RTMP") as OutputError;
  const serverError = exit.tail
    .map((line) => /Server error: (.*)$/.exec(line)?.[1])
    .find((why) => why !== undefined);
  if (serverError !== undefined) {
    return new OutputError({
      reason: "auth_rejected",
      message: `the RTMP server rejected the stream: ${serverError}`,
    });
  }
  const common = commonExitError(exit, target.host, server, "RTMP");
  if (common !== null) return common;
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
  return unreadableOrExited(exit);
};

export const rtmpAttempt = (
  target: RtmpTarget,
  context: WriterContext,
): Effect.Effect<never, OutputError, Scope.Scope> =>
  ffmpegPushAttempt(
    {
      args: ffmpegRtmpArgs(target),
      secrets: target.secrets,
      stages: order,
      stageOf,
      acceptedOnStderr: () => false,
      // ffmpeg writes the FLV header only once the server accepted the publish.
      acceptedOnStdout: (line) => Number(/^total_size=(\d+)$/.exec(line)?.[1] ?? 0) > 0,
      outputFailure,
      exitError: (exit, connectedForMs, stage) => rtmpExitError(target, exit, connectedForMs, stage),
    },
    context,
  );
