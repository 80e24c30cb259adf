/**
 * One lease per channel in PostgreSQL: who runs its outputs (holder, and the holder's boot id), until when,
 * and a term that grows at every change of holder (the fencing token). Every function is one statement, so
 * each is atomic on its own, and every time is the database server's (now()): nodes' clocks may disagree,
 * the database's is the one they share. The coordinator keeps its own deadlines on its monotonic clock.
 *
 * The compare-and-set statements are plain UPDATEs under READ COMMITTED: when two nodes update the same row
 * at once, the second waits for the first and then checks its WHERE again against the row the first wrote,
 * so exactly one of them matches. `db` is the store's `Database.queryable`; a pg Pool or Client also fits.
 */
import type { Queryable } from "../config/postgres/database.ts";

/** The terms a node holds, by channel id. */
export type HeldTerms = ReadonlyMap<string, number>;

export interface LeaseRow {
  readonly channel: string;
  /** The node that holds it; null when nobody does (never held, or released). */
  readonly holder: string | null;
  /** The holder's boot id when it took the lease: another boot id on its node row means it restarted. */
  readonly holderBoot: string | null;
  readonly term: number;
  /**
   * ms until it expires unless renewed, by the database's clock; negative once expired (minus the ms since it
   * expired or was released). −Infinity for a row nobody has held since it was created by someone else than
   * `ensureLeases` (which stamps such rows with the time it first sees them).
   */
  readonly expiresInMs: number;
}

/** `$n` as an interval of that many milliseconds. */
const ms = (n: number): string => `($${n}::double precision * interval '1 millisecond')`;

/**
 * Gives every channel a lease row. A new row is free from now on (its expiry is now()), so the ranking's
 * delays (`shouldTry`) count from the moment the channel appeared; a row another writer created with the
 * column's default ('-infinity', never held) gets the same stamp. Returns how many rows it added or stamped.
 * With every row there, both statements only read: no row is locked and nothing is written to the WAL (an
 * `insert … on conflict do update` locked, and logged, every existing row at every call).
 */
export const ensureLeases = async (db: Queryable): Promise<number> => {
  const added = await db.query(
    `insert into leases (channel, expires_at)
     select c.id, now() from channels c where not exists (select 1 from leases l where l.channel = c.id)
     on conflict (channel) do nothing
     returning channel`,
  );
  const stamped = await db.query(
    `update leases set expires_at = now() where holder is null and expires_at = '-infinity' returning channel`,
  );
  return added.rows.length + stamped.rows.length;
};

/**
 * Renews, in one statement, every lease this node holds with the term it holds. It does not require the
 * lease to be unexpired: after a database outage every lease has expired by the database's clock, and a
 * holder that kept sending gets its leases back as long as nobody took them (taking one raises its term).
 * Returns the channels (and terms) still this node's: a channel of `held` missing from the answer is lost,
 * and its outputs must stop at once.
 */
export const renewAll = async (
  db: Queryable,
  me: string,
  bootId: string,
  ttlMs: number,
  held: HeldTerms,
): Promise<Map<string, number>> => {
  if (held.size === 0) return new Map();
  const { rows } = await db.query(
    `update leases set expires_at = now() + ${ms(3)}
     from unnest($4::text[], $5::bigint[]) as mine (channel, term)
     where leases.channel = mine.channel and leases.term = mine.term
       and leases.holder = $1 and leases.holder_boot = $2
     returning leases.channel, leases.term`,
    [me, bootId, ttlMs, [...held.keys()], [...held.values()]],
  );
  return new Map(rows.map((row) => [String(row.channel), Number(row.term)]));
};

/** The one statement that hands a lease to `me` with the next term, when `condition` holds of the row. */
const take = async (
  db: Queryable,
  condition: string,
  values: ReadonlyArray<unknown>,
): Promise<number | null> => {
  const { rows } = await db.query(
    `update leases set holder = $1, holder_boot = $2, term = term + 1, expires_at = now() + ${ms(3)}
     where channel = $4 and (${condition})
     returning term`,
    values,
  );
  return rows[0] === undefined ? null : Number(rows[0].term);
};

/**
 * Takes a lease nobody holds or whose holder let it expire. Returns the new term, or null when the lease is
 * held (another node got it first, or its holder renewed it) or the channel has no lease row.
 */
export const acquire = (
  db: Queryable,
  me: string,
  bootId: string,
  channel: string,
  ttlMs: number,
): Promise<number | null> => take(db, "holder is null or expires_at <= now()", [me, bootId, ttlMs, channel]);

