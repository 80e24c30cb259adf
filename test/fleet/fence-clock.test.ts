/**
 * The holder's guard (src/effects/fleet/guard.ts) on the TestClock: time moves only when the test moves it, so
 * each rule is checked just before and just after its edge, and "at once" means with the clock standing still
 * far from the lease's end. What is checked is what the forwarding threads and the outputs see: the channel's
 * send gate (runtime/sockets/send-gates.ts) and whether its outputs are held (Resume.hold), through the fleet's
 * own sending.ts, wired to the guard as the coordinator wires them.
 *
 * The database is the statements' answers as the guard sees them: answered, refused at once, or never answered
 * (a network cut drops the packets). A peer is another node's guard, with a database of its own, behind a real
 * HTTP server on 127.0.0.1 that answers GET /api/cluster/database as the API does.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "@effect/vitest";
import { Effect, type Scope, TestClock } from "effect";
import type { Queryable } from "../../src/effects/config/postgres/database.ts";
import type { Resume } from "../../src/effects/control/resume.ts";
import { fleetClock } from "../../src/effects/fleet/fleet-clock.ts";
import { fenceMarginMs, GUARD_MS, type Guard, makeGuard, OUTAGE_MS } from "../../src/effects/fleet/guard.ts";
import type { NodeRow } from "../../src/effects/fleet/nodes.ts";
import { type PortProbe, saysDown } from "../../src/effects/fleet/peers.ts";
import { makeSending } from "../../src/effects/fleet/sending.ts";
import { gateOpen, gateSlot } from "../../src/effects/runtime/sockets/send-gates.ts";

/** A lease long enough that a gate the test opened stays open in real time for the whole test. */
const TTL = 30_000;
const MARGIN = fenceMarginMs(TTL);
const TOKEN = "peer-credential";

type Answer = "up" | "refused" | "silent" | "locked";

/**
 * A database as the guard sees it: every statement answers, fails at once, or never answers; or, `locked`, the
 * pool's statements wait (on a lock, or for a connection) while a `select 1` on a connection of its own answers.
 */
const database = (initial: Answer = "up") => {
  let answer = initial;
  const statements: Array<string> = [];
  const q: Queryable = {
    query: (text) => {
      statements.push(text);
      if (answer === "up") return Promise.resolve({ rows: [] });
      if (answer === "refused") return Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:5432"));
      return new Promise(() => {});
    },
  };
  /** database.ts `reach`: a cut network answers nothing until the caller's time is up (real time). */
  const reach = (timeoutMs: number) =>
    answer === "up" || answer === "locked"
      ? Promise.resolve(true)
      : answer === "refused"
        ? Promise.resolve(false)
        : new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs));
  return {
    q,
    reach,
    statements,
    set: (next: Answer) => {
      answer = next;
    },
  };
};
type Database = ReturnType<typeof database>;

const peerRow = (id: string, url: string): NodeRow => ({
  id,
  url,
  bootId: `boot-${id}`,
  version: "test",
  startedAt: new Date(0).toISOString(),
  heartbeatAgeMs: 0,
  draining: false,
  load: { channels_running: 0, cpu_percent: 0 },
  leaseInMs: TTL,
});

let channels = 0;

/**
 * A holder of one channel's lease (term 1), renewed by a round sent now: its guard and what it sends. `peers`
 * are the nodes it may ask; `probe` what the watch last found at each one's port.
 */
const holder = (
  db: Database,
  options: {
    readonly peers?: ReadonlyArray<NodeRow>;
    readonly probe?: PortProbe;
    readonly policy?: "keep" | "stop";
  } = {},
) =>
  Effect.gen(function* () {
    const clock = yield* fleetClock;
    const channel = `fence-${++channels}`;
    const held = new Map<string, boolean>();
    const resume = {
      hold: (id: string, holds: boolean) => Effect.sync(() => void held.set(id, holds)),
      locked: <A, E, R>(effect: Effect.Effect<A, E, R>) => effect,
    } as unknown as Resume;
    const handover = { prepare: () => Effect.void, begun: () => Effect.void };
    const sending = makeSending("a", TTL, clock, resume, () => guard.fenced(), handover);
    const guard: Guard = makeGuard({
      me: "a",
      ttl: TTL,
      policy: options.policy ?? "keep",
      token: TOKEN,
      reach: db.reach,
      clock,
      peers: () => options.peers ?? [],
      probe: () => options.probe,
      holding: () => sending.held.size,
      stopAll: sending.stopAll,
      resumeAll: sending.resumeAll,
      keepSending: () => sending.sendFor(0),
    });
    yield* sending.startSending(channel, 1, null);
    // The round that renewed it was sent now, and answered at once (rounds.ts).
    const renew = Effect.gen(function* () {
      yield* guard.renewed(clock.now());
      sending.sendFor(0);
    });
    yield* renew;
    return {
      guard,
      renew,
      /** Whether the channel's outputs send: its gate open and its outputs held. */
      sends: () => gateOpen(gateSlot(channel)) && held.get(channel) === true,
      /** Whether it still holds the lease (a fence keeps the term). */
      holds: () => sending.held.get(channel) === 1,
      /** The guard's rules, once, now: what its timer would run. */
      check: guard.check,
      /** Its answers to the question out, once in. */
      answers: Effect.promise(() => guard.answersIn()),
      /** A statement of the coordinator's, as its rounds make them: true when it went through. */
      statement: (what: string) =>
        Effect.map(
          Effect.either(guard.sql(what, () => db.q.query(what))),
          (result) => result._tag === "Right",
        ),
    };
  });

