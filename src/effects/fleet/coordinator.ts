/**
 * The fleet's coordinator on one node: it registers the node and beats its heart, holds channel leases and
 * turns holding into sending (Resume.hold: a standby's channel runs with idle outputs), takes over from a dead
 * holder, fences itself when cut off from the database, drains, moves, and applies what other nodes stored.
 *
 * Every lease time is the database's (leases.ts); every deadline here is this process's monotonic clock, so
 * clocks that disagree between nodes do not matter. One loop (`tick`, every 250 ms) talks to the database;
 * another (`watch`) probes the peers' ports and fetches their views of the channels they hold.
 *
 * Fencing: a holder whose statements fail asks its peers whether they reach the database. If one does, this
 * node is the one cut off: it stops its outputs at once, well before its leases can expire and pass to a
 * standby. If a peer says it does not reach it either (the database is down for all), or no peer can be
 * reached at all (they are gone, or the network is down for everyone), it keeps sending — the air matters
 * more than the configuration — says so (`isolated`), and gets its leases back by their terms when the
 * database returns. If a peer that accepts connections has not answered when the leases are nearly up (a
 * loaded machine), it stops shortly before they can expire. A node back on the database waits a lease time
 * before it takes anything, so a holder that kept sending through an outage renews first.
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
import { fastTakeover, leaseMs, nodeId, nodeUrl, servePort } from "../config/settings.ts";
import { StoreChanges } from "../config/store-changes.ts";
import { Auth } from "../control/auth.ts";
import { Resume } from "../control/resume.ts";
import { EventBus } from "../events/event-bus.ts";
import { auditCommands } from "./command-audit.ts";
import type { FleetShape, LeaseView, NodeView, TakeoverReason } from "./fleet-types.ts";
import * as L from "./leases.ts";
import * as N from "./nodes.ts";
import { type PeerReach, type PortProbe, peerChannels, peerReachesDatabase, probePort } from "./peers.ts";

const TICK_MS = 250;
const BEAT_MS = 1000;
const PEER_TIMEOUT_MS = 600;
/** How long the database may be silent before a holder asks its peers, and how often it checks. */
const OUTAGE_MS = 1000;
const GUARD_MS = 100;
/**
 * How long before its leases can expire a holder without word stops sending: a fifth of the lease time, at
 * least 500 ms, so a loop that runs a few hundred milliseconds late on a loaded machine still stops first.
 */