/**
 * The fast takeover, when the holder's process is gone (its port refuses, or its node row shows a new boot
 * id): takes the lease before it expires, only if `oldHolder` still holds it with `oldTerm`. Returns the new
 * term, or null when the lease changed since it was read.
 */
export const takeOver = (
  db: Queryable,
  me: string,
  bootId: string,
  channel: string,
  oldHolder: string,
  oldTerm: number,
  ttlMs: number,
): Promise<number | null> =>
  take(db, "holder = $5 and term = $6", [me, bootId, ttlMs, channel, oldHolder, oldTerm]);

/**
 * Gives a lease up (a stop or a drain): nobody holds it from now on, so a standby acquires it at its next try,
 * the best-ranked first. Only if this node still holds it with `term`; returns whether it did. The term stays:
 * the next holder's is one more.
 */
export const release = async (db: Queryable, me: string, channel: string, term: number): Promise<boolean> => {
  const { rows } = await db.query(
    `update leases set holder = null, holder_boot = null, expires_at = now()
     where channel = $2 and holder = $1 and term = $3
     returning channel`,
    [me, channel, term],
  );
  return rows.length === 1;
};

/**
 * An operator's move: the holder gives its lease straight to node `to` (whose boot id it names) with the next
 * term, after it stopped its outputs; `to` finds itself the holder at its next reading and starts them.
 * Only if `me` still holds it with `term`; returns the new term, or null.
 */
export const handOver = (
  db: Queryable,
  me: string,
  term: number,
  channel: string,
  to: string,
  toBoot: string,
  ttlMs: number,
): Promise<number | null> => take(db, "holder = $5 and term = $6", [to, toBoot, ttlMs, channel, me, term]);

const LEASE_COLUMNS = `channel, holder, holder_boot, term,
  ((extract(epoch from expires_at) - extract(epoch from now())) * 1000)::double precision as expires_in_ms`;

const leaseRow = (row: Record<string, unknown>): LeaseRow => ({
  channel: String(row.channel),
  holder: row.holder === null ? null : String(row.holder),
  holderBoot: row.holder_boot === null ? null : String(row.holder_boot),
  term: Number(row.term),
  expiresInMs: Number(row.expires_in_ms),
});

/** Every lease, by channel id. */
export const leases = async (db: Queryable): Promise<ReadonlyArray<LeaseRow>> => {
  const { rows } = await db.query(`select ${LEASE_COLUMNS} from leases order by channel`);
  return rows.map(leaseRow);
};

/** One channel's lease as it is now, or undefined when the channel has none yet. */
export const lease = async (db: Queryable, channel: string): Promise<LeaseRow | undefined> => {
  const { rows } = await db.query(`select ${LEASE_COLUMNS} from leases where channel = $1`, [channel]);
  return rows[0] === undefined ? undefined : leaseRow(rows[0]);
};

/** How long each standby waits after the one ranked before it, so that they do not race for a free lease. */
export const RANK_STEP_MS = 1000;

/**
 * Who should take a channel, best first: the channel's nodes in their order of preference, or every node by
 * id when it lists none; only live nodes, never a draining one. The holder, when it is live, comes last: it
 * takes its own channel again (after a restart) only when no other node does, as when it is the channel's
 * only node. Its standbys are this ranking without the holder.
 */
export const candidates = (
  channelNodes: ReadonlyArray<string> | undefined,
  liveNodes: ReadonlyArray<{ readonly id: string; readonly draining: boolean }>,
  holder: string | null,
): ReadonlyArray<string> => {
  const eligible = new Set(liveNodes.filter((node) => !node.draining).map((node) => node.id));
  const order = channelNodes === undefined || channelNodes.length === 0 ? [...eligible].sort() : channelNodes;
  const ranked = order.filter((id) => eligible.has(id) && id !== holder);
  return holder !== null && order.includes(holder) && eligible.has(holder) ? [...ranked, holder] : ranked;
};

/**
 * Whether `me` should try to acquire a free lease now: the best-ranked at once, the next `RANK_STEP_MS`
 * after, and so on, counted from when the lease expired or was released (minus its `expiresInMs`). A node
 * not in the ranking never tries.
 */
export const shouldTry = (me: string, ranking: ReadonlyArray<string>, msSinceExpiry: number): boolean => {
  const rank = ranking.indexOf(me);
  return rank >= 0 && msSinceExpiry >= rank * RANK_STEP_MS;
};
