/**
 * A node as `/api/nodes` and the Nodes page show it: the coordinator's view, with its drain (channels left, or
 * drained) and its upgrade on its box (one under way, the last one's outcome) beside it. This node's upgrade is
 * its own (handover/upgrade-state.ts); another's is what its last heartbeat reported (null from a node of a
 * release before this one).
 */
import type { NodeDrain, UpgradeState } from "../../domain/channel/handover.ts";
import { upgradeState } from "../handover/upgrade-state.ts";
import type { NodeView } from "./fleet-types.ts";

export interface NodeWithStates extends Omit<NodeView, "load"> {
  readonly load: { readonly channels_running: number; readonly cpu_percent: number };
  readonly drain: NodeDrain | null;
  readonly upgrade: UpgradeState | null;
}

export const withStates = (nodes: ReadonlyArray<NodeView>): ReadonlyArray<NodeWithStates> =>
  nodes.map(({ load: { upgrade, ...load }, ...node }) => ({
    ...node,
    load,
    drain:
      node.state === "draining"
        ? { state: "draining", channels_left: node.channels_held }
        : node.state === "drained"
          ? { state: "drained", channels_left: 0 }
          : null,
    upgrade: node.self ? upgradeState() : (upgrade ?? null),
  }));
