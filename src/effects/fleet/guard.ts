/**
 * The holder's guard: it decides when a node that holds leases must stop sending, so that no two nodes send a
 * channel at once. It watches every database statement the coordinator makes (`sql`) and the renewals among
 * them, and runs beside the coordinator's loop, which may wait on a statement that hangs (a network cut drops
 * packets; a statement gives up after two seconds).
 *
 * Three rules, checked while the node holds leases: at each instant one of them may apply (the renewal's
 * deadline, a statement in flight for a second), at once when a statement fails, and every 100 ms while
 * something is amiss:
 * - Renewal has its own deadline. A holder whose leases were last renewed by a round sent more than
 *   `lease − margin` ago stops, whatever else succeeds: renewals stuck behind a lock while other statements
 *   go through must not let a lease expire in the database while its holder goes on sending.
 * - Once a statement failed, or the database has been silent for a second, the peers are asked whether they
 *   reach it. If one does, this node is the one cut off: it stops its outputs at once, well before its leases
 *   can expire and pass to a standby.
 * - If a peer says it does not reach the database either (it is down for all), or no peer can be reached at
 *   all (they are gone, or the network is down for everyone), the node is isolated. A peer's word is what it
 *   answers to the question, never its silence nor the age of what it said before: each question makes the
 *   peer try a `select 1` there and then (`probeDatabase`), on connections kept for that alone (a pool whose
 *   statements wait on a lock held by the cut node's open transaction is no sign the database is gone), and it
 *   says "down" only when that failed and nothing of its own succeeded for longer than its own statement
 *   interval (a third of its lease), which a peer that merely had nothing to say to the database since its last
 *   round cannot claim, nor one back on it less than a lease time ago (its failure then is its own connections
 *   coming back). A peer that said "down" takes no lease until a lease time after it next reaches the database:
 *   the asker may be sending on its word. With
 *   `DISTRIBUTARY_ISOLATED=keep` (the default) it keeps sending — the air matters more than the configuration
 *   — says so, and gets its leases back by their terms when the database returns (its renewal deadline
 *   counting from that return, as the others wait a lease time then before they take anything); with `stop`
 *   it stops at the renewal deadline like any holder without word. A peer that accepts connections but has not answered when
 *   the deadline comes (a loaded machine) does not make the node isolated: it may reach the database.
 *
 * Stopping (`fence`) never waits for the API's commands: a configuration write queued behind a database that
 * does not answer must not hold the outputs on air past the lease.
 *
 * Its time is the fleet's clock (fleet-clock.ts, Effect's Clock), so each rule is tested on the TestClock
 * (test/fleet/fence-clock.test.ts); the questions to the peers, and the answers to theirs, are peer-questions.ts.
 */
import * as Effect from "effect/Effect";
import { quietly } from "../runtime/timers/quiet-timer.ts";
import type { FleetClock } from "./fleet-clock.ts";
import type { NodeRow } from "./nodes.ts";
import { makePeerQuestions, type PeerWord } from "./peer-questions.ts";
import { type PortProbe, saysDown } from "./peers.ts";

/** How long the database may be silent before a holder asks its peers, and how often it checks. */
export const OUTAGE_MS = 1000;
export const GUARD_MS = 100;
/** How many questions in a row a peer must say it reaches the database before this node takes it as cut off. */
const REACHES_IN_A_ROW = 2;

/**
 * How long before its leases can expire a holder without a renewal stops sending: a fifth of the lease time,
 * at least 500 ms, so a loop that runs a few hundred milliseconds late on a loaded machine still stops first.
 */
export const fenceMarginMs = (ttl: number) => Math.max(500, ttl / 5);

type IsolatedPolicy = "keep" | "stop";

