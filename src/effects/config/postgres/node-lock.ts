/**
 * One process per node id: a node holds a session-level advisory lock keyed by its id, on a connection of its
 * own, for as long as it runs, and takes it before it registers and before any channel binds its inputs. A
 * second process started with the same id (a unit started twice, a restart script that does not wait) finds
 * it taken, says so and exits, without registering: the live node's row, boot id and leases stay as they are,
 * so it neither drops nor takes anything again.
 *
 * A lock left by a process that is gone is not in the way for long: the server ends a connection whose peer
 * stopped answering within about 10 s (its keepalives are set short on this connection), and a starting node
 * that finds the lock held by a node whose lease ran out (its process died with its host, the server not yet
 * aware) ends that backend and takes the lock. While the live node runs, a lock connection it loses (a cut, a
 * restart of PostgreSQL) is taken again in the background; losing it never stops anything.
 */
import * as Effect from "effect/Effect";
import * as Redacted from "effect/Redacted";
import * as Schedule from "effect/Schedule";
import pg from "pg";
import type { DatabaseShape } from "./database.ts";

/** The first half of every node lock's key: the second is the node id's hash. */
const NODE_LOCK_CLASS = 2_029_064;
/** Whoever holds a node's lock names itself so, in pg_stat_activity. */
const applicationName = (node: string) => `distributary node ${node}`.slice(0, 63);

/** Why this process does not start: another one runs as the node. */
export class NodeTaken extends Error {
  override readonly name = "NodeTaken";
}

const connect = async (url: string, node: string): Promise<pg.Client> => {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: 1000,
    query_timeout: 2000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 2000,
    application_name: applicationName(node),
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
    // The server ends this session about 10 s after its peer stops answering, which releases the lock.
    await client.query(
      "set tcp_keepalives_idle = 4; set tcp_keepalives_interval = 2; set tcp_keepalives_count = 3",
    );
    return client;
  } catch (cause) {
    client.end().catch(() => undefined);
    throw cause;
  }
};

const tryLock = async (client: pg.Client, node: string): Promise<boolean> => {
  const { rows } = await client.query("select pg_try_advisory_lock($1, hashtext($2)) as taken", [
    NODE_LOCK_CLASS,
    node,
  ]);
  return rows[0]?.taken === true;
};

/** Who holds node `node`'s lock now, and whether that node's lease (its heartbeat) still runs. */
const holderOf = async (db: DatabaseShape, node: string) => {
  const rows = await Effect.runPromise(
    db.query<{ pid: number; application_name: string; client: string | null; live: boolean | null }>(
      `select a.pid, a.application_name, a.client_addr::text as client,
         (select n.lease_until > now() from nodes n where n.id = $2) as live
       from pg_locks l join pg_stat_activity a on a.pid = l.pid
       where l.locktype = 'advisory' and l.granted and l.classid = $1 and l.objid = hashtext($2)::oid
         and l.objsubid = 2 and l.database = (select oid from pg_database where datname = current_database())`,
      [NODE_LOCK_CLASS, node],
    ),
  );
  return rows[0];
};

/**
 * Takes node `node`'s lock for as long as the scope lasts, or fails with NodeTaken when a live process of that
 * id holds it. A holder whose node lease ran out is ended first. Another node whose id hashes alike (a hash of
 * 32 bits) is not taken for this one: the lock is then left to it, and this node runs without one.
 */
export const holdNodeLock = (db: DatabaseShape, url: Redacted.Redacted<string>, node: string) =>
  Effect.gen(function* () {
    const text = Redacted.value(url);
    let client: pg.Client | null = null;
    let closed = false;
    let warned = false;
    const takeOnce = async (): Promise<"taken" | "someone else's"> => {
      const fresh = await connect(text, node);
      let keep = false;
      try {
        const kept = () => {
          keep = true;
          client = fresh;
          fresh.once("end", () => {
            if (client === fresh) client = null;
          });
          return "taken" as const;
        };
        if (await tryLock(fresh, node)) return kept();
        const holder = await holderOf(db, node);
        if (holder !== undefined && holder.application_name !== applicationName(node))
          return "someone else's";
        if (holder !== undefined && holder.live === false) {
          await Effect.runPromise(db.query("select pg_terminate_backend($1)", [holder.pid]));
          if (await tryLock(fresh, node)) return kept();
        }
        const from = holder?.client == null ? "" : ` from ${holder.client}`;
        throw new NodeTaken(
          `another process is running as node ${node} (it holds the node's lock in the database${from}): ` +
            "this one stops without registering, so as not to disturb it. Stop that process first, or give " +
            "this one another DISTRIBUTARY_NODE_ID",
        );
      } finally {
        if (!keep) fresh.end().catch(() => undefined);
      }
    };

    // A process of this id killed a moment ago may still hold it while its backend ends: tried for 2 s.
    const takeAtStart = async () => {
      const until = performance.now() + 2000;
      for (;;) {
        try {
          return await takeOnce();
        } catch (cause) {
          if (!(cause instanceof NodeTaken) || performance.now() > until) throw cause;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    };
    const first = yield* Effect.tryPromise({ try: takeAtStart, catch: (cause) => cause }).pipe(
      Effect.catchAll((cause) =>
        cause instanceof NodeTaken
          ? Effect.zipRight(
              Effect.logError(`fleet: ${cause.message}`),
              Effect.sync(() => {
                // The service's own exit code for it: a supervisor's log tells it from a crash.
                process.exitCode = 3;
              }),
            ).pipe(Effect.zipRight(Effect.dieMessage(cause.message)))
          : Effect.logWarning(
              `fleet: node ${node} could not take its lock in the database (${String(cause)}): it starts without it, and takes it when the database answers`,
            ).pipe(Effect.as("later" as const)),
      ),
    );
    if (first === "someone else's")
      yield* Effect.logWarning(
        `fleet: node ${node}'s lock in the database is held by another node whose id hashes alike: it runs without one`,
      );
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        closed = true;
        await (client as pg.Client | null)?.end().catch(() => undefined);
      }).pipe(Effect.timeout("1 second"), Effect.ignore),
    );
    if (first === "someone else's") return;
    // Lost with its connection (a cut, PostgreSQL restarted): taken again, never by stopping anything.
    yield* Effect.forkScoped(
      Effect.promise(async () => {
        if (closed || client !== null) return;
        const again = await takeOnce().catch((cause: unknown) => cause);
        const taken = again instanceof NodeTaken;
        const first = taken && !warned;
        warned = taken;
        return first;
      }).pipe(
        Effect.flatMap((first) =>
          first
            ? Effect.logError(
                `fleet: node ${node} lost its lock in the database and another process holds it now: it goes on as it is`,
              )
            : Effect.void,
        ),
        Effect.repeat(Schedule.spaced("2 seconds")),
      ),
    );
  });
