/**
 * What a node watches of its peers over the network: their processes (a refusal is the fast takeover's sign)
 * and the views of the channels they hold. Only what this node needs: a tether (a connection kept open, which
 * ends the moment the peer's process dies) to each holder of a channel it stands by for, and each second a
 * probe of one more peer in turn, so that every peer's state is known; every peer's port each tick while the
 * database does not answer (the guard needs to know which it can reach). The views of the channels it stands
 * by for, each second while somebody reads them. So a node at rest makes one connection a second, however
 * large the fleet, and no request.
 */
import * as Effect from "effect/Effect";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import type { ChannelView } from "../../domain/views/views.ts";
import type { FleetClock } from "./fleet-clock.ts";
import type { LeaseBook } from "./lease-book.ts";
import * as L from "./leases.ts";
import { PEER_TIMEOUT_MS } from "./peer-questions.ts";
import { type PortProbe, peerChannels, probePort, type Tether, tetherPort } from "./peers.ts";

interface WatchContext {
  readonly me: string;
  readonly token: string;
  readonly clock: FleetClock;
  readonly book: LeaseBook;
  readonly databaseReachable: () => boolean;
  readonly stored: (channelId: string) => ChannelConfig | undefined;
  readonly wantedHere: (channel: ChannelConfig | undefined) => channel is ChannelConfig;
  /** What a refusal leads to at once (the coordinator decides about the holder's leases). */
  readonly onRefused: Effect.Effect<void>;
  /** Whether somebody reads the holders' views on this node: they are fetched only then. */
  readonly viewsWanted: () => boolean;
  /** Runs `ports` now rather than at the next tick: a tether ended. */
  readonly wake: () => void;
}

export const makeWatch = (ctx: WatchContext) => {
  const { me, token, book } = ctx;
  const probes = new Map<string, PortProbe>();
  /** When the connection that gave each peer's last answer was begun (the fleet's clock). */
  const probedAt = new Map<string, number>();
  const tethers = new Map<string, Tether | "connecting">();
  /** Moves whenever a probe's answer does. */
  let version = 0;
  let stopped = false;
  const answered = (id: string, probe: PortProbe, sentAt: number) => {
    if (probes.get(id) !== probe) version += 1;
    probes.set(id, probe);
    probedAt.set(id, sentAt);
  };

  /** The nodes holding the channels this node stands by for, with those channels. */
  const standingBy = () => {
    const holders = new Map<string, Set<string>>();
    const live = book.live();
    for (const { row } of book.rows()) {
      if (row.holder === null || row.holder === me) continue;
      const channel = ctx.stored(row.channel);
      if (!ctx.wantedHere(channel)) continue;
      if (!L.candidates(channel.nodes, live, row.holder).includes(me)) continue;
      const ids = holders.get(row.holder) ?? new Set<string>();
      ids.add(row.channel);
      holders.set(row.holder, ids);
    }
    return holders;
  };
  /** As last worked out (each second, with the views, and whenever the lease book moved). */
  let watched = { version: -1, at: Number.NEGATIVE_INFINITY, holders: new Map<string, Set<string>>() };
  const watchedNow = () => {
    const now = ctx.clock.now();
    if (watched.version !== book.version() || now - watched.at >= 1000)
      watched = { version: book.version(), at: now, holders: standingBy() };
    return watched.holders;
  };

  /**
   * Each tick (and at once when a tether ends): a tether to each holder watched that has none, which is also
   * the probe of its port; a probe of one more peer each second in turn, and of every peer while the database
   * does not answer. A refusal is acted on at once.
   */
  let turn = 0;
  let turnAt = Number.NEGATIVE_INFINITY;
  const ports = Effect.gen(function* () {
    const peers = book.peers();
    const holders = watchedNow();
    const now = ctx.clock.now();
    const next = now - turnAt >= 1000 ? (turn + 1) % Math.max(1, peers.length) : -1;
    if (next >= 0) [turn, turnAt] = [next, now];
    const isPeer = new Set(peers.map((node) => node.id));
    for (const id of probes.keys())
      if (!isPeer.has(id)) {
        probes.delete(id);
        version += 1;
      }
    for (const [id, tether] of tethers)
      if ((!isPeer.has(id) || !holders.has(id)) && tether !== "connecting") {
        tether.close();
        tethers.delete(id);
      }
    const tether = async (node: { readonly id: string; readonly url: string }) => {
      tethers.set(node.id, "connecting");
      const sentAt = ctx.clock.now();
      const { probe, tether } = await tetherPort(node.url, PEER_TIMEOUT_MS, () => {
        // The peer's process is gone, or it closed the connection: the next tick, now, connects again,
        // and a refusal then is the fast takeover's sign.
        tethers.delete(node.id);
        ctx.wake();
      });
      if (tether === null || stopped) {
        tethers.delete(node.id);
        tether?.close();
      } else tethers.set(node.id, tether);
      answered(node.id, probe, sentAt);
      return probe;
    };
    const probe = async (node: { readonly id: string; readonly url: string }) => {
      const sentAt = ctx.clock.now();
      const probe = await probePort(node.url, PEER_TIMEOUT_MS);
      answered(node.id, probe, sentAt);
      return probe;
    };
    const answers = yield* Effect.promise(() =>
      Promise.all(
        peers.flatMap((node, index) =>
          holders.has(node.id) && !tethers.has(node.id)
            ? [tether(node)]
            : !ctx.databaseReachable() || index === next || (probes.get(node.id) ?? "open") !== "open"
              ? [probe(node)]
              : [],
        ),
      ),
    );
    if (answers.includes("refused")) yield* ctx.onRefused;
  });

  /**
   * Every second while somebody reads them here (a page, a list of channels), the views of the channels this
   * node stands by for, from their holders; nothing while nobody looks.
   */
  let remote = new Map<string, ChannelView>();
  const views = Effect.promise(async () => {
    if (!ctx.viewsWanted()) {
      remote = new Map();
      return;
    }
    const next = new Map<string, ChannelView>();
    const wanted = watchedNow();
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
  });
  const reachable = (id: string) => id === me || (probes.get(id) ?? "open") === "open";

  return {
    ports,
    views,
    probe: (id: string) => probes.get(id),
    /** When the connection that gave node `id`'s last answer was begun; −∞ before any. */
    probedAt: (id: string) => probedAt.get(id) ?? Number.NEGATIVE_INFINITY,
    remote: () => remote,
    version: () => version,
    /** Whether this node's probes connect to node `id` (one it has not probed yet counts as reachable). */
    reachable,
    /** Hangs up every tether. */
    close: () => {
      stopped = true;
      for (const tether of tethers.values()) if (tether !== "connecting") tether.close();
      tethers.clear();
    },
  } as const;
};