interface GuardDeps {
  readonly me: string;
  readonly ttl: number;
  readonly policy: IsolatedPolicy;
  readonly token: string;
  /** `select 1` on connections of the database's for this alone (database.ts `reach`). */
  readonly reach: (timeoutMs: number) => Promise<boolean>;
  /** The fleet's clock (fleet-clock.ts): every deadline here is its `now`. */
  readonly clock: FleetClock;
  /** The peers that beat recently (the node's last reading). */
  readonly peers: () => ReadonlyArray<NodeRow>;
  /** What the last probe of a peer's port said. */
  readonly probe: (id: string) => PortProbe | undefined;
  /** How many leases the node holds. */
  readonly holding: () => number;
  /** Stops every held channel's outputs, without any lock; `resume` starts them again. */
  readonly stopAll: Effect.Effect<void>;
  readonly resumeAll: Effect.Effect<void>;
  /**
   * The guard, not a renewal, lets the held channels go on sending for a lease time from now (isolated, with
   * `keep`): their send gates move forward while this check runs.
   */
  readonly keepSending: () => void;
}

/** What the rules went by, in words: each peer's last answer since the outage, or its port's state. */
const peerWords = (deps: Pick<GuardDeps, "peers" | "probe">, heard: ReadonlyArray<PeerWord>): string =>
  deps
    .peers()
    .map((node) => {
      const word = heard.find((entry) => entry.node === node.id);
      if (word === undefined) return `${node.id}: no answer, its port ${deps.probe(node.id) ?? "not probed"}`;
      const { reachable, lastOkMsAgo } = word.reach;
      return reachable
        ? `${node.id} reaches it (${word.reachedInARow} in a row)`
        : `${node.id} does not, last success ${Math.round(lastOkMsAgo)} ms before`;
    })
    .join("; ");

/** The statements in flight, each with when it was sent: one that hangs for a second is an outage too. */
const makePending = () => {
  const sentAt = new Map<number, number>();
  let count = 0;
  return {
    add: (at: number) => {
      sentAt.set(count, at);
      return count++;
    },
    end: (id: number) => sentAt.delete(id),
    /** When the oldest statement still in flight was sent; +∞ with none. */
    oldest: () => {
      let oldest = Number.POSITIVE_INFINITY;
      for (const at of sentAt.values()) oldest = Math.min(oldest, at);
      return oldest;
    },
  };
};

