/**
 * The fleet's node registry in PostgreSQL: each node's URL, boot id and version, its last heartbeat by the
 * database's clock, whether it drains, and the load it reported. One statement per function. A registration
 * and a drain are announced on `distributary_nodes` (the node's id), so every node reads the nodes at once.
 */
import { type UpgradeState, upgradeStateOf } from "../../domain/channel/handover.ts";
import { NODE_CHANNEL, type Queryable } from "../config/postgres/database.ts";

/** What a node reports of itself at each heartbeat. */
export interface NodeLoad {
  readonly channels_running: number;
  readonly cpu_percent: number;
  /** Its upgrade on its box (handover/upgrade-state.ts); absent from a node of an older release. */
  readonly upgrade?: UpgradeState | null;
}

interface NodeRegistration {
  readonly id: string;
  /** How peers and browsers reach it. */
  readonly url: string;
  /** New at every start of the process: another boot id under the same node id means it restarted. */
  readonly bootId: string;
  readonly version: string;
}

export interface NodeRow extends NodeRegistration {
  /** When this boot registered, ISO 8601. */
  readonly startedAt: string;
  /** ms since its last heartbeat (or its registration), by the database's clock. */
  readonly heartbeatAgeMs: number;
  readonly draining: boolean;
  /** Zeros until its first heartbeat. */
  readonly load: NodeLoad;
  /**
   * ms until its node lease (and so every lease its boot holds) runs out unless it renews, by the database's
   * clock when read; negative once run out.
   */
  readonly leaseInMs: number;
}

/**
 * Registers this process as node `id`, or registers it again after a restart: the new boot id, URL and
 * version replace the old, its start and heartbeat are now, and a drain it was in is over (a node is drained
 * to be stopped; the one that starts is back in service).
 */
export const registerNode = async (db: Queryable, node: NodeRegistration): Promise<void> => {
  await db.query(
    `with registered as (
       insert into nodes (id, url, boot_id, version, started_at, heartbeat_at, draining, load)
       values ($1, $2, $3, $4, now(), now(), false, '{}')
       on conflict (id) do update set url = excluded.url, boot_id = excluded.boot_id,
         version = excluded.version, started_at = now(), heartbeat_at = now(), draining = false, load = '{}'
       returning id)
     select pg_notify('${NODE_CHANNEL}', id) from registered`,
    [node.id, node.url, node.bootId, node.version],
  );
};

const number = (value: unknown): number => (typeof value === "number" ? value : 0);

/** The columns of a node row as `nodeRow` reads them (a round reads them too). */
export const NODE_SELECT = `select id, url, boot_id, version, started_at, draining, load,
    ((extract(epoch from now()) - extract(epoch from heartbeat_at)) * 1000)::double precision as age_ms,
    ((extract(epoch from lease_until) - extract(epoch from now())) * 1000)::double precision as lease_in_ms
  from nodes`;

/** A row of NODE_SELECT, as a result row or as JSON (where a time is a string and −Infinity is "-Infinity"). */
export const nodeRow = (row: Record<string, unknown>): NodeRow => {
  const load = (row.load ?? {}) as Record<string, unknown>;
  return {
    id: String(row.id),
    url: String(row.url),
    bootId: String(row.boot_id),
    version: String(row.version),
    startedAt: new Date(row.started_at as Date | string).toISOString(),
    heartbeatAgeMs: Number(row.age_ms),
    draining: row.draining === true,
    load: {
      channels_running: number(load.channels_running),
      cpu_percent: number(load.cpu_percent),
      upgrade: upgradeStateOf(load.upgrade),
    },
    leaseInMs: Number(row.lease_in_ms),
  };
};

/** Every registered node, by id, with its heartbeat's age by the database's clock. */
export const listNodes = async (db: Queryable): Promise<ReadonlyArray<NodeRow>> => {
  const { rows } = await db.query(`${NODE_SELECT} order by id`);
  return rows.map(nodeRow);
};

/** Marks a node as draining (standbys stop ranking it) or back in service. Returns false for an unknown id. */
export const setDraining = async (db: Queryable, id: string, draining: boolean): Promise<boolean> => {
  const { rows } = await db.query(
    `with changed as (update nodes set draining = $2 where id = $1 returning id)
     select id, pg_notify('${NODE_CHANNEL}', id) from changed`,
    [id, draining],
  );
  return rows.length === 1;
};