/** The guard of a node that holds nothing and knows no peer: what it answers when asked. */
const idleGuard = (id: string, db: Database) =>
  Effect.map(fleetClock, (clock) =>
    makeGuard({
      me: id,
      ttl: TTL,
      policy: "keep",
      token: TOKEN,
      reach: db.reach,
      clock,
      peers: () => [],
      probe: () => undefined,
      holding: () => 0,
      stopAll: Effect.void,
      resumeAll: Effect.void,
      keepSending: () => {},
    }),
  );

/** Another node: its guard and database, answering GET /api/cluster/database over HTTP as the API does. */
const peer = (id: string, db: Database): Effect.Effect<NodeRow, never, Scope.Scope> =>
  Effect.gen(function* () {
    const guard = yield* idleGuard(id, db);
    const server: Server = createServer((request, response) => {
      if (request.url !== "/api/cluster/database" || request.headers.authorization !== `Bearer ${TOKEN}`) {
        response.writeHead(404).end();
        return;
      }
      void guard.probeDatabase().then((reach) =>
        response.writeHead(200, { "content-type": "application/json" }).end(
          JSON.stringify({
            reachable: reach.reachable,
            last_ok_ms_ago: Math.round(reach.lastOkMsAgo),
            statement_interval_ms: Math.round(reach.intervalMs),
          }),
        ),
      );
    });
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.void));
      }),
      () =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void));
        }),
    );
    return peerRow(id, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });

/** The guard's timer's next round: GUARD_MS later, the rules run. */
const nextCheck = (node: { readonly check: Effect.Effect<void> }) =>
  Effect.zipRight(TestClock.adjust(GUARD_MS), node.check);

