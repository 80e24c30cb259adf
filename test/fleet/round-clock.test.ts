/**
 * The coordinator's rounds (src/effects/fleet/rounds.ts) on the TestClock, against a real PostgreSQL: a round
 * renews the node's leases, and moves its channels' send gates on only when it was answered within a lease time
 * of the round before. One answered later may have renewed leases that had lapsed and that a standby took in the
 * same instant: the gates stay closed, and the next round, at once, says what the node holds. The database's
 * answers are held back while the test moves the clock, so "late" is the node's own reckoning, with no wait.
 */
import { describe, expect, it } from "@effect/vitest";
import { Effect, Fiber, TestClock } from "effect";
import { afterAll, beforeAll } from "vitest";
import type { Queryable } from "../../src/effects/config/postgres/database.ts";
import type { Resume } from "../../src/effects/control/resume.ts";
import { fleetClock } from "../../src/effects/fleet/fleet-clock.ts";
import { makeGuard } from "../../src/effects/fleet/guard.ts";
import { makeLeaseBook } from "../../src/effects/fleet/lease-book.ts";
import { acquire, ensureLeases, takeOver } from "../../src/effects/fleet/leases.ts";
import { registerNode } from "../../src/effects/fleet/nodes.ts";
import { makeRounds } from "../../src/effects/fleet/rounds.ts";
import { makeSending } from "../../src/effects/fleet/sending.ts";
import { gateOpen, gateSlot } from "../../src/effects/runtime/sockets/send-gates.ts";
import { type Postgres, startPostgres } from "../support/postgres.ts";
import { migrated } from "./migrated.ts";

const TTL = 30_000;

let postgres: Postgres;
let store: Awaited<ReturnType<typeof migrated>>;

beforeAll(async () => {
  postgres = await startPostgres({ port: 23750 });
  store = await migrated(postgres);
});

afterAll(async () => {
  await store?.dispose();
  await postgres?.close();
});

/** The database, whose answers the test may hold back: a statement is made at once, its answer waits. */
const heldBack = (real: Queryable) => {
  let gate: Promise<void> | null = null;
  let open = () => {};
  const q: Queryable = {
    query: async (text, values) => {
      const waitFor = gate;
      const result = await real.query(text, values);
      if (waitFor !== null) await waitFor;
      return result;
    },
  };
  return {
    q,
    hold: () => {
      gate = new Promise((resolve) => {
        open = resolve;
      });
    },
    answer: () => {
      gate = null;
      open();
    },
  };
};

/** Node `me` holding channel `channel`'s lease, with its rounds, guard and gates as the coordinator wires them. */
const node = (me: string, channel: string) =>
  Effect.gen(function* () {
    const clock = yield* fleetClock;
    const bootId = `boot-${me}`;
    const db = heldBack(store.db);
    yield* Effect.promise(async () => {
      await postgres.admin(
        "insert into channels (id, position, body, revision) values ($1, 0, '{}', nextval('config_revision'))",
        [channel],
      );
      await ensureLeases(store.db);
      await registerNode(store.db, { id: me, url: "http://127.0.0.1:9", bootId, version: "test" });
    });
    const term = yield* Effect.promise(() => acquire(store.db, me, bootId, channel));
    const outputs = new Map<string, boolean>();
    const resume = {
      hold: (id: string, holds: boolean) => Effect.sync(() => void outputs.set(id, holds)),
      locked: <A, E, R>(effect: Effect.Effect<A, E, R>) => effect,
    } as unknown as Resume;
    const handover = { prepare: () => Effect.void, begun: () => Effect.void };
    const book = makeLeaseBook(me, TTL, clock);
    const sending = makeSending(me, TTL, clock, resume, () => guard.fenced(), handover);
    const guard = makeGuard({
      me,
      ttl: TTL,
      policy: "keep",
      token: "peer-credential",
      reach: async () => true,
      clock,
      peers: () => [],
      probe: () => undefined,
      holding: () => sending.held.size,
      stopAll: sending.stopAll,
      resumeAll: sending.resumeAll,
      keepSending: () => sending.sendFor(0),
    });
    const rounds = makeRounds({
      me,
      bootId,
      clock,
      q: db.q,
      book,
      held: sending.held,
      sql: guard.sql,
      stored: () => undefined,
      stopSending: sending.stopSending,
      ttl: TTL,
      guard,
      sending,
      running: () => 1,
      nodesRead: () => {},
      register: Effect.void,
      drainFlagged: Effect.void,
      configMoved: () => {},
    });
    yield* sending.startSending(channel, term ?? -1, null);
    return {
      db,
      guard,
      rounds,
      term: term ?? -1,
      sends: () => gateOpen(gateSlot(channel)) && outputs.get(channel) === true,
      holds: () => sending.held.has(channel),
      /** A round sent now whose answer comes `lateMs` later. */
      roundAnswered: (lateMs: number) =>
        Effect.gen(function* () {
          db.hold();
          const round = yield* Effect.fork(rounds.round);
          yield* TestClock.adjust(lateMs);
          db.answer();
          yield* Fiber.join(round);
        }),
    };
  });

