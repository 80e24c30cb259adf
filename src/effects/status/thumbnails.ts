/**
 * Stills of each running channel's input for the pages: every 10 s, while at least one overview or channel
 * page is open and thumbnails are on (a setting), two seconds of the TS the channel forwards are handed to a
 * short-lived `ffmpeg` that decodes one keyframe to a small JPEG. No extra network input: the bytes are the
 * channel's own. One ffmpeg at a time (runtime/process/child-process.ts), killed after 5 s and with the service.
 */
import * as Duration from "effect/Duration";
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import * as Schedule from "effect/Schedule";
import type { ChannelId } from "../../domain/base/ids.ts";
import { Channels } from "../channel/channels.ts";
import { thumbnailsOn } from "../config/settings.ts";
import { spawnChild } from "../runtime/process/child-process.ts";

export const THUMBNAIL_EVERY = Duration.seconds(10);
const CAPTURE_MS = 2000;
const CAPTURE_BYTES = 4 * 1024 * 1024;
const STILL_WITHIN = Duration.seconds(5);

const ffmpegArgs = [
  "-hide_banner",
  "-loglevel",
  "error",
  "-f",
  "mpegts",
  "-i",
  "pipe:0",
  "-map",
  "0:v:0",
  "-frames:v",
  "1",
  "-vf",
  "scale=320:-2",
  "-q:v",
  "6",
  "-f",
  "image2",
  "-c:v",
  "mjpeg",
  "pipe:1",
];

/**
 * One JPEG from the first keyframe in `ts`, 320 pixels wide; null when there is no decodable picture or none
 * came within 5 s. The ffmpeg is the scope's: killed and reaped when it is late or the service stops.
 */
export const stillOf = (ts: Uint8Array): Effect.Effect<Buffer | null> =>
  ts.length === 0
    ? Effect.succeed(null)
    : Effect.scoped(
        Effect.gen(function* () {
          const chunks: Buffer[] = [];
          const child = yield* spawnChild({
            command: "ffmpeg",
            args: ffmpegArgs,
            stdin: true,
            onStdoutData: (chunk) => chunks.push(chunk),
            killGraceMs: 500,
          });
          child.stdin?.end(ts);
          const exit = yield* Effect.timeoutOption(child.exit, STILL_WITHIN);
          const jpeg = Buffer.concat(chunks);
          return Option.isSome(exit) && exit.value.code === 0 && jpeg.length > 0 ? jpeg : null;
        }),
      );

export class Thumbnails extends Effect.Service<Thumbnails>()("distributary/Thumbnails", {
  scoped: Effect.gen(function* () {
    const channels = yield* Channels;
    let enabled = yield* Effect.orDie(thumbnailsOn);
    let viewers = 0;
    let version = 0;
    const stills = new Map<ChannelId, Buffer>();

    const refresh = Effect.gen(function* () {
      if (!enabled || viewers === 0) return;
      const running = channels.running();
      for (const id of running) {
        const ts = yield* channels.capture(id, CAPTURE_MS, CAPTURE_BYTES);
        const jpeg = yield* stillOf(ts);
        if (jpeg === null) stills.delete(id);
        else stills.set(id, jpeg);
      }
      for (const id of stills.keys()) if (!running.includes(id)) stills.delete(id);
      version += 1;
    });
    yield* Effect.forkScoped(Effect.repeat(refresh, Schedule.spaced(THUMBNAIL_EVERY)));

    return {
      enabled: () => enabled,
      setEnabled: (on: boolean) => {
        enabled = on;
        if (!on) stills.clear();
      },
      viewerJoined: () => {
        viewers += 1;
      },
      viewerLeft: () => {
        viewers = Math.max(0, viewers - 1);
      },
      /** What a tile needs to show a still: null when thumbnails are off. */
      tileState: () => (enabled ? { version, has: (id: string) => stills.has(id as ChannelId) } : null),
      still: (id: ChannelId): Buffer | undefined => stills.get(id),
    } as const;
  }),
}) {}
