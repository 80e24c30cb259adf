/**
 * The fleet's PostgreSQL as one service: a small pool for statements and transactions, and one client of its own
 * that LISTENs for configuration changes.
 *
 * Every wait is short on purpose: a node cut off from the database must learn it within about two seconds
 * (connecting gives up after one, a statement after two), because the fleet's coordinator decides from that
 * whether to keep sending. A notification can be lost while the listening client is disconnected; after each
 * reconnection the stream says `{reconnected: true}`, and whoever listens reloads in full instead.
 *
 * The URL's password and the fleet's peer token are held as secrets (secrets.ts), so no log line shows them;
 * the errors here also replace the password themselves, as it may be too short for the masker to hold.
 */
import * as Context from "effect/Context";
import * as Duration from "effect/Duration";
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import * as PubSub from "effect/PubSub";
import * as Redacted from "effect/Redacted";
import * as Schedule from "effect/Schedule";
import * as Schema from "effect/Schema";
import * as Stream from "effect/Stream";
import pg from "pg";
import { holdSecrets } from "../secrets.ts";

/**
 * The database could not be reached, or the connection broke, or a statement ran out of time. `unconfirmed`:
 * it was the COMMIT that got no answer, so the transaction may have been carried out all the same.
 */
export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>()("DatabaseUnavailable", {
  message: Schema.String,
  unconfirmed: Schema.optional(Schema.Boolean),
}) {}

/** The database answered and refused a statement (a constraint, a lock, a bad statement): `code` is SQLSTATE. */
class DatabaseRefused extends Schema.TaggedError<DatabaseRefused>()("DatabaseRefused", {
  code: Schema.String,
  message: Schema.String,
}) {}

export type DatabaseError = DatabaseUnavailable | DatabaseRefused;

export const CONFIG_CHANNEL = "distributary_config";

/** What a NOTIFY on `distributary_config` says: which document changed, its newest revision and who wrote it. */
export interface ConfigNotice {
  readonly document: "channels" | "tokens" | "notifiers" | "access_rules";
  readonly revision: number;
  readonly node: string | null;
}
/** A lease row changed (`distributary_leases`, sent by the table's trigger): the channel it is for. */
export interface LeaseNotice {
  readonly lease: string;
}
export const LEASE_CHANNEL = "distributary_leases";
/** A node registered, or its drain flag changed (`distributary_nodes`): its id. */
export interface NodeNotice {
  readonly node_changed: string;
}
export const NODE_CHANNEL = "distributary_nodes";
export type StoreNotice = ConfigNotice | LeaseNotice | NodeNotice | { readonly reconnected: true };

export type Row = Record<string, unknown>;

/** Statements inside one transaction. */
export interface Transaction {
  readonly query: <R extends Row = Row>(
    sql: string,
    values?: ReadonlyArray<unknown>,
  ) => Effect.Effect<ReadonlyArray<R>, DatabaseError>;
}

/** A Promise-shaped connection for code written against pg directly (such as the fleet's lease statements). */
export interface Queryable {
  query(text: string, values?: ReadonlyArray<unknown>): Promise<{ readonly rows: ReadonlyArray<Row> }>;
}

export interface DatabaseShape extends Transaction {
  /** Runs `body` between BEGIN and COMMIT; any failure (its own or the database's) rolls back. */
  readonly transaction: <A, E>(
    body: (tx: Transaction) => Effect.Effect<A, E>,
  ) => Effect.Effect<A, E | DatabaseError>;
  /** The same pool as Promises; a failure rejects with DatabaseUnavailable or DatabaseRefused. */
  readonly queryable: Queryable;
  /**
   * Notifications on `distributary_config`, `distributary_leases` and `distributary_nodes`, and
   * `{reconnected: true}` after each reconnection.
   */
  readonly notices: Stream.Stream<StoreNotice>;
  /** Whether the latest statement (or the listening client's latest check) succeeded. */
  readonly reachable: () => boolean;
  /**
   * Whether the database answers `select 1` within `timeoutMs`, on connections of its own: a statement of the
   * pool's waiting on a lock, or a pool whose every connection waits, must not make a reachable database look
   * down to the fleet's guard (a peer that said "down" then let a node cut off keep sending).
   */
  readonly reach: (timeoutMs: number) => Promise<boolean>;
  /** The URL with its password replaced, for messages. */
  readonly display: string;
}

export class Database extends Context.Tag("distributary/Database")<Database, DatabaseShape>() {}

/** Connecting gives up after this long: a cut-off network answers nothing at all. */
const CONNECT_TIMEOUT_MS = 1000;
/** A statement gives up after this long (client side too: a cut-off network never answers). */
const STATEMENT_TIMEOUT_MS = 2000;
/** How often the listening client proves its connection alive (a cut connection may stay silent for hours). */
const LISTEN_CHECK = Duration.seconds(2);

