/**
 * The deliveries' schedule on Effect's TestClock, against real HTTP receivers on 127.0.0.1: a receiver that
 * answers 500, 500, 200 gets exactly three attempts, at 0, 5 s and 35 s (each wait ±10 %), the same
 * `webhook-id` each time, and the delivery is then delivered; one that answers 410 Gone gets one attempt and
 * its notifier is turned off, in the audit trail and /metrics' counts; one that never takes it is tried after
 * 5 s, 30 s, 2 min, 10 min, 30 min, then hourly, and given up a day after the event; in a fleet, only the node
 * that speaks for a channel delivers its events. The requests are real; only the waiting is
 * the TestClock's, so the file takes no 35 s.
 */
import { Chunk, Effect, TestClock } from "effect";
import { afterEach, describe, expect, it } from "vitest";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { Notifications } from "../../src/effects/notify/deliveries.ts";
import { Notifiers } from "../../src/effects/notify/notifiers.ts";
import { eventually } from "../support/app.ts";
import { type HttpReceiver, httpReceiver } from "../support/http-receiver.ts";
import { runOnTestClock as run } from "../support/notify.ts";

const receivers: HttpReceiver[] = [];
afterEach(async () => {
  for (const receiver of receivers.splice(0)) await receiver.close();
});

const waitFor = <A>(what: string, check: () => A | undefined | Promise<A | undefined>) =>
  Effect.promise(() => eventually(what, check));

/** Polls in real time until the delivery's latest attempt is recorded with `attempts` and its next try. */
const recorded = (attempts: number) =>
  Effect.gen(function* () {
    const notifications = yield* Notifications;
    const notifiers = yield* Notifiers;
    const id = notifiers.current()[0]?.id ?? "";
    while (true) {
      const [latest] = yield* notifications.recent(id);
      if (latest !== undefined && latest.attempts === attempts) return latest;
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)));
    }
  });

const lost = (bus: EventBus) => bus.emit({ type: "input_lost", channel: "news" });

