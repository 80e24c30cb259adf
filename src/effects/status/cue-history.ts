/**
 * The recent SCTE-35 cues of every channel (the last 100 each), kept across restarts next to the configuration.
 * Nothing here touches the packet path: once a second a fiber copies the cues each running channel's watcher
 * has seen since and, when something was added, saves them: into `cues-recent.json`, and now and then into
 * the whole history, `cues.json` (cue-journal.ts: each atomically, through the store). A reader asking for a
 * channel's cues gets the ones seen up to that moment. A missing or unreadable document starts an empty
 * history with a warning: cues are worth keeping, not worth failing a start for.
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
import { quietly } from "../runtime/timers/quiet-timer.ts";
import {
  applyRecent,
  CUE_DOCUMENT,
  type History,
  type Journal,
  keepCue,
  parseRecent,
  parseWhole,
  RECENT_DOCUMENT,
  saveJournal,
} from "./cue-journal.ts";
import { type CueTable, cueTable } from "./cues-table.ts";

/** Cues kept per channel. */
const CUE_HISTORY_LIMIT = 100;

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

    const readOrWarn = <A>(name: string, parse: (text: string) => A | null) =>
      store.read(name).pipe(
        Effect.flatMap(
          Option.match({
            onNone: () => Effect.succeed(null),
            onSome: (text) => {
              const parsed = parse(text);
              if (parsed !== null) return Effect.succeed({ parsed, bytes: text.length });
              journal.wholeDue = true;
              return Effect.as(
                Effect.logWarning(`${store.locate(name)} is not a cue history; starting without it`),
                null,
              );
            },
          }),
        ),
        Effect.catchAll((error) => Effect.as(Effect.logWarning(error.message), null)),
      );
    /** The documents' side of the history (no database). */
    const journal: Journal = { recent: [], wholeBytes: 0, wholeDue: false };
    const loadDocuments = Effect.gen(function* () {
      const whole = yield* readOrWarn(CUE_DOCUMENT, (text) => parseWhole(text, CUE_HISTORY_LIMIT));
      const recent = yield* readOrWarn(RECENT_DOCUMENT, parseRecent);
      const history: History = whole?.parsed ?? new Map();
      journal.wholeBytes = whole?.bytes ?? 0;
      journal.recent = recent?.parsed ?? [];
      applyRecent(history, journal.recent, CUE_HISTORY_LIMIT);
      return history;
    });
    const loadTable = table?.load.pipe(
      Effect.catchAll((error) => Effect.as(Effect.logWarning(error.message), Option.none())),
      Effect.map(Option.getOrElse((): History => new Map())),
    );
    const history = yield* (loadTable ?? loadDocuments).pipe(Effect.withSpan("CueHistory.load"));
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
          const known = keepCue(cues, cue, CUE_HISTORY_LIMIT);
          if (table === undefined) {
            journal.recent.push({ channel: id, cue });
            continue;
          }
          if (!placement.holds(id)) continue;
          if (!known) {
            pending.push({ channel: id, cue });
            continue;
          }
          const waiting = [...pending, ...changed].find((entry) => entry.cue.id === cue.id);
          if (waiting !== undefined) waiting.cue = cue;
          else changed.push({ channel: id, cue });
        }
      }
    };

    let checkedAgainst: ReadonlyArray<unknown> | null = null;
    const forgetDeleted = (known: ReadonlySet<string>) => {
      for (const id of history.keys()) {
        if (!known.has(id)) {
          history.delete(id);
          if (table === undefined) journal.recent.push({ forget: id });
          else forgotten.push(id);
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
      return saveJournal(store, history, journal).pipe(
        Effect.asVoid,
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
