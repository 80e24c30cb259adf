/**
 * What a node knows of the fleet between its statements: every lease row and every node as last read (each
 * with when it was read, on the fleet's monotonic clock: fleet-clock.ts), and the views the API, the pages and
 * the metrics take from them. Lookups by id, never scans inside loops over channels. The coordinator writes it;
 * nothing here talks to the database or the network.
 */
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import type { ChannelFleetView } from "../../domain/views/views.ts";
import type { FleetClock } from "./fleet-clock.ts";
import type { LeaseView, NodeView } from "./fleet-types.ts";
import * as L from "./leases.ts";
import type { NodeRow } from "./nodes.ts";

/** A lease row as last read, and when (the fleet's clock, when its statement was sent). */
export interface Known {
  readonly row: L.LeaseRow;
  readonly readAt: number;
}

/** A node whose heartbeat is older than this is down (the Nodes page says so). */
const DOWN_AFTER_MS = 30_000;

/**
 * How old a node's heartbeat may be for it to be a peer this node asks and probes: until it is down, and at
 * least three lease times. Not only the nodes that beat within a few lease times: one back from a cut of
 * longer than that beats again a round later, and this node, cut off itself before it read that beat, would
 * have taken the fleet for empty and kept sending as isolated while that peer took its leases (two senders
 * for 213 ms in test/lab/fleet-partition, after an 8.6 s cut with a 3 s lease).
 */
const peerWindowMs = (ttl: number) => Math.max(3 * ttl, DOWN_AFTER_MS);