/** A postgres:// URL with its password replaced by ****, for messages and printing. */
export const displayUrl = (url: string): string => {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "****";
    return parsed.toString();
  } catch {
    return "the database URL (it does not parse as a URL)";
  }
};

const passwordOf = (url: string): string => {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return "";
  }
};

/**
 * Closes a connection (or the pool) without waiting more than a second: ending waits for the server's goodbye,
 * which a cut network or a stopped server never sends.
 */
const endWithin = (end: () => Promise<void>) =>
  Effect.promise(() => end().catch(() => undefined)).pipe(Effect.timeout("1 second"), Effect.ignore);

/** The SQLSTATE classes of a database that is there but cannot serve: starting, stopping, out of connections. */
const unavailableCodes = /^(08|53|57P|3D000)/;

const makeDatabase = (url: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    const text = Redacted.value(url);
    const password = passwordOf(text);
    holdSecrets("database:password", password === "" ? [] : [password]);
    const display = displayUrl(text);
    const clean = (message: string) => (password === "" ? message : message.split(password).join("****"));
    const classify = (cause: unknown): DatabaseError => {
      const error = cause instanceof Error ? cause : new Error(String(cause));
      const code = "code" in error && typeof error.code === "string" ? error.code : "";
      // pg's own errors (no SQLSTATE) are the network's: refused, reset, timed out.
      if (/^[0-9A-Z]{5}$/.test(code) && !unavailableCodes.test(code)) {
        return new DatabaseRefused({ code, message: clean(error.message) });
      }
      return new DatabaseUnavailable({
        message: `the database (${display}) cannot be reached: ${clean(error.message || code || "no answer")}`,
      });
    };

    const settings: pg.PoolConfig = {
      connectionString: text,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: STATEMENT_TIMEOUT_MS,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      idle_in_transaction_session_timeout: 4 * STATEMENT_TIMEOUT_MS,
      keepAlive: true,
      application_name: "distributary",
    };
    const pool = new pg.Pool({ ...settings, max: 5, idleTimeoutMillis: 30_000 });
    // An idle client whose connection breaks reports it here; without a listener it would end the process.
    pool.on("error", () => {
      reachable = false;
    });
    yield* Effect.addFinalizer(() => endWithin(() => pool.end()));
    // Two, so that the answer to a peer and the guard's own check never wait for each other. A `select 1` that
    // has not answered in a second takes its connection with it (the pool discards a client whose query failed).
    const reachPool = new pg.Pool({
      ...settings,
      query_timeout: CONNECT_TIMEOUT_MS,
      max: 2,
      idleTimeoutMillis: 30_000,
    });
    reachPool.on("error", () => undefined);
    yield* Effect.addFinalizer(() => endWithin(() => reachPool.end()));
    const reach = (timeoutMs: number) =>
      new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs);
        reachPool.query("select 1").then(
          () => {
            clearTimeout(timer);
            resolve(true);
          },
          () => {
            clearTimeout(timer);
            resolve(false);
          },
        );
      });

    let reachable = false;
    /** Every statement goes through here, so `reachable` is the latest one's outcome. */
    const run = async <R extends Row>(
      client: pg.Pool | pg.PoolClient | pg.Client,
      sql: string,
      values?: ReadonlyArray<unknown>,
    ): Promise<ReadonlyArray<R>> => {
      try {
        const result = await client.query<R>(sql, values === undefined ? undefined : [...values]);
        reachable = true;
        return result.rows;
      } catch (cause) {
        const error = classify(cause);
        if (error._tag === "DatabaseUnavailable") reachable = false;
        throw error;
      }
    };
    const runOn =
      (client: pg.Pool | pg.PoolClient) =>
      <R extends Row = Row>(sql: string, values?: ReadonlyArray<unknown>) =>
        Effect.tryPromise({
          try: () => run<R>(client, sql, values),
          catch: (error) => error as DatabaseError,
        });

    // The pool listens for errors of idle clients only: a checked-out client whose connection breaks (the
    // server stopped mid-transaction) reports it to its own listeners, and with none it would end the process.
    // Its statement fails as well, and says so.
    const brokenWhileOut = () => {
      reachable = false;
    };
    const transaction = <A, E>(body: (tx: Transaction) => Effect.Effect<A, E>) =>
      Effect.acquireUseRelease(
        Effect.tryPromise({ try: () => pool.connect(), catch: classify }).pipe(
          Effect.tap((client) => Effect.sync(() => client.on("error", brokenWhileOut))),
          Effect.tapError(() =>
            Effect.sync(() => {
              reachable = false;
            }),
          ),
        ),
        (client) =>
          Effect.gen(function* () {
            const query = runOn(client);
            yield* query("begin");
            const result = yield* body({ query });
            yield* query("commit").pipe(
              Effect.mapError((error) =>
                error instanceof DatabaseUnavailable
                  ? new DatabaseUnavailable({ message: error.message, unconfirmed: true })
                  : error,
              ),
            );
            return result;
          }).pipe(
            // A connection that stopped answering is not asked to roll back (that would wait its own timeout):
            // discarding it ends the session, which rolls the transaction back on the server.
            Effect.tapError((error) =>
              error instanceof DatabaseUnavailable
                ? Effect.void
                : Effect.promise(() => client.query("rollback").catch(() => undefined)),
            ),
          ),
        // A client whose transaction failed is discarded, not reused: its connection may be the broken part.
        (client, exit) =>
          Effect.sync(() => {
            // A discarded client keeps the listener for whatever its closing connection still reports.
            if (exit._tag === "Failure") return client.release(true);
            client.removeListener("error", brokenWhileOut);
            client.release();
          }),
      );

    const notices = yield* PubSub.sliding<StoreNotice>(1024);
    yield* Effect.forkScoped(listen(settings, notices, classify, (client) => run(client, "select 1")));

    return Database.of({
      query: runOn(pool),
      transaction,
      queryable: { query: async (sql, values) => ({ rows: await run(pool, sql, values) }) },
      notices: Stream.fromPubSub(notices),
      reachable: () => reachable,
      reach,
      display,
    });
  });

