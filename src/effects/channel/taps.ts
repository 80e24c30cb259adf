/**
 * A channel's taps beside its outputs: the pages' preview rendition and the capture the thumbnailer reads.
 * Each joins the fan-out's list of receivers while it runs and leaves it after, as an output does, so the
 * fan-out spends nothing on them per datagram while they are off and one call each while they are on.
 */
import * as Effect from "effect/Effect";
import * as Schedule from "effect/Schedule";
import type * as Scope from "effect/Scope";
import type { HlsServed } from "../outputs/hls.ts";
import { makeOutput, type Output } from "../outputs/writer.ts";

/** Where a tap joins the fan-out: it gets every chunk the outputs get from `attach` until `detach`. */
export interface FanOutTaps {
  readonly attach: (offer: (chunk: Uint8Array) => void) => void;
  readonly detach: (offer: (chunk: Uint8Array) => void) => void;
}

interface Taps {
  /** The preview's playlist and segments: started by the first call, kept while calls keep coming. */
  readonly preview: Effect.Effect<HlsServed | null>;
  readonly previewActive: () => boolean;
  /** The TS the outputs got over the next `ms` (at most `maxBytes`): the thumbnailer's only input. */
  readonly capture: (ms: number, maxBytes: number) => Effect.Effect<Uint8Array>;
}

/** The pages' preview: one-second segments, a short window; ended `idleMs` after the last request. */
const PREVIEW_URL = "hls://?target=1&window=4";

/** The taps of the channel whose scope this runs in: a running preview ends with it. */
export const makeTaps = (fanOut: FanOutTaps, idleMs: number): Effect.Effect<Taps, never, Scope.Scope> =>
  Effect.gen(function* () {
    const channelScope = yield* Effect.scope;
    let preview: { readonly output: Output; lastAsked: number } | null = null;

    const startPreview = Effect.gen(function* () {
      const output = yield* Effect.orDie(makeOutput(PREVIEW_URL, { queueBytes: 2 * 1024 * 1024 }));
      const running = { output, lastAsked: Date.now() };
      preview = running;
      fanOut.attach(output.offer);
      const idle = Effect.repeat(Effect.void, {
        schedule: Schedule.spaced(Math.min(1000, idleMs / 4)),
        until: () => Date.now() - running.lastAsked > idleMs,
      });
      yield* Effect.raceFirst(Effect.ignore(output.run), idle).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            fanOut.detach(output.offer);
            if (preview === running) preview = null;
          }),
        ),
        Effect.forkIn(channelScope),
      );
      return output.hls;
    });

    const capture = (ms: number, maxBytes: number) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          const taken = { chunks: [] as Uint8Array[], bytes: 0 };
          const offer = (chunk: Uint8Array) => {
            if (taken.bytes >= maxBytes) return;
            taken.chunks.push(chunk);
            taken.bytes += chunk.length;
          };
          fanOut.attach(offer);
          return { taken, offer };
        }),
        ({ taken }) => Effect.as(Effect.sleep(ms), taken),
        ({ offer }) => Effect.sync(() => fanOut.detach(offer)),
      ).pipe(Effect.map((taken) => Buffer.concat(taken.chunks)));

    return {
      preview: Effect.suspend(() => {
        if (preview === null) return startPreview;
        preview.lastAsked = Date.now();
        return Effect.succeed(preview.output.hls);
      }),
      previewActive: () => preview !== null,
      capture,
    } satisfies Taps;
  });
