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
 * Every lease time is the database's; every deadline here is the fleet's monotonic clock (fleet-clock.ts,
 * Effect's Clock), so clocks that disagree between nodes do not matter. A node back on the database waits a
 * lease time before it takes anything, so a holder that kept sending through an outage renews first.
 *
 * Its parts, each in a file of its own: the rounds (rounds.ts), the guard (guard.ts), the pass over the leases
 * (lease-pass.ts), the watch of the peers (watch.ts), the drain (drain.ts), what it sends (sending.ts), the
 * hand-overs (handover.ts) and the operators' commands (commands.ts).
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import * as Redacted from "effect/Redacted";
import type { ChannelId } from "../../domain/base/ids.ts";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import { version } from "../../version.ts";
import { Channels } from "../channel/channels.ts";
import { ConfigState } from "../config/config-state.ts";
import { Placement } from "../config/placement.ts";
import { Database } from "../config/postgres/database.ts";
import {
  DATABASE_START_WAIT_MS,
  peerToken as readPeerToken,
  whileStarting,
} from "../config/postgres/layer.ts";
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
import { makeDrain } from "./drain.ts";
import { fleetClock } from "./fleet-clock.ts";
import type { FleetShape } from "./fleet-types.ts";
import { makeFollow } from "./follow.ts";
import { fenceMarginMs, makeGuard } from "./guard.ts";
import { makeFleetHandover } from "./handover.ts";
import { makeLeaseBook } from "./lease-book.ts";
import { makeLeasePass } from "./lease-pass.ts";
import * as L from "./leases.ts";
import type { NodeContext } from "./node-context.ts";
import { makeNodeNotices } from "./node-notices.ts";
import * as N from "./nodes.ts";
import { probePort } from "./peers.ts";
import { makeRounds } from "./rounds.ts";
import { makeSending } from "./sending.ts";
import { makeWatch } from "./watch.ts";

/** The longest a node goes without a pass over its leases; a notification or a deadline brings one sooner. */
const TICK_MS = 1000;
/** How often the peers' ports are probed while the database does not answer (the guard asks which it reaches). */
const OUTAGE_PROBE_MS = 250;

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
  // The statements of the start are tried again while the database does not answer, as the schema's are: one
  // connection slower than its second must not end the process. Nothing is held or sent before the rounds run.
  const starting = whileStarting(DATABASE_START_WAIT_MS);
  const token = Redacted.value(yield* starting(readPeerToken(db)));
  const q = db.queryable;
  // Every instant the fleet reckons with, from the clock of the layer that makes it (a TestClock in a test).
  const clock = yield* fleetClock;

  const book = makeLeaseBook(me, ttl, clock);
  /** Channels whose lease rows a notification named since the last reading. */
  const named = new Set<string>();
  /** A notification named a lease: it is read at once. */
  const tickDue = makeAlarm();
  /** A tether to a peer ended: its port is probed now. */
  const portsDue = makeAlarm();
  /**
   * Whether this node's own port accepts connections yet. Until it does, the node takes no lease: a peer that
   * probes it meanwhile finds it refused — the sign of a process gone — and takes over at once whatever it
   * took (the start-up loss: a node started beside another lost the channels it had just taken).
   */
  let listening = false;

  const stored = (id: string) => configs.byId(configs.current()).get(id);
  const wantedHere = (channel: ChannelConfig | undefined): channel is ChannelConfig =>
    channel !== undefined &&
    channel.desired === "running" &&
    placement.runsHere(channel) &&
    channels.state(channel.id as ChannelId) === "running";

  const handover = makeFleetHandover(me, channels, bus, clock);
  const sending = makeSending(me, ttl, clock, resume, () => guard.fenced(), handover);
  const { held, stopSending } = sending;
  const guard = makeGuard({
    me,
    ttl,
    policy,
    token,
    reach: db.reach,
    clock,
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
  const node: NodeContext = { me, bootId, clock, q, book, held, sql, stored, stopSending };
  // A forwarding thread that stalled longer than a loop may be late drops what queued in its inputs meanwhile.
  setStaleAfter(fenceMarginMs(ttl));

  const register = sql("register", () => N.registerNode(q, { id: me, url: selfUrl, bootId, version }));

  const drain = yield* makeDrain({ ...node, handover });
  const rounds = makeRounds({
    ...node,
    ttl,
    guard,
    sending,
    running: () => channels.running().length,
    nodesRead: nodeNotices.observe,
    register,
    drainFlagged: Effect.suspend(() => (drain.draining() ? Effect.void : drain.self)),
    configMoved: () => follow.configMoved(),
  });
  const follow = yield* makeFollow({
    me,
    changes: changes.changes,
    configs,
    resume,
    auth,
    rounds,
    leaseNamed: (channel) => named.add(channel),
    tick: tickDue.ring,
  });

  /** The rows that notifications named since the last tick. */
  const readNamed = Effect.gen(function* () {
    if (named.size === 0) return;
    const ids = [...named];
    named.clear();
    const sent = clock.now();
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
    state: () => ({ joined: rounds.joined() && listening, draining: drain.draining() }),
    startSending: sending.startSending,
    startSendingAll: sending.startSendingAll,
    handover,
  });
  const decide = decideLock.withPermits(1)(pass.decide);

  const tick = Effect.zipRight(readNamed, decide).pipe(Effect.ignore);

  const watch = makeWatch({
    me,
    token,
    clock,
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

  yield* Effect.orDie(starting(register));
  yield* Effect.logInfo(
    `fleet: node ${me} (${selfUrl}) joined, boot ${bootId.slice(0, 8)}, leases ${ttl} ms`,
  );

  yield* Effect.forkScoped(rounds.loop);
  // The HTTP server binds the port once the services are up, after this: probed at the node's URL, as its peers
  // probe it, until it accepts (30 s at most: a URL this host cannot reach itself at only delays the first).
  yield* Effect.forkScoped(
    Effect.gen(function* () {
      const startedAt = clock.now();
      while ((yield* Effect.promise(() => probePort(selfUrl, 600))) !== "open") {
        if (clock.now() - startedAt > 30_000) {
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
  yield* follow.run;
  yield* Effect.forkScoped(auditCommands(bus, db, me));
  // A clean stop hands every lease over at once instead of leaving the standbys to wait for them.
  yield* Effect.addFinalizer(() => Effect.ignore(drain.self));

  const shape: FleetShape = {
    enabled: true,
    self: me,
    ready: rounds.joined,
    nodes: () => book.nodeViews(reachable),
    leases: book.leaseViews,
    held: () => new Map(held),
    onRenewal: rounds.onRenewal,
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
      drainSelf: drain.self,
      drainRunning: drain.running,
      exclusive: decideLock.withPermits(1),
      cut: handover.cut,
    }),
    peerToken: () => token,
  };

  return shape;
});
