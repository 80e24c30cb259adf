/**
 * The outbox: every delivery is written here before it is attempted, and written again after each attempt, so
 * a restart picks up what was pending (its next try as it was) instead of losing it. The last deliveries of
 * each notifier stay, finished, for the API and the Settings page to show. One box keeps them in the store as
 * `notifications.json` beside the configuration and a journal of the changes since (`storeOutbox`, below), so
 * that what a write costs does not grow with what is pending; a fleet in the `notifications` table (migration
 * 4), a row a statement, where
 * each node attempts only its own and every node sees every node's. A node found down has its pending rows
 * taken over by a live one (`adopt`), and from then on every write of a row is fenced by its node: the node
 * that lost a row can neither overwrite it nor, having checked (`owns`), send it again.
 */
import * as Deferred from "effect/Deferred";
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import * as Queue from "effect/Queue";
import * as Schema from "effect/Schema";
import type { NotificationPayload } from "../../domain/events/notify-bodies.ts";
import type { DatabaseShape } from "../config/postgres/database.ts";
import { DocumentStore, loadDocument } from "../config/store.ts";

export const OUTBOX_FILE = "notifications.json";

export const DELIVERY_STATES = ["pending", "delivered", "failed", "dropped"] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export const Delivery = Schema.Struct({
  id: Schema.String,
  notifier: Schema.String,
  node: Schema.String,
  type: Schema.String,
  payload: Schema.Unknown,
  state: Schema.Literal(...DELIVERY_STATES),
  attempts: Schema.Number,
  /** The HTTP status of the latest attempt (null: none yet, or no HTTP answer). */
  status: Schema.NullOr(Schema.Number),
  /** The latest attempt's outcome in words (no secret). */
  message: Schema.NullOr(Schema.String),
  created_at: Schema.String,
  /** When the next attempt is due (ms since the epoch; null once finished). */
  next_at: Schema.NullOr(Schema.Number),
  last_at: Schema.NullOr(Schema.Number),
});
export interface Delivery extends Omit<typeof Delivery.Type, "payload"> {
  readonly payload: NotificationPayload;
}

/** `notifications.json`: every delivery as of the last compaction, and the journal generation that follows it. */
const OutboxDocument = Schema.Struct({
  version: Schema.Literal(1),
  generation: Schema.optional(Schema.Number),
  deliveries: Schema.Array(Delivery),
});

/** What came since `notifications.json` was written: a header line, then one line per change. */
export const JOURNAL_FILE = "notifications.journal";
/** The journal is folded into `notifications.json` once it is larger than it (1 MiB at least). */
const COMPACT_AT_LEAST = 1024 * 1024;

export interface OutboxStore {
  /**
   * Writes a delivery as it is now (new, or after an attempt), only while it is still its node's: false when
   * another node has taken it over (nothing written then).
   */
  readonly save: (delivery: Delivery) => Effect.Effect<boolean>;
  /** Writes new deliveries (an event's, one per notifier that wants it) together. */
  readonly saveNew: (deliveries: ReadonlyArray<Delivery>) => Effect.Effect<void>;
  /** What `node` still has to deliver. */
  readonly pending: (node: string) => Effect.Effect<ReadonlyArray<Delivery>>;
  /** Whether delivery `id` is still `node`'s to attempt: null when the outbox cannot say (the database away). */
  readonly owns: (id: string, node: string) => Effect.Effect<boolean | null>;
  /**
   * `from`'s pending deliveries made `to`'s, in one statement, each with its id, attempts and next try: what
   * it took. Fails when the statement did (to be tried again).
   */
  readonly adopt: (from: string, to: string) => Effect.Effect<ReadonlyArray<Delivery>, unknown>;
  /** A notifier's deliveries, newest first. */
  readonly recent: (notifier: string, limit: number) => Effect.Effect<ReadonlyArray<Delivery>>;
  /** Keeps only the newest `keep` finished deliveries of a notifier, and drops every one of a deleted notifier. */
  readonly prune: (notifier: string, keep: number, deleted: boolean) => Effect.Effect<void>;
}

const newestFirst = (a: Delivery, b: Delivery) =>
  a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.id < b.id ? 1 : -1;

type JournalLine = { readonly set: Delivery } | { readonly drop: string };
const decodeDelivery = Schema.decodeUnknownOption(Delivery);

