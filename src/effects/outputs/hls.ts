/**
 * The HLS output: the queue's TS cut into segments by src/core/hls.ts, the media playlist rendered after each
 * one, and both kept in memory for the service to serve (`/hls/<channel>/<output>/index.m3u8`), written to a
 * directory (`dir=`) and/or PUT to an HTTP origin (`push=`).
 *
 * What the playlist lists outlives an attempt: a failed upload fails the attempt, the writer retries on the
 * reconnect schedule, and the next attempt first uploads what the origin has not yet got, then continues the
 * numbering with EXT-X-DISCONTINUITY. Stopping an event playlist closes the last segment and ends the playlist
 * (EXT-X-ENDLIST: it reads as VOD from then on).
 */
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as Cause from "effect/Cause";
import * as Effect from "effect/Effect";
import * as Exit from "effect/Exit";
import * as Redacted from "effect/Redacted";
import type * as Scope from "effect/Scope";
import { type HlsSegment, makeHlsSegmenter, nextNumbers } from "../../core/hls.ts";
import { renderPlaylist } from "../../core/hls-playlist.ts";
import { PACKET } from "../../core/ts/index.ts";
import type { PushAddressPolicy } from "../../domain/channel/addresses.ts";
import { OutputError } from "../../domain/channel/output-error.ts";
import type { HlsTarget } from "../../domain/url/recording.ts";
import type { WriterContext } from "./context.ts";
import { diskError } from "./file.ts";
import { makePusher, publicOnly } from "./hls-push.ts";
import { checkRealPlace, realPlaceProblem } from "./place.ts";

export const PLAYLIST_NAME = "index.m3u8";
export const segmentName = (sequence: number) => `segment-${sequence}.ts`;

/** What the service serves of one HLS output while it runs. */
export interface HlsServed {
  /** The media playlist, or null before the first segment. */
  readonly playlist: () => string | null;
  /** A segment the playlist lists (or just listed), by file name. */
  readonly segment: (name: string) => Uint8Array | null;
}

/** An HLS output's state across its attempts. */
export interface HlsState extends HlsServed {
  readonly attempt: (context: WriterContext) => Effect.Effect<never, OutputError, Scope.Scope>;
}

/** A dir that leads outside the recordings directory, found as a file is about to be written. */
class OutsideRecordings extends Error {}

/** Segments kept beyond a live playlist's window, for players still fetching them. */
const KEEP_BEHIND = 2;

interface HlsOptions {
  /** Where files may be written (the recordings directory); left out, the dir may be anywhere. */
  readonly recordingsRoot?: string | null;
  /** Which addresses a push may reach; left out, public ones only. */
  readonly pushAddresses?: PushAddressPolicy;
}

