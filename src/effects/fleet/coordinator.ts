/**
 * The fleet's coordinator on one node: it registers the node, renews what it holds, turns holding into sending
 * (Resume.hold: a standby's channel runs with idle outputs), takes over from a dead holder, drains, moves, and
 * applies what other nodes stored. The guard (guard.ts) decides when a holder must stop for want of renewals.
 *
 * What it costs is what changes, not what exists. At rest a node makes one statement per renewal interval (a
 * third of the lease): its round (leases.ts) renews its node lease, which every lease it holds hangs on, and
 * reads the nodes, the lease rows written since the last round, and the configuration's revision. A changed
 * lease row is announced by a notification naming its channel, and read at the next tick (250 ms); the
 * configuration is read again only when its revision moved. Every 30 s a round reads every lease row, the
 * safety net for a notification lost. Peers are probed, and their views fetched, only for the channels this
 * node stands by for.
 *
 * Every lease time is the database's; every deadline here is this process's monotonic clock, so clocks that
 * disagree between nodes do not matter. A node back on the database waits a lease time before it takes
 * anything, so a holder that kept sending through an outage renews first.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { Effect, Option, Redacted, Schedule, Stream } from "effect";
import type { ChannelConfig } from "../../domain/channel.ts";
import { ControlError } from "../../domain/errors.ts";
import type { ChannelId } from "../../domain/ids.ts";
import type { ChannelFleetView, ChannelView } from "../../domain/views.ts";
import { version } from "../../version.ts";
import { Channels } from "../channel/channels.ts";
import { ConfigState } from "../config/config-state.ts";
import { Placement } from "../config/placement.ts";
import { Database } from "../config/postgres/database.ts";
import { peerToken as readPeerToken } from "../config/postgres/layer.ts";
import { fastTakeover, isolatedPolicy, leaseMs, nodeId, nodeUrl, servePort } from "../config/settings.ts";
import { StoreChanges } from "../config/store-changes.ts";
import { Auth } from "../control/auth.ts";
import { Resume } from "../control/resume.ts";
import { EventBus } from "../events/event-bus.ts";
import { auditCommands } from "./command-audit.ts";
import type { FleetShape, LeaseView, NodeView, TakeoverReason } from "./fleet-types.ts";
import { GUARD_MS, makeGuard } from "./guard.ts";
import * as L from "./leases.ts";
import * as N from "./nodes.ts";
import { type PortProbe, peerChannels, probePort } from "./peers.ts";

const TICK_MS = 250;
const PEER_TIMEOUT_MS = 600;
/** How often a round reads every lease row, and the lease rows are repaired. */
const FULL_MS = 30_000;
/** How many renewal times the metrics' quantiles are taken over. */
const RENEWALS_KEPT = 512;

/** A lease row as last read, and when (this process's clock, when its statement was sent). */
interface Known {
  readonly row: L.LeaseRow;
  readonly readAt: number;
}

