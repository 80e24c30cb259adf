/**
 * The fleet database's schema, versioned and forward-only: each version runs once, in a transaction of its own
 * that first takes one advisory lock (so two nodes starting together apply it once: the second waits, then
 * finds it applied), and records itself in `schema_migrations`, with whether it only added
 * (`expand_only`, src/effects/config/postgres/expand-only.ts). A database whose schema is newer than this build
 * knows is refused unless every newer version only added: an older node must not write rows whose meaning has
 * changed under it, but it may go on beside what a newer release added (a fleet rolled one node at a time,
 * docs/upgrades.md).
 */
import { randomBytes } from "node:crypto";
import * as Effect from "effect/Effect";
import * as Schema from "effect/Schema";
import { type DatabaseError, type DatabaseShape, LEASE_CHANNEL, type Transaction } from "./database.ts";
import { contractions } from "./expand-only.ts";

/** Any number, the same in every build: the advisory lock the migrations take. */
const MIGRATION_LOCK = 2_029_001;

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly apply: (tx: Transaction) => Effect.Effect<unknown, DatabaseError>;
}

const statements =
  (...sql: ReadonlyArray<string>) =>
  (tx: Transaction) =>
    Effect.forEach(sql, (statement) => tx.query(statement), { discard: true });

export const MIGRATIONS: ReadonlyArray<Migration> = [
  {
    version: 1,
    name: "channels, tokens and the audit trail",
    apply: statements(
      `create table channels (id text primary key, position integer not null, body jsonb not null,
         revision bigint not null, updated_at timestamptz not null default now())`,
      "create sequence config_revision",
      "create table tokens (id text primary key, body jsonb not null, revision bigint not null)",
      `create table audit (id bigserial primary key, at timestamptz not null default now(), node text,
         actor text not null, action text not null, detail text not null, channel text, revision bigint)`,
    ),
  },
  {
    version: 2,
    name: "the fleet: nodes, leases, cue history and the peer token",
    apply: (tx) =>
      Effect.zipRight(
        statements(
          `create table nodes (id text primary key, url text not null, boot_id text not null,
             version text not null, started_at timestamptz not null, heartbeat_at timestamptz not null,
             draining boolean not null default false, load jsonb not null default '{}')`,
          `create table leases (channel text primary key references channels(id) on delete cascade,
             holder text, holder_boot text, term bigint not null default 0,
             expires_at timestamptz not null default '-infinity')`,
          `create table cues (id bigserial primary key, channel text not null, at timestamptz not null,
             node text, record jsonb not null)`,
          "create index cues_by_channel on cues (channel, id)",
          "create table cluster (key text primary key, value text not null)",
        )(tx),
        // The credential nodes show each other when one forwards a command to another.
        tx.query("insert into cluster (key, value) values ('peer_token', $1)", [
          randomBytes(32).toString("base64url"),
        ]),
      ),
  },
  {
    version: 3,
    name: "leases that cost what changes: one renewal per node, lease rows with their channels, lease notices",
    apply: statements(
      // A node renews all it holds by renewing itself: one row per node and renewal, whatever it holds.
      "alter table nodes add column lease_until timestamptz not null default '-infinity'",
      // Every change of a lease row (a new holder, a release) takes the next revision and names its channel
      // on `distributary_leases`: nodes read the rows that changed, not every row every time.
      "create sequence lease_revision",
      "alter table leases add column revision bigint not null default 0",
      "create index leases_by_revision on leases (revision)",
      "create index leases_by_holder on leases (holder)",
      `create function leases_revision() returns trigger language plpgsql as $$
       begin new.revision := nextval('lease_revision'); return new; end $$`,
      `create trigger leases_revision before insert or update on leases
       for each row execute function leases_revision()`,
      `create function leases_notify() returns trigger language plpgsql as $$
       begin perform pg_notify('${LEASE_CHANNEL}', coalesce(new.channel, old.channel)); return null; end $$`,
      `create trigger leases_notify after insert or update or delete on leases
       for each row execute function leases_notify()`,
      // A channel's lease row is made with it (free from that moment) and removed with it (on delete cascade).
      `create function channels_lease() returns trigger language plpgsql as $$
       begin
         insert into leases (channel, expires_at) values (new.id, now()) on conflict (channel) do nothing;
         return null;
       end $$`,
      `create trigger channels_lease after insert on channels
       for each row execute function channels_lease()`,
      "insert into leases (channel, expires_at) select id, now() from channels on conflict (channel) do nothing",
    ),
  },
  {
    version: 4,
    name: "notifications: the notifiers, their outbox, and which nodes the fleet told of as down",
    apply: statements(
      "create table notifiers (id text primary key, body jsonb not null, revision bigint not null)",
      // Each delivery is written here before it is attempted, by the node where its event happened, and
      // attempted by that node until it is delivered or given up; the last ones of each notifier stay, to be seen.
      `create table notifications (id text primary key, notifier text not null, node text not null,
         type text not null, payload jsonb not null, state text not null, attempts integer not null default 0,
         status integer, message text, created_at timestamptz not null default now(),
         next_at timestamptz, last_at timestamptz)`,
      "create index notifications_by_notifier on notifications (notifier, created_at)",
      "create index notifications_pending on notifications (node) where state = 'pending'",
      // A node's down or up is told once in the fleet: the node that flips this row first tells it.
      `create table node_states (node text primary key, down boolean not null default false,
         changed_at timestamptz not null default now())`,
    ),
  },
  {
    version: 5,
    name: "the schedule's progress: each occurrence's phase and actions done, written by the lease holder",
    apply: statements(
      `create table schedule_progress (channel text not null references channels(id) on delete cascade,
         key text not null, progress jsonb not null, updated_at timestamptz not null default now(),
         primary key (channel, key))`,
    ),
  },
  {
    version: 6,
    name: "access rules, and how each audit row's actor proved who it is",
    apply: statements(
      // One row holds the whole list (src/effects/control/access-rules.ts): a change is one revision and notice.
      "create table access_rules (id text primary key, body jsonb not null, revision bigint not null)",
      // A local token, a page session, a JWT or a peer; and for a person, their subject and provider.
      "alter table audit add column actor_via text, add column actor_subject text, add column actor_issuer text",
    ),
  },
  {
    version: 7,
    name: "the pages' sessions of people signed in through the identity provider, served by every node",
    apply: statements(
      `create table person_sessions (id_hash text primary key, subject text not null, claims jsonb not null,
         id_token text not null, created_at timestamptz not null, last_seen timestamptz not null)`,
      "create index person_sessions_by_last_seen on person_sessions (last_seen)",
    ),
  },
  {
    version: 8,
    name: "the pages' sessions of token logins, served by every node",
    apply: statements(
      // The token's sha256 (as the tokens table keeps it), never the token: each node checks it again.
      `create table token_sessions (id_hash text primary key, token_sha256 text not null,
         created_at timestamptz not null default now(), last_seen timestamptz not null)`,
      "create index token_sessions_by_last_seen on token_sessions (last_seen)",
    ),
  },
  {
    version: 9,
    name: "the cut a holder hands over with its lease (docs/fleet.md, hitless moves and drains)",
    // Expand only: a node of the previous release neither reads nor writes it, and its releases leave the
    // column as it was (the term in the cut tells the next holder it is not of this hand-over).
    apply: statements("alter table leases add column if not exists cut jsonb"),
  },
  {
    version: 10,
    name: "what of the configuration each node's release reads (node_reads), so that a newer node does not write what an older one cannot read",
    // Expand only: a node of the previous release neither reads nor writes it, and so reads none of it.
    apply: statements(
      `create table node_reads (node text primary key, reads jsonb not null,
         updated_at timestamptz not null default now())`,
    ),
  },
];

