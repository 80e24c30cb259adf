/**
 * One lease per channel in PostgreSQL: who runs its outputs (holder, and the holder's boot id) and a term that
 * grows at every change of holder (the fencing token). A node renews every lease it holds at once, by renewing
 * itself: its row in `nodes` carries `lease_until`, and a held lease lasts as long as its holder's node lease
 * for the boot that took it. So renewal is one row per node, whatever it holds, and a lease row is written only
 * when it changes hands; each such write takes the next revision and names its channel in a notification
 * (`distributary_leases`, the table's trigger), so nodes read the rows that changed, not every row.
 *
 * Every function is one statement, so each is atomic on its own, and every time is the database server's
 * (now()): nodes' clocks may disagree, the database's is the one they share. The coordinator keeps its own
 * deadlines on its monotonic clock.
 *
 * The compare-and-set statements are plain UPDATEs under READ COMMITTED: when two nodes update the same row
 * at once, the second waits for the first and then checks its WHERE again against the row the first wrote,
 * so exactly one of them matches. `db` is the store's `Database.queryable`; a pg Pool or Client also fits.
 *
 * A lease row's own `expires_at` is the moment a free lease became free (the standbys' ranking counts from
 * it). A holder of this version writes 'infinity' there, so a node of the previous version (which renewed
 * every row) never sees it expire; such a node's own renewals of its rows still count here, so a fleet can be
 * upgraded one node at a time.
 */
import type { HolderCut } from "../channel/cut-stage.ts";
import type { Queryable } from "../config/postgres/database.ts";
import { upgradeState } from "../handover/upgrade-state.ts";
import { NODE_SELECT, type NodeLoad, type NodeRow, nodeRow } from "./nodes.ts";

export interface LeaseRow {
  readonly channel: string;
  /** The node that holds it; null when nobody does (never held, or released). */
  readonly holder: string | null;
  /** The holder's boot id when it took the lease: another boot id on its node row means it restarted. */
  readonly holderBoot: string | null;
  readonly term: number;
  /** Grows at every write of the row (a new holder, a release). */
  readonly revision: number;
  /**
   * ms until it expires unless its holder renews, by the database's clock when read; negative once expired
   * (minus the ms since it expired or was released). −Infinity for a row nobody has held since it was created
   * by someone else than a channel's insert or `ensureLeases` (which stamp it with the time they see it).
   */
  readonly expiresInMs: number;
  /**
   * What the last holder to let the lease go handed over with it (docs/fleet.md, hitless moves and drains):
   * for the term it names only; null when it named none (a node of the previous release, a holder gone).
   */
  readonly cut: LeaseCut | null;
}

/** A hand-over's cut as stored with the lease (channel/cut-stage.ts HolderCut), under the term it is for. */
export interface LeaseCut extends HolderCut {
  /** The term of the holder that takes it: a release's term plus one, a hand-over's new term. */
  readonly term: number;
  /** The node that cut, and when (its clock, epoch ms). */
  readonly from: string;
  readonly at: number;
}

/**
 * A cut as a release or a hand-over writes it, with when: the holder's wall clock as it makes the statement
 * (fleet-clock.ts `wallMs`), which the next holder's report of the hand-over counts from.
 */
export type TimedCut = HolderCut & Pick<LeaseCut, "at">;

/** The cut as stored: for the next holder's term. */
const stored = (cut: TimedCut | null, me: string, term: number): string | null =>
  cut === null ? null : JSON.stringify({ ...cut, term: term + 1, from: me });

/** `$n` as an interval of that many milliseconds. */
const ms = (n: number): string => `($${n}::double precision * interval '1 millisecond')`;

/**
 * When the lease of row `l` runs out: a free one's `expires_at` (when it became free); a held one's holder's
 * node lease while that node runs the boot that took it, or the row's own time as a previous version renewed it.
 */
const EXPIRES = `(case when l.holder is null then l.expires_at else greatest(
    case when l.expires_at = 'infinity' then '-infinity'::timestamptz else l.expires_at end,
    coalesce((select n.lease_until from nodes n where n.id = l.holder and n.boot_id = l.holder_boot),
      '-infinity'::timestamptz)) end)`;

const LEASE_COLUMNS = `l.channel, l.holder, l.holder_boot, l.term, l.revision, l.cut,
  ((extract(epoch from ${EXPIRES}) - extract(epoch from now())) * 1000)::double precision as expires_in_ms`;

const leaseRow = (row: Record<string, unknown>): LeaseRow => ({
  channel: String(row.channel),
  holder: row.holder == null ? null : String(row.holder),
  holderBoot: row.holder_boot == null ? null : String(row.holder_boot),
  term: Number(row.term),
  revision: Number(row.revision),
  expiresInMs: Number(row.expires_in_ms),
  cut: row.cut == null ? null : (row.cut as LeaseCut),
});