const fenceMarginMs = (ttl: number) => Math.max(500, ttl / 5);

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
  const me = Option.getOrElse(yield* nodeId, () => hostname());
  const port = yield* servePort;
  const selfUrl = Option.getOrElse(yield* nodeUrl, () => `http://${hostname()}:${port}`);
  const bootId = randomUUID();
  const token = Redacted.value(yield* readPeerToken(db));
  const q = db.queryable;

  /** The terms this node holds, by channel; `fenced` while it stopped sending for want of the database. */
  const held = new Map<string, number>();
  let fenced = false;
  let isolated = false;
  let draining = false;
  let dbOk = true;
  let lastDbOkAt = performance.now();
  /** When the current run of failed statements began. */
  let failedAt = Number.NEGATIVE_INFINITY;
  /** When the database came back after a failure: no acquisition for a lease time after. */
  let backAt = Number.NEGATIVE_INFINITY;
  let lastRenewOkSent = performance.now();
  let lastRenewAt = Number.NEGATIVE_INFINITY;
  let lastBeatAt = Number.NEGATIVE_INFINITY;
  let nodes: ReadonlyArray<N.NodeRow> = [];
  let rows: ReadonlyArray<L.LeaseRow> = [];
  /**
   * The node last seen holding each channel. A released lease names no holder, yet the node that gave it up
   * (a drain, a clean stop) must rank last: this node may not have seen its draining flag yet, and ranked
   * first it would make every standby wait a rank step.
   */
  const lastHolder = new Map<string, string>();
  const probes = new Map<string, { probe: PortProbe; at: number }>();
  const takeovers: Record<TakeoverReason, number> = {
    expired: 0,
    holder_gone: 0,
    holder_restarted: 0,
    drain: 0,
    move: 0,
  };
  let cpuBefore = process.cpuUsage();
  let cpuAt = performance.now();

  /** A database statement: its failure marks the database unreachable (and is answered by fencing). */
  const sql = <A>(what: string, run: () => Promise<A>) =>
    Effect.tryPromise({ try: run, catch: (cause) => cause }).pipe(
      Effect.tap(() =>
        Effect.sync(() => {
          if (!dbOk) backAt = performance.now();
          dbOk = true;
          isolated = false;
          lastDbOkAt = performance.now();
        }),
      ),
      Effect.tapError((cause) =>
        Effect.suspend(() => {
          const first = dbOk;
          dbOk = false;
          if (first) failedAt = performance.now();
          return first
            ? Effect.logWarning(`fleet: the database cannot be reached (${what}): ${String(cause)}`)
            : Effect.void;
        }),
      ),
    );

  const stored = (id: string) => configs.current().channels.find((channel) => channel.id === id);
  const wantedHere = (channel: ChannelConfig | undefined) =>
    channel !== undefined &&
    channel.desired === "running" &&
    placement.runsHere(channel) &&
    channels.state(channel.id as ChannelId) === "running";

  const startSending = (id: string, term: number, reason: TakeoverReason | null) =>
    Effect.gen(function* () {
      held.set(id, term);
      if (reason !== null) takeovers[reason] += 1;
      yield* resume.locked(resume.hold(id as ChannelId, true));
      yield* Effect.logInfo(
        `fleet: node ${me} holds channel ${id} (term ${term}${reason === null ? "" : `, ${reason}`})`,
      );
    });
  const stopSending = (id: string, why: string) =>
    Effect.gen(function* () {
      held.delete(id);
      yield* resume.locked(resume.hold(id as ChannelId, false));
      yield* Effect.logWarning(`fleet: node ${me} no longer sends channel ${id}: ${why}`);
    });

  /** Every output idle, the terms kept: the database may still say they are ours when it is back. */
  const fence = (why: string) =>
    Effect.gen(function* () {
      if (fenced || held.size === 0) return;
      fenced = true;
      for (const id of held.keys()) yield* resume.locked(resume.hold(id as ChannelId, false));
      yield* Effect.logError(`fleet: node ${me} stopped sending ${held.size} channels: ${why}`);
    });

  const peersOf = () => nodes.filter((node) => node.id !== me && node.heartbeatAgeMs < 3 * ttl);

  /** A question to the peers is out (asked again as soon as its answers are in). */
  let asking = false;
  /**
   * During an outage, what each peer last said of the database: one that reaches it means this node is the
   * one cut off; one that does not means the database is down for all. A peer that does not answer says
   * nothing, and erases nothing it said before. Kept with the question it answered: when it was asked, and
   * whether this node's own statement failed then.
   */
  const said = new Map<
    string,
    {
      readonly reach: PeerReach;
      readonly heardAt: number;
      readonly askedAt: number;
      readonly ownFailed: boolean;
    }
  >();
  /** When a question whose own statement reached the database was asked. */
  let ownOkAskedAt = Number.NEGATIVE_INFINITY;
  const ask = async () => {
    const askedAt = performance.now();
    const peers = peersOf();
    const [answers, own] = await Promise.all([
      Promise.all(peers.map((node) => peerReachesDatabase(node.url, token, PEER_TIMEOUT_MS))),
      // A peer that reaches the database may only have reached it first as it comes back: one quick
      // statement of this node's own tells that apart from a cut before it stops sending.
      Promise.race([
        q.query("select 1").then(
          () => true,
          () => false,
        ),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 300)),
      ]),
    ]);
    const heardAt = performance.now();
    for (const [index, node] of peers.entries()) {
      const reach = answers[index];
      if (reach != null) said.set(node.id, { reach, heardAt, askedAt, ownFailed: !own });
    }
    if (own) ownOkAskedAt = askedAt;
  };

  /**
   * Beside the tick, which may wait on a statement that hangs (a network cut drops packets; a statement
   * gives up after two seconds): once a statement failed, or the database has been silent for a second,
   * while this node holds leases, the peers are asked, and the answers decide — never the wait for them.
   * When the leases' time is nearly up, the outputs stop unless a peer said the database is down for it
   * too, or no peer can be reached: a peer that accepts connections but did not answer may reach the
   * database and take the leases.
   */
  const guard = Effect.gen(function* () {
    if (held.size === 0 || fenced) return;
    if (performance.now() - lastDbOkAt < (dbOk ? OUTAGE_MS : GUARD_MS)) return;
    if (!asking) {
      asking = true;
      void ask().finally(() => {
        asking = false;
      });
    }
    if (ownOkAskedAt > lastDbOkAt) {
      lastDbOkAt = performance.now();
      return;
    }
    // The outage began at the first failed statement, or once a hung one had kept silent for a second. What
    // the peers said before is no sign. A peer reaches the database only if it did after that, and before a
    // question in which this node's own statement still failed: a peer's success from just before a crash,
    // or from the moment the database came back (sooner for it than for this node), does not count.
    const outageAt = dbOk ? lastDbOkAt + OUTAGE_MS : failedAt;
    const heard = [...said.values()].filter((entry) => entry.heardAt > outageAt);
    const reaches = heard.some(
      ({ reach, askedAt, ownFailed }) =>
        ownFailed && reach.reachable && reach.okAt > outageAt && reach.okAt < askedAt,
    );
    if (reaches) {
      isolated = false;
      return yield* fence("it cannot reach the database and a peer can (its leases will pass to a standby)");
    }
    // A peer this node can still connect to, but that has not said, may well reach the database (a loaded
    // machine answers late): only those make the deadline count. Peers gone or cut off cannot take over, or
    // cannot be told apart from a network down for all, where the air comes first.
    const reachablePeers = peersOf().filter((node) => probes.get(node.id)?.probe === "open");
    const saysDown = (peer: PeerReach) => !peer.reachable || performance.now() - peer.okAt > OUTAGE_MS;
    const downForAll = reachablePeers.length === 0 || heard.some((entry) => saysDown(entry.reach));
    if (downForAll && !isolated) {
      isolated = true;
      yield* Effect.logError(
        `fleet: node ${me} cannot reach the database and no peer can: it keeps sending its ${held.size} channels`,
      );
    }
    // Once the database was down for all, this node stays isolated until it reaches it again, or a peer
    // reaches it first (above): a peer back on the database waits a lease time before it takes any lease.
    if (!isolated && performance.now() - lastRenewOkSent > ttl - fenceMarginMs(ttl)) {
      yield* fence("its leases ran out without a renewal, and no peer said the database is down for it too");
    }
  });

  const beat = Effect.gen(function* () {
    const now = performance.now();
    const cpu = process.cpuUsage(cpuBefore);
    const cpuPercent = Math.round(((cpu.user + cpu.system) / 1000 / Math.max(1, now - cpuAt)) * 1000) / 10;
    cpuBefore = process.cpuUsage();
    cpuAt = now;
    const mine = yield* sql("heartbeat", () =>
      N.heartbeat(q, me, bootId, { channels_running: channels.running().length, cpu_percent: cpuPercent }),
    );
    if (!mine) {
      yield* Effect.logError(`fleet: another process registered as node ${me}; registering this one again`);
      yield* sql("register", () => N.registerNode(q, { id: me, url: selfUrl, bootId, version }));
    }
    nodes = yield* sql("nodes", () => N.listNodes(q));
    if (nodes.find((node) => node.id === me)?.draining === true && !draining) yield* drainSelf;
    lastBeatAt = now;
  });

  const renew = Effect.gen(function* () {
    const sent = performance.now();
    lastRenewAt = sent;
    const still = yield* sql("renew", () => L.renewAll(q, me, bootId, ttl, held));
    lastRenewOkSent = sent;
    for (const id of [...held.keys()]) {
      if (!still.has(id)) yield* stopSending(id, "its lease passed to another node");
    }
    if (fenced) {
      fenced = false;
      for (const id of held.keys()) yield* resume.locked(resume.hold(id as ChannelId, true));
      if (held.size > 0) yield* Effect.logInfo(`fleet: node ${me} is back on the database and sends again`);
    }
  });

  const place = Effect.gen(function* () {
    yield* sql("ensure", () => L.ensureLeases(q));
    rows = yield* sql("leases", () => L.leases(q));
    const listed = new Set(rows.map((row) => row.channel));
    for (const id of lastHolder.keys()) if (!listed.has(id)) lastHolder.delete(id);
    for (const row of rows) if (row.holder !== null) lastHolder.set(row.channel, row.holder);
    const now = performance.now();
    const live = nodes.filter((node) => node.heartbeatAgeMs < ttl);
    const settling = now - backAt < ttl;
    for (const row of rows) {
      const channel = stored(row.channel);
      const mine = held.has(row.channel);
      if (!wantedHere(channel) || channel === undefined) {
        if (mine) {
          const term = held.get(row.channel) ?? 0;
          yield* stopSending(row.channel, "it no longer runs here");
          yield* sql("release", () => L.release(q, me, row.channel, term));
        }
        continue;
      }
      if (row.holder === me && row.holderBoot === bootId) {
        // Handed over by a move, or ours already.
        if (!mine && !draining) yield* startSending(row.channel, row.term, "move");
        continue;
      }
      if (mine || draining || settling) continue;
      const ranking = L.candidates(channel.nodes, live, row.holder ?? lastHolder.get(row.channel) ?? null);
      if (row.holder === null || row.expiresInMs <= 0) {
        if (!L.shouldTry(me, ranking, -row.expiresInMs)) continue;
        const term = yield* sql("acquire", () => L.acquire(q, me, bootId, row.channel, ttl));
        if (term !== null) {
          const reason = row.holder !== null ? "expired" : row.term > 0 ? "drain" : null;
          yield* startSending(row.channel, term, reason);
        }
        continue;
      }
      if (!fast || ranking[0] !== me) continue;
      const holderNode = nodes.find((node) => node.id === row.holder);
      const restarted = holderNode !== undefined && holderNode.bootId !== row.holderBoot;
      const gone = probes.get(row.holder)?.probe === "refused";
      if (!restarted && !gone) continue;
      const term = yield* sql("take over", () =>
        L.takeOver(q, me, bootId, row.channel, row.holder ?? "", row.term, ttl),
      );
      if (term !== null)
        yield* startSending(row.channel, term, restarted ? "holder_restarted" : "holder_gone");
    }
  });

  const tick = Effect.gen(function* () {
    const now = performance.now();
    if (now - lastBeatAt >= BEAT_MS) yield* beat;
    if (held.size > 0 && now - lastRenewAt >= ttl / 3) yield* renew;
    yield* place;
  }).pipe(Effect.ignore);

  /** Whether the database names this process the channel's holder (a move it has not started yet). */
  const handedHere = (channelId: string) =>
    sql("lease", () => L.lease(q, channelId)).pipe(
      Effect.map((row) => row?.holder === me && row.holderBoot === bootId && row.expiresInMs > 0),
      Effect.mapError(unavailable),
    );

  /**
   * One drain at a time, however it was asked for (the API on this node, the flag another node set, seen by
   * the heartbeat, or a clean stop): a second one waits for the first and answers with the same count, the
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
        if (yield* sql("release", () => L.release(q, me, id, term))) releasedSinceDrain += 1;
      }
      yield* Effect.logInfo(
        `fleet: node ${me} drained: ${releasedSinceDrain} channels handed to their standbys`,
      );
      return releasedSinceDrain;
    }),
  );

  /** The peers' ports every tick, and every second the views of the channels each one holds. */
  let remote = new Map<string, ChannelView>();
  const watchPorts = Effect.promise(() =>
    Promise.all(
      peersOf().map(async (node) => {
        probes.set(node.id, { probe: await probePort(node.url, PEER_TIMEOUT_MS), at: performance.now() });
      }),
    ),
  );
  const fetchViews = Effect.promise(async () => {
    const next = new Map<string, ChannelView>();
    const holders = new Set(
      rows.flatMap((row) => (row.holder === null || row.holder === me ? [] : [row.holder])),
    );
    await Promise.all(
      peersOf()
        .filter((node) => holders.has(node.id) && probes.get(node.id)?.probe === "open")
        .map(async (node) => {
          const views = await peerChannels(node.url, token, 900);
          for (const row of rows) {
            const view = row.holder === node.id ? views?.get(row.channel) : undefined;
            if (view !== undefined) next.set(row.channel, view);
          }
        }),
    );
    remote = next;
  });
  const reachable = (id: string) => id === me || probes.get(id)?.probe === "open";

  const publish = Effect.sync(() => {
    const live = nodes.filter((node) => node.heartbeatAgeMs < ttl);
    const views = new Map<string, ChannelFleetView>();
    for (const channel of configs.current().channels) {
      const row = rows.find((candidate) => candidate.channel === channel.id);
      const holder = row !== undefined && row.holder !== null && row.expiresInMs > -ttl ? row.holder : null;
      views.set(channel.id, {
        nodes: [...(channel.nodes ?? [])],
        holder,
        term: row?.term ?? 0,
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

  yield* sql("register", () => N.registerNode(q, { id: me, url: selfUrl, bootId, version })).pipe(
    Effect.orDie,
  );
  yield* Effect.logInfo(
    `fleet: node ${me} (${selfUrl}) joined, boot ${bootId.slice(0, 8)}, leases ${ttl} ms`,
  );

  yield* Effect.forkScoped(Effect.repeat(tick, Schedule.spaced(`${TICK_MS} millis`)));
  yield* Effect.forkScoped(Effect.repeat(guard, Schedule.spaced(`${GUARD_MS} millis`)));
  yield* Effect.forkScoped(
    Effect.repeat(Effect.zipRight(watchPorts, publish), Schedule.spaced(`${TICK_MS} millis`)),
  );
  yield* Effect.forkScoped(Effect.repeat(Effect.zipRight(fetchViews, publish), Schedule.spaced("1 second")));
  yield* Effect.forkScoped(
    changes.changes.pipe(
      Stream.debounce("30 millis"),
      Stream.runForEach(() => reconcile),
    ),
  );
  yield* Effect.forkScoped(Effect.repeat(reconcile, Schedule.spaced("5 seconds")));
  yield* Effect.forkScoped(auditCommands(bus, db, me));
  // A clean stop hands every lease over at once instead of leaving the standbys to wait for them.
  yield* Effect.addFinalizer(() => Effect.ignore(drainSelf));

  const nodeState = (node: N.NodeRow): NodeView["state"] => {
    const holds = rows.filter((row) => row.holder === node.id && row.expiresInMs > 0).length;
    // Drained is out of service on purpose: stopped afterwards (maintenance, an upgrade), it is not down.
    if (node.draining && holds === 0) return "drained";
    if (node.id !== me) {
      if (node.heartbeatAgeMs > 30_000) return "down";
      if (!reachable(node.id)) return "unreachable";
    }
    if (node.draining) return holds > 0 ? "draining" : "drained";
    return "up";
  };

  const shape: FleetShape = {
    enabled: true,
    self: me,
    nodes: () =>
      nodes.map((node) => ({
        id: node.id,
        url: node.url,
        version: node.version,
        boot_id: node.bootId,
        started_at: node.startedAt,
        heartbeat_age_ms: Math.max(0, Math.round(node.heartbeatAgeMs)),
        state: nodeState(node),
        self: node.id === me,
        channels_held: rows.filter((row) => row.holder === node.id && row.expiresInMs > 0).length,
        load: node.load,
      })),
    leases: (): ReadonlyArray<LeaseView> =>
      rows.map((row) => ({
        channel: row.channel,
        holder: row.holder,
        term: row.term,
        expires_in_ms: Number.isFinite(row.expiresInMs) ? Math.round(row.expiresInMs) : -1,
      })),
    // A healthy node's tick reaches the database every 250 ms: a second without is an outage.
    databaseReachable: () => dbOk && performance.now() - lastDbOkAt < OUTAGE_MS,
    databaseLastOkMsAgo: () => performance.now() - lastDbOkAt,
    isolated: () => isolated,
    takeovers: () => ({ ...takeovers }),
    holderUrl: async (channelId) => {
      if (held.has(channelId)) return null;
      const otherHolder = (row: L.LeaseRow | undefined) =>
        row !== undefined && row.holder !== null && row.holder !== me && row.expiresInMs > 0
          ? row.holder
          : null;
      const urlOf = (id: string) => {
        const node = nodes.find((candidate) => candidate.id === id);
        return node !== undefined && reachable(node.id) ? node.url : null;
      };
      const cached = otherHolder(rows.find((candidate) => candidate.channel === channelId));
      if (cached !== null) return urlOf(cached);
      // The rows are up to a tick old: a channel another node has just taken still reads as free here. Not
      // while the database is out of reach: the request is answered here at once.
      if (!dbOk) return null;
      const fresh = await L.lease(q, channelId).catch(() => undefined);
      const holder = otherHolder(fresh);
      return holder === null ? null : urlOf(holder);
    },
    drain: (id) =>
      Effect.gen(function* () {
        const node = nodes.find((candidate) => candidate.id === id);
        if (node === undefined) {
          return yield* new ControlError({
            reason: "not_found",
            message: `node '${id}' is not in the fleet`,
          });
        }
        const holds = rows.filter((row) => row.holder === id && row.expiresInMs > 0).length;
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
        // Already here, or handed here and starting at this node's next round: nothing to move.
        if (to === me && (term !== undefined || (yield* handedHere(channelId)))) return null;
        const target = nodes.find((node) => node.id === to);
        if (target === undefined || nodeState(target) !== "up") {
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
        const moved = yield* sql("move", () =>
          L.handOver(q, me, term, channelId, to, target.bootId, ttl),
        ).pipe(Effect.mapError(unavailable));
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
  return shape;
});

const unavailable = () =>
  new ControlError({
    reason: "unavailable",
    message: "the database cannot be reached: changes are refused until it is back; reads keep working",
  });
