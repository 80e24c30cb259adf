/**
 * The guard's question to its peers, and its answer to theirs (guard.ts). During an outage a holder asks every
 * peer whether it reaches the database, and makes one quick statement of its own at the same moment (`ask`);
 * what each peer said is kept with the question it answered. A peer asked answers by a statement it makes there
 * and then (`answer`, GET /api/cluster/database), never from a flag an earlier one left.
 */
import type { FleetClock } from "./fleet-clock.ts";
import type { NodeRow } from "./nodes.ts";
import { type PeerReach, peerReachesDatabase, saysDown } from "./peers.ts";

export const PEER_TIMEOUT_MS = 600;
/** How long a peer's statement of its own, made to answer the question, may take before it counts as failed. */
export const PROBE_TIMEOUT_MS = 300;
/** How long this node's own quick statement, made beside a question, may take before it counts as failed. */
const OWN_TIMEOUT_MS = 300;
/** Questions from peers that come within this much of the last answer share its statement. */
const ANSWER_SHARED_MS = 200;

/** What a peer said, kept with the question it answered. */
export interface PeerWord {
  /** The peer's node id. */
  readonly node: string;
  readonly reach: PeerReach;
  readonly heardAt: number;
  readonly askedAt: number;
  /** Whether this node's own statement, made as it asked, failed. */
  readonly ownFailed: boolean;
  /** How many questions in a row, this one included, the peer reached the database while this node did not. */
  readonly reachedInARow: number;
}

interface QuestionDeps {
  readonly token: string;
  /** `select 1` on the database's connections for this question alone (database.ts `reach`). */
  readonly reach: (timeoutMs: number) => Promise<boolean>;
  /** The lease time: a third of it is this node's statement interval, which its answers name. */
  readonly ttl: number;
  readonly clock: FleetClock;
  /** The peers that beat recently (the node's last reading). */
  readonly peers: () => ReadonlyArray<NodeRow>;
  /** This node's own quick statement, made beside a question, went through. */
  readonly ownAnswered: () => void;
  /** When this node's last statement that reached the database ended, and the news of one more. */
  readonly lastOkAt: () => number;
  /** This node came back to the database less than a lease time ago. */
  readonly settling: () => boolean;
  readonly answeredNow: () => void;
  /** This node told a peer the database is down for it too. */
  readonly saidDown: () => void;
}

export const makePeerQuestions = (deps: QuestionDeps) => {
  const { clock, ttl } = deps;
  /**
   * During an outage, what each peer last said of the database: one that reaches it means this node is the
   * one cut off; one that does not means the database is down for all. A peer that does not answer says
   * nothing, and erases nothing it said before.
   */
  const said = new Map<string, PeerWord>();
  /** When a question whose own statement reached the database was asked. */
  let ownOkAskedAt = Number.NEGATIVE_INFINITY;
  /** When the question before the current one was asked: a peer's answers are "in a row" only across it. */
  let previousAskedAt = Number.NEGATIVE_INFINITY;

  const ask = async () => {
    const askedAt = clock.now();
    const peers = deps.peers();
    const [answers, own] = await Promise.all([
      Promise.all(peers.map((node) => peerReachesDatabase(node.url, deps.token, PEER_TIMEOUT_MS, ttl / 3))),
      // A peer that reaches the database may only have reached it first as it comes back: one quick
      // statement of this node's own tells that apart from a cut before it stops sending.
      deps.reach(OWN_TIMEOUT_MS),
    ]);
    const heardAt = clock.now();
    for (const [index, node] of peers.entries()) {
      const reach = answers[index];
      if (reach == null) continue;
      const before = said.get(node.id);
      const reached = reach.reachable && !own;
      const chained = before !== undefined && before.askedAt === previousAskedAt ? before.reachedInARow : 0;
      const reachedInARow = reached ? chained + 1 : 0;
      said.set(node.id, { node: node.id, reach, heardAt, askedAt, ownFailed: !own, reachedInARow });
    }
    previousAskedAt = askedAt;
    if (own) {
      ownOkAskedAt = askedAt;
      deps.ownAnswered();
    }
  };

  /**
   * A peer's question answered: a statement of this node's own, made now (questions that come within a fifth
   * of a second share one), and how long since its last success. `reachable` is that statement's outcome,
   * never a flag left by an earlier one.
   */
  let answering: Promise<boolean> | null = null;
  let lastAnswer = { at: Number.NEGATIVE_INFINITY, ok: false };
  const answer = async () => {
    if (clock.now() - lastAnswer.at > ANSWER_SHARED_MS) {
      answering ??= deps
        .reach(PROBE_TIMEOUT_MS)
        .then((ok) => {
          lastAnswer = { at: clock.now(), ok };
          if (ok) deps.answeredNow();
          return ok;
        })
        .finally(() => {
          answering = null;
        });
      await answering;
    }
    // Back on the database less than a lease time ago, a statement that fails is more likely this node's own
    // connections coming back than the database gone for all: its last success counts as within its interval,
    // so it never says "down" then, and the asker's renewal deadline counts. (A peer cut just before said
    // "down" while it reconnected, and the holder cut next kept sending past its lease as that peer took it:
    // test/lab/fleet-partition, 163 ms of two senders.)
    const ago = clock.now() - deps.lastOkAt();
    const word = {
      reachable: lastAnswer.ok,
      lastOkMsAgo: deps.settling() ? Math.min(ago, ttl / 3) : ago,
      intervalMs: ttl / 3,
    } as const;
    // The asker may keep sending on this word past its lease: this node takes no lease until a lease time
    // after it next reaches the database, when the asker has reached it too or stopped.
    if (saysDown(word)) deps.saidDown();
    return word;
  };

  return {
    ask,
    answer,
    /** What the peers said in answer to questions asked after `at`. */
    heardSince: (at: number): ReadonlyArray<PeerWord> =>
      [...said.values()].filter((word) => word.heardAt > at),
    /** Whether this node's own statement went through beside a question asked after `at`. */
    ownAnsweredSince: (at: number) => ownOkAskedAt > at,
  } as const;
};
