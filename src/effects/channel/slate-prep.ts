/**
 * The slate's preparation (slate.ts): the channel's format read from its own TS by a probe that joins the
 * fan-out for a moment (core/slate/probe.ts), kept for the next start, and a clip made for that format and the
 * slate's picture, once, by ffmpeg in the background (slate-maker.ts). What it has (the format, the clip, what
 * is being made, why none can be) is one record the slate reads.
 */
import { Buffer } from "node:buffer";
import * as Effect from "effect/Effect";
import type * as Fiber from "effect/Fiber";
import { readClip, type SlateClip } from "../../core/slate/clip.ts";
import { type FormatProbe, makeFormatProbe } from "../../core/slate/probe.ts";
import type { makeSlateStates } from "../../core/slate/states.ts";
import { formatKey, type SlateFormat } from "../../core/slate/types.ts";
import type { ChannelId } from "../../domain/base/ids.ts";
import type { SlateSpec } from "./channel-types.ts";
import { keepSlateFormat, makeSlateClip, pictureKey } from "./slate-maker.ts";
import type { FanOutTaps } from "./taps.ts";

/** How long a probe may read the stream before it gives up for this time. */
const PROBE_MS = 10_000;

export interface Prepared {
  readonly key: string;
  readonly format: SlateFormat;
  readonly clip: SlateClip;
}

/** What the slate has ready, and what it lacks. */
export interface Readiness {
  /** The clip for the format and picture, once made. */
  prepared: Prepared | null;
  /** The key of the clip being made now. */
  preparing: string | null;
  /** Why no slate can go on, in words. */
  problem: string | null;
  /** The channel's format as last read (or kept from an earlier run). */
  format: SlateFormat | null;
}

export const makeSlatePrep = (slate: {
  readonly channel: ChannelId;
  readonly dir: string;
  readonly taps: FanOutTaps;
  readonly states: ReturnType<typeof makeSlateStates<SlateSpec>>;
  readonly ready: Readiness;
  /** Forks into the channel's scope; runs at once. */
  readonly run: <A>(effect: Effect.Effect<A>) => Fiber.RuntimeFiber<A>;
  readonly runSync: <A>(effect: Effect.Effect<A>) => A;
  readonly log: (message: string) => void;
  /** A clip was just made. */
  readonly clipMade: () => void;
}) => {
  const { states, ready, run, log } = slate;
  let probe: { readonly reader: FormatProbe; readonly offer: (chunk: Uint8Array) => void } | null = null;

  const endProbe = () => {
    if (probe === null) return;
    slate.taps.detach(probe.offer);
    probe = null;
  };
  const startProbe = () => {
    if (probe !== null || !states.mayProbe()) return;
    states.probing();
    const reader = makeFormatProbe();
    const offer = (chunk: Uint8Array) => {
      reader.push(chunk);
      const result = reader.result();
      if (result === null) return;
      endProbe();
      if ("refused" in result) {
        ready.format = null;
        ready.problem = `no slate can match this channel's stream: ${result.refused}`;
        return;
      }
      found(result.format);
    };
    probe = { reader, offer };
    slate.taps.attach(offer);
    run(
      Effect.sleep(PROBE_MS).pipe(
        Effect.andThen(
          Effect.sync(() => {
            if (probe?.reader === reader) endProbe();
          }),
        ),
      ),
    );
  };

  /** A format was read: a clip for it (and the picture) is prepared unless the one kept already is. */
  const found = (next: SlateFormat) => {
    const { format } = ready;
    if (
      format === null ||
      formatKey(format) !== formatKey(next) ||
      Buffer.compare(format.pmt, next.pmt) !== 0 ||
      format.ptsLead !== next.ptsLead
    )
      slate.runSync(
        Effect.catchAll(keepSlateFormat(slate.dir, slate.channel, next), (error) =>
          Effect.sync(() => log(error.message)),
        ),
      );
    ready.format = next;
    const spec = states.spec();
    if (spec === undefined) return;
    const key = `${formatKey(next)}|${pictureKey(spec.picture)}`;
    if (ready.prepared?.key === key || ready.preparing === key) {
      // Same format and picture; the PIDs and tables may still have moved.
      if (ready.prepared !== null && ready.prepared.key === key)
        ready.prepared = { ...ready.prepared, format: next };
      return;
    }
    ready.preparing = key;
    const picture =
      spec.picture.kind === "image"
        ? {
            kind: "image" as const,
            bytes: Buffer.from(spec.picture.data, "base64"),
            sha256: spec.picture.sha256,
          }
        : spec.picture;
    run(
      makeSlateClip({ dir: slate.dir, format: next, picture }).pipe(
        Effect.flatMap((made) => {
          const clip = readClip(made.bytes, next.audio.length);
          return "unusable" in clip
            ? Effect.fail({ message: `the prepared clip cannot be used: ${clip.unusable}` })
            : Effect.succeed(clip);
        }),
        Effect.match({
          onFailure: (error) => {
            if (ready.preparing !== key) return;
            ready.preparing = null;
            ready.problem = `the slate could not be prepared: ${error.message}`;
            log(ready.problem);
          },
          onSuccess: (clip) => {
            if (ready.preparing !== key) return;
            ready.preparing = null;
            ready.problem = null;
            ready.prepared = { key, format: next, clip };
            slate.clipMade();
          },
        }),
      ),
    );
  };

  return { startProbe, endProbe, found };
};
