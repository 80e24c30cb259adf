/**
 * Stills of each running channel's input for the pages: every 10 s, while at least one overview or channel
 * page is open and thumbnails are on (a setting), two seconds of the TS the channel forwards are handed to a
 * short-lived `ffmpeg` that decodes one keyframe to a small JPEG. No extra network input: the bytes are the
 * channel's own. One ffmpeg at a time, each killed after 5 s and with the service (setpriv --pdeathsig).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { Duration, Effect, Schedule } from "effect";
import type { ChannelId } from "../../domain/ids.ts";
import { Channels } from "../channel/channels.ts";
import { childEnvironment } from "../runtime/child-process.ts";

export const THUMBNAIL_EVERY = Duration.seconds(10);
const CAPTURE_MS = 2000;
const CAPTURE_BYTES = 4 * 1024 * 1024;

const setpriv = "/usr/bin/setpriv";

/** One JPEG from the first keyframe in `ts`, 320 pixels wide; null when there is no decodable picture. */
export const stillOf = async (ts: Uint8Array): Promise<Buffer | null> => {
  if (ts.length === 0) return null;
  const args = [
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
  const [command, full] = existsSync(setpriv)
    ? [setpriv, ["--pdeathsig", "KILL", "--", "ffmpeg", ...args]]
    : ["ffmpeg", args];
  return new Promise<Buffer | null>((resolve) => {
    const child = spawn(command, full, { stdio: ["pipe", "pipe", "ignore"], env: childEnvironment() });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.stdin.on("error", () => {});
    child.stdin.end(ts);
    child.once("error", () => {
      if (child.pid === undefined) {
        clearTimeout(timer);
        resolve(null);
      }
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      const jpeg = Buffer.concat(chunks);
      resolve(code === 0 && jpeg.length > 0 ? jpeg : null);
    });
  });
};

export class Thumbnails extends Effect.Service<Thumbnails>()("distributary/Thumbnails", {
  scoped: Effect.gen(function* () {
    const channels = yield* Channels;
    let enabled = process.env.DISTRIBUTARY_THUMBNAILS !== "off";
    let viewers = 0;
    let version = 0;
    const stills = new Map<ChannelId, Buffer>();

    const refresh = Effect.gen(function* () {
      if (!enabled || viewers === 0) return;
      const running = channels.running();
      for (const id of running) {
        const ts = yield* channels.capture(id, CAPTURE_MS, CAPTURE_BYTES);
        const jpeg = yield* Effect.promise(() => stillOf(ts));
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