/**
 * Repairs the lease rows (a slow safety net: a channel's insert makes its row). A missing row is added, free
 * from now on (its expiry is now(), so the ranking's delays count from the moment it appeared); a row another
 * writer created with the column's default ('-infinity', never held) gets the same stamp. Returns how many
 * rows it added or stamped. With every row there, both statements only read: nothing is locked or logged.
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

/** What one round of a node tells it: everything it needs at rest, in one statement. */
export interface Round {
  /** False when the node's row is not this boot's: another process registered under its id since. */
  readonly mine: boolean;
  /** The leases this boot holds, with their terms, as the database has them. */
  readonly held: ReadonlyMap<string, number>;
  readonly nodes: ReadonlyArray<NodeRow>;
  /** Lease rows written since revision `since` (every row for −1). */
  readonly changed: ReadonlyArray<LeaseRow>;
  /** The newest revision handed to a change of the channels or tokens (deletions included). */
  readonly configRevision: number;
}

/**
 * A node's round, one statement: it beats its heart and renews every lease it holds (its node lease, to
 * now + `ttlMs`), and reads what it holds, every node, the lease rows changed since `since`, and the
 * configuration's revision. A renewal does not require the lease to be unexpired: after a database outage
 * every lease has expired by the database's clock, and a holder that kept sending gets its leases back as
 * long as nobody took them (taking one raises its term). A channel of the node's own list missing from
 * `held` is lost, and its outputs must stop at once.
 */
export const round = async (
  db: Queryable,
  me: string,
  bootId: string,
  ttlMs: number,
  load: NodeLoad,
  since: number,
): Promise<Round> => {
  const { rows } = await db.query(
    `with beat as (
       update nodes set heartbeat_at = now(), lease_until = now() + ${ms(3)}, load = $4
       where id = $1 and boot_id = $2 returning id)
     select exists (select 1 from beat) as mine,
       (select coalesce(json_agg(json_build_object('channel', channel, 'term', term)), '[]')
          from leases where holder = $1 and holder_boot = $2) as held,
       (select coalesce(json_agg(n order by n.id), '[]') from (${NODE_SELECT}) n) as nodes,
       (select coalesce(json_agg(c), '[]') from (select ${LEASE_COLUMNS} from leases l where l.revision > $5) c)
         as changed,
       (select last_value from config_revision) as config_revision`,
    // The load with this process's upgrade on its box (handover/upgrade-state.ts): every Nodes page shows it.
    [me, bootId, ttlMs, JSON.stringify({ ...load, upgrade: upgradeState() }), since],
  );
  const row = rows[0] ?? {};
  const mine = row.mine === true;
  const held = (row.held ?? []) as ReadonlyArray<{ channel: string; term: number | string }>;
  return {
    mine,
    held: mine ? new Map(held.map((lease) => [String(lease.channel), Number(lease.term)])) : new Map(),
    nodes: ((row.nodes ?? []) as ReadonlyArray<Record<string, unknown>>).map(nodeRow),
    changed: ((row.changed ?? []) as ReadonlyArray<Record<string, unknown>>).map(leaseRow),
    configRevision: Number(row.config_revision ?? 0),
  };
};

/** The one statement that hands a lease to `me` with the next term, when `condition` holds of the row. */
const take = async (
  db: Queryable,
  condition: string,
  values: ReadonlyArray<unknown>,
): Promise<number | null> => {
  const { rows } = await db.query(
    `update leases l set holder = $1, holder_boot = $2, term = term + 1, expires_at = 'infinity'
     where channel = $3 and (${condition})
     returning term`,
    values,
  );
  return rows[0] === undefined ? null : Number(rows[0].term);
};

/**
 * Takes a lease nobody holds or whose holder let it expire. Returns the new term, or null when the lease is
 * held (another node got it first, or its holder renewed it) or the channel has no lease row. The taker's
 * node lease must be current (its rounds renew it), or the lease is expired the moment it is taken.
 */
export const acquire = (db: Queryable, me: string, bootId: string, channel: string): Promise<number | null> =>
  take(db, `l.holder is null or ${EXPIRES} <= now()`, [me, bootId, channel]);

/**
 * The fast takeover, when the holder's process is gone (its port refuses, or its node row shows a new boot
 * id): takes the lease before it expires, only if `oldHolder` still holds it with `oldTerm`. Returns the new
 * term, or null when the lease changed since it was read.
 */
export const takeOver = async (
  db: Queryable,
  me: string,
  bootId: string,
  channel: string,
  oldHolder: string,
  oldTerm: number,
): Promise<number | null> =>
  (await takeOverMany(db, me, bootId, [{ channel, holder: oldHolder, term: oldTerm }])).get(channel) ?? null;

/**
 * `takeOver` of many leases in one statement (a dead holder's channels, all at once): the new term of each
 * taken, by channel; a lease that changed since it was read is left out. A lease taken because its holder
 * `restarted` is taken only if the database, now, registers another boot for the holder than the lease names:
 * the taker's book may hold the node row of the holder's last boot, and the lease the new boot just took.
 */
