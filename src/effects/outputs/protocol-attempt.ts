/**
 * Which writer an output's protocol runs: one connection attempt of it (udp.ts, srt.ts, rist.ts, rtmp.ts,
 * rtsp.ts, file.ts, hls.ts), chosen from the output's parsed URL. writer.ts runs it again and again under its
 * reconnect schedule.
 */
import * as Effect from "effect/Effect";
import type { FlvRemux } from "../../core/flv/remux.ts";
import type { OutputTarget } from "../../domain/url/url.ts";
import type { WriterContext } from "./context.ts";
import { fileAttempt } from "./file.ts";
import type { HlsState } from "./hls.ts";
import { ristAttempt } from "./rist.ts";
import { type RtmpCounters, rtmpAttempt } from "./rtmp.ts";
import { rtspAttempt } from "./rtsp.ts";
import { srtAttempt } from "./srt.ts";
import { datagramAttempt } from "./udp.ts";

/** What of the output's options an attempt reads: where its files and srpfiles may be (OutputOptions). */
export interface AttemptPlaces {
  readonly recordingsRoot?: string | null;
  readonly ristSrpDir?: string | null;
}

/** An RTMP output's remux, counters, id and cue policy, kept across its attempts. */
export interface RtmpWriting {
  readonly remux: FlvRemux;
  readonly counters: RtmpCounters;
  readonly id: string;
  readonly cueKept: ((section: Uint8Array) => boolean) | undefined;
}

export const attemptFor = (
  target: OutputTarget,
  context: WriterContext,
  hls: HlsState | null,
  options: AttemptPlaces,
  rtmp: RtmpWriting | null,
) => {
  switch (target.protocol) {
    case "hls":
      return hls === null ? Effect.dieMessage("an hls output without its state") : hls.attempt(context);
    case "udp":
    case "rtp":
      return datagramAttempt(target, context);
    case "srt":
      return srtAttempt(target, context);
    case "rist":
      return ristAttempt(target, context, options.ristSrpDir ?? null);
    case "rtmp":
    case "rtmps":
      return rtmp === null
        ? Effect.dieMessage("an rtmp output without its remux")
        : rtmpAttempt(target, rtmp.remux, rtmp.counters, context, rtmp.id, rtmp.cueKept);
    case "rtsp":
    case "rtsps":
      return rtspAttempt(target, context);
    case "file":
      return fileAttempt(target, context, options.recordingsRoot);
  }
};