const parseNotice = (payload: string | undefined): ConfigNotice | undefined => {
  try {
    const notice = JSON.parse(payload ?? "") as Partial<ConfigNotice>;
    return (notice.document === "channels" ||
      notice.document === "tokens" ||
      notice.document === "notifiers" ||
      notice.document === "access_rules") &&
      typeof notice.revision === "number"
      ? { document: notice.document, revision: notice.revision, node: notice.node ?? null }
      : undefined;
  } catch {
    return undefined;
  }
};

/**
 * One listening connection at a time, checked every two seconds; when it fails, the next is tried after a
 * growing pause (0.1 s doubling up to 2 s), and `{reconnected: true}` follows each success but the first.
 */
const listen = (
  settings: pg.ClientConfig,
  notices: PubSub.PubSub<StoreNotice>,
  classify: (cause: unknown) => DatabaseError,
  check: (client: pg.Client) => Promise<unknown>,
) => {
  let connections = 0;
  const session = Effect.acquireUseRelease(
    Effect.tryPromise({
      try: async () => {
        const client = new pg.Client(settings);
        // Errors of a broken connection also come as events; the checks below notice and end the session.
        client.on("error", () => undefined);
        // Before LISTEN, so that nothing heard once it is on goes unhandled.
        client.on("notification", (message) => {
          const notice =
            message.channel === LEASE_CHANNEL
              ? { lease: message.payload ?? "" }
              : message.channel === NODE_CHANNEL
                ? { node_changed: message.payload ?? "" }
                : parseNotice(message.payload);
          if (notice !== undefined) notices.unsafeOffer(notice);
        });
        try {
          await client.connect();
          await client.query(`listen ${CONFIG_CHANNEL}; listen ${LEASE_CHANNEL}; listen ${NODE_CHANNEL}`);
        } catch (cause) {
          // Not awaited: a half-open connection may never confirm its end.
          client.end().catch(() => undefined);
          throw cause;
        }
        return client;
      },
      catch: classify,
    }),
    (client) =>
      Effect.gen(function* () {
        connections += 1;
        if (connections > 1) yield* PubSub.publish(notices, { reconnected: true });
        const ended = Effect.async<void>((resume) => {
          client.once("end", () => resume(Effect.void));
        });
        const checks = Effect.tryPromise(() => check(client)).pipe(
          Effect.delay(LISTEN_CHECK),
          Effect.forever,
        );
        yield* Effect.raceFirst(ended, checks.pipe(Effect.ignore));
      }),
    (client) => endWithin(() => client.end()),
  );
  return session.pipe(
    Effect.ignore,
    Effect.repeat(
      Schedule.exponential("100 millis").pipe(
        Schedule.union(Schedule.spaced("2 seconds")),
        Schedule.resetAfter("10 seconds"),
      ),
    ),
  );
};

/** Database as a layer: the pool and the listener live as long as it does. */
export const layerDatabase = (url: Redacted.Redacted<string>): Layer.Layer<Database> =>
  Layer.scoped(Database, makeDatabase(url));
