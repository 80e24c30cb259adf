/**
 * The coordinator's rounds (coordinator.ts): one statement per renewal interval (a third of the lease), in a
 * loop of its own so that nothing the passes wait for (a start of outputs waits for the API's lock) delays a
 * renewal, and at once when a notification says a node changed. A round (leases.ts `round`) beats the node's
 * heart and extends its node lease, on which every lease it holds hangs, and reads what it holds, the nodes,
 * the lease rows written since the last round (every row each 30 s, and the rows repaired) and the
 * configuration's revision.
 *
 * A round answered within a lease time of the round before renewed leases that still held: the guard counts
 * its deadline from when it was sent, and the send gates move on. One answered later (the node, or its
 * database, stalled meanwhile) may have renewed leases that lapsed and that a standby took in the same instant,
 * unseen by it: the gates stay as they are, and the next round, at once, says what the node holds.
 */
import * as Duration from "effect/Duration";
import * as Effect from "effect/Effect";
import { makeAlarm } from "../runtime/timers/alarm.ts";
import { GUARD_MS, type Guard } from "./guard.ts";
import * as L from "./leases.ts";
import type { NodeContext } from "./node-context.ts";
import type { NodeRow } from "./nodes.ts";
import type { Sending } from "./sending.ts";

/** How often a round reads every lease row, and the lease rows are repaired. */
const FULL_MS = 30_000;

interface RoundsContext extends NodeContext {
  readonly ttl: number;
  readonly guard: Pick<Guard, "renewed">;
  readonly sending: Pick<Sending, "takenAt" | "sendFor">;
  /** How many channels run on this node now (the load a round reports). */
  readonly running: () => number;
  /** The nodes a round read (node-notices.ts tells of the ones that went down). */
  readonly nodesRead: (nodes: ReadonlyArray<NodeRow>) => void;
  /** Registers this node again: another process registered under its id. */
  readonly register: Effect.Effect<unknown, unknown>;
  /** This node's draining flag, set by another node, seen: it drains (unless it does already). */
  readonly drainFlagged: Effect.Effect<unknown, unknown>;
  /** The configuration's revision moved: another node's change is read and applied. */
  readonly configMoved: () => void;
}

export const makeRounds = (ctx: RoundsContext) => {
  const { me, bootId, clock, q, book, held, sql, ttl, sending } = ctx;
  let lastFullAt = Number.NEGATIVE_INFINITY;
  /** The configuration's revision this node last applied (null before its first round). */
  let configRevision: number | null = null;
  let lastRoundAt = Number.NEGATIVE_INFINITY;
  /** When the last round the database answered was sent: it kept the node's leases a lease time from then. */
  let answeredSentAt = Number.NEGATIVE_INFINITY;
  let joined = false;
  /** A notification said a node changed: a round now, whenever the last one was. */
  const due = makeAlarm();
  const renewalListeners = new Set<(ms: number) => void>();
  let cpuBefore = process.cpuUsage();
  let cpuAt = clock.now();

  const round = Effect.gen(function* () {
    const sent = clock.now();
    const cpu = process.cpuUsage(cpuBefore);
    const cpuPercent = Math.round(((cpu.user + cpu.system) / 1000 / Math.max(1, sent - cpuAt)) * 1000) / 10;
    cpuBefore = process.cpuUsage();
    cpuAt = sent;
    const full = sent - lastFullAt >= FULL_MS;
    const load = { channels_running: ctx.running(), cpu_percent: cpuPercent };
    const read = yield* sql("round", () => L.round(q, me, bootId, ttl, load, full ? -1 : book.revision()));
    lastRoundAt = sent;
    const took = clock.now() - sent;
    // The round ran before its answer came, and the node's leases lasted at least a lease time from the round
    // before: answered inside that, it renewed leases that still held.
    const sinceBefore = sent + took - answeredSentAt;
    const inTime = sinceBefore < ttl || answeredSentAt === Number.NEGATIVE_INFINITY;
    answeredSentAt = sent;
    for (const listener of renewalListeners) listener(took);
    book.setNodes(read.nodes, sent);
    ctx.nodesRead(read.nodes);
    if (full) {
      lastFullAt = sent;
      book.keepOnly(read.changed);
      yield* sql("repair", () => L.ensureLeases(q));
    }
    book.learn(read.changed, sent);
    if (!read.mine) {
      for (const id of [...held.keys()])
        yield* ctx.stopSending(id, "another process registered as this node");
      yield* Effect.logError(`fleet: another process registered as node ${me}; registering this one again`);
      yield* ctx.register;
      return;
    }
    for (const [id, term] of [...held]) {
      // A lease taken after this round was sent may be missing from what it read: its statement (on another
      // connection) may have begun before the take was committed. The next round says whether it is still ours.
      if (read.held.get(id) !== term && sending.takenAt(id) <= sent)
        yield* ctx.stopSending(id, "its lease passed to another node");
    }
    if (inTime) {
      yield* ctx.guard.renewed(sent);
      sending.sendFor(clock.now() - sent);
    } else {
      due.ring();
      if (held.size > 0)
        yield* Effect.logWarning(
          `fleet: node ${me} renewed its leases ${Math.round(sinceBefore)} ms after the round before, when they may have lapsed: its channels send again only once the next round finds them still its own`,
        );
    }
    if (book.node(me)?.draining === true) yield* ctx.drainFlagged;
    if (configRevision !== read.configRevision) {
      configRevision = read.configRevision;
      ctx.configMoved();
    }
    joined = true;
  });

  /** One turn of the rounds' loop: the renewal interval, or a notification that a node changed, first. */
  const turn = Effect.gen(function* () {
    yield* due.sleep(Math.max(0, lastRoundAt + ttl / 3 - clock.now()));
    yield* Effect.ignore(round);
    // A failed round is tried again at the guard's pace, not at once in a loop.
    if (lastRoundAt < clock.now() - ttl / 3) yield* Effect.sleep(Duration.millis(GUARD_MS));
  });

  return {
    loop: Effect.forever(turn),
    /** One round now: the loop's work (a test on the TestClock runs it itself). */
    round,
    /** A round now, whenever the last one was (a node registered or drains). */
    due: due.ring,
    /** The next round reads every lease row (after a reconnection, what was missed). */
    readAll: () => {
      lastFullAt = Number.NEGATIVE_INFINITY;
    },
    /** Whether a round went through since the node started. */
    joined: () => joined,
    onRenewal: (listener: (ms: number) => void) => {
      renewalListeners.add(listener);
    },
  } as const;
};

export type Rounds = ReturnType<typeof makeRounds>;