describe("the rounds on the TestClock", () => {
  it.scoped(
    "a round answered within a lease time of the one before moves the gates on; one answered later does not, and the next, at once, finds the lease passed",
    () =>
      Effect.gen(function* () {
        const clock = yield* fleetClock;
        const a = yield* node("a", "round-late");
        // The node's first round: its gates open for a lease time, less the margin, from its sending.
        expect(a.sends()).toBe(false);
        yield* a.rounds.round;
        expect(a.sends()).toBe(true);
        expect(a.guard.leaseHolds()).toBe(true);

        // Sent 10 s later and answered 19.999 s after that: inside a lease time of the round before.
        yield* TestClock.adjust(10_000);
        yield* a.roundAnswered(TTL - 10_001);
        yield* a.guard.check;
        expect(a.sends()).toBe(true);
        // The guard's deadline counts from that round's sending.
        expect(a.guard.leaseHolds()).toBe(true);
        const renewedAt = clock.now() - (TTL - 10_001);

        // The next one is sent now and answered 10.001 s later: a lease time after the one before was sent.
        // Its leases may have lapsed meanwhile: nothing moves on, and the guard stops the outputs at its deadline.
        yield* a.roundAnswered(10_001);
        expect(clock.now() - renewedAt).toBe(TTL);
        expect(a.guard.leaseHolds()).toBe(false);
        yield* a.guard.check;
        expect(a.sends()).toBe(false);
        expect(a.holds()).toBe(true);

        // Meanwhile another node took the lease over; the next round, at once, finds it gone.
        yield* Effect.promise(async () => {
          await registerNode(store.db, {
            id: "b",
            url: "http://127.0.0.1:9",
            bootId: "boot-b",
            version: "test",
          });
          expect(await takeOver(store.db, "b", "boot-b", "round-late", "a", a.term)).toBe(a.term + 1);
        });
        yield* a.rounds.round;
        expect(a.holds()).toBe(false);
        expect(a.sends()).toBe(false);
      }),
  );

  it.scoped(
    "a round answered late, the lease still the node's: the next round, answered in time, sends again",
    () =>
      Effect.gen(function* () {
        const a = yield* node("c", "round-again");
        yield* a.rounds.round;
        // Sent 10 s after the first and answered 25 s later: 35 s after the round before was sent.
        yield* TestClock.adjust(10_000);
        yield* a.roundAnswered(25_000);
        yield* a.guard.check;
        expect(a.sends()).toBe(false);
        expect(a.guard.fenced()).toBe(true);
        // The next, answered at once, 25 s after the round before it was sent: it renewed leases that still held.
        yield* a.rounds.round;
        yield* Effect.yieldNow();
        expect(a.guard.fenced()).toBe(false);
        expect(a.holds()).toBe(true);
        expect(a.sends()).toBe(true);
      }),
  );
});