export const LATEST_VERSION = MIGRATIONS.reduce(
  (latest, migration) => Math.max(latest, migration.version),
  0,
);

class SchemaTooNew extends Schema.TaggedError<SchemaTooNew>()("SchemaTooNew", {
  message: Schema.String,
}) {}

/**
 * A schema newer than this build: refused when a newer version took something away or was recorded before
 * versions said whether they only added; else this node runs on it, and says so once (`first`).
 */
const newerSchema = (tx: Transaction, version: number, first: boolean) =>
  Effect.gen(function* () {
    const blocking = yield* tx.query<{ version: number; name: string }>(
      "select version, name from schema_migrations where version > $1 and expand_only is not true order by version",
      [LATEST_VERSION],
    );
    if (blocking.length > 0)
      return yield* new SchemaTooNew({
        message:
          `the database's schema is at version ${version}, newer than this distributary knows ` +
          `(${LATEST_VERSION}), and version ${blocking.map((row) => `${row.version} (${row.name})`).join(", ")} ` +
          "did more than add: a newer distributary has used it. Start this node with that version or a later " +
          "one; an older one must not write to it",
      });
    if (first)
      yield* Effect.logInfo(
        `database schema at version ${version}, newer than this distributary's ${LATEST_VERSION}: the versions ` +
          "after it only added (expand-only), so this node runs on it, as a fleet being rolled to a newer " +
          "release does",
      );
  });

const currentVersion = (tx: Transaction) =>
  Effect.gen(function* () {
    yield* tx.query(
      `create table if not exists schema_migrations (version integer primary key, name text not null,
         applied_at timestamptz not null default now())`,
    );
    // Null for versions recorded before it was kept (all of them expand-only, but an older build cannot know).
    yield* tx.query("alter table schema_migrations add column if not exists expand_only boolean");
    const rows = yield* tx.query<{ version: number | null }>(
      "select max(version) as version from schema_migrations",
    );
    return rows[0]?.version ?? 0;
  });

/**
 * Brings the schema to `target` (the latest by default), one version per transaction. Returns the versions it
 * applied (none when another node had applied them).
 */
export const migrate = (db: DatabaseShape, target = LATEST_VERSION) =>
  Effect.gen(function* () {
    const applied: number[] = [];
    for (const migration of MIGRATIONS) {
      if (migration.version > target) break;
      const ran = yield* db.transaction((tx) =>
        Effect.gen(function* () {
          yield* tx.query("select pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
          const version = yield* currentVersion(tx);
          if (version > LATEST_VERSION) yield* newerSchema(tx, version, migration.version === 1);
          if (version >= migration.version) return false;
          const ran: string[] = [];
          yield* migration.apply({
            query: (sql, values) => {
              ran.push(sql);
              return tx.query(sql, values);
            },
          });
          yield* tx.query("insert into schema_migrations (version, name, expand_only) values ($1, $2, $3)", [
            migration.version,
            migration.name,
            ran.every((sql) => contractions(sql).length === 0),
          ]);
          return true;
        }),
      );
      if (ran) applied.push(migration.version);
    }
    return applied;
  }).pipe(Effect.withSpan("Database.migrate"));

/** The schema's version now (0 for an empty database). */
export const schemaVersion = (db: DatabaseShape) =>
  db.transaction((tx) =>
    Effect.zipRight(tx.query("select pg_advisory_xact_lock($1)", [MIGRATION_LOCK]), currentVersion(tx)),
  );