/**
 * One box: the whole outbox in memory, and on disk as `notifications.json` and a journal of what changed since
 * (`notifications.journal`). A change is appended to the journal, not written whole, so an attempt costs the
 * same with 10 deliveries pending or 100,000: changes made while a write runs go together in the next one (each
 * caller waits for the write that holds its change). Once the journal is larger than `notifications.json` (or
 * an append failed, or at a stop) the whole is written again, atomically, under a new generation, then the
 * journal starts afresh under it; a start reads the whole, then the journal of the same generation only, so a
 * stop between those two writes loses nothing and applies nothing twice. A line cut short (a crash mid-append)
 * is skipped, and the whole is written again before anything is appended after it.
 */
export const storeOutbox = (store: DocumentStore["Type"]) =>
  Effect.gen(function* () {
    const loaded = yield* loadDocument(OUTBOX_FILE, OutboxDocument, { version: 1, deliveries: [] }).pipe(
      Effect.provideService(DocumentStore, store),
      Effect.tapError((error) =>
        Effect.logWarning(`notifications: the outbox could not be read, starting empty: ${error.message}`),
      ),
      Effect.orElseSucceed((): typeof OutboxDocument.Type => ({ version: 1, deliveries: [] })),
    );
    const rows = new Map<string, Delivery>();
    /** The same rows by notifier, for its page; and its finished ones, for its pruning. */
    const byNotifier = new Map<string, Map<string, Delivery>>();
    const finishedOf = new Map<string, Map<string, Delivery>>();
    const index = (of: Map<string, Map<string, Delivery>>, row: Delivery, keep: boolean) => {
      const own = of.get(row.notifier);
      if (keep) {
        if (own === undefined) of.set(row.notifier, new Map([[row.id, row]]));
        else own.set(row.id, row);
        return;
      }
      own?.delete(row.id);
      if (own?.size === 0) of.delete(row.notifier);
    };
    const drop = (id: string) => {
      const row = rows.get(id);
      if (row === undefined) return;
      rows.delete(id);
      index(byNotifier, row, false);
      index(finishedOf, row, false);
    };
    const put = (row: Delivery) => {
      drop(row.id);
      rows.set(row.id, row);
      index(byNotifier, row, true);
      if (row.state !== "pending") index(finishedOf, row, true);
    };
    for (const row of loaded.deliveries) put(row as Delivery);
    let generation = loaded.generation ?? 0;
    const headerOf = (at: number) => `${JSON.stringify({ version: 1, generation: at })}\n`;
    /** The size of notifications.json as last written (or read), and of the journal. */
    let wholeBytes = 0;
    let journalBytes = 0;
    /** The journal's changes since the whole was written (none: nothing to fold in at a stop). */
    let journalChanges = 0;
    /** Whether the journal on disk has this generation's header (else the next write starts it). */
    let journalStarted = false;
    /** The next write writes the whole: a journal that could not be read or was cut short, an append failed. */
    let wholeDue = store.append === undefined;
    const journal = yield* store.read(JOURNAL_FILE).pipe(
      Effect.tapError((error) =>
        Effect.logWarning(`notifications: the outbox journal could not be read: ${error.message}`),
      ),
      Effect.orElseSucceed(() => {
        wholeDue = true;
        return Option.none<string>();
      }),
    );
    if (Option.isSome(journal)) {
      const [head = "", ...lines] = journal.value.split("\n");
      let header: { generation?: unknown } | null = null;
      try {
        header = JSON.parse(head) as { generation?: unknown };
      } catch {
        header = null;
      }
      // Another generation's journal was folded into the whole already (a stop between a compaction's writes).
      if (header?.generation === generation) {
        for (const line of lines) {
          if (line === "") continue;
          let entry: Partial<{ set: unknown; drop: unknown }> | null = null;
          try {
            entry = JSON.parse(line) as Partial<{ set: unknown; drop: unknown }>;
          } catch {
            entry = null;
          }
          const row = entry?.set === undefined ? Option.none() : decodeDelivery(entry.set);
          if (Option.isSome(row)) put(row.value as Delivery);
          else if (typeof entry?.drop === "string") drop(entry.drop);
          // A line cut short: skipped, and nothing is appended after it.
          else wholeDue = true;
        }
        // Anything after a line cut short would join it: the whole is written before the next append.
        if (!journal.value.endsWith("\n")) wholeDue = true;
        journalStarted = true;
        journalBytes = journal.value.length;
        journalChanges = lines.filter((line) => line !== "").length;
      } else wholeDue = true;
    }

    /** The changes not yet written, as journal lines. */
    const compact = Effect.suspend(() => {
      const next = generation + 1;
      const whole = JSON.stringify({ version: 1, generation: next, deliveries: [...rows.values()] });
      return store.write(OUTBOX_FILE, whole).pipe(
        Effect.tap(() => {
          generation = next;
          wholeBytes = whole.length;
          journalStarted = false;
          journalChanges = 0;
        }),
        // Until the new journal is there, the old one is another generation's: read past at a start.
        Effect.zipRight(Effect.suspend(() => store.write(JOURNAL_FILE, headerOf(generation)))),
        Effect.tap(() => {
          journalStarted = true;
          journalBytes = headerOf(generation).length;
          wholeDue = false;
        }),
      );
    });
    /** Journal lines: appended, or the whole written instead when the journal has grown past it. */
    const writeLines = (lines: ReadonlyArray<string>) =>
      Effect.suspend(() => {
        if (lines.length === 0 && !wholeDue) return Effect.void;
        const text = lines.join("");
        if (wholeDue || journalBytes + text.length > Math.max(COMPACT_AT_LEAST, wholeBytes)) return compact;
        const written = journalStarted
          ? (store.append?.(JOURNAL_FILE, text) ?? Effect.void)
          : store.write(JOURNAL_FILE, headerOf(generation) + text);
        return written.pipe(
          Effect.tap(() => {
            if (!journalStarted) journalBytes = headerOf(generation).length;
            journalStarted = true;
            journalBytes += text.length;
            journalChanges += lines.length;
          }),
        );
      }).pipe(
        Effect.catchAll((error) => {
          // What is on disk may end in part of a line: the whole goes next, from memory.
          wholeDue = true;
          return Effect.logWarning(`notifications: the outbox could not be saved: ${error.message}`);
        }),
      );

    /**
     * The changes not yet written (journal lines), and what their makers wait on. One fiber writes: each write
     * takes every change made until it starts, so a change waits for at most the write under way and its own,
     * however many notifiers make changes at once.
     */
    let batch = { lines: [] as string[], done: yield* Deferred.make<void>() };
    const wake = yield* Queue.sliding<void>(1);
    const change = (...lines: ReadonlyArray<JournalLine>) =>
      Effect.suspend(() => {
        for (const line of lines) batch.lines.push(`${JSON.stringify(line)}\n`);
        wake.unsafeOffer(undefined);
        return Deferred.await(batch.done);
      });
    const lock = yield* Effect.makeSemaphore(1);
    // Uninterruptible, so a stop waits for a write under way.
    const writeBatch = lock
      .withPermits(1)(
        Effect.gen(function* () {
          const taken = batch;
          batch = { lines: [], done: yield* Deferred.make<void>() };
          yield* writeLines(taken.lines);
          yield* Deferred.succeed(taken.done, undefined);
        }),
      )
      .pipe(Effect.uninterruptible);
    // At the stop (after the writer below): what is left, then the whole, so that a start reads one file.
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(
        writeBatch,
        lock
          .withPermits(1)(
            Effect.suspend(() => (journalChanges > 0 || wholeDue ? compact : Effect.void)).pipe(
              Effect.catchAll((error) =>
                Effect.logWarning(`notifications: the outbox could not be saved: ${error.message}`),
              ),
            ),
          )
          .pipe(Effect.uninterruptible),
      ),
    );
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Queue.take(wake), writeBatch)));
    const shape: OutboxStore = {
      save: (delivery) =>
        Effect.zipRight(
          Effect.sync(() => put(delivery)),
          Effect.as(change({ set: delivery }), true),
        ),
      saveNew: (deliveries) =>
        Effect.zipRight(
          Effect.sync(() => {
            for (const delivery of deliveries) put(delivery);
          }),
          change(...deliveries.map((delivery) => ({ set: delivery }))),
        ),
      pending: (node) =>
        Effect.sync(() => [...rows.values()].filter((row) => row.state === "pending" && row.node === node)),
      // One box is one node: every row is its own, and there is nobody to take over from.
      owns: () => Effect.succeed(true),
      adopt: () => Effect.succeed([]),
      recent: (notifier, limit) =>
        Effect.sync(() => [...(byNotifier.get(notifier)?.values() ?? [])].sort(newestFirst).slice(0, limit)),
      prune: (notifier, keep, deleted) =>
        Effect.suspend(() => {
          const finished = [...((deleted ? byNotifier : finishedOf).get(notifier)?.values() ?? [])].sort(
            newestFirst,
          );
          const gone = deleted ? finished : finished.slice(keep);
          if (gone.length === 0) return Effect.void;
          for (const row of gone) drop(row.id);
          return change(...gone.map((row) => ({ drop: row.id })));
        }),
    };
    return shape;
  });

