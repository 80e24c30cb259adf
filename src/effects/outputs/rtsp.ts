/**
 * RTSP/RTSPS push: an `ffmpeg -c copy` child announces the stream to the server and records (ANNOUNCE, SETUP,
 * RECORD), interleaved over the RTSP TCP connection (`-rtsp_transport tcp`: one connection, no UDP ports to
 * open). The child's feeding is ffmpeg-push.ts: the start gate, what is dropped before an attempt, and the
 * words for a refused, unreachable or unreadable destination.
 *
 * AAC from a TS has no global header for the SDP; it goes as LATM (`-rtpflags latm`, RFC 3016), which
 * carries its configuration in band, as RTSP servers and players read it. Bytes count as sent once the
 * server accepted the RECORD (ffmpeg then prints its output header).
 *
 * A user and password in the URL are secrets: argv is never logged, the stderr tail is masked.
 */
import type * as Effect from "effect/Effect";
import * as Redacted from "effect/Redacted";
import type * as Scope from "effect/Scope";
import { OutputError } from "../../domain/channel/output-error.ts";
import type { RtspTarget } from "../../domain/url/rtmp-rtsp.ts";
import { authority } from "../../domain/url/shared.ts";
import type { ChildExit } from "../runtime/process/child-process.ts";
import type { WriterContext } from "./context.ts";
import {
  commonExitError,
  ffmpegPushAttempt,
  ffmpegTsInputArgs,
  hasLine,
  unreadableOrExited,
} from "./ffmpeg-push.ts";

/** A server that drops the connection this soon after RECORD most likely refused the stream. */
const earlyCloseMs = 5_000;

const ffmpegRtspArgs = (target: RtspTarget): ReadonlyArray<string> => [
  ...ffmpegTsInputArgs,
  "-f",
  "rtsp",
  "-rtsp_transport",
  "tcp",
  "-rtpflags",
  "latm",
  Redacted.value(target.url),
];

type RtspStage = "starting" | "announced";

const outputFailure =
  /^rtsps?:\/\/\S*: |av_interleaved_write_frame\(\)|Error writing trailer|method \w+ failed/;

const rtspExitError = (target: RtspTarget, exit: ChildExit, connectedForMs: number | null): OutputError => {
  const server = authority(target.host, target.port);
  // `method ANNOUNCE failed: 401 Unauthorized`: the server's own answer.
  const refusal = exit.tail
    .map((line) => /method (\w+) failed: (.*)$/.exec(line))
    .find((match) => match !== null && match !== undefined);
  if (refusal?.[2] !== undefined) {
    const status = refusal[2].trim();
    const credentials = /^40[13]\b/.test(status)
      ? ": check the user name and password in the URL"
      : /^404\b/.test(status)
        ? ": check the path in the URL"
        : "";
    return new OutputError({
      reason: "auth_rejected",
      message: `the RTSP server at ${server} refused ${refusal[1]}: ${status}${credentials}`,
    });
  }
  const common = commonExitError(exit, target.host, server, "RTSP");
  if (common !== null) return common;
  if (hasLine(exit, /Broken pipe|Connection reset|End of file|Input\/output error/)) {
    return connectedForMs !== null && connectedForMs >= earlyCloseMs
      ? new OutputError({
          reason: "disconnected",
          message: `the RTSP server at ${server} closed the connection`,
        })
      : new OutputError({
          reason: "auth_rejected",
          message: `the RTSP server at ${server} closed the connection as recording began: it refused the stream, or the path is already in use`,
        });
  }
  return unreadableOrExited(exit);
};

export const rtspAttempt = (
  target: RtspTarget,
  context: WriterContext,
): Effect.Effect<never, OutputError, Scope.Scope> =>
  ffmpegPushAttempt<RtspStage>(
    {
      args: ffmpegRtspArgs(target),
      secrets: target.secrets,
      stages: ["starting", "announced"],
      stageOf: (line) => (line.includes("SDP:") ? "announced" : null),
      // Printed once the output's header is written: ANNOUNCE, SETUP and RECORD were accepted.
      acceptedOnStderr: (line) => /^\[info\] Output #0, rtsp, to /.test(line),
      acceptedOnStdout: () => false,
      outputFailure,
      exitError: (exit, connectedForMs) => rtspExitError(target, exit, connectedForMs),
    },
    context,
  );
