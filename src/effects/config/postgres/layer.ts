/**
 * The fleet's store as one layer: the Database (pool and listener), its schema brought up to date before
 * anything reads it, the DocumentStore over it, and StoreChanges from its notifications. The service chooses
 * it when `DISTRIBUTARY_DATABASE_URL` is set (src/http/server.ts).
 */
import { hostname } from "node:os";
import * as Duration from "effect/Duration";
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import * as Option from "effect/Option";
import * as Redacted from "effect/Redacted";
import * as Schedule from "effect/Schedule";
import { holdSecrets } from "../secrets.ts";
import { nodeId } from "../settings.ts";
import { StoreChanges } from "../store-changes.ts";
import { Database, type DatabaseShape, type DatabaseUnavailable, layerDatabase } from "./database.ts";
import { layerPostgresStore } from "./document-store.ts";
import { migrate } from "./migrations.ts";
import { holdNodeLock } from "./node-lock.ts";
import { layerNodeReads } from "./node-reads.ts";

/** The credential nodes show each other (made by migration 2), held as a secret so no text shows it. */
export const peerToken = (db: DatabaseShape) =>
  db.query<{ value: string }>("select value from cluster where key = 'peer_token'").pipe(
    Effect.map((rows) => {
      const value = rows[0]?.value ?? "";
      holdSecrets("database:peer-token", value === "" ? [] : [value]);
      return Redacted.make(value);
    }),
  );

/**
 * How long a fleet node starting waits for a database that does not answer yet (a cluster started all at once)
 * before it gives up; a supervisor (systemd, Kubernetes) starts it again after.
 */
export const DATABASE_START_WAIT_MS = 60_000;

/**
 * `effect`, a step of a service starting, tried again while the database does not answer (it is starting, or a
 * connection took longer than the second it is given, as on a loaded machine), for up to `waitMs` after the
 * step began, saying so each time; with `waitMs` 0 (a command) it fails at once. Other failures are not retried.
 */
export const whileStarting =
  (waitMs: number) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
    // By its tag: the statements made as Promises (the fleet's) fail with the error itself, not an Effect's.
    const unavailable = (error: E): error is E & DatabaseUnavailable =>
      waitMs > 0 &&
      typeof error === "object" &&
      error !== null &&
      "_tag" in error &&
      error._tag === "DatabaseUnavailable";
    return effect.pipe(
      Effect.tapError((error) =>
        unavailable(error)
          ? Effect.logWarning(`${error.message}; trying again (for up to ${waitMs / 1000} s after the start)`)
          : Effect.void,
      ),
      Effect.retry({
        schedule: Schedule.exponential("200 millis").pipe(
          Schedule.union(Schedule.spaced("5 seconds")),
          Schedule.upTo(Duration.millis(waitMs)),
        ),
        while: unavailable,
      }),
    );
  };

/**
 * The schema brought up to date and the peer token read. A service starting (`waitMs` > 0) waits that long for
 * a database that does not answer yet (nodes started together with it, or all at once on a loaded machine,
 * whose first connections time out), saying so; a command fails at once.
 */
const migrated = (waitMs: number) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const db = yield* Database;
      const applied = yield* migrate(db);
      if (applied.length > 0)
        yield* Effect.logInfo(`database schema brought to version ${applied.join(", ")}`);
      yield* peerToken(db);
    }).pipe(whileStarting(waitMs)),
  );

const Changes = Layer.effect(
  StoreChanges,
  Effect.map(Database, (db) => ({ changes: db.notices })),
);

/**
 * Database, DocumentStore and StoreChanges over the PostgreSQL at `url`; audit rows name this node
 * (`DISTRIBUTARY_NODE_ID`, else the host's name), or `options.node` (null: no node, as for an import).
 * `options.waitMs`: how long a starting service waits for a database that does not answer yet.
 * `options.holdNode`: a node of the fleet starting: it takes its node's lock (node-lock.ts) once the schema is
 * up to date, before anything else uses the layer, and refuses to start while another process holds it.
 */
export const layerPostgres = (
  url: Redacted.Redacted<string>,
  options: { readonly node?: string | null; readonly waitMs?: number; readonly holdNode?: boolean } = {},
) =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const node =
        options.node !== undefined ? options.node : Option.getOrElse(yield* nodeId, () => hostname());
      const schema = migrated(options.waitMs ?? 0);
      // The node's lock once the schema is there (it reads the nodes), before the store serves anything.
      const ready =
        options.holdNode === true && node !== null
          ? Layer.scopedDiscard(Effect.flatMap(Database, (db) => holdNodeLock(db, url, node))).pipe(
              Layer.provide(schema),
            )
          : schema;
      // A node of the fleet says what of the configuration it reads, and asks the others before it writes.
      const reads = options.holdNode === true && node !== null ? layerNodeReads(node) : Layer.empty;
      return Layer.mergeAll(layerPostgresStore(node), Changes, reads).pipe(
        Layer.provide(ready),
        Layer.provideMerge(layerDatabase(url)),
      );
    }),
  );
