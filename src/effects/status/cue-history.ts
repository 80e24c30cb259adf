/**
 * The recent SCTE-35 cues of every channel (the last 100 each), kept across restarts in `cues.json` next to
 * the configuration. Nothing here touches the packet path: once a second a fiber copies the cues each running
 * channel's watcher has seen since, and writes the document (atomically, through the store) only when
 * something was added. A reader asking for a channel's cues gets the ones seen up to that moment. A
 * missing or unreadable document starts an empty history with a warning: cues are worth keeping, not worth
 * failing a start for.
 *
 * In a fleet (a Database is present) the history lives in the `cues` table instead (cues-table.ts): the
 * node that holds a channel adds its cues, and whichever node starts reads the channels' last cues back.
 *
 * A cue an RTMP output sent after it was copied comes again with the same id and the output named: it takes
 * the place of the copy kept (and of its row).
 */
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import { Channels } from "../channel/channels.ts";
import type { CueRecord } from "../channel/scte35-watcher.ts";
import { ConfigState } from "../config/config-state.ts";
import { Placement } from "../config/placement.ts";
import { Database } from "../config/postgres/database.ts";
import { DocumentStore } from "../config/store.ts";
import { quietly } from "../runtime/quiet-timer.ts";
import { type CueTable, cueTable } from "./cues-table.ts";

/** Cues kept per channel. */
const CUE_HISTORY_LIMIT = 100;
const CUE_DOCUMENT = "cues.json";

interface CueDocument {
  readonly version: 1;
  readonly channels: Readonly<Record<string, ReadonlyArray<CueRecord>>>;
}

const parse = (text: string): Map<string, CueRecord[]> | null => {
  try {
    const document = JSON.parse(text) as Partial<CueDocument>;
    if (document.version !== 1 || typeof document.channels !== "object" || document.channels === null)
      return null;
    const history = new Map<string, CueRecord[]>();
    for (const [id, cues] of Object.entries(document.channels)) {
      if (!Array.isArray(cues)) return null;
      history.set(
        id,
        cues
          .filter(
            (cue): cue is CueRecord => typeof cue === "object" && cue !== null && typeof cue.at === "number",
          )
          .slice(-CUE_HISTORY_LIMIT),
      );
    }
    return history;
  } catch {
    return null;
  }
};

export class CueHistory extends Effect.Service<CueHistory>()("distributary/CueHistory", {
  scoped: Effect.gen(function* () {
    const channels = yield* Channels;
    const configs = yield* ConfigState;
    const store = yield* DocumentStore;
    const placement = yield* Placement;
    const database = yield* Effect.serviceOption(Database);
    const table: CueTable | undefined = Option.isSome(database)
      ? cueTable(database.value, CUE_HISTORY_LIMIT, placement.node)
      : undefined;

    const fromStore: Effect.Effect<
      Option.Option<Map<string, CueRecord[]> | null>,
      { readonly message: string }
    > = table === undefined ? Effect.map(store.read(CUE_DOCUMENT), Option.map(parse)) : table.load;
    const loaded = yield* fromStore.pipe(
      Effect.catchAll((error) => Effect.as(Effect.logWarning(error.message), Option.none())),
      Effect.withSpan("CueHistory.load"),
    );
    if (Option.isSome(loaded) && loaded.value === null) {
      yield* Effect.logWarning(`${store.locate(CUE_DOCUMENT)} is not a cue history; starting an empty one`);
    }
    const history =
      Option.isSome(loaded) && loaded.value !== null ? loaded.value : new Map<string, CueRecord[]>();
    const seen = new WeakSet<CueRecord>();
    let dirty = false;
    /** Cues of channels this node holds, not yet in the table; and cues in it that changed since. */
    let pending: Array<{ readonly channel: string; cue: CueRecord }> = [];
    let changed: Array<{ readonly channel: string; cue: CueRecord }> = [];
    let forgotten: string[] = [];

    /** Copies the cues the running channels' watchers saw since the last call. */
    const collect = () => {
      for (const id of channels.running()) {
        for (const cue of channels.cues(id)) {
          if (seen.has(cue)) continue;
          seen.add(cue);
          dirty = true;
          const cues = history.get(id) ?? [];
          history.set(id, cues);
          const kept = cues.findLastIndex((earlier) => earlier.id === cue.id);
          if (kept >= 0) {
            cues[kept] = cue;
            if (table === undefined || !placement.holds(id)) continue;
            const waiting = [...pending, ...changed].find((entry) => entry.cue.id === cue.id);
            if (waiting !== undefined) waiting.cue = cue;
            else changed.push({ channel: id, cue });
            continue;
          }
          cues.push(cue);
          if (cues.length > CUE_HISTORY_LIMIT) cues.splice(0, cues.length - CUE_HISTORY_LIMIT);
          if (table !== undefined && placement.holds(id)) pending.push({ channel: id, cue });
        }
      }
    };

    let checkedAgainst: ReadonlyArray<unknown> | null = null;
    const forgetDeleted = (known: ReadonlySet<string>) => {
      for (const id of history.keys()) {
        if (!known.has(id)) {
          history.delete(id);
          forgotten.push(id);
          dirty = true;
        }
      }
    };
    /** Whether there is anything to save, after copying what is new. */
    const due = () => {
      collect();
      // Channels deleted since are forgotten (looked for only when the configuration changed).
      const { channels: configured } = configs.current();
      if (configured !== checkedAgainst) {
        checkedAgainst = configured;
        forgetDeleted(new Set<string>(configured.map((channel) => channel.id)));
      }
      return dirty;
    };
    const flush = Effect.suspend(() => {
      if (!due()) return Effect.void;
      dirty = false;
      if (table !== undefined) {
        const [adding, updating, removing] = [pending, changed, forgotten];
        [pending, changed, forgotten] = [[], [], []];
        return table.save(adding, removing, updating).pipe(
          Effect.catchAll((error) =>
            Effect.sync(() => {
              pending = [...adding, ...pending];
              changed = [...updating, ...changed];
              forgotten = [...removing, ...forgotten];
              dirty = true;
            }).pipe(Effect.zipRight(Effect.logWarning(`cue history not saved: ${error.message}`))),
          ),
        );
      }
      const document: CueDocument = { version: 1, channels: Object.fromEntries(history) };
      return store.write(CUE_DOCUMENT, JSON.stringify(document)).pipe(
        Effect.catchAll((error) =>
          Effect.sync(() => {
            dirty = true;
          }).pipe(Effect.zipRight(Effect.logWarning(`cue history not saved: ${error.message}`))),
        ),
      );
    });

    // A failure to save is logged and tried again a second later; it never ends the saving fiber.
    const save = flush.pipe(
      Effect.withSpan("CueHistory.save"),
      Effect.catchAllCause((cause) => Effect.logWarning("cue history not saved", cause)),
    );
    yield* quietly(1000, due, save);
    // On shutdown, the last second's cues too.
    yield* Effect.addFinalizer(() => save);

    return {
      /** A channel's cues, oldest first, up to this moment: from before a restart as well. */
      recent: (id: string): ReadonlyArray<CueRecord> => {
        collect();
        return [...(history.get(id) ?? [])];
      },
    } as const;
  }),
}) {}
