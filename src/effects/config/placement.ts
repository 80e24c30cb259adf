/**
 * Where channels run: on one box every channel runs here and this box sends every output. In a fleet
 * (src/effects/fleet/) each node receives the inputs of the channels that list it (or of every channel that
 * lists none), and only the node holding a channel's lease runs its outputs; the fleet's coordinator tells
 * this service what it holds and what the holders report, and the rest of the service asks it. It lives in the
 * config room, the bottom floor, so that the commands (which start channels) and the read model (which shows
 * them) can ask without knowing the fleet.
 */
import { hostname } from "node:os";
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import type { ChannelFleetView, ChannelView } from "../../domain/views/views.ts";
import { databaseUrl, nodeId } from "./settings.ts";

/** How long the holders' views are fetched after the last time somebody read one. */
const REMOTE_WANTED_MS = 30_000;

export class Placement extends Effect.Service<Placement>()("distributary/Placement", {
  effect: Effect.gen(function* () {
    // Known before any channel starts: a fleet node resumes its channels as standbys, never sending
    // before its coordinator holds their leases.
    const node: string | null = Option.isSome(yield* databaseUrl)
      ? Option.getOrElse(yield* nodeId, () => hostname())
      : null;
    const held = new Set<string>();
    let fleetViews: ReadonlyMap<string, ChannelFleetView> = new Map();
    let remoteViews: ReadonlyMap<string, ChannelView> = new Map();
    let remoteAskedAt = Number.NEGATIVE_INFINITY;
    return {
      /** This node's id in a fleet; null on one box. */
      node: (): string | null => node,
      /** Whether this node receives the channel's input: on one box, always. */
      runsHere: (channel: Pick<ChannelConfig, "nodes">): boolean =>
        node === null ||
        channel.nodes === undefined ||
        channel.nodes.length === 0 ||
        channel.nodes.includes(node as never),
      /** Whether this node runs the channel's outputs: on one box, always. */
      holds: (channelId: string): boolean => node === null || held.has(channelId),
      /** The channel's holder, term and standbys; undefined on one box. */
      fleet: (channelId: string): ChannelFleetView | undefined => fleetViews.get(channelId),
      /**
       * The holder's own view of a channel another node holds (its live figures), when it answered. Asking is
       * what keeps them coming: the coordinator fetches them while somebody reads them (`remoteWanted`).
       */
      remote: (channelId: string): ChannelView | undefined => {
        if (node === null || held.has(channelId)) return undefined;
        remoteAskedAt = performance.now();
        return remoteViews.get(channelId);
      },
      /** As `remote`, without asking for more. */
      peekRemote: (channelId: string): ChannelView | undefined =>
        node !== null && !held.has(channelId) ? remoteViews.get(channelId) : undefined,
      /** Whether somebody read the holders' views in the last REMOTE_WANTED_MS: nobody looking, nothing fetched. */
      remoteWanted: (): boolean => performance.now() - remoteAskedAt < REMOTE_WANTED_MS,

      /** For the fleet's coordinator: this node now holds (or no longer holds) the channel's lease. */
      setHeld: (channelId: string, holds: boolean): void => {
        if (holds) held.add(channelId);
        else held.delete(channelId);
      },
      /** For the fleet's coordinator: every channel's placement, and the holders' views as last fetched. */
      publish: (
        fleet: ReadonlyMap<string, ChannelFleetView>,
        remote: ReadonlyMap<string, ChannelView>,
      ): void => {
        fleetViews = fleet;
        remoteViews = remote;
      },
    } as const;
  }),
}) {}
