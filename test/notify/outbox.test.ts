/**
 * The outbox on one box, in the config directory's files: a delivery is on disk before its first attempt
 * reaches the receiver (the receiver reads the file as the request comes in), stays there pending after a
 * failed attempt, and a service started again on the same directory attempts it at the time it was due, with
 * the same webhook-id, until it is delivered. On the TestClock; the files and the requests are real.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Layer, TestClock } from "effect";
import { afterAll, expect, it } from "vitest";
import { layerFile } from "../../src/effects/config/store.ts";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { Notifications } from "../../src/effects/notify/deliveries.ts";
import { Notifiers } from "../../src/effects/notify/notifiers.ts";
import { OUTBOX_FILE } from "../../src/effects/notify/outbox.ts";
import { eventually } from "../support/app.ts";
import { httpReceiver } from "../support/http-receiver.ts";
import { runOnTestClock } from "../support/notify.ts";

const dir = await mkdtemp(join(tmpdir(), "distributary-outbox-"));
afterAll(() => rm(dir, { recursive: true, force: true }));
const store = Layer.orDie(layerFile(dir));
const run = <A>(program: Parameters<typeof runOnTestClock<A>>[0]) => runOnTestClock(program, store);

const onDisk = () => readFileSync(join(dir, OUTBOX_FILE), "utf8");

it("a delivery is on disk before its first attempt, and a restarted service delivers it when due", async () => {
  /** Whether the delivery was in the file when each request arrived. */
  const storedFirst: boolean[] = [];
  const receiver = await httpReceiver((index, request) => {
    storedFirst.push(onDisk().includes(String(request.headers["webhook-id"])));
    return { status: index === 0 ? 503 : 200 };
  });
  try {
    const pending = await run(
      Effect.gen(function* () {
        const notifiers = yield* Notifiers;
        yield* TestClock.setTime(Date.parse("2026-12-05T19:00:00Z"));
        const made = yield* notifiers.create({
          name: "ops",
          kind: "webhook",
          url: receiver.url,
          events: ["input_lost"],
        });
        (yield* EventBus).emit({ type: "input_lost", channel: "news" });
        const notifications = yield* Notifications;
        // Real time: the attempt is a real request.
        while (true) {
          const [latest] = yield* notifications.recent(made.id);
          if (latest?.attempts === 1) return latest;
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)));
        }
      }),
    );
    expect(pending).toMatchObject({ state: "pending", status: 503, attempts: 1 });
    // Stopped: what is on disk is the pending delivery, its next try and all.
    const stored = JSON.parse(onDisk()).deliveries as Array<{ id: string; state: string; next_at: number }>;
    expect(stored).toEqual([
      expect.objectContaining({ id: pending.id, state: "pending", next_at: pending.next_at }),
    ]);

    await run(
      Effect.gen(function* () {
        const notifications = yield* Notifications;
        const notifiers = yield* Notifiers;
        const id = notifiers.current()[0]?.id ?? "";
        expect(receiver.received).toHaveLength(1);
        yield* TestClock.setTime(pending.next_at ?? 0);
        yield* Effect.promise(() =>
          eventually("the second attempt", () => (receiver.received.length === 2 ? true : undefined)),
        );
        while (true) {
          const [latest] = yield* notifications.recent(id);
          if (latest?.state === "delivered") {
            expect(latest).toMatchObject({ id: pending.id, attempts: 2, status: 200 });
            break;
          }
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)));
        }
      }),
    );
    expect(storedFirst).toEqual([true, true]);
    expect(new Set(receiver.received.map((request) => request.headers["webhook-id"]))).toEqual(
      new Set([pending.id]),
    );
    expect(JSON.parse(onDisk()).deliveries).toEqual([
      expect.objectContaining({ id: pending.id, state: "delivered" }),
    ]);
  } finally {
    await receiver.close();
  }
});
