/**
 * Where the schedule's runner keeps each occurrence's progress (the phase, the actions done), so that a
 * restart or a takeover neither repeats nor skips an action: an interface and a Tag, with the one-box layer
 * over the document store (`schedule.json`, beside `channels.json`). A fleet keeps it in PostgreSQL
 * (postgres/schedule-progress.ts), written only by the channel's lease holder. Per channel it also keeps since
 * when its schedule has been run (`since`): an occurrence that ended after that with nothing done was missed.
 */
import * as Context from "effect/Context";
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import * as Schema from "effect/Schema";
import { SCHEDULE_PHASES } from "../../domain/schedule/schedule-phases.ts";
import { DocumentStore, loadDocument, type StoreError, saveDocument } from "./store.ts";

const ACTIONS = [
  "start_medialive",
  "enable_outputs",
  "slate_on",
  "go_live",
  "slate_postroll",
  "disable_outputs",
  "stop_medialive",
] as const;

/** One occurrence's progress (domain/schedule/schedule-window.ts OccurrenceProgress), as stored. */
export const StoredProgress = Schema.Struct({
  key: Schema.String,
  window: Schema.String,
  t0: Schema.Number,
  phase: Schema.Literal(...SCHEDULE_PHASES),
  done: Schema.Array(Schema.Literal(...ACTIONS)),
  extended_s: Schema.Number,
  ended_at: Schema.NullOr(Schema.Number),
  live_at: Schema.NullOr(Schema.Number),
  skipped: Schema.Boolean,
  /** Nothing more to do: it ended, or it was missed (said once). */
  closed: Schema.optionalWith(Schema.Boolean, { default: () => false }),
});
export type StoredProgress = typeof StoredProgress.Type;

/** A channel's stored progress: since when its schedule runs, and each occurrence's progress by key. */
export interface ChannelProgress {
  readonly since: number | null;
  readonly occurrences: ReadonlyMap<string, StoredProgress>;
}

interface ScheduleStoreShape {
  readonly load: (channel: string) => Effect.Effect<ChannelProgress, StoreError>;
  /** Writes one occurrence's progress; fails in a fleet when this node no longer holds the channel's lease. */
  readonly save: (channel: string, progress: StoredProgress) => Effect.Effect<void, StoreError>;
  readonly saveSince: (channel: string, since: number) => Effect.Effect<void, StoreError>;
  /** Forgets the occurrences that began before `t0` (kept a week, for the pages and a late look). */
  readonly prune: (channel: string, beforeT0: number) => Effect.Effect<void, StoreError>;
}

export class ScheduleStore extends Context.Tag("distributary/ScheduleStore")<
  ScheduleStore,
  ScheduleStoreShape
>() {}

const ProgressDocument = Schema.Struct({
  channels: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({
      since: Schema.NullOr(Schema.Number),
      occurrences: Schema.Record({ key: Schema.String, value: StoredProgress }),
    }),
  }),
});
type ProgressDocument = typeof ProgressDocument.Type;

const DOCUMENT = "schedule.json";

/** One box: the whole document read once, then kept in memory and written whole at each change, one at a time. */
export const layerScheduleDocument: Layer.Layer<ScheduleStore, never, DocumentStore> = Layer.effect(
  ScheduleStore,
  Effect.gen(function* () {
    const store = yield* DocumentStore;
    const lock = yield* Effect.makeSemaphore(1);
    let kept: ProgressDocument | null = null;
    const document = Effect.suspend(() =>
      kept !== null
        ? Effect.succeed(kept)
        : Effect.tap(
            Effect.provideService(
              loadDocument(DOCUMENT, ProgressDocument, { channels: {} }),
              DocumentStore,
              store,
            ),
            (loaded) => {
              kept = loaded;
            },
          ),
    );
    const change = (channel: string, edit: (entry: ProgressDocument["channels"][string]) => typeof entry) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const current = yield* document;
          const entry = current.channels[channel] ?? { since: null, occurrences: {} };
          const next = { channels: { ...current.channels, [channel]: edit(entry) } };
          yield* Effect.provideService(saveDocument(DOCUMENT, ProgressDocument, next), DocumentStore, store);
          kept = next;
        }),
      );
    return ScheduleStore.of({
      load: (channel) =>
        Effect.map(document, (current) => {
          const entry = current.channels[channel];
          return {
            since: entry?.since ?? null,
            occurrences: new Map(Object.entries(entry?.occurrences ?? {})),
          };
        }),
      save: (channel, progress) =>
        change(channel, (entry) => ({
          ...entry,
          occurrences: { ...entry.occurrences, [progress.key]: progress },
        })),
      saveSince: (channel, since) => change(channel, (entry) => ({ ...entry, since })),
      prune: (channel, beforeT0) =>
        change(channel, (entry) => ({
          ...entry,
          occurrences: Object.fromEntries(
            Object.entries(entry.occurrences).filter(([, progress]) => progress.t0 >= beforeT0),
          ),
        })),
    });
  }),
);
