/**
 * The store's interface (store.ts) over PostgreSQL, so ConfigState and Auth keep working as they are:
 * `channels.json` is the `channels` table, one row per channel in the document's order, and `tokens.json` the
 * `tokens` table, `notifiers.json` the `notifiers` table, `access-rules.json` the `access_rules` table (one row). Other names (a `.bak`, the one-box cue file) are not kept here: they read as absent.
 *
 * Several nodes write the same rows, so a write is optimistic: this node remembers each row's revision as it
 * last read or wrote it (its baseline), and a write changes, in one transaction, only the rows that differ from
 * that baseline, and only if each still has the revision the baseline says. Otherwise another node changed it
 * meanwhile, and the write is refused whole: a stale node must never undo another node's change. Each changed
 * row gets a new revision from `config_revision` and an audit row in the same transaction; the commit
 * notifies every node (`distributary_config`).
 */
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import * as Option from "effect/Option";
import { CurrentActor } from "../actor.ts";
import { DocumentStore, StoreError } from "../store.ts";
import {
  CONFIG_CHANNEL,
  Database,
  type DatabaseError,
  type DatabaseShape,
  type Transaction,
} from "./database.ts";

interface Kind {
  /** The document's array and the table. */
  readonly table: "channels" | "tokens" | "notifiers" | "access_rules";
  /** The word for one row in messages and audit actions. */
  readonly noun: "channel" | "token" | "notifier" | "access rules";
  readonly positioned: boolean;
}

const KINDS: Readonly<Record<string, Kind>> = {
  "channels.json": { table: "channels", noun: "channel", positioned: true },
  "tokens.json": { table: "tokens", noun: "token", positioned: false },
  "notifiers.json": { table: "notifiers", noun: "notifier", positioned: false },
  "access-rules.json": { table: "access_rules", noun: "access rules", positioned: false },
};

type Body = Record<string, unknown> & { readonly id: string };

interface Known {
  readonly revision: number;
  /** The body with its keys sorted: jsonb gives them back in its own order. */
  readonly canonical: string;
  readonly position: number;
  /** The body as the database last gave it (null: this node wrote it, and has not read it back). */
  readonly text: string | null;
}

/** JSON with every object's keys sorted, so two equal bodies give the same text whatever their key order. */
export const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, inner: unknown) =>
    inner !== null && typeof inner === "object" && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );

const label = (kind: Kind, body: Record<string, unknown>) =>
  `${kind.noun} ${typeof body.name === "string" ? `${body.name} ` : ""}(${String(body.id)})`;

/**
 * The top-level fields whose values differ, in words: "name, outputs". A field absent on one side and null on
 * the other did not change (a change writes the optional fields it did not touch as null).
 */