export const makeGuard = (deps: GuardDeps) => {
  const { me, ttl, clock } = deps;
  const now = clock.now;
  let fenced = false;
  let isolated = false;
  let dbOk = true;
  let lastDbOkAt = now();
  /** When the current run of failed statements began. */
  let failedAt = Number.NEGATIVE_INFINITY;
  /** When the database came back after a failure: no acquisition for a lease time after. */
  let backAt = Number.NEGATIVE_INFINITY;
  /**
   * This node told a peer the database is down for it too, and has not reached it since: the peer may keep
   * sending on that word, so the node's next success counts as a return (no acquisition for a lease time).
   */
  let saidDown = false;
  /** A statement reached the database: after a failure, or after the node said it was down, it is back now. */
  const reached = () => {
    if (!dbOk) backAt = now();
    dbOk = true;
    answerReached();
  };
  /** A `select 1` of this node's reached it (the pool's statements may still wait on a lock). */
  function answerReached() {
    if (saidDown) backAt = now();
    saidDown = false;
    lastDbOkAt = now();
  }
  const settling = () => saidDown || now() - backAt < ttl;
  /** When the last successful renewal was sent: the node's leases last until that + ttl, by the database. */
  let renewedSentAt = now();
  /**
   * When the database answered again after it was down for all (this node isolated): the nodes back with it
   * wait a lease time before they take anything, so this node's renewal deadline counts from then too, and it
   * keeps sending until its first round renews (instead of stopping for the moment in between).
   */
  let isolationEndedAt = Number.NEGATIVE_INFINITY;
  const answeredAgain = () => {
    if (isolated && deps.policy === "keep") isolationEndedAt = now();
    isolated = false;
  };

  const pending = makePending();
  const hungSince = pending.oldest;

  /** A database statement: its failure marks the database unreachable (and is answered by fencing). */
  const sql = <A>(what: string, run: () => Promise<A>) =>
    Effect.suspend(() => {
      const id = pending.add(now());
      return Effect.ensuring(
        statement(what, run),
        Effect.sync(() => pending.end(id)),
      );
    });
  const statement = <A>(what: string, run: () => Promise<A>) =>
    Effect.tryPromise({ try: run, catch: (cause) => cause }).pipe(
      Effect.tap(() =>
        Effect.sync(() => {
          reached();
          answeredAgain();
        }),
      ),
      Effect.tapError((cause) =>
        Effect.suspend(() => {
          const first = dbOk;
          dbOk = false;
          if (first) {
            failedAt = now();
            poke();
          }
          return first
            ? Effect.logWarning(`fleet: the database cannot be reached (${what}): ${String(cause)}`)
            : Effect.void;
        }),
      ),
    );

  const fence = (why: string) =>
    Effect.gen(function* () {
      if (fenced || deps.holding() === 0) return;
      fenced = true;
      yield* deps.stopAll;
      yield* Effect.logError(`fleet: node ${me} stopped sending ${deps.holding()} channels: ${why}`);
    });

  /** A renewal sent at `sentAt` succeeded: the leases it renewed are good until sentAt + ttl. */
  const renewed = (sentAt: number) =>
    Effect.gen(function* () {
      renewedSentAt = Math.max(renewedSentAt, sentAt);
      if (!fenced) return;
      fenced = false;
      if (deps.holding() === 0) return;
      // Starting outputs waits for the API's lock: not in the way of the next renewal (and stopped with the
      // coordinator's scope).
      yield* Effect.forkScoped(deps.resumeAll);
      yield* Effect.logInfo(`fleet: node ${me} renewed its leases again and sends again`);
    });

  /** The question to the peers that is out, if one is (asked again as soon as its answers are in). */
  let asking: Promise<void> | null = null;
  const questions = makePeerQuestions({
    token: deps.token,
    reach: deps.reach,
    ttl,
    clock,
    peers: deps.peers,
    ownAnswered: answeredAgain,
    lastOkAt: () => lastDbOkAt,
    settling,
    answeredNow: answerReached,
    saidDown: () => {
      saidDown = true;
    },
  });

  const check = Effect.gen(function* () {
    if (deps.holding() === 0 || fenced) return;
    const at = now();
    const late = at - Math.max(renewedSentAt, isolationEndedAt) > ttl - fenceMarginMs(ttl);
    // Back from an isolation with `keep`, not yet renewed: the gates move on until the first round renews.
    if (!late && isolationEndedAt > renewedSentAt && deps.policy === "keep") deps.keepSending();
    // A failed statement, or one in flight for a second (a network cut drops packets: it may hang for two).
    const outage = !dbOk || at - hungSince() >= OUTAGE_MS;
    if (!outage) {
      if (late)
        yield* fence(
          "its leases were not renewed in time (the renewal waits, while other statements succeed)",
        );
      return;
    }
    asking ??= questions.ask().finally(() => {
      asking = null;
    });
    // The outage began at the first failed statement, or once a hung one had kept silent for a second.
    const outageAt = dbOk ? hungSince() + OUTAGE_MS : failedAt;
    // This node's own quick statement went through meanwhile: the database answers, and a statement waits
    // behind a lock. Only the renewal's deadline counts then.
    if (questions.ownAnsweredSince(outageAt)) {
      if (late) yield* fence("its leases were not renewed in time, though the database answers");
      return;
    }
    // What the peers said before the outage is no sign, and each answer counts as it was given, not as it ages.
    // A peer reaches the database when the statement it made to answer the question went through while this
    // node's own, made at the same moment, failed — twice in a row, so that the instant the database comes back
    // (sooner for the peer than for this node) is not taken for a cut.
    const heard = questions.heardSince(outageAt);
    const reaches = heard.some((entry) => entry.ownFailed && entry.reachedInARow >= REACHES_IN_A_ROW);
    if (reaches) {
      isolated = false;
      return yield* fence("it cannot reach the database and a peer can (its leases will pass to a standby)");
    }
    // The database is down for all only on a peer's word: its own statement, made to answer, failed, and it
    // had no success for longer than its own statement interval. A peer whose port still accepts connections
    // (or that was not probed yet) and has not said so may reach it: the deadline counts. Only when every peer's
    // port is silent or refuses (they are gone, or cut off too) can this node not tell a network down for all.
    const couldAnswer = deps.peers().filter((node) => {
      const probe = deps.probe(node.id);
      return probe === undefined || probe === "open";
    });
    const downForAll = couldAnswer.length === 0 || heard.some((entry) => saysDown(entry.reach));
    if (downForAll && !isolated) {
      isolated = true;
      const why = peerWords(deps, heard);
      yield* Effect.logError(
        deps.policy === "keep"
          ? `fleet: node ${me} cannot reach the database and no peer can (${why || "no peer"}): it keeps sending its ${deps.holding()} channels`
          : `fleet: node ${me} cannot reach the database and no peer can (${why || "no peer"}): it stops before its leases run out (DISTRIBUTARY_ISOLATED=stop)`,
      );
    }
    // Once the database was down for all, this node stays isolated until it reaches it again, or a peer
    // reaches it first (above): a peer back on the database waits a lease time before it takes any lease.
    if (isolated && deps.policy === "keep") deps.keepSending();
    if (late && !isolated) {
      yield* fence(
        `its leases ran out without a renewal, and no peer said the database is down for it too (${peerWords(deps, heard) || "no peer"})`,
      );
    } else if (late && deps.policy === "stop") {
      yield* fence("it reaches neither the database nor a peer, and DISTRIBUTARY_ISOLATED=stop");
    }
  });

  /**
   * Whether `check` would find nothing to do now: nothing held or fenced already, or renewed in time with the
   * database answering and no isolation to come back from. Plain arithmetic, so that the check's timer costs
   * next to nothing at rest.
   */
  const quiet = () => {
    if (deps.holding() === 0 || fenced) return true;
    if (isolated || isolationEndedAt > renewedSentAt) return false;
    const at = now();
    return at - renewedSentAt <= ttl - fenceMarginMs(ttl) && dbOk && at - hungSince() < OUTAGE_MS;
  };
  /**
   * Until when `quiet` stays true if nothing else happens: the renewal's deadline, or a statement in flight
   * turning into a hung one. A statement sent after this is read cannot hang before the next reading (it is at
   * most OUTAGE_MS away), and a failed one wakes the check at once (`poke`).
   */
  const quietUntil = () => {
    const at = now();
    if (deps.holding() === 0 || fenced) return at + OUTAGE_MS;
    return Math.min(renewedSentAt + ttl - fenceMarginMs(ttl), hungSince() + OUTAGE_MS, at + OUTAGE_MS);
  };
  let poke = () => {};

  /**
   * The check, on a quiet timer (runtime/timers/quiet-timer.ts) while the scope lasts: at rest it waits until `quiet`
   * may next turn false (about once a second), as plain arithmetic; once there is something to do, it runs as
   * an effect every GUARD_MS, one at a time; and at once when a statement fails.
   */
  const watch = Effect.gen(function* () {
    // A millisecond past the instant, so that `quiet` finds it passed.
    const timer = yield* quietly(
      GUARD_MS,
      () => !quiet(),
      check,
      () => quietUntil() - now() + 1,
    );
    poke = timer.now;
  });

  return {
    sql,
    renewed,
    watch,
    /** The rules, once, now: what the quiet timer runs (a test on the TestClock moves time, then runs them). */
    check,
    /** Settles once the answers to the question out now are in (at once when none is out). */
    answersIn: (): Promise<void> => asking ?? Promise.resolve(),
    /** Whether the holder stopped its outputs for want of renewals (its terms kept). */
    fenced: () => fenced,
    isolated: () => isolated,
    /**
     * Whether this node's own lease still holds by its last renewal (less the margin), so that no other node
     * can have found it down since.
     */
    leaseHolds: () => now() - renewedSentAt <= ttl - fenceMarginMs(ttl),
    /** Whether the last statement reached the database, and none has hung for a second since. */
    reachable: () => dbOk && now() - hungSince() < OUTAGE_MS,
    /** Whether the last statement that ended succeeded (no acquisition while not). */
    answered: () => dbOk,
    lastOkMsAgo: () => now() - lastDbOkAt,
    /** A peer's question answered (GET /api/cluster/database). */
    probeDatabase: questions.answer,
    /**
     * Whether the database came back less than a lease time ago, or this node said it was down and has not
     * reached it since (no acquisition yet).
     */
    settling,
  } as const;
};

export type Guard = ReturnType<typeof makeGuard>;