export const takeOverMany = async (
  db: Queryable,
  me: string,
  bootId: string,
  leases: ReadonlyArray<{
    readonly channel: string;
    readonly holder: string;
    readonly term: number;
    readonly restarted?: boolean;
  }>,
): Promise<ReadonlyMap<string, number>> => {
  if (leases.length === 0) return new Map();
  const { rows } = await db.query(
    `update leases l set holder = $1, holder_boot = $2, term = l.term + 1, expires_at = 'infinity'
     from unnest($3::text[], $4::text[], $5::bigint[], $6::boolean[]) as t(channel, holder, term, restarted)
     where l.channel = t.channel and l.holder = t.holder and l.term = t.term
       and (not t.restarted
         or l.holder_boot is distinct from (select n.boot_id from nodes n where n.id = l.holder))
     returning l.channel, l.term`,
    [
      me,
      bootId,
      leases.map((lease) => lease.channel),
      leases.map((lease) => lease.holder),
      leases.map((lease) => lease.term),
      leases.map((lease) => lease.restarted === true),
    ],
  );
  return new Map(rows.map((row) => [String(row.channel), Number(row.term)]));
};

/**
 * Gives a lease up (a stop or a drain): nobody holds it from now on, so a standby acquires it at its next try,
 * the best-ranked first. Only if this node still holds it with `term`; returns whether it did. The term stays:
 * the next holder's is one more.
 */
export const release = async (
  db: Queryable,
  me: string,
  channel: string,
  term: number,
  cut: TimedCut | null = null,
): Promise<boolean> => {
  const { rows } = await db.query(
    `update leases set holder = null, holder_boot = null, expires_at = now(), cut = $4::jsonb
     where channel = $2 and holder = $1 and term = $3
     returning channel`,
    [me, channel, term, stored(cut, me, term)],
  );
  return rows.length === 1;
};

/**
 * An operator's move: the holder gives its lease straight to node `to` with the next term, after it stopped its
 * outputs; `to` finds itself the holder when it reads the row (the notification tells it at once) and starts
 * them. The lease names the boot `to` registered last, read in the same statement: a node started again a moment
 * ago is handed the lease as it runs now, not as the holder's book last saw it. Only if `me` still holds it with
 * `term` and `to` is registered; returns the new term and the boot it names, or null.
 */
export const handOver = async (
  db: Queryable,
  me: string,
  term: number,
  channel: string,
  to: string,
  cut: TimedCut | null = null,
): Promise<{ readonly term: number; readonly boot: string } | null> => {
  const { rows } = await db.query(
    `update leases l set holder = n.id, holder_boot = n.boot_id, term = l.term + 1, expires_at = 'infinity',
       cut = $5::jsonb
     from nodes n
     where n.id = $1 and l.channel = $2 and l.holder = $3 and l.term = $4
     returning l.term, n.boot_id`,
    [to, channel, me, term, stored(cut, me, term)],
  );
  const row = rows[0];
  return row === undefined ? null : { term: Number(row.term), boot: String(row.boot_id) };
};

/** Every lease, by channel id. */
export const leases = async (db: Queryable): Promise<ReadonlyArray<LeaseRow>> => {
  const { rows } = await db.query(`select ${LEASE_COLUMNS} from leases l order by l.channel`);
  return rows.map(leaseRow);
};

/** The leases of the channels named (the ones a notification named). */
export const leasesOf = async (
  db: Queryable,
  channels: ReadonlyArray<string>,
): Promise<ReadonlyArray<LeaseRow>> => {
  const { rows } = await db.query(`select ${LEASE_COLUMNS} from leases l where l.channel = any($1)`, [
    [...channels],
  ]);
  return rows.map(leaseRow);
};

/** One channel's lease as it is now, or undefined when the channel has none yet. */
export const lease = async (db: Queryable, channel: string): Promise<LeaseRow | undefined> =>
  (await leasesOf(db, [channel]))[0];

/** How long each standby waits after the one ranked before it, so that they do not race for a free lease. */
export const RANK_STEP_MS = 1000;

/**
 * Who should take a channel, best first: the channel's nodes in their order of preference, or every node by
 * id when it lists none; only live nodes, never a draining one. The holder, when it is live, comes last: it
 * takes its own channel again (after a restart) only when no other node does, as when it is the channel's
 * only node. Its standbys are this ranking without the holder.
 */
const eligibleSets = new WeakMap<ReadonlyArray<unknown>, ReadonlySet<string>>();
/** The live nodes that are not draining, worked out once per list of live nodes (the book keeps one a round). */
const eligibleOf = (
  liveNodes: ReadonlyArray<{ readonly id: string; readonly draining: boolean }>,
): ReadonlySet<string> => {
  let eligible = eligibleSets.get(liveNodes);
  if (eligible === undefined) {
    eligible = new Set(liveNodes.filter((node) => !node.draining).map((node) => node.id));
    eligibleSets.set(liveNodes, eligible);
  }
  return eligible;
};

export const candidates = (
  channelNodes: ReadonlyArray<string> | undefined,
  liveNodes: ReadonlyArray<{ readonly id: string; readonly draining: boolean }>,
  holder: string | null,
): ReadonlyArray<string> => {
  const eligible = eligibleOf(liveNodes);
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