describe("the guard on the TestClock", () => {
  it.scoped(
    "a holder whose renewals stop stops sending at its lease's end less the margin, whatever else succeeds",
    () =>
      Effect.gen(function* () {
        const db = database();
        const node = yield* holder(db);
        expect(node.sends()).toBe(true);
        // Other statements go through all along: only the renewal's deadline counts.
        yield* TestClock.adjust(TTL / 2);
        expect(yield* node.statement("config")).toBe(true);
        yield* TestClock.adjust(TTL / 2 - MARGIN);
        yield* node.check;
        expect(node.guard.leaseHolds()).toBe(true);
        expect(node.sends()).toBe(true);
        yield* TestClock.adjust(1);
        expect(node.guard.leaseHolds()).toBe(false);
        yield* node.check;
        expect(node.guard.fenced()).toBe(true);
        expect(node.sends()).toBe(false);
        // Fenced, not given up: the term is kept, and a renewal that comes through starts the outputs again.
        expect(node.holds()).toBe(true);
        yield* node.renew;
        yield* Effect.yieldNow();
        expect(node.guard.fenced()).toBe(false);
        expect(node.sends()).toBe(true);
      }),
  );

  it.scoped(
    "the margin is a fifth of the lease, at least 500 ms: the edge for leases of 1, 2, 3 and 30 s",
    () =>
      Effect.gen(function* () {
        for (const [ttl, margin] of [
          [1_000, 500],
          [2_000, 500],
          [3_000, 600],
          [30_000, 6_000],
        ] as const) {
          expect(fenceMarginMs(ttl)).toBe(margin);
          const clock = yield* fleetClock;
          let stopped = 0;
          const guard = makeGuard({
            me: "a",
            ttl,
            policy: "keep",
            token: TOKEN,
            reach: database().reach,
            clock,
            peers: () => [],
            probe: () => undefined,
            holding: () => 1,
            stopAll: Effect.sync(() => void stopped++),
            resumeAll: Effect.void,
            keepSending: () => {},
          });
          yield* TestClock.adjust(ttl - margin);
          yield* guard.check;
          expect([ttl, guard.leaseHolds(), stopped]).toEqual([ttl, true, 0]);
          yield* TestClock.adjust(1);
          yield* guard.check;
          expect([ttl, guard.leaseHolds(), stopped]).toEqual([ttl, false, 1]);
        }
      }),
  );

  it.scoped("a renewal answered late counts from when its round was sent, not from its answer", () =>
    Effect.gen(function* () {
      const db = database();
      const node = yield* holder(db);
      const clock = yield* fleetClock;
      yield* TestClock.adjust(5_000);
      // A round sent now whose answer comes 4 s later: the leases it renewed last a lease time from its sending.
      const sentAt = clock.now();
      yield* TestClock.adjust(4_000);
      yield* node.guard.renewed(sentAt);
      yield* TestClock.adjust(sentAt + TTL - MARGIN - clock.now());
      yield* node.check;
      expect(node.sends()).toBe(true);
      yield* TestClock.adjust(1);
      yield* node.check;
      expect(node.sends()).toBe(false);
    }),
  );

  it.scoped(
    "a node cut off from the database while a peer reaches it stops at once, long before its lease's end",
    () =>
      Effect.gen(function* () {
        const b = yield* peer("b", database("up"));
        const db = database();
        const node = yield* holder(db, { peers: [b], probe: "open" });
        const clock = yield* fleetClock;
        yield* TestClock.adjust(1_000);
        db.set("refused");
        expect(yield* node.statement("round")).toBe(false);
        expect(node.guard.reachable()).toBe(false);
        // The first check asks; one answer is not enough (the instant the database comes back, sooner for the
        // peer than for this node, is not a cut): it stops on the second in a row.
        yield* nextCheck(node);
        yield* node.answers;
        yield* nextCheck(node);
        expect(node.sends()).toBe(true);
        yield* node.answers;
        yield* nextCheck(node);
        expect(node.guard.fenced()).toBe(true);
        expect(node.sends()).toBe(false);
        expect(node.guard.isolated()).toBe(false);
        // Three checks after the failure: the lease's end (less the margin) is 24 s away.
        expect(clock.now()).toBe(1_000 + 3 * GUARD_MS);
      }),
  );

  it.scoped(
    "isolated (the database down for all, a peer says so) with keep: it sends past its lease's end, and stops a lease time after the database is back unless a round renews",
    () =>
      Effect.gen(function* () {
        const b = yield* peer("b", database("refused"));
        const db = database();
        const node = yield* holder(db, { peers: [b], probe: "open" });
        const clock = yield* fleetClock;
        // The peer's own statements failed for longer than its statement interval (a third of its lease).
        yield* TestClock.adjust(TTL / 3 + 1);
        db.set("refused");
        expect(yield* node.statement("round")).toBe(false);
        yield* nextCheck(node);
        yield* node.answers;
        yield* nextCheck(node);
        expect(node.guard.isolated()).toBe(true);
        // Long past the lease's end, each check moves the gates on.
        yield* TestClock.adjust(2 * TTL);
        yield* node.check;
        expect(node.guard.fenced()).toBe(false);
        expect(node.sends()).toBe(true);
        // The database is back: the others wait a lease time before they take anything, and so does its deadline.
        db.set("up");
        expect(yield* node.statement("config")).toBe(true);
        const backAt = clock.now();
        expect(node.guard.isolated()).toBe(false);
        yield* TestClock.adjust(TTL - MARGIN);
        yield* node.check;
        expect(node.sends()).toBe(true);
        yield* TestClock.adjust(1);
        yield* node.check;
        expect(node.sends()).toBe(false);
        expect(clock.now() - backAt).toBe(TTL - MARGIN + 1);
      }),
  );

  it.scoped(
    "isolated with stop: it stops at its lease's end less the margin, as any holder without word",
    () =>
      Effect.gen(function* () {
        const b = yield* peer("b", database("refused"));
        const db = database();
        const node = yield* holder(db, { peers: [b], probe: "open", policy: "stop" });
        yield* TestClock.adjust(TTL / 3 + 1);
        db.set("refused");
        yield* node.statement("round");
        yield* nextCheck(node);
        yield* node.answers;
        yield* nextCheck(node);
        expect(node.guard.isolated()).toBe(true);
        expect(node.sends()).toBe(true);
        const clock = yield* fleetClock;
        yield* TestClock.adjust(TTL - MARGIN - clock.now());
        yield* node.check;
        expect(node.sends()).toBe(true);
        yield* TestClock.adjust(1);
        yield* node.check;
        expect(node.sends()).toBe(false);
      }),
  );

  it.scoped("no peer's port can be reached: isolated without a word from any, it keeps sending (keep)", () =>
    Effect.gen(function* () {
      // A peer whose port refuses: its process is gone (the watch's probe says so).
      const gone = peerRow("b", "http://127.0.0.1:1");
      const db = database();
      const node = yield* holder(db, { peers: [gone], probe: "refused" });
      yield* TestClock.adjust(1_000);
      db.set("refused");
      yield* node.statement("round");
      yield* nextCheck(node);
      expect(node.guard.isolated()).toBe(true);
      yield* TestClock.adjust(2 * TTL);
      yield* node.check;
      expect(node.sends()).toBe(true);
    }),
  );

  it.scoped(
    "a statement that hangs for a second is an outage; the database answering this node's own question means a lock, and only the deadline counts",
    () =>
      Effect.gen(function* () {
        const b = yield* peer("b", database("up"));
        const db = database();
        const node = yield* holder(db, { peers: [b], probe: "open" });
        yield* TestClock.adjust(1_000);
        // The round waits (behind a lock, say): it neither answers nor fails.
        db.set("silent");
        const round = yield* Effect.fork(node.statement("round"));
        yield* Effect.yieldNow();
        expect(db.statements.at(-1)).toBe("round");
        db.set("up");
        yield* TestClock.adjust(OUTAGE_MS - 1);
        expect(node.guard.reachable()).toBe(true);
        yield* TestClock.adjust(1);
        expect(node.guard.reachable()).toBe(false);
        // Asked twice, the peer reaches the database, but so did this node's own statement: no stop at once.
        yield* node.check;
        yield* node.answers;
        yield* nextCheck(node);
        yield* node.answers;
        yield* nextCheck(node);
        expect(node.sends()).toBe(true);
        const clock = yield* fleetClock;
        yield* TestClock.adjust(TTL - MARGIN - clock.now());
        yield* node.check;
        expect(node.sends()).toBe(true);
        yield* TestClock.adjust(1);
        yield* node.check;
        expect(node.sends()).toBe(false);
        expect(round.unsafePoll()).toBeNull();
      }),
  );

  it.scoped(
    "a node back on the database less than a lease time ago never tells a peer it is down for all",
    () =>
      Effect.gen(function* () {
        const db = database();
        const node = yield* idleGuard("b", db);
        const round = Effect.either(node.sql("round", () => db.q.query("round")));
        // Its own cut from the database, then back: a round fails, the next goes through.
        db.set("refused");
        yield* round;
        db.set("up");
        yield* round;
        expect(node.settling()).toBe(true);
        // Its connections fail again, more than a statement interval after that success: asked now, it does
        // not say "down" (the asker's renewal deadline counts, and it stops rather than keep sending).
        db.set("refused");
        yield* TestClock.adjust(TTL / 3 + 100);
        const settling = yield* Effect.promise(() => node.probeDatabase());
        expect(settling.reachable).toBe(false);
        expect(saysDown(settling)).toBe(false);
        // A lease time after it came back, the same failure is the database down for it too.
        yield* TestClock.adjust(TTL);
        expect(node.settling()).toBe(false);
        expect(saysDown(yield* Effect.promise(() => node.probeDatabase()))).toBe(true);
      }),
  );

  it.scoped(
    "a peer whose statements wait on a lock still reaches the database: the holder cut off stops at once, not isolated",
    () =>
      Effect.gen(function* () {
        // The peer's pool waits (a lock held by the cut holder's open transaction, say) and nothing of its own
        // went through for longer than its statement interval; a `select 1` of its own answers.
        const b = yield* peer("b", database("locked"));
        const db = database();
        const node = yield* holder(db, { peers: [b], probe: "open" });
        yield* TestClock.adjust(TTL / 3 + 1);
        db.set("refused");
        expect(yield* node.statement("round")).toBe(false);
        yield* nextCheck(node);
        yield* node.answers;
        yield* nextCheck(node);
        yield* node.answers;
        yield* nextCheck(node);
        expect(node.guard.isolated()).toBe(false);
        expect(node.guard.fenced()).toBe(true);
        expect(node.sends()).toBe(false);
      }),
  );

  it.scoped(
    "a node that told a peer the database is down for it takes no lease until a lease time after it reaches it again",
    () =>
      Effect.gen(function* () {
        const db = database("refused");
        const node = yield* idleGuard("b", db);
        yield* TestClock.adjust(TTL / 3 + 1);
        expect(node.settling()).toBe(false);
        // Asked, it says "down": the asker may keep sending past its lease on that word (keep).
        expect(saysDown(yield* Effect.promise(() => node.probeDatabase()))).toBe(true);
        expect(node.settling()).toBe(true);
        // However long the database stays away, and for a lease time after this node's next success.
        yield* TestClock.adjust(2 * TTL);
        expect(node.settling()).toBe(true);
        db.set("up");
        expect((yield* Effect.either(node.sql("round", () => db.q.query("round"))))._tag).toBe("Right");
        yield* TestClock.adjust(TTL - 1);
        expect(node.settling()).toBe(true);
        yield* TestClock.adjust(1);
        expect(node.settling()).toBe(false);
      }),
  );
});