const changedFields = (before: Record<string, unknown>, after: Record<string, unknown>) =>
  [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((key) => canonical(before[key] ?? null) !== canonical(after[key] ?? null))
    .sort()
    .join(", ");

/** Another node changed a row this write changes: the transaction rolls back. */
class Conflict {
  readonly _tag = "Conflict";
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

interface Change {
  readonly action: "create" | "update" | "delete";
  readonly id: string;
  readonly body: Body;
  readonly before?: Body;
  readonly position: number;
}

/**
 * Every row's id, revision and position in the document's order, and the body (as text) of just the rows whose
 * revision is not the one `known` gives: one statement, one snapshot, and a reload after a change carries the
 * changed rows, not the table.
 */
const readRows = (db: Pick<DatabaseShape, "query">, kind: Kind, known: ReadonlyMap<string, Known>) => {
  const ids = [...known.keys()];
  const revisions = ids.map((id) => String(known.get(id)?.revision));
  return db.query<{ id: string; text: string | null; revision: string; position: number | null }>(
    `select r.id, case when k.revision is distinct from r.revision then r.body::text end as text, r.revision,
            ${kind.positioned ? "r.position" : "null as position"}
       from ${kind.table} r left join unnest($1::text[], $2::bigint[]) as k(id, revision) on k.id = r.id
      order by ${kind.positioned ? "r.position" : "r.body->>'created_at'"}, r.id`,
    [ids, revisions],
  );
};

/** Positions in the document's order: a row keeps its own while the order allows, new rows go after the rest. */
const placeAll = (items: ReadonlyArray<Body>, baseline: ReadonlyMap<string, Known>, highest: number) => {
  const positions = new Map<string, number>();
  // Whether every item after index i is new: one pass from the end, not a scan per item.
  const newAfter: boolean[] = [];
  for (let i = items.length - 1, allNew = true; i >= 0; i -= 1) {
    newAfter[i] = allNew;
    allNew = allNew && !baseline.has(items[i]?.id ?? "");
  }
  let last = -1;
  items.forEach((item, index) => {
    const known = baseline.get(item.id);
    const kept = known !== undefined && known.position > last;
    const inTail = newAfter[index] === true;
    last = kept ? known.position : inTail ? Math.max(last, highest) + 1 : last + 1;
    positions.set(item.id, last);
  });
  return positions;
};

const makePostgresStore = (db: DatabaseShape, node: string | null) =>
  Effect.gen(function* () {
    const baselines = new Map<string, Map<string, Known>>();
    const one = yield* Effect.makeSemaphore(1);
    const unavailable = (error: DatabaseError, verb: "read" | "write") =>
      new StoreError({
        reason:
          error._tag === "DatabaseUnavailable"
            ? error.unconfirmed === true
              ? "unconfirmed"
              : "unavailable"
            : verb === "read"
              ? "read_failed"
              : "write_failed",
        message: error.message,
      });

    const read = (name: string) =>
      Effect.gen(function* () {
        const kind = KINDS[name];
        if (kind === undefined) return Option.none<string>();
        // Bodies this node holds as text are not read again while their revision stands.
        const before = baselines.get(name) ?? new Map<string, Known>();
        const held = new Map([...before].filter(([, known]) => known.text !== null));
        const rows = yield* readRows(db, kind, held).pipe(
          Effect.mapError((error) => unavailable(error, "read")),
        );
        const next = new Map<string, Known>();
        for (const row of rows) {
          const kept = row.text === null ? held.get(row.id) : undefined;
          const text = row.text ?? kept?.text ?? "null";
          next.set(row.id, {
            revision: Number(row.revision),
            canonical: kept?.canonical ?? canonical(JSON.parse(text)),
            position: row.position ?? 0,
            text,
          });
        }
        baselines.set(name, next);
        return Option.some(
          `{"version":1,${JSON.stringify(kind.table)}:[${[...next.values()].map((known) => known.text).join(",")}]}`,
        );
      });

    const diff = (
      kind: Kind,
      items: ReadonlyArray<Body>,
      baseline: ReadonlyMap<string, Known>,
      highest: number,
    ) => {
      const positions = kind.positioned ? placeAll(items, baseline, highest) : new Map<string, number>();
      const changes: Change[] = [];
      const wanted = new Set(items.map((item) => item.id));
      for (const item of items) {
        const known = baseline.get(item.id);
        const position = positions.get(item.id) ?? 0;
        if (known === undefined) changes.push({ action: "create", id: item.id, body: item, position });
        else if (known.canonical !== canonical(item) || (kind.positioned && known.position !== position))
          changes.push({
            action: "update",
            id: item.id,
            body: item,
            before: JSON.parse(known.canonical),
            position,
          });
      }
      for (const [id, known] of baseline) {
        if (!wanted.has(id)) {
          const before = JSON.parse(known.canonical) as Body;
          changes.push({ action: "delete", id, body: before, position: known.position });
        }
      }
      return changes;
    };

    const detail = (kind: Kind, change: Change) => {
      if (kind.noun === "access rules")
        return `access rules replaced: ${Array.isArray(change.body.rules) ? change.body.rules.length : 0} now`;
      const what = label(kind, change.body);
      if (change.action === "delete") return kind.noun === "token" ? `${what} revoked` : `${what} deleted`;
      if (change.action === "create")
        return kind.noun === "token" ? `${what} created (${String(change.body.role)})` : `${what} created`;
      const fields = changedFields(change.before ?? change.body, change.body);
      return kind.noun === "token"
        ? `${what} replaced`
        : `${what} changed: ${fields === "" ? "its place in the list" : fields}`;
    };
    const action = (kind: Kind, change: Change) =>
      kind.noun === "access rules"
        ? "access.rules"
        : kind.noun === "token"
          ? change.action === "delete"
            ? "token.revoke"
            : "token.create"
          : `${kind.noun}.${change.action}`;

    /** Applies `changes` in `tx`, refusing at the first row another node changed; returns each row's new revision. */
    const apply = (
      tx: Transaction,
      kind: Kind,
      changes: ReadonlyArray<Change>,
      baseline: ReadonlyMap<string, Known>,
    ) =>
      Effect.gen(function* () {
        const actor = yield* CurrentActor;
        const existing = yield* tx.query<{ id: string; revision: string }>(
          `select id, revision from ${kind.table} where id = any($1) for update`,
          [changes.map((change) => change.id)],
        );
        const inDatabase = new Map(existing.map((row) => [row.id, Number(row.revision)]));
        const revisions = new Map<string, number>();
        for (const change of changes) {
          const what = label(kind, change.body);
          const now = inDatabase.get(change.id);
          if (change.action === "create" && now !== undefined)
            return yield* Effect.fail(
              new Conflict(`${what} was created on another node meanwhile: reload and try again`),
            );
          if (change.action !== "create" && now === undefined) {
            // Deleted by another node too: what this write wanted is already so.
            if (change.action === "delete") continue;
            return yield* Effect.fail(
              new Conflict(`${what} was deleted on another node meanwhile: reload and try again`),
            );
          }
          if (change.action !== "create" && now !== baseline.get(change.id)?.revision)
            return yield* Effect.fail(
              new Conflict(`${what} was changed on another node meanwhile: reload and try again`),
            );
          const [next] = yield* tx.query<{ revision: string }>(
            "select nextval('config_revision') as revision",
          );
          const revision = Number(next?.revision);
          revisions.set(change.id, revision);
          const body = JSON.stringify(change.body);
          if (change.action === "delete")
            yield* tx.query(`delete from ${kind.table} where id = $1`, [change.id]);
          else if (change.action === "create") {
            // The row lock above cannot see a row another transaction is inserting: the insert waits for it,
            // and finding it there once that commits is the same conflict, never a silent overwrite.
            const inserted = yield* kind.positioned
              ? tx.query(
                  `insert into channels (id, position, body, revision) values ($1, $2, $3, $4)
                   on conflict (id) do nothing returning id`,
                  [change.id, change.position, body, revision],
                )
              : tx.query(
                  `insert into ${kind.table} (id, body, revision) values ($1, $2, $3) on conflict (id) do nothing returning id`,
                  [change.id, body, revision],
                );
            if (inserted.length === 0)
              return yield* Effect.fail(
                new Conflict(`${what} was created on another node meanwhile: reload and try again`),
              );
          } else if (kind.positioned)
            yield* tx.query(
              "update channels set position = $2, body = $3, revision = $4, updated_at = now() where id = $1",
              [change.id, change.position, body, revision],
            );
          else
            yield* tx.query(`update ${kind.table} set body = $2, revision = $3 where id = $1`, [
              change.id,
              body,
              revision,
            ]);
          yield* tx.query(
            `insert into audit (node, actor, action, detail, channel, revision, actor_via, actor_subject, actor_issuer)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
            [
              node,
              actor.name,
              action(kind, change),
              detail(kind, change),
              kind.noun === "channel" ? change.id : null,
              revision,
              actor.via ?? null,
              actor.subject ?? null,
              actor.issuer ?? null,
            ],
          );
        }
        const newest = Math.max(0, ...revisions.values());
        if (revisions.size > 0) {
          yield* tx.query("select pg_notify($1, $2)", [
            CONFIG_CHANNEL,
            JSON.stringify({ document: kind.table, revision: newest, node }),
          ]);
        }
        return revisions;
      });

    const write = (name: string, text: string) =>
      Effect.gen(function* () {
        const kind = KINDS[name];
        if (kind === undefined)
          return yield* new StoreError({
            reason: "write_failed",
            message: `${name} is not kept in PostgreSQL (only channels.json, tokens.json, notifiers.json and access-rules.json are)`,
          });
        const items = (JSON.parse(text) as Record<string, ReadonlyArray<Body>>)[kind.table] ?? [];
        if (!baselines.has(name)) yield* read(name);
        const baseline = baselines.get(name) ?? new Map<string, Known>();
        if (diff(kind, items, baseline, -1).length === 0) return;
        const outcome = yield* db
          .transaction((tx) =>
            Effect.gen(function* () {
              const [top] = kind.positioned
                ? yield* tx.query<{ highest: number }>(
                    "select coalesce(max(position), -1) as highest from channels",
                  )
                : [{ highest: -1 }];
              const changes = diff(kind, items, baseline, top?.highest ?? -1);
              return { changes, revisions: yield* apply(tx, kind, changes, baseline) };
            }),
          )
          .pipe(
            Effect.mapError((error) =>
              error instanceof Conflict
                ? new StoreError({ reason: "conflict", message: error.message })
                : unavailable(error, "write"),
            ),
          );
        const next = new Map(baseline);
        for (const change of outcome.changes) {
          const revision = outcome.revisions.get(change.id);
          if (change.action === "delete") next.delete(change.id);
          else if (revision !== undefined)
            next.set(change.id, {
              revision,
              canonical: canonical(change.body),
              position: change.position,
              text: null,
            });
        }
        baselines.set(name, next);
      });

    return DocumentStore.of({
      locate: (name) => `${name} in ${db.display}`,
      read: (name) => one.withPermits(1)(read(name)),
      write: (name, text) => one.withPermits(1)(write(name, text)),
    });
  });

/** The PostgreSQL store over the Database given, its audit rows and notifications naming `node`. */
export const layerPostgresStore = (node: string | null): Layer.Layer<DocumentStore, never, Database> =>
  Layer.effect(
    DocumentStore,
    Effect.flatMap(Database, (db) => makePostgresStore(db, node)),
  );
