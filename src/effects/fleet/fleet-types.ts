/**
 * The fleet as the HTTP layer, the pages and the metrics see it: its nodes, leases, takeovers and whether this
 * node is cut off. On one box `enabled` is false and the lists are empty.
 */
import type * as Effect from "effect/Effect";
import type { ControlError } from "../../domain/base/errors.ts";
import type { UpgradeState } from "../../domain/channel/handover.ts";

export type NodeState = "up" | "unreachable" | "down" | "draining" | "drained";

export interface NodeView {
  readonly id: string;
  readonly url: string;
  readonly version: string;
  readonly boot_id: string;
  readonly started_at: string;
  /** ms since its last heartbeat, by the database's clock; null when it never beat. */
  readonly heartbeat_age_ms: number | null;
  /** up: beating and answering; unreachable: beating but not answering this node; down: no heartbeat. */
  readonly state: NodeState;
  readonly self: boolean;
  readonly channels_held: number;
  readonly load: {
    readonly channels_running: number;
    readonly cpu_percent: number;
    /** Its upgrade as its heartbeat reported it (node-states.ts puts it beside the node). */
    readonly upgrade?: UpgradeState | null;
  };
}

export interface LeaseView {
  readonly channel: string;
  readonly holder: string | null;
  readonly term: number;
  /** ms until it expires unless renewed, by the database's clock; negative once expired. */
  readonly expires_in_ms: number;
}

export type TakeoverReason = "expired" | "holder_gone" | "holder_restarted" | "drain" | "move";
export const TAKEOVER_REASONS: ReadonlyArray<TakeoverReason> = [
  "expired",
  "holder_gone",
  "holder_restarted",
  "drain",
  "move",
];

export interface FleetShape {
  /** False on one box (no DISTRIBUTARY_DATABASE_URL). */
  readonly enabled: boolean;
  readonly self: string | null;
  /**
   * Whether this node has joined the fleet: registered, its first round renewed and read, so it knows the
   * leases and takes part (readiness). Always true on one box.
   */
  readonly ready: () => boolean;
  /** Every registered node, as of the last round. */
  readonly nodes: () => ReadonlyArray<NodeView>;
  readonly leases: () => ReadonlyArray<LeaseView>;
  /** The leases this node holds, with their terms. */
  readonly held: () => ReadonlyMap<string, number>;
  /** Calls `listener` with how long each of this node's renewals (its rounds) took, in ms. */
  readonly onRenewal: (listener: (ms: number) => void) => void;
  /** Whether this node's last statement reached the database. */
  readonly databaseReachable: () => boolean;
  /** Milliseconds since this node's last statement that reached the database (monotonic clock). */
  readonly databaseLastOkMsAgo: () => number;
  /**
   * A peer's question: a statement made now, whether it went through, how long since this node last reached
   * the database, and this node's statement interval (a third of its lease).
   */
  readonly databaseReach: () => Promise<{
    readonly reachable: boolean;
    readonly lastOkMsAgo: number;
    readonly intervalMs: number;
  }>;
  /** Holding leases it cannot renew while no peer reaches the database either: it keeps sending. */
  readonly isolated: () => boolean;
  /**
   * Whether this node's own node lease still holds, by its last renewal: while it does, no other node can have
   * found it down (and taken over what it had). Always true on one box.
   */
  readonly leaseHolds: () => boolean;
  /**
   * Calls `listener` with each node this node sees go down (its lease run out, not by a drain), whichever node
   * says `node_down`; a listener that fails is called again for it after the next round.
   */
  readonly onNodeDown: (listener: (node: string) => Effect.Effect<void, unknown>) => void;
  /** Takeovers this node made since it started, by reason. */
  readonly takeovers: () => Readonly<Record<TakeoverReason, number>>;
  /**
   * The node that holds a channel, when another node holds it: its id, and its URL when this node's probes
   * reach it (null when they do not); else null. A channel that reads as free in the last round is looked up
   * again in the database.
   */
  readonly holder: (
    channelId: string,
  ) => Promise<{ readonly node: string; readonly url: string | null } | null>;
  /** Hands every channel a node holds to its standbys and leaves it holding none (for an upgrade). */
  readonly drain: (nodeId: string) => Effect.Effect<{ readonly released: number }, ControlError>;
  /**
   * An operator's move of a channel to a node that receives its input: the node it left, or null when it
   * already ran there.
   */
  readonly move: (
    channelId: string,
    nodeId: string,
  ) => Effect.Effect<{ readonly from: string } | null, ControlError>;
  /** The bearer credential nodes use between themselves (a secret, shared through the database). */
  readonly peerToken: () => string | null;
}