describe("retries on the TestClock", () => {
  it("500, 500, 200: three attempts at 0, 5 s and 35 s (±10 %), then delivered", async () => {
    const receiver = await httpReceiver((index) => ({ status: index < 2 ? 500 : 200 }));
    receivers.push(receiver);
    await run(
      Effect.gen(function* () {
        const notifiers = yield* Notifiers;
        const bus = yield* EventBus;
        yield* TestClock.setTime(Date.parse("2026-12-05T19:00:00Z"));
        const start = yield* TestClock.currentTimeMillis;
        yield* notifiers.create({
          name: "ops",
          kind: "webhook",
          url: `${receiver.url}/hook`,
          events: ["input_lost"],
        });
        lost(bus);
        /** When (on the TestClock) each attempt reached the receiver: the clock stands still between our moves. */
        const times: number[] = [];
        yield* waitFor("the first attempt", () => (receiver.received.length === 1 ? true : undefined));
        times.push((yield* TestClock.currentTimeMillis) - start);
        for (const attempts of [1, 2]) {
          const pending = yield* recorded(attempts);
          expect(pending.state).toBe("pending");
          expect(pending.status).toBe(500);
          // The notifier's fiber sleeps until exactly that next try, and nothing reached the receiver meanwhile.
          const nextAt = pending.next_at ?? 0;
          expect(Chunk.toReadonlyArray(yield* TestClock.sleeps())).toContain(nextAt);
          expect(receiver.received.length).toBe(attempts);
          yield* TestClock.setTime(nextAt - 1);
          expect(receiver.received.length).toBe(attempts);
          yield* TestClock.setTime(nextAt);
          yield* waitFor(`attempt ${attempts + 1}`, () =>
            receiver.received.length === attempts + 1 ? true : undefined,
          );
          times.push((yield* TestClock.currentTimeMillis) - start);
        }
        const done = yield* recorded(3);
        expect(done.state).toBe("delivered");
        expect(done.next_at).toBeNull();
        expect(times[0]).toBe(0);
        expect(times[1]).toBeGreaterThanOrEqual(4_500);
        expect(times[1]).toBeLessThanOrEqual(5_500);
        // 5 s ± 10 %, then 30 s ± 10 %.
        expect(times[2]).toBeGreaterThanOrEqual(4_500 + 27_000);
        expect(times[2]).toBeLessThanOrEqual(5_500 + 33_000);
        expect((times[2] ?? 0) - (times[1] ?? 0)).toBeGreaterThanOrEqual(27_000);
        // One delivery: the same id at each attempt, and nothing more once delivered.
        expect(new Set(receiver.received.map((request) => request.headers["webhook-id"])).size).toBe(1);
        yield* TestClock.adjust("2 hours");
        expect(receiver.received.length).toBe(3);
        const counts = (yield* Notifications).counts().get(notifiers.current()[0]?.id ?? "");
        expect(counts).toEqual({ delivered: 1, failed: 2, dropped: 0, disabled: 0, overflowed: 0 });
      }),
    );
  });

  it("410 Gone: one attempt, the notifier turned off and the audit trail says why", async () => {
    const receiver = await httpReceiver(() => ({ status: 410 }));
    receivers.push(receiver);
    await run(
      Effect.gen(function* () {
        const notifiers = yield* Notifiers;
        const bus = yield* EventBus;
        yield* notifiers.create({ name: "gone", kind: "webhook", url: receiver.url, events: ["input_lost"] });
        lost(bus);
        yield* waitFor("the notifier turned off", () =>
          notifiers.current()[0]?.enabled === false ? true : undefined,
        );
        expect(notifiers.current()[0]?.disabled_reason).toContain("410 Gone");
        const audit = bus
          .recent({ types: ["api_change"] })
          .find((event) => event.type === "api_change" && event.action === "notifier.disable");
        expect(audit).toMatchObject({ actor: "notifications" });
        // Nothing more goes to it: another event, a day later, is not even queued.
        lost(bus);
        yield* TestClock.adjust("1 day");
        expect(receiver.received.length).toBe(1);
        const counts = (yield* Notifications).counts().get(notifiers.current()[0]?.id ?? "");
        expect(counts).toMatchObject({ failed: 1, disabled: 1 });
      }),
    );
  });

  it("in a fleet, a channel's events go only from the node that speaks for it", async () => {
    const receiver = await httpReceiver();
    receivers.push(receiver);
    await run(
      Effect.gen(function* () {
        const notifiers = yield* Notifiers;
        const notifications = yield* Notifications;
        const bus = yield* EventBus;
        notifications.sendOnlyFor((channel) => channel === "news");
        yield* notifiers.create({
          name: "ops",
          kind: "webhook",
          url: receiver.url,
          events: ["input_lost", "node_down"],
        });
        bus.emit({ type: "input_lost", channel: "sports" });
        bus.emit({ type: "input_lost", channel: "news" });
        bus.emit({ type: "node_down", node: "b", message: "its lease ran out" });
        yield* waitFor("two deliveries", () => (receiver.received.length === 2 ? true : undefined));
        const said = receiver.received.map(
          (entry) => JSON.parse(entry.body) as { type: string; channel: { id: string } | null },
        );
        expect(said.map((body) => [body.type, body.channel?.id ?? null]).sort()).toEqual([
          ["input_lost", "news"],
          ["node_down", null],
        ]);
        const pending = yield* notifications.recent(notifiers.current()[0]?.id ?? "");
        expect(pending).toHaveLength(2);
      }),
    );
  });

  it("a receiver that never takes it: 5 s, 30 s, 2 min, 10 min, 30 min, then hourly, and given up after a day", async () => {
    const receiver = await httpReceiver(() => ({ status: 503 }));
    receivers.push(receiver);
    await run(
      Effect.gen(function* () {
        const notifiers = yield* Notifiers;
        yield* notifiers.create({ name: "down", kind: "webhook", url: receiver.url, events: ["input_lost"] });
        lost(yield* EventBus);
        const gaps: number[] = [];
        let last = yield* TestClock.currentTimeMillis;
        for (let attempts = 1; ; attempts++) {
          const latest = yield* recorded(attempts);
          if (latest.state !== "pending") {
            expect(latest.state).toBe("failed");
            break;
          }
          const nextAt = latest.next_at ?? 0;
          gaps.push(nextAt - last);
          last = nextAt;
          yield* TestClock.setTime(nextAt);
        }
        const expected = [5_000, 30_000, 120_000, 600_000, 1_800_000];
        for (const [index, gap] of gaps.entries()) {
          const base = expected[index] ?? 3_600_000;
          expect(gap, `wait ${index + 1}`).toBeGreaterThanOrEqual(base * 0.9);
          expect(gap, `wait ${index + 1}`).toBeLessThanOrEqual(base * 1.1);
        }
        // Every attempt but the first waited; none was made past a day after the event.
        expect(receiver.received).toHaveLength(gaps.length + 1);
        const total = gaps.reduce((sum, gap) => sum + gap, 0);
        expect(total).toBeLessThanOrEqual(24 * 3_600_000);
        expect(total).toBeGreaterThan(22 * 3_600_000);
        const counts = (yield* Notifications).counts().get(notifiers.current()[0]?.id ?? "");
        expect(counts).toEqual({
          delivered: 0,
          failed: gaps.length + 1,
          dropped: 1,
          disabled: 0,
          overflowed: 0,
        });
      }),
    );
  });
});
