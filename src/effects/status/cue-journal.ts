/**
 * The cue history's two documents on a node without a database (cue-history.ts). Rewriting the whole history
 * each second a cue came grew with the history: 100 channels × 100 cues is a document of about 9.5 MB, and
 * each rewrite, stringified, fsynced and copied to `.bak`, took about 30 ms of CPU (`npm run bench:cues`),
 * two thirds of what the rest of the main thread does at 100 × 4 in the load harness. So:
 *
 * - `cues.json`, the whole history, is written only now and then (a compaction);
 * - `cues-recent.json` holds what happened since, in order: each cue added or changed, each channel forgotten.
 *   It is what the second's save rewrites, and it stays small: once it passes an eighth of the whole (64 KiB at
 *   least), the whole is written again and it starts empty.
 *
 * Both are replaced atomically by the store. A start reads the whole, then applies the recent entries to it.
 * Applying is idempotent (a cue is found by its id and kept in arrival order), so a stop between the two
 * writes of a compaction, which leaves the same cues in both, loads the same history.
 */
import * as Effect from "effect/Effect";
import type { CueRecord } from "../channel/scte35-watcher.ts";
import type { DocumentStore, StoreError } from "../config/store.ts";

export const CUE_DOCUMENT = "cues.json";
export const RECENT_DOCUMENT = "cues-recent.json";
/** The recent document is folded into the whole once it passes this share of the whole's size. */
const COMPACT_SHARE = 1 / 8;
const COMPACT_AT_LEAST = 64 * 1024;

export type History = Map<string, CueRecord[]>;

/** What happened since the whole was last written, oldest first. */
export type RecentEntry = { readonly channel: string; readonly cue: CueRecord } | { readonly forget: string };

/** What the next save writes from: the recent entries, and what it knows of the whole. */
export interface Journal {
  /** What cues-recent.json holds, and what came since it was last written. */
  recent: RecentEntry[];
  /** The size of cues.json as last read or written. */
  wholeBytes: number;
  /** A document could not be read: the next save writes the whole, so that the next start reads both. */
  wholeDue: boolean;
}

/**
 * One save: the recent document, or, once it passes an eighth of the whole (or `wholeDue`), the whole and then
 * an empty recent document. What comes while the writes run stays for the next. Returns the bytes written.
 */
export const saveJournal = (
  store: DocumentStore["Type"],
  history: History,
  journal: Journal,
): Effect.Effect<number, StoreError> => {
  const saving = journal.recent.length;
  const text = recentText(journal.recent);
  if (!journal.wholeDue && text.length < Math.max(COMPACT_AT_LEAST, journal.wholeBytes * COMPACT_SHARE))
    return Effect.as(store.write(RECENT_DOCUMENT, text), text.length);
  const whole = wholeText(history);
  return store.write(CUE_DOCUMENT, whole).pipe(
    Effect.tap(() => {
      journal.wholeBytes = whole.length;
    }),
    // Until the recent document is empty its entries are in both: applied again, they change nothing.
    Effect.zipRight(store.write(RECENT_DOCUMENT, recentText([]))),
    Effect.tap(() => {
      journal.recent = journal.recent.slice(saving);
      journal.wholeDue = false;
    }),
    Effect.as(whole.length),
  );
};

/**
 * Keeps `cue` in a channel's cues: in the place of the one with its id, else in arrival order (at the end
 * unless it is older than some), the oldest dropped past `limit`. Returns whether it took a copy's place.
 */
export const keepCue = (cues: CueRecord[], cue: CueRecord, limit: number): boolean => {
  const kept = cues.findLastIndex((earlier) => earlier.id === cue.id);
  if (kept >= 0) {
    cues[kept] = cue;
    return true;
  }
  let at = cues.length;
  while (at > 0 && (cues[at - 1]?.at ?? 0) > cue.at) at -= 1;
  cues.splice(at, 0, cue);
  if (cues.length > limit) cues.splice(0, cues.length - limit);
  return false;
};

const isCue = (cue: unknown): cue is CueRecord =>
  typeof cue === "object" &&
  cue !== null &&
  typeof (cue as CueRecord).id === "string" &&
  typeof (cue as CueRecord).at === "number";

/** `cues.json` (version 1: each channel's cues, oldest first), or null when it is not one. */
export const parseWhole = (text: string, limit: number): History | null => {
  try {
    const document = JSON.parse(text) as { version?: unknown; channels?: unknown };
    if (document.version !== 1 || typeof document.channels !== "object" || document.channels === null)
      return null;
    const history: History = new Map();
    for (const [id, cues] of Object.entries(document.channels)) {
      if (!Array.isArray(cues)) return null;
      history.set(id, cues.filter(isCue).slice(-limit));
    }
    return history;
  } catch {
    return null;
  }
};

export const wholeText = (history: History): string =>
  JSON.stringify({ version: 1, channels: Object.fromEntries(history) });

/** `cues-recent.json` (version 1: its entries, oldest first), or null when it is not one. */
export const parseRecent = (text: string): RecentEntry[] | null => {
  try {
    const document = JSON.parse(text) as { version?: unknown; entries?: unknown };
    if (document.version !== 1 || !Array.isArray(document.entries)) return null;
    return document.entries.filter(
      (entry: unknown): entry is RecentEntry =>
        typeof entry === "object" &&
        entry !== null &&
        (typeof (entry as { forget?: unknown }).forget === "string" ||
          (typeof (entry as { channel?: unknown }).channel === "string" &&
            isCue((entry as { cue?: unknown }).cue))),
    );
  } catch {
    return null;
  }
};

const recentText = (entries: ReadonlyArray<RecentEntry>): string => JSON.stringify({ version: 1, entries });

/** The recent entries applied to the whole, in order. */
export const applyRecent = (history: History, entries: ReadonlyArray<RecentEntry>, limit: number): void => {
  for (const entry of entries) {
    if ("forget" in entry) {
      history.delete(entry.forget);
      continue;
    }
    const cues = history.get(entry.channel) ?? [];
    history.set(entry.channel, cues);
    keepCue(cues, entry.cue, limit);
  }
};