export const makeLeaseBook = (me: string, ttl: number, clock: FleetClock) => {
  const known = new Map<string, Known>();
  let nodes: ReadonlyArray<NodeRow> = [];
  let live: ReadonlyArray<NodeRow> = [];
  let peers: ReadonlyArray<NodeRow> = [];
  let nodesShape = "";
  const nodeSeen = new Map<string, { readonly node: NodeRow; readonly readAt: number }>();
  /**
   * The node last seen holding each channel. A released lease names no holder, yet the node that gave it up
   * (a drain, a clean stop) must rank last: this node may not have seen its draining flag yet, and ranked
   * first it would make every standby wait a rank step.
   */
  const lastHolder = new Map<string, string>();
  /** The newest lease revision read: the next round reads the rows written after it (−1: all of them). */
  let revision = -1;
  /** Moves whenever what the book knows does: views made from it are made again only then. */
  let version = 0;

  /** When a lease runs out, on the fleet's clock: a held one lives as long as its holder's node lease. */
  const expiresAt = (entry: Known): number => {
    const own = entry.readAt + entry.row.expiresInMs;
    const { holder, holderBoot } = entry.row;
    if (holder === null) return own;
    const seen = nodeSeen.get(holder);
    return seen !== undefined && seen.node.bootId === holderBoot
      ? Math.max(own, seen.readAt + seen.node.leaseInMs)
      : own;
  };

  /** How many leases node `id` holds now. */
  const holding = (id: string, now = clock.now()) => {
    let count = 0;
    for (const entry of known.values()) if (entry.row.holder === id && expiresAt(entry) > now) count += 1;
    return count;
  };

  /** Each node's state: `reachable` says whether this node's probes connect to it. */
  const nodeState = (node: NodeRow, reachable: boolean, holds = holding(node.id)): NodeView["state"] => {
    // Drained is out of service on purpose: stopped afterwards (maintenance, an upgrade), it is not down.
    if (node.draining && holds === 0) return "drained";
    if (node.id !== me) {
      if (node.heartbeatAgeMs > DOWN_AFTER_MS) return "down";
      if (!reachable) return "unreachable";
    }
    if (node.draining) return holds > 0 ? "draining" : "drained";
    return "up";
  };

  return {
    rows: () => known.values(),
    get: (channel: string) => known.get(channel),
    expiresAt,
    holding,
    revision: () => revision,
    version: () => version,
    lastHolder: (channel: string) => lastHolder.get(channel) ?? null,
    nodes: () => nodes,
    node: (id: string) => nodeSeen.get(id)?.node,
    /** Nodes that beat within `peerWindowMs`, but this one: the peers it asks and probes. */
    peers: () => peers,
    /** Nodes that beat within a lease time: the ones that may take a lease (the same array until it changes). */
    live: () => live,

    /**
     * A round's nodes, read by a statement sent at `readAt`. The version moves only when something the views
     * show of them did (who is there, where, which boot, draining, and their heartbeat's age in lease times):
     * a round a second at rest does not make every channel's view again.
     */
    setNodes: (rows: ReadonlyArray<NodeRow>, readAt: number) => {
      nodes = rows;
      nodeSeen.clear();
      for (const node of rows) nodeSeen.set(node.id, { node, readAt });
      const shape = rows
        .map(
          (node) =>
            `${node.id} ${node.url} ${node.bootId} ${node.draining} ${Math.min(4, Math.floor(node.heartbeatAgeMs / ttl))} ${node.heartbeatAgeMs > DOWN_AFTER_MS}`,
        )
        .join("\n");
      if (shape !== nodesShape) {
        nodesShape = shape;
        version += 1;
        live = rows.filter((node) => node.heartbeatAgeMs < ttl);
        peers = rows.filter((node) => node.id !== me && node.heartbeatAgeMs < peerWindowMs(ttl));
      }
    },
    /** Lease rows read by a statement sent at `readAt`. */
    learn: (rows: ReadonlyArray<L.LeaseRow>, readAt: number) => {
      if (rows.length > 0) version += 1;
      for (const row of rows) {
        known.set(row.channel, { row, readAt });
        revision = Math.max(revision, row.revision);
        if (row.holder !== null) lastHolder.set(row.channel, row.holder);
      }
    },
    /** A reading of every row: the ones it does not list are gone (their channels deleted). */
    keepOnly: (rows: ReadonlyArray<L.LeaseRow>) => {
      const listed = new Set(rows.map((row) => row.channel));
      version += 1;
      for (const id of known.keys()) if (!listed.has(id)) known.delete(id);
      for (const id of lastHolder.keys()) if (!listed.has(id)) lastHolder.delete(id);
    },
    /**
     * What this node wrote to a lease row, known before the row is read again (its notification comes a tick
     * later): a row it gave away must not read as its own meanwhile. The revision stays, so the row is read.
     */
    wrote: (channel: string, holder: string | null, holderBoot: string | null, term: number) => {
      const before = known.get(channel)?.row;
      version += 1;
      const row: L.LeaseRow = {
        channel,
        holder,
        holderBoot,
        term,
        revision: before?.revision ?? 0,
        // A held row lives by its holder's node lease; a released one is free from now.
        expiresInMs: holder === null ? 0 : Number.NEGATIVE_INFINITY,
        cut: null,
      };
      known.set(channel, { row, readAt: clock.now() });
    },

    /** Every lease, by channel id, with the time left by this node's reckoning. */
    leaseViews: (): ReadonlyArray<LeaseView> => {
      const now = clock.now();
      return [...known.values()]
        .sort((a, b) => (a.row.channel < b.row.channel ? -1 : 1))
        .map((entry) => {
          const left = expiresAt(entry) - now;
          return {
            channel: entry.row.channel,
            holder: entry.row.holder,
            term: entry.row.term,
            expires_in_ms: Number.isFinite(left) ? Math.round(left) : -1,
          };
        });
    },

    nodeState,
    /** Every node as the API and the pages show it. */
    nodeViews: (reachable: (id: string) => boolean): ReadonlyArray<NodeView> =>
      nodes.map((node) => {
        const holds = holding(node.id);
        return {
          id: node.id,
          url: node.url,
          version: node.version,
          boot_id: node.bootId,
          started_at: node.startedAt,
          heartbeat_age_ms: Math.max(0, Math.round(node.heartbeatAgeMs)),
          state: nodeState(node, reachable(node.id), holds),
          self: node.id === me,
          channels_held: holds,
          load: node.load,
        };
      }),

    /** Each configured channel's holder, term and standbys, as the pages and the API show them. */
    channelViews: (channels: ReadonlyArray<ChannelConfig>, reachable: (id: string) => boolean) => {
      const now = clock.now();
      const views = new Map<string, ChannelFleetView>();
      for (const channel of channels) {
        const entry = known.get(channel.id);
        const holder =
          entry !== undefined && entry.row.holder !== null && expiresAt(entry) > now - ttl
            ? entry.row.holder
            : null;
        views.set(channel.id, {
          nodes: [...(channel.nodes ?? [])],
          holder,
          term: entry?.row.term ?? 0,
          standbys: L.candidates(channel.nodes, live, holder).filter((id) => id !== holder),
          holder_reachable: holder !== null && reachable(holder),
        });
      }
      return views;
    },
  } as const;
};

export type LeaseBook = ReturnType<typeof makeLeaseBook>;