export const makeCoordinator = Effect.gen(function* () {
  const db = yield* Database;
  const configs = yield* ConfigState;
  const placement = yield* Placement;
  const channels = yield* Channels;
  const resume = yield* Resume;
  const auth = yield* Auth;
  const changes = yield* StoreChanges;
  const bus = yield* EventBus;
  const ttl = yield* leaseMs;
  const fast = yield* fastTakeover;
  const policy = yield* isolatedPolicy;
  const me = Option.getOrElse(yield* nodeId, () => hostname());
  const port = yield* servePort;
  const selfUrl = Option.getOrElse(yield* nodeUrl, () => `http://${hostname()}:${port}`);
  const bootId = randomUUID();
  const token = Redacted.value(yield* readPeerToken(db));
  const q = db.queryable;

  /** The terms this node holds, by channel. */
  const held = new Map<string, number>();
  let draining = false;
  /** Every lease row, as last read. */
  const known = new Map<string, Known>();
  /** The newest lease revision read: the next round reads the rows written after it (−1: all of them). */
  let leaseRevision = -1;
  let lastFullAt = Number.NEGATIVE_INFINITY;
  /** Channels whose lease rows a notification named since the last reading. */
  const named = new Set<string>();
  /** The configuration's revision this node last applied (null before its first round). */
  let configRevision: number | null = null;
  let nodes: ReadonlyArray<N.NodeRow> = [];
  const nodeSeen = new Map<string, { readonly node: N.NodeRow; readonly readAt: number }>();
  let lastRoundAt = Number.NEGATIVE_INFINITY;
  /** A notification said a node changed: the next tick makes a round, whenever the last one was. */
  let roundDue = false;
  /** Another node changed the configuration (a notification, or the revision a round read). */
  let reconcileDue = false;
  let joined = false;
  const renewals: number[] = [];
  /**
   * The node last seen holding each channel. A released lease names no holder, yet the node that gave it up
   * (a drain, a clean stop) must rank last: this node may not have seen its draining flag yet, and ranked
   * first it would make every standby wait a rank step.
   */
  const lastHolder = new Map<string, string>();
  const probes = new Map<string, PortProbe>();
  const takeovers: Record<TakeoverReason, number> = {
    expired: 0,
    holder_gone: 0,
    holder_restarted: 0,
    drain: 0,
    move: 0,
  };
  let cpuBefore = process.cpuUsage();
  let cpuAt = performance.now();

  let storedFrom: ReadonlyArray<ChannelConfig> | null = null;
  let storedById = new Map<string, ChannelConfig>();
  const stored = (id: string) => {
    const list = configs.current().channels;
    if (list !== storedFrom) {
      storedFrom = list;
      storedById = new Map(list.map((channel) => [channel.id, channel]));
    }
    return storedById.get(id);
  };
  const wantedHere = (channel: ChannelConfig | undefined): channel is ChannelConfig =>
    channel !== undefined &&
    channel.desired === "running" &&
    placement.runsHere(channel) &&
    channels.state(channel.id as ChannelId) === "running";

  const peersOf = () => nodes.filter((node) => node.id !== me && node.heartbeatAgeMs < 3 * ttl);
  const liveNodes = () => nodes.filter((node) => node.heartbeatAgeMs < ttl);

  const guard = makeGuard({
    me,
    ttl,
    policy,
    token,
    q,
    peers: peersOf,
    probe: (id) => probes.get(id),
    holding: () => held.size,
    // Never behind the API's lock: a command waiting on the database must not keep the outputs on air.
    stopAll: Effect.forEach([...held.keys()], (id) => resume.hold(id as ChannelId, false), { discard: true }),
    resumeAll: resume.locked(
      Effect.forEach([...held.keys()], (id) => resume.hold(id as ChannelId, true), { discard: true }),
    ),
  });
  const sql = guard.sql;

  /** When a lease runs out, on this process's clock: a held one lives as long as its holder's node lease. */
  const expiresAt = (entry: Known): number => {
    const own = entry.readAt + entry.row.expiresInMs;
    const { holder, holderBoot } = entry.row;
    if (holder === null) return own;
    const seen = nodeSeen.get(holder);
    return seen !== undefined && seen.node.bootId === holderBoot
      ? Math.max(own, seen.readAt + seen.node.leaseInMs)
      : own;
  };

  const startSending = (id: string, term: number, reason: TakeoverReason | null) =>
    Effect.gen(function* () {
      held.set(id, term);
      if (reason !== null) takeovers[reason] += 1;
      if (!guard.fenced()) yield* resume.locked(resume.hold(id as ChannelId, true));
      yield* Effect.logInfo(
        `fleet: node ${me} holds channel ${id} (term ${term}${reason === null ? "" : `, ${reason}`})`,
      );
    });
  /** Stops at once, without waiting for the API's lock. */
  const stopSending = (id: string, why: string) =>
    Effect.gen(function* () {
      held.delete(id);
      yield* resume.hold(id as ChannelId, false);
      yield* Effect.logWarning(`fleet: node ${me} no longer sends channel ${id}: ${why}`);
    });

  const learn = (rows: ReadonlyArray<L.LeaseRow>, readAt: number) => {
    for (const row of rows) {
      known.set(row.channel, { row, readAt });
      leaseRevision = Math.max(leaseRevision, row.revision);
      if (row.holder !== null) lastHolder.set(row.channel, row.holder);
    }
  };

  /**
   * What this node wrote to a lease row, known before the row is read again (its notification comes a tick
   * later): a row it gave away must not read as its own meanwhile. The revision stays, so the row is read.
   */
  const wrote = (channel: string, holder: string | null, holderBoot: string | null, term: number) => {
    const before = known.get(channel)?.row;
    const row: L.LeaseRow = {
      channel,
      holder,
      holderBoot,
      term,
      revision: before?.revision ?? 0,
      // A held row lives by its holder's node lease; a released one is free from now.
      expiresInMs: holder === null ? 0 : Number.NEGATIVE_INFINITY,
    };
    known.set(channel, { row, readAt: performance.now() });
  };

  const register = sql("register", () => N.registerNode(q, { id: me, url: selfUrl, bootId, version }));

  const doRound = Effect.gen(function* () {
    const sent = performance.now();
    const cpu = process.cpuUsage(cpuBefore);
    const cpuPercent = Math.round(((cpu.user + cpu.system) / 1000 / Math.max(1, sent - cpuAt)) * 1000) / 10;
    cpuBefore = process.cpuUsage();
    cpuAt = sent;
    const full = sent - lastFullAt >= FULL_MS;
    const load = { channels_running: channels.running().length, cpu_percent: cpuPercent };
    const round = yield* sql("round", () => L.round(q, me, bootId, ttl, load, full ? -1 : leaseRevision));
    lastRoundAt = sent;
    renewals.push(performance.now() - sent);
    if (renewals.length > RENEWALS_KEPT) renewals.shift();
    nodes = round.nodes;
    nodeSeen.clear();
    for (const node of nodes) nodeSeen.set(node.id, { node, readAt: sent });
    if (full) {
      lastFullAt = sent;
      const listed = new Set(round.changed.map((row) => row.channel));
      for (const id of known.keys()) if (!listed.has(id)) known.delete(id);
      for (const id of lastHolder.keys()) if (!listed.has(id)) lastHolder.delete(id);
      yield* sql("repair", () => L.ensureLeases(q));
    }
    learn(round.changed, sent);
    if (!round.mine) {
      for (const id of [...held.keys()]) yield* stopSending(id, "another process registered as this node");
      yield* Effect.logError(`fleet: another process registered as node ${me}; registering this one again`);
      yield* register;
      return;
    }
    for (const [id, term] of [...held]) {
      if (round.held.get(id) !== term) yield* stopSending(id, "its lease passed to another node");
    }
    yield* guard.renewed(sent);
    if (nodeSeen.get(me)?.node.draining === true && !draining) yield* drainSelf;
    if (configRevision !== round.configRevision) {
      configRevision = round.configRevision;
      reconcileDue = true;
    }
    joined = true;
  });

  /** The rows that notifications named since the last tick. */
  const readNamed = Effect.gen(function* () {
    if (named.size === 0) return;
    const ids = [...named];
    named.clear();
    const sent = performance.now();
    learn(yield* sql("leases", () => L.leasesOf(q, ids)), sent);
  });

  const decideLock = yield* Effect.makeSemaphore(1);
  /** What this node does about each lease it knows: statements only where something is to be done. */
  const decide = decideLock.withPermits(1)(
    Effect.gen(function* () {
      const now = performance.now();
      const live = liveNodes();
      const settling = guard.settling();
      for (const entry of known.values()) {
        const { row } = entry;
        const channel = stored(row.channel);
        const mine = held.has(row.channel);
        if (!wantedHere(channel)) {
          if (mine) {
            const term = held.get(row.channel) ?? 0;
            yield* stopSending(row.channel, "it no longer runs here");
            if (yield* sql("release", () => L.release(q, me, row.channel, term)))
              wrote(row.channel, null, null, term);
          }
          continue;
        }
        if (row.holder === me && row.holderBoot === bootId) {
          // Handed over by a move, or ours already.
          if (!mine && !draining) yield* startSending(row.channel, row.term, "move");
          continue;
        }
        if (mine || draining || settling || !joined) continue;
        const ranking = L.candidates(channel.nodes, live, row.holder ?? lastHolder.get(row.channel) ?? null);
        const expiry = expiresAt(entry);
        if (row.holder === null || expiry <= now) {
          if (!L.shouldTry(me, ranking, now - expiry)) continue;
          const term = yield* sql("acquire", () => L.acquire(q, me, bootId, row.channel));
          if (term !== null) {
            wrote(row.channel, me, bootId, term);
            const reason = row.holder !== null ? "expired" : row.term > 0 ? "drain" : null;
            yield* startSending(row.channel, term, reason);
          }
          continue;
        }
        if (!fast || ranking[0] !== me) continue;
        const holderNode = nodeSeen.get(row.holder)?.node;
        const restarted = holderNode !== undefined && holderNode.bootId !== row.holderBoot;
        const gone = probes.get(row.holder) === "refused";
        if (!restarted && !gone) continue;
        const term = yield* sql("take over", () =>
          L.takeOver(q, me, bootId, row.channel, row.holder ?? "", row.term),
        );
        if (term === null) continue;
        wrote(row.channel, me, bootId, term);
        yield* startSending(row.channel, term, restarted ? "holder_restarted" : "holder_gone");
      }
    }),
  );

  /**
   * Rounds in a loop of their own, so that nothing the ticks wait for (a start of outputs waits for the API's
   * lock) delays a renewal.
   */
  const roundLoop = Effect.suspend(() => {
    if (!roundDue && performance.now() - lastRoundAt < ttl / 3) return Effect.void;
    roundDue = false;
    return doRound;
  }).pipe(Effect.ignore);
  const tick = Effect.zipRight(readNamed, decide).pipe(Effect.ignore);

  /** The nodes holding the channels this node stands by for, the first standby's or any standby's. */
  const standingBy = (firstOnly: boolean) => {
    const holders = new Map<string, Set<string>>();
    const live = liveNodes();
    for (const { row } of known.values()) {
      if (row.holder === null || row.holder === me) continue;
      const channel = stored(row.channel);
      if (!wantedHere(channel)) continue;
      const ranking = L.candidates(channel.nodes, live, row.holder);
      if (firstOnly ? ranking[0] !== me : !ranking.includes(me)) continue;
      const ids = holders.get(row.holder) ?? new Set<string>();
      ids.add(row.channel);
      holders.set(row.holder, ids);
    }
    return holders;
  };

  /**
   * Every tick, the ports of the holders this node is the first standby for, of the peers whose last probe
   * did not connect, and of one more peer in turn (every peer's while the database does not answer: the
   * guard needs to know which it can reach). A refusal is acted on at once.
   */
  let turn = 0;
  const watchPorts = Effect.gen(function* () {
    const peers = peersOf();
    const first = standingBy(true);
    turn = (turn + 1) % Math.max(1, peers.length);
    const targets = peers.filter(
      (node, index) =>
        !guard.reachable() ||
        index === turn ||
        first.has(node.id) ||
        (probes.get(node.id) ?? "open") !== "open",
    );
    for (const id of probes.keys()) if (!peers.some((node) => node.id === id)) probes.delete(id);
    const refused = yield* Effect.promise(() =>
      Promise.all(
        targets.map(async (node) => {
          const probe = await probePort(node.url, PEER_TIMEOUT_MS);
          probes.set(node.id, probe);
          return probe === "refused";
        }),
      ),
    );
    if (refused.some(Boolean)) yield* Effect.ignore(decide);
  });

  /** Every second, the views of the channels this node stands by for, from their holders. */
  let remote = new Map<string, ChannelView>();
  const fetchViews = Effect.promise(async () => {
    const next = new Map<string, ChannelView>();
    const wanted = standingBy(false);
    await Promise.all(
      peersOf()
        .filter((node) => wanted.has(node.id) && probes.get(node.id) !== "refused")
        .map(async (node) => {
          const views = await peerChannels(node.url, token, 900);
          for (const id of wanted.get(node.id) ?? []) {
            const view = views?.get(id);
            if (view !== undefined) next.set(id, view);
          }
        }),
    );
    remote = next;
  });
  const reachable = (id: string) => id === me || (probes.get(id) ?? "open") === "open";

  const publish = Effect.sync(() => {
    const live = liveNodes();
    const now = performance.now();
    const views = new Map<string, ChannelFleetView>();
    for (const channel of configs.current().channels) {
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
    placement.publish(views, remote);
  });

  /** Applies another node's change: the configuration is read again and the runtime brought to it. */
  const reconcile = resume
    .locked(
      Effect.gen(function* () {
        const { previous, current } = yield* configs.reload;
        yield* resume.converge(previous, current);
      }),
    )
    .pipe(
      // Tokens made or revoked on another node authenticate (or stop) here too.
      Effect.zipRight(auth.reload),
      Effect.catchAll((error) =>
        Effect.logWarning(`fleet: could not apply stored changes: ${String(error)}`),
      ),
    );

  /**
   * One drain at a time, however it was asked for (the API on this node, the flag another node set, seen by
   * a round, or a clean stop): a second one waits for the first and answers with the same count, the
   * channels handed over since this node began to drain.
   */
  const drainLock = yield* Effect.makeSemaphore(1);
  let releasedSinceDrain = 0;
  const drainSelf = drainLock.withPermits(1)(
    Effect.gen(function* () {
      draining = true;
      if (held.size === 0) return releasedSinceDrain;
      for (const [id, term] of [...held]) {
        yield* stopSending(id, "this node is draining");
        if (yield* sql("release", () => L.release(q, me, id, term))) {
          wrote(id, null, null, term);
          releasedSinceDrain += 1;
        }
      }
      yield* Effect.logInfo(
        `fleet: node ${me} drained: ${releasedSinceDrain} channels handed to their standbys`,
      );
      return releasedSinceDrain;
    }),
  );

  yield* Effect.orDie(register);
  yield* Effect.logInfo(
    `fleet: node ${me} (${selfUrl}) joined, boot ${bootId.slice(0, 8)}, leases ${ttl} ms`,
  );

  yield* Effect.forkScoped(Effect.repeat(roundLoop, Schedule.spaced(`${GUARD_MS} millis`)));
  yield* Effect.forkScoped(Effect.repeat(tick, Schedule.spaced(`${TICK_MS} millis`)));
  yield* Effect.forkScoped(Effect.repeat(guard.check, Schedule.spaced(`${GUARD_MS} millis`)));
  yield* Effect.forkScoped(
    Effect.repeat(Effect.zipRight(watchPorts, publish), Schedule.spaced(`${TICK_MS} millis`)),
  );
  yield* Effect.forkScoped(Effect.repeat(Effect.zipRight(fetchViews, publish), Schedule.spaced("1 second")));
  // Notifications only raise flags: nothing they lead to (a reconcile waits for the API's lock) holds them up.
  yield* Effect.forkScoped(
    Stream.runForEach(changes.changes, (notice) =>
      Effect.sync(() => {
        if ("lease" in notice) named.add(notice.lease);
        // A node registered or drains: the next tick's round reads the nodes.
        else if ("node_changed" in notice) roundDue = true;
        // A change this node wrote is applied already.
        else if ("document" in notice) reconcileDue ||= notice.node !== me;
        else {
          // After a reconnection what was missed is read at once: every lease row, and the configuration.
          lastFullAt = Number.NEGATIVE_INFINITY;
          reconcileDue = true;
        }
      }),
    ),
  );
  yield* Effect.forkScoped(
    Effect.repeat(
      Effect.suspend(() => {
        if (!reconcileDue) return Effect.void;
        reconcileDue = false;
        return reconcile;
      }),
      Schedule.spaced("30 millis"),
    ),
  );
  yield* Effect.forkScoped(auditCommands(bus, db, me));
  // A clean stop hands every lease over at once instead of leaving the standbys to wait for them.
  yield* Effect.addFinalizer(() => Effect.ignore(drainSelf));

  const holding = (id: string, now: number) => {
    let count = 0;
    for (const entry of known.values()) if (entry.row.holder === id && expiresAt(entry) > now) count += 1;
    return count;
  };
  const nodeState = (node: N.NodeRow, holds: number): NodeView["state"] => {
    // Drained is out of service on purpose: stopped afterwards (maintenance, an upgrade), it is not down.
    if (node.draining && holds === 0) return "drained";
    if (node.id !== me) {
      if (node.heartbeatAgeMs > 30_000) return "down";
      if (!reachable(node.id)) return "unreachable";
    }
    if (node.draining) return holds > 0 ? "draining" : "drained";
    return "up";
  };
  const nodeViews = (): ReadonlyArray<NodeView> => {
    const now = performance.now();
    return nodes.map((node) => {
      const holds = holding(node.id, now);
      return {
        id: node.id,
        url: node.url,
        version: node.version,
        boot_id: node.bootId,
        started_at: node.startedAt,
        heartbeat_age_ms: Math.max(0, Math.round(node.heartbeatAgeMs)),
        state: nodeState(node, holds),
        self: node.id === me,
        channels_held: holds,
        load: node.load,
      };
    });
  };

  const shape: FleetShape = {
    enabled: true,
    self: me,
    ready: () => joined,
    nodes: nodeViews,
    leases: (): ReadonlyArray<LeaseView> => {
      const now = performance.now();
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
    held: () => new Map(held),
    renewalMs: () => [...renewals],
    databaseReachable: guard.reachable,
    databaseLastOkMsAgo: guard.lastOkMsAgo,
    isolated: guard.isolated,
    takeovers: () => ({ ...takeovers }),
    holderUrl: async (channelId) => {
      if (held.has(channelId)) return null;
      const otherHolder = (entry: Known | undefined) =>
        entry !== undefined &&
        entry.row.holder !== null &&
        entry.row.holder !== me &&
        expiresAt(entry) > performance.now()
          ? entry.row.holder
          : null;
      const urlOf = (id: string) => {
        const node = nodeSeen.get(id)?.node;
        return node !== undefined && reachable(node.id) ? node.url : null;
      };
      const cached = otherHolder(known.get(channelId));
      if (cached !== null) return urlOf(cached);
      // A channel another node has just taken may still read as free here. Not while the database is out
      // of reach: the request is answered here at once.
      if (!guard.reachable()) return null;
      const sent = performance.now();
      const fresh = await L.lease(q, channelId).catch(() => undefined);
      const holder = otherHolder(fresh === undefined ? undefined : { row: fresh, readAt: sent });
      return holder === null ? null : urlOf(holder);
    },
    drain: (id) =>
      Effect.gen(function* () {
        const node = nodeSeen.get(id)?.node;
        if (node === undefined) {
          return yield* new ControlError({
            reason: "not_found",
            message: `node '${id}' is not in the fleet`,
          });
        }
        const holds = holding(id, performance.now());
        yield* sql("drain", () => N.setDraining(q, id, true)).pipe(Effect.mapError(unavailable));
        if (id === me) return { released: yield* Effect.mapError(drainSelf, unavailable) };
        return { released: holds };
      }),
    move: (channelId, to) =>
      Effect.gen(function* () {
        const channel = stored(channelId);
        const term = held.get(channelId);
        if (channel === undefined)
          return yield* new ControlError({
            reason: "not_found",
            message: `channel '${channelId}' does not exist`,
          });
        // Already here, or handed here and starting at this node's next tick: nothing to move.
        if (to === me && (term !== undefined || (yield* handedHere(channelId)))) return null;
        const target = nodeSeen.get(to)?.node;
        if (target === undefined || nodeState(target, holding(to, performance.now())) !== "up") {
          return yield* new ControlError({
            reason: "conflict",
            message: `node '${to}' is not up in the fleet: a channel moves only to a live node`,
          });
        }
        if (channel.nodes !== undefined && channel.nodes.length > 0 && !channel.nodes.includes(to as never)) {
          return yield* new ControlError({
            reason: "invalid",
            message: `node: '${to}' does not receive channel '${channel.name}' (its nodes are ${channel.nodes.join(", ")})`,
          });
        }
        if (term === undefined) {
          return yield* new ControlError({
            reason: "conflict",
            message: `node ${me} does not hold channel '${channel.name}': ask its holder`,
          });
        }
        yield* stopSending(channelId, `moved to node ${to} by an operator`);
        const moved = yield* sql("move", () => L.handOver(q, me, term, channelId, to, target.bootId)).pipe(
          Effect.mapError(unavailable),
        );
        if (moved !== null) wrote(channelId, to, target.bootId, moved);
        if (moved === null) {
          return yield* new ControlError({
            reason: "conflict",
            message: `the lease of '${channel.name}' changed meanwhile`,
          });
        }
        return { from: me };
      }),
    peerToken: () => token,
  };

  /** Whether the database names this process the channel's holder (a move it has not started yet). */
  const handedHere = (channelId: string) =>
    sql("lease", () => L.lease(q, channelId)).pipe(
      Effect.map(
        (row) =>
          row !== undefined &&
          row.holder === me &&
          row.holderBoot === bootId &&
          expiresAt({ row, readAt: performance.now() }) > performance.now(),
      ),
      Effect.mapError(unavailable),
    );
  return shape;
});

const unavailable = () =>
  new ControlError({
    reason: "unavailable",
    message: "the database cannot be reached: changes are refused until it is back; reads keep working",
  });
