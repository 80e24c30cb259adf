/**
 * The outbox: every delivery is written here before it is attempted, and written again after each attempt, so
 * a restart picks up what was pending (its next try as it was) instead of losing it. The last deliveries of
 * each notifier stay, finished, for the API and the Settings page to show. One box keeps them in the store as
 * `notifications.json` beside the configuration; a fleet in the `notifications` table (migration 4), where
 * each node attempts only its own and every node sees every node's. A node found down has its pending rows
 * taken over by a live one (`adopt`), and from then on every write of a row is fenced by its node: the node
 * that lost a row can neither overwrite it nor, having checked (`owns`), send it again.
 */
import * as Effect from "effect/Effect";
import * as Schema from "effect/Schema";
import type { NotificationPayload } from "../../domain/notify-bodies.ts";
import type { DatabaseShape } from "../config/postgres/database.ts";
import { DocumentStore, loadDocument, saveDocument } from "../config/store.ts";

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

const OutboxDocument = Schema.Struct({ version: Schema.Literal(1), deliveries: Schema.Array(Delivery) });

export interface OutboxStore {
  /**
   * Writes a delivery as it is now (new, or after an attempt), only while it is still its node's: false when
   * another node has taken it over (nothing written then).
   */
  readonly save: (delivery: Delivery) => Effect.Effect<boolean>;
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

/** One box: the whole outbox in memory, written through to the store after each change. */
export const storeOutbox = (store: DocumentStore["Type"]) =>
  Effect.gen(function* () {
    const loaded = yield* loadDocument(OUTBOX_FILE, OutboxDocument, { version: 1, deliveries: [] }).pipe(
      Effect.provideService(DocumentStore, store),
      Effect.tapError((error) =>
        Effect.logWarning(`notifications: the outbox could not be read, starting empty: ${error.message}`),
      ),
      Effect.orElseSucceed(() => ({ version: 1 as const, deliveries: [] })),
    );
    const rows = new Map<string, Delivery>(loaded.deliveries.map((row) => [row.id, row as Delivery]));
    const lock = yield* Effect.makeSemaphore(1);
    /** Whether the rows changed since they were last written (a service that delivered nothing writes nothing). */
    let dirty = false;
    // Suspended: each flush writes the rows as they are when it runs; uninterruptible, so a stop waits for a
    // write under way instead of losing it.
    const flush = lock
      .withPermits(1)(
        Effect.suspend(() => {
          if (!dirty) return Effect.void;
          dirty = false;
          return saveDocument(OUTBOX_FILE, OutboxDocument, { version: 1, deliveries: [...rows.values()] });
        }).pipe(
          Effect.provideService(DocumentStore, store),
          Effect.catchAll((error) =>
            Effect.logWarning(`notifications: the outbox could not be saved: ${error.message}`),
          ),
        ),
      )
      .pipe(Effect.uninterruptible);
    // And once more at the stop: what the last attempt wrote is on disk when the service is gone.
    yield* Effect.addFinalizer(() => flush);
    const shape: OutboxStore = {
      save: (delivery) =>
        Effect.zipRight(
          Effect.sync(() => {
            rows.set(delivery.id, delivery);
            dirty = true;
          }),
          Effect.as(flush, true),
        ),
      pending: (node) =>
        Effect.sync(() => [...rows.values()].filter((row) => row.state === "pending" && row.node === node)),
      // One box is one node: every row is its own, and there is nobody to take over from.
      owns: () => Effect.succeed(true),
      adopt: () => Effect.succeed([]),
      recent: (notifier, limit) =>
        Effect.sync(() =>
          [...rows.values()]
            .filter((row) => row.notifier === notifier)
            .sort(newestFirst)
            .slice(0, limit),
        ),
      prune: (notifier, keep, deleted) =>
        Effect.suspend(() => {
          const finished = [...rows.values()]
            .filter((row) => row.notifier === notifier && (deleted || row.state !== "pending"))
            .sort(newestFirst);
          const gone = deleted ? finished : finished.slice(keep);
          if (gone.length === 0) return Effect.void;
          for (const row of gone) rows.delete(row.id);
          dirty = true;
          return flush;
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
  return {
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
};