const rowOf = (row: Record<string, unknown>): Delivery => ({
  id: String(row.id),
  notifier: String(row.notifier),
  node: String(row.node),
  type: String(row.type),
  payload: row.payload as NotificationPayload,
  state: row.state as DeliveryState,
  attempts: Number(row.attempts),
  status: row.status === null ? null : Number(row.status),
  message: row.message === null ? null : String(row.message),
  created_at: new Date(row.created_at as string | Date).toISOString(),
  next_at: row.next_at === null ? null : new Date(row.next_at as string | Date).getTime(),
  last_at: row.last_at === null ? null : new Date(row.last_at as string | Date).getTime(),
});

const at = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * A fleet: the `notifications` table. A statement that fails (the database away) is logged and the delivery
 * goes on from memory: a notification is worth more than its record. A row is updated only by the node it
 * names (`where notifications.node = excluded.node`), so a node cut off while another took its rows over
 * writes nothing of them when it comes back.
 */
export const databaseOutbox = (db: DatabaseShape): OutboxStore => {
  const quiet = <A>(what: string, effect: Effect.Effect<A, unknown>, fallback: A) =>
    effect.pipe(
      Effect.catchAll((error) =>
        Effect.as(Effect.logWarning(`notifications: could not ${what}: ${String(error)}`), fallback),
      ),
    );
  const shape: OutboxStore = {
    save: (d) =>
      quiet(
        "write to the outbox",
        db.query(
          `insert into notifications (id, notifier, node, type, payload, state, attempts, status, message,
             created_at, next_at, last_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           on conflict (id) do update set state = excluded.state, attempts = excluded.attempts,
             status = excluded.status, message = excluded.message, next_at = excluded.next_at,
             last_at = excluded.last_at
           where notifications.node = excluded.node
           returning id`,
          [
            d.id,
            d.notifier,
            d.node,
            d.type,
            JSON.stringify(d.payload),
            d.state,
            d.attempts,
            d.status,
            d.message,
            d.created_at,
            at(d.next_at),
            at(d.last_at),
          ],
        ),
        // The database away: nothing written, and still this node's as far as it knows.
        [{}],
      ).pipe(Effect.map((rows) => rows.length === 1)),
    // Each its own statement (a key's upsert): what one costs does not grow with the table.
    saveNew: (deliveries) =>
      Effect.forEach(deliveries, (delivery) => shape.save(delivery), { discard: true }),
    pending: (node) =>
      quiet(
        "read the outbox",
        Effect.map(
          db.query("select * from notifications where node = $1 and state = 'pending' order by created_at", [
            node,
          ]),
          (rows) => rows.map(rowOf),
        ),
        [],
      ),
    owns: (id, node) =>
      quiet(
        "read the outbox",
        // A row not there (its first write failed) is nobody else's either.
        Effect.map(
          db.query("select 1 from notifications where id = $1 and node <> $2", [id, node]),
          (rows) => rows.length === 0,
        ),
        null,
      ),
    adopt: (from, to) =>
      Effect.map(
        db.query("update notifications set node = $2 where node = $1 and state = 'pending' returning *", [
          from,
          to,
        ]),
        (rows) => rows.map(rowOf),
      ),
    recent: (notifier, limit) =>
      quiet(
        "read the outbox",
        Effect.map(
          db.query(
            "select * from notifications where notifier = $1 order by created_at desc, id desc limit $2",
            [notifier, limit],
          ),
          (rows) => rows.map(rowOf),
        ),
        [],
      ),
    prune: (notifier, keep, deleted) =>
      quiet(
        "prune the outbox",
        deleted
          ? db.query("delete from notifications where notifier = $1", [notifier])
          : db.query(
              `delete from notifications where notifier = $1 and state <> 'pending' and id not in
                 (select id from notifications where notifier = $1 and state <> 'pending'
                   order by created_at desc, id desc limit $2)`,
              [notifier, keep],
            ),
        [],
      ).pipe(Effect.asVoid),
  };
  return shape;
};
