/**
 * The fleet's coordinator on one node: it registers the node, renews what it holds, turns holding into sending
 * (Resume.hold: a standby's channel runs with idle outputs), takes over from a dead holder, drains, moves, and
 * applies what other nodes stored. The guard (guard.ts) decides when a holder must stop for want of renewals;
 * what the node holds, and the gates that let it send, are sending.ts.
 *
 * What it costs is what changes, not what exists. At rest a node makes one statement per renewal interval (a
 * third of the lease): its round (leases.ts) renews its node lease, which every lease it holds hangs on, and
 * reads the nodes, the lease rows written since the last round, and the configuration's revision. A changed
 * lease row is announced by a notification naming its channel, and read 20 ms after it (a burst at once); the
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
import * as Duration from "effect/Duration";
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import * as Queue from "effect/Queue";
import * as Redacted from "effect/Redacted";
import * as Stream from "effect/Stream";
import type { ChannelId } from "../../domain/base/ids.ts";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
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
import { setStaleAfter } from "../runtime/sockets/send-gates.ts";
import { makeAlarm } from "../runtime/timers/alarm.ts";
import { quietly } from "../runtime/timers/quiet-timer.ts";
import { auditCommands } from "./command-audit.ts";
import { makeCommands } from "./commands.ts";
import type { FleetShape } from "./fleet-types.ts";
import { fenceMarginMs, GUARD_MS, makeGuard } from "./guard.ts";
import { makeFleetHandover } from "./handover.ts";
import { makeLeaseBook } from "./lease-book.ts";
import { makeLeasePass } from "./lease-pass.ts";
import * as L from "./leases.ts";
import type { NodeContext } from "./node-context.ts";
import { makeNodeNotices } from "./node-notices.ts";
import * as N from "./nodes.ts";
import { probePort } from "./peers.ts";
import { makeSending } from "./sending.ts";
import { makeWatch } from "./watch.ts";

/** The longest a node goes without a pass over its leases; a notification or a deadline brings one sooner. */
const TICK_MS = 1000;
/** How often the peers' ports are probed while the database does not answer (the guard asks which it reaches). */
const OUTAGE_PROBE_MS = 250;
/** How often a round reads every lease row, and the lease rows are repaired. */
const FULL_MS = 30_000;

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

  let draining = false;
  const book = makeLeaseBook(me, ttl);
  let lastFullAt = Number.NEGATIVE_INFINITY;
  /** Channels whose lease rows a notification named since the last reading. */
  const named = new Set<string>();
  /** The configuration's revision this node last applied (null before its first round). */
  let configRevision: number | null = null;
  let lastRoundAt = Number.NEGATIVE_INFINITY;
  /** When the last round the database answered was sent: it kept the node's leases a lease time from then. */
  let answeredSentAt = Number.NEGATIVE_INFINITY;
  /** A notification said a node changed: a round now, whenever the last one was. */
  const roundDue = makeAlarm();
  /** Another node changed the configuration (a notification, or the revision a round read). */
  const reconcileDue = yield* Queue.sliding<void>(1);
  /** A notification named a lease: it is read at once. */
  const tickDue = makeAlarm();
  /** A tether to a peer ended: its port is probed now. */
  const portsDue = makeAlarm();
  let joined = false;
  /**
   * Whether this node's own port accepts connections yet. Until it does, the node takes no lease: a peer that
   * probes it meanwhile finds it refused — the sign of a process gone — and takes over at once whatever it
   * took (the start-up loss: a node started beside another lost the channels it had just taken).
   */
  let listening = false;
  const renewalListeners = new Set<(ms: number) => void>();
  let cpuBefore = process.cpuUsage();
  let cpuAt = performance.now();

  const stored = (id: string) => configs.byId(configs.current()).get(id);
  const wantedHere = (channel: ChannelConfig | undefined): channel is ChannelConfig =>
    channel !== undefined &&
    channel.desired === "running" &&
    placement.runsHere(channel) &&
    channels.state(channel.id as ChannelId) === "running";

  const handover = makeFleetHandover(me, channels, bus);
  const sending = makeSending(me, ttl, resume, () => guard.fenced(), handover);
  const { held, stopSending } = sending;
  const guard = makeGuard({
    me,
    ttl,
    policy,
    token,
    q,
    peers: book.peers,
    probe: (id) => watch.probe(id),
    holding: () => held.size,
    // Never behind the API's lock: a command waiting on the database must not keep the outputs on air.
    stopAll: sending.stopAll,
    keepSending: () => sending.sendFor(0),
    resumeAll: sending.resumeAll,
  });
  const sql = guard.sql;
  const nodeNotices = yield* makeNodeNotices(q, bus, me);
  /** What the parts that act on the leases for the coordinator are given (node-context.ts). */
  const node: NodeContext = { me, bootId, q, book, held, sql, stored, stopSending };
  // A forwarding thread that stalled longer than a loop may be late drops what queued in its inputs meanwhile.
  setStaleAfter(fenceMarginMs(ttl));

  const register = sql("register", () => N.registerNode(q, { id: me, url: selfUrl, bootId, version }));

  const doRound = Effect.gen(function* () {
    const sent = performance.now();
    const cpu = process.cpuUsage(cpuBefore);
    const cpuPercent = Math.round(((cpu.user + cpu.system) / 1000 / Math.max(1, sent - cpuAt)) * 1000) / 10;
    cpuBefore = process.cpuUsage();
    cpuAt = sent;
    const full = sent - lastFullAt >= FULL_MS;
    const load = { channels_running: channels.running().length, cpu_percent: cpuPercent };
    const round = yield* sql("round", () => L.round(q, me, bootId, ttl, load, full ? -1 : book.revision()));
    lastRoundAt = sent;
    const took = performance.now() - sent;
    // The round ran before its answer came, and the node's leases lasted at least a lease time from the round
    // before: answered inside that, it renewed leases that still held. Later (the node, or its database,
    // stalled meanwhile), they may have lapsed and a standby may have taken one in the same instant, unseen by
    // this round: the gates stay as they are, and the next round, at once, says what the node holds.
    const sinceBefore = sent + took - answeredSentAt;
    const inTime = sinceBefore < ttl || answeredSentAt === Number.NEGATIVE_INFINITY;
    answeredSentAt = sent;
    for (const listener of renewalListeners) listener(took);
    book.setNodes(round.nodes, sent);
    nodeNotices.observe(round.nodes);
    if (full) {
      lastFullAt = sent;
      book.keepOnly(round.changed);
      yield* sql("repair", () => L.ensureLeases(q));
    }
    book.learn(round.changed, sent);
    if (!round.mine) {
      for (const id of [...held.keys()]) yield* stopSending(id, "another process registered as this node");
      yield* Effect.logError(`fleet: another process registered as node ${me}; registering this one again`);
      yield* register;
      return;
    }
    for (const [id, term] of [...held]) {
      // A lease taken after this round was sent may be missing from what it read: its statement (on another
      // connection) may have begun before the take was committed. The next round says whether it is still ours.
      if (round.held.get(id) !== term && sending.takenAt(id) <= sent)
        yield* stopSending(id, "its lease passed to another node");
    }
    if (inTime) {
      yield* guard.renewed(sent);
      sending.sendFor(performance.now() - sent);
    } else {
      roundDue.ring();
      if (held.size > 0)
        yield* Effect.logWarning(
          `fleet: node ${me} renewed its leases ${Math.round(sinceBefore)} ms after the round before, when they may have lapsed: its channels send again only once the next round finds them still its own`,
        );
    }
    if (book.node(me)?.draining === true && !draining) yield* drainSelf;
    if (configRevision !== round.configRevision) {
      configRevision = round.configRevision;
      reconcileDue.unsafeOffer(undefined);
    }
    joined = true;
  });

  /** The rows that notifications named since the last tick. */
  const readNamed = Effect.gen(function* () {
    if (named.size === 0) return;
    const ids = [...named];
    named.clear();
    const sent = performance.now();
    book.learn(yield* sql("leases", () => L.leasesOf(q, ids)), sent);
  });

  const decideLock = yield* Effect.makeSemaphore(1);
  const pass = makeLeasePass({
    ...node,
    fast,
    guard,
    probe: (id) => watch.probe(id),
    probedAt: (id) => watch.probedAt(id),
    probesVersion: () => watch.version(),
    channels: () => configs.current().channels,
    wantedHere,
    state: () => ({ joined: joined && listening, draining }),
    startSending: sending.startSending,
    startSendingAll: sending.startSendingAll,
    handover,
  });
  const decide = decideLock.withPermits(1)(pass.decide);

  /**
   * Rounds in a loop of their own, so that nothing the ticks wait for (a start of outputs waits for the API's
   * lock) delays a renewal.
   */
  const roundLoop = Effect.gen(function* () {
    const wait = Math.max(0, lastRoundAt + ttl / 3 - performance.now());
    // Whichever comes first: the renewal interval, or a notification that a node changed.
    yield* roundDue.sleep(wait);
    yield* Effect.ignore(doRound);
    // A failed round is tried again at the guard's pace, not at once in a loop.
    if (lastRoundAt < performance.now() - ttl / 3) yield* Effect.sleep(Duration.millis(GUARD_MS));
  });
  const tick = Effect.zipRight(readNamed, decide).pipe(Effect.ignore);

  const watch = makeWatch({
    me,
    token,
    book,
    databaseReachable: () => guard.reachable(),
    stored,
    wantedHere,
    onRefused: Effect.ignore(decide),
    wake: portsDue.ring,
    viewsWanted: placement.remoteWanted,
  });
  const reachable = watch.reachable;

  /**
   * What the pages and the API show of the fleet: every channel's placement, made again only when something it
   * is made from moved, and the holders' views as last fetched.
   */
  let published = {
    book: -1,
    watch: -1,
    channels: null as ReadonlyArray<ChannelConfig> | null,
    views: new Map() as ReturnType<typeof book.channelViews>,
  };
  const publish = Effect.sync(() => {
    const { channels } = configs.current();
    if (
      published.book !== book.version() ||
      published.watch !== watch.version() ||
      published.channels !== channels
    )
      published = {
        book: book.version(),
        watch: watch.version(),
        channels,
        views: book.channelViews(channels, reachable),
      };
    placement.publish(published.views, watch.remote());
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
   * a round, or a clean stop): one that comes while another runs waits for it and answers with the same
   * count, the channels handed over since this node began to drain. The API's refuses instead, in words
   * (commands.ts), while channels are still to be handed over.
   */
  const drainLock = yield* Effect.makeSemaphore(1);
  let releasedSinceDrain = 0;
  let drainRunning = false;
  const drainSelf = drainLock.withPermits(1)(
    Effect.gen(function* () {
      draining = true;
      drainRunning = true;
      if (held.size === 0) return releasedSinceDrain;
      // Every channel cut at once (handover.ts), then each let go with its cut.
      const cuts = yield* Effect.forEach([...held], ([id]) => handover.cut(id), { concurrency: "unbounded" });
      for (const [[id, term], cut] of [...held].map((lease, i) => [lease, cuts[i] ?? null] as const)) {
        yield* stopSending(id, "this node is draining");
        if (yield* sql("release", () => L.release(q, me, id, term, cut))) {
          book.wrote(id, null, null, term);
          releasedSinceDrain += 1;
        }
      }
      yield* Effect.logInfo(
        `fleet: node ${me} drained: ${releasedSinceDrain} channels handed to their standbys`,
      );
      return releasedSinceDrain;
    }).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          drainRunning = false;
        }),
      ),
    ),
  );

  yield* Effect.orDie(register);
  yield* Effect.logInfo(
    `fleet: node ${me} (${selfUrl}) joined, boot ${bootId.slice(0, 8)}, leases ${ttl} ms`,
  );

  yield* Effect.forkScoped(Effect.forever(roundLoop));
  // The HTTP server binds the port once the services are up, after this: probed at the node's URL, as its peers
  // probe it, until it accepts (30 s at most: a URL this host cannot reach itself at only delays the first).
  yield* Effect.forkScoped(
    Effect.gen(function* () {
      const startedAt = performance.now();
      while ((yield* Effect.promise(() => probePort(selfUrl, 600))) !== "open") {
        if (performance.now() - startedAt > 30_000) {
          yield* Effect.logWarning(
            `fleet: node ${me} cannot reach its own port at ${selfUrl}: it takes leases without waiting for it`,
          );
          break;
        }
        yield* Effect.sleep("100 millis");
      }
      listening = true;
      tickDue.ring();
    }),
  );
  // A tick at the first deadline the last pass saw (a lease that may expire, a standby's turn), at a notification
  // (20 ms after it, so that a burst is read in one statement), or a second after the last.
  yield* Effect.forkScoped(
    Effect.forever(
      Effect.zipRight(
        tick,
        Effect.flatMap(
          Effect.suspend(() => tickDue.sleep(pass.nextTickIn())),
          (rung) => (rung ? Effect.sleep("20 millis") : Effect.void),
        ),
      ),
    ),
  );
  yield* guard.watch;
  yield* Effect.forkScoped(
    Effect.forever(
      Effect.zipRight(
        Effect.zipRight(watch.ports, publish),
        Effect.suspend(() => portsDue.sleep(guard.reachable() ? TICK_MS : OUTAGE_PROBE_MS)),
      ),
    ),
  );
  yield* Effect.addFinalizer(() => Effect.sync(watch.close));
  // Peers' views each second while somebody reads them here; nothing, not even an effect, while nobody does.
  const viewsWanted = () => placement.remoteWanted() || watch.remote().size > 0;
  yield* quietly(1000, viewsWanted, Effect.zipRight(watch.views, publish));
  // Notifications only raise flags: nothing they lead to (a reconcile waits for the API's lock) holds them up.
  yield* Effect.forkScoped(
    Stream.runForEach(changes.changes, (notice) =>
      Effect.sync(() => {
        if ("lease" in notice) {
          named.add(notice.lease);
          tickDue.ring();
        }
        // A node registered or drains: the next tick's round reads the nodes.
        else if ("node_changed" in notice) roundDue.ring();
        // A change this node wrote is applied already; what it changes here (a channel started with this
        // node first in its list, say) is decided at once, not at the next pass, when a standby may act.
        else if ("document" in notice) {
          if (notice.node !== me) reconcileDue.unsafeOffer(undefined);
          else tickDue.ring();
        } else {
          // After a reconnection what was missed is read at once: every lease row, and the configuration.
          lastFullAt = Number.NEGATIVE_INFINITY;
          reconcileDue.unsafeOffer(undefined);
        }
      }),
    ),
  );
  // Changes that come together are applied together: 30 ms after the first, once.
  yield* Effect.forkScoped(
    Effect.forever(
      Effect.zipRight(
        Effect.zipRight(Queue.take(reconcileDue), Effect.sleep("30 millis")),
        Effect.zipRight(Queue.takeAll(reconcileDue), Effect.zipRight(reconcile, Effect.sync(tickDue.ring))),
      ),
    ),
  );
  yield* Effect.forkScoped(auditCommands(bus, db, me));
  // A clean stop hands every lease over at once instead of leaving the standbys to wait for them.
  yield* Effect.addFinalizer(() => Effect.ignore(drainSelf));

  const shape: FleetShape = {
    enabled: true,
    self: me,
    ready: () => joined,
    nodes: () => book.nodeViews(reachable),
    leases: book.leaseViews,
    held: () => new Map(held),
    onRenewal: (listener) => {
      renewalListeners.add(listener);
    },
    databaseReachable: guard.reachable,
    databaseLastOkMsAgo: guard.lastOkMsAgo,
    databaseReach: guard.probeDatabase,
    isolated: guard.isolated,
    leaseHolds: guard.leaseHolds,
    onNodeDown: nodeNotices.onDown,
    takeovers: sending.takeovers,
    ...makeCommands({
      ...node,
      reachable,
      databaseReachable: guard.reachable,
      drainSelf,
      drainRunning: () => drainRunning,
      exclusive: decideLock.withPermits(1),
      cut: handover.cut,
    }),
    peerToken: () => token,
  };

  return shape;
});
