/**
 * What a node watches of its peers over the network: their ports (a refusal is the fast takeover's sign) and
 * the views of the channels they hold. Only what this node needs: the ports of the holders it is the first
 * standby for and of peers whose last probe did not connect, and each second one more peer in turn; the views
 * of the channels it stands by for. So the probes a node makes do not grow with the fleet.
 */
import { Effect } from "effect";
import type { ChannelConfig } from "../../domain/channel.ts";
import type { ChannelView } from "../../domain/views.ts";
import type { LeaseBook } from "./lease-book.ts";
import * as L from "./leases.ts";
import { type PortProbe, peerChannels, probePort } from "./peers.ts";

const PEER_TIMEOUT_MS = 600;

export interface WatchContext {
  readonly me: string;
  readonly token: string;
  readonly book: LeaseBook;
  readonly databaseReachable: () => boolean;
  readonly stored: (channelId: string) => ChannelConfig | undefined;
  readonly wantedHere: (channel: ChannelConfig | undefined) => channel is ChannelConfig;
  /** What a refusal leads to at once (the coordinator decides about the holder's leases). */
  readonly onRefused: Effect.Effect<void>;
}

export const makeWatch = (ctx: WatchContext) => {
  const { me, token, book } = ctx;
  const probes = new Map<string, PortProbe>();
  /** Moves whenever a probe's answer or the views fetched do. */
  let version = 0;

  /** The nodes holding the channels this node stands by for, the first standby's or any standby's. */
  const standingBy = (firstOnly: boolean) => {
    const holders = new Map<string, Set<string>>();
    const live = book.live();
    for (const { row } of book.rows()) {
      if (row.holder === null || row.holder === me) continue;
      const channel = ctx.stored(row.channel);
      if (!ctx.wantedHere(channel)) continue;
      const ranking = L.candidates(channel.nodes, live, row.holder);
      if (firstOnly ? ranking[0] !== me : !ranking.includes(me)) continue;
      const ids = holders.get(row.holder) ?? new Set<string>();
      ids.add(row.channel);
      holders.set(row.holder, ids);
    }
    return holders;
  };

  /**
   * Every tick, the ports of the holders this node is the first standby for and of the peers whose last probe
   * did not connect; every second one more peer in turn, so that every peer's state is known; every peer's
   * while the database does not answer (the guard needs to know which it can reach). A refusal is acted on at
   * once.
   */
  let turn = 0;
  let turnAt = Number.NEGATIVE_INFINITY;
  const ports = Effect.gen(function* () {
    const peers = book.peers();
    const first = standingBy(true);
    const now = performance.now();
    const next = now - turnAt >= 1000 ? (turn + 1) % Math.max(1, peers.length) : -1;
    if (next >= 0) [turn, turnAt] = [next, now];
    const targets = peers.filter(
      (node, index) =>
        !ctx.databaseReachable() ||
        index === next ||
        first.has(node.id) ||
        (probes.get(node.id) ?? "open") !== "open",
    );
    for (const id of probes.keys())
      if (!peers.some((node) => node.id === id)) {
        probes.delete(id);
        version += 1;
      }
    const refused = yield* Effect.promise(() =>
      Promise.all(
        targets.map(async (node) => {
          const probe = await probePort(node.url, PEER_TIMEOUT_MS);
          if (probes.get(node.id) !== probe) version += 1;
          probes.set(node.id, probe);
          return probe === "refused";
        }),
      ),
    );
    if (refused.some(Boolean)) yield* ctx.onRefused;
  });

  /** Every second, the views of the channels this node stands by for, from their holders. */
  let remote = new Map<string, ChannelView>();
  const views = Effect.promise(async () => {
    const next = new Map<string, ChannelView>();
    const wanted = standingBy(false);
    await Promise.all(
      book
        .peers()
        .filter((node) => wanted.has(node.id) && probes.get(node.id) !== "refused")
        .map(async (node) => {
          const ids = [...(wanted.get(node.id) ?? [])];
          const views = await peerChannels(node.url, token, ids, 900);
          for (const id of ids) {
            const view = views?.get(id);
            if (view !== undefined) next.set(id, view);
          }
        }),
    );
    remote = next;
    version += 1;
  });
  const reachable = (id: string) => id === me || (probes.get(id) ?? "open") === "open";

  return {
    ports,
    views,
    probe: (id: string) => probes.get(id),
    remote: () => remote,
    version: () => version,
    /** Whether this node's probes connect to node `id` (one it has not probed yet counts as reachable). */
    reachable,
  } as const;
};