export const makeHlsState = (target: HlsTarget, options: HlsOptions = {}): HlsState => {
  // Listed in the playlist, oldest first; in live mode the last `window` of them.
  const listed: HlsSegment[] = [];
  // Left the playlist but kept a little longer (memory and dir), oldest first.
  const behind: HlsSegment[] = [];
  let ended = false;
  let playlistText: string | null = null;
  // The bytes of the newest segments, served from memory: the live window and the few behind it.
  const held = new Map<string, Uint8Array>();
  const hold = (name: string, bytes: Uint8Array) => {
    held.set(name, bytes);
    for (const old of held.keys()) {
      if (held.size <= target.window + KEEP_BEHIND) break;
      held.delete(old);
    }
  };
  // Uploads the origin has not confirmed yet, in order; the playlist last.
  const unpushed: Array<{ name: string; body: () => Uint8Array | string }> = [];

  const render = () =>
    renderPlaylist({
      segments: listed,
      targetSeconds: target.targetSeconds,
      mode: target.mode,
      ended,
      cueTags: target.cueTags,
      segmentName,
    });

  const realProblem = (dir: string): Promise<string | null> =>
    options.recordingsRoot === undefined || options.recordingsRoot === null
      ? Promise.resolve(null)
      : realPlaceProblem(dir, options.recordingsRoot);

  const writeAtomically = (name: string, body: Uint8Array | string) =>
    target.dir === null
      ? Effect.void
      : Effect.tryPromise({
          try: async () => {
            const dir = target.dir ?? "";
            // A link swapped in since the attempt began could lead the file anywhere: each write checks.
            const problem = await realProblem(dir);
            if (problem !== null) throw new OutsideRecordings(problem);
            const temporary = join(dir, `.${name}.tmp`);
            try {
              await writeFile(temporary, body);
              await rename(temporary, join(dir, name));
            } catch (cause) {
              // A half-written temporary file (a full disk) would stay behind, taking space, for good.
              await rm(temporary, { force: true }).catch(() => undefined);
              throw cause;
            }
          },
          catch: (cause) =>
            cause instanceof OutsideRecordings
              ? new OutputError({ reason: "invalid_url", message: cause.message })
              : diskError(target.dir ?? "", cause, name),
        });

  const origin = target.push === null ? null : Redacted.value(target.push);
  const pusher =
    origin === null
      ? null
      : makePusher(origin, target.pushShown ?? "the origin", options.pushAddresses ?? publicOnly);
  const put = (name: string, body: Uint8Array | string) =>
    pusher === null ? Effect.void : pusher.put(name, body);

  /** Uploads everything not yet confirmed, in order; stops at the first failure (kept for the next try). */
  const pushPending = Effect.suspend(() => {
    if (origin === null) return Effect.void;
    return Effect.gen(function* () {
      while (unpushed.length > 0) {
        const next = unpushed[0];
        if (next === undefined) break;
        yield* put(next.name, next.body());
        unpushed.shift();
      }
    });
  });

  const queuePush = (name: string, body: () => Uint8Array | string) => {
    if (origin === null) return;
    // Only the latest playlist matters: an older one waiting is replaced.
    if (name === PLAYLIST_NAME) {
      const waiting = unpushed.findIndex((item) => item.name === PLAYLIST_NAME);
      if (waiting >= 0) unpushed.splice(waiting, 1);
    }
    unpushed.push({ name, body });
  };

  const publishPlaylist = Effect.suspend(() => {
    const text = render();
    playlistText = text;
    queuePush(PLAYLIST_NAME, () => text);
    return writeAtomically(PLAYLIST_NAME, text);
  });

  const publish = (segment: HlsSegment, context: WriterContext) =>
    Effect.gen(function* () {
      const name = segmentName(segment.sequence);
      yield* writeAtomically(name, segment.bytes);
      queuePush(name, () => segment.bytes);
      hold(name, segment.bytes);
      // The playlist needs only the figures; the bytes live in `held` (and the dir, the origin).
      listed.push({ ...segment, bytes: new Uint8Array(0) });
      if (target.mode === "live" && listed.length > target.window) {
        behind.push(...listed.splice(0, listed.length - target.window));
        const gone = behind.splice(0, Math.max(0, behind.length - KEEP_BEHIND));
        if (target.dir !== null && gone.length > 0) {
          const dir = target.dir;
          // As for a write: a link swapped in since the last check could lead the deletion anywhere.
          yield* Effect.tryPromise({
            try: async () => {
              const problem = await realProblem(dir);
              if (problem !== null) throw new OutsideRecordings(problem);
              await Promise.all(gone.map((old) => rm(join(dir, segmentName(old.sequence)), { force: true })));
            },
            catch: (cause) =>
              cause instanceof OutsideRecordings
                ? new OutputError({ reason: "invalid_url", message: cause.message })
                : diskError(dir, cause, "old segments"),
          });
        }
      }
      yield* publishPlaylist;
      context.countSent(segment.bytes.length);
    });

  const attempt = (context: WriterContext): Effect.Effect<never, OutputError, Scope.Scope> =>
    Effect.gen(function* () {
      if (pusher !== null) yield* Effect.addFinalizer(() => Effect.sync(pusher.close));
      if (target.dir !== null) {
        const dir = target.dir;
        yield* checkRealPlace(dir, options.recordingsRoot);
        yield* Effect.tryPromise({
          try: () => mkdir(dir, { recursive: true }),
          catch: (cause) => diskError(dir, cause, "segments"),
        });
        yield* checkRealPlace(dir, options.recordingsRoot);
      }
      // What an earlier attempt could not upload goes first; the origin may still be down.
      yield* pushPending;
      yield* context.markConnected;
      ended = false;
      const numbers = nextNumbers([...behind, ...listed], { sequence: 0, cue: 0 });
      const segmenter = makeHlsSegmenter({
        targetSeconds: target.targetSeconds,
        firstSequence: numbers.sequence,
        firstCue: numbers.cue,
        discontinuity: listed.length > 0,
        discontinuitySequence: numbers.discontinuitySequence,
      });
      if (target.mode === "event") {
        // A stopped event stream is complete: its last segment closed, the playlist ended (VOD from then on).
        yield* Effect.addFinalizer((exit) =>
          Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
            ? Effect.void
            : Effect.gen(function* () {
                const last = segmenter.flush(Date.now());
                if (last !== null) {
                  const name = segmentName(last.sequence);
                  yield* writeAtomically(name, last.bytes);
                  queuePush(name, () => last.bytes);
                  hold(name, last.bytes);
                  listed.push({ ...last, bytes: new Uint8Array(0) });
                }
                ended = true;
                yield* publishPlaylist;
                yield* pushPending.pipe(Effect.timeout("5 seconds"));
              }).pipe(Effect.ignore),
        );
      }
      while (true) {
        const chunks = yield* context.queue.takeUpTo(1024 * PACKET);
        // Whole batches into memory and the dir: a stop between taking packets and listing the segments they
        // closed would lose them (a file written but never listed, a gap in the playlist).
        yield* Effect.uninterruptible(
          Effect.forEach(
            chunks,
            (chunk) =>
              Effect.forEach(segmenter.push(chunk, Date.now()), (segment) => publish(segment, context), {
                discard: true,
              }),
            { discard: true },
          ),
        );
        // Uploads may be stopped halfway: what the origin has not confirmed stays queued for the next attempt.
        yield* pushPending;
      }
    });

  return {
    attempt,
    playlist: () => playlistText,
    segment: (name) => held.get(name) ?? null,
  };
};
