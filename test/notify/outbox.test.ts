/**
 * The outbox on one box, in the config directory's files: a delivery is on disk before its first attempt
 * reaches the receiver (the receiver reads the file as the request comes in), stays there pending after a
 * failed attempt, and a service started again on the same directory attempts it at the time it was due, with
 * the same webhook-id, until it is delivered. Stopped, the whole outbox is in `notifications.json`; running, a
 * change is appended to `notifications.journal` (one line) instead, however many deliveries are pending, and a
 * start reads both. On the TestClock; the files and the requests are real.
 */
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Layer, TestClock } from "effect";
import { afterAll, expect, it } from "vitest";
import { layerFile } from "../../src/effects/config/store.ts";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { Notifications } from "../../src/effects/notify/deliveries.ts";
import { Notifiers } from "../../src/effects/notify/notifiers.ts";
import { JOURNAL_FILE, OUTBOX_FILE } from "../../src/effects/notify/outbox.ts";
import { eventually } from "../support/app.ts";
import { closedPort, httpReceiver } from "../support/http-receiver.ts";
import { runOnTestClock } from "../support/notify.ts";

const dir = await mkdtemp(join(tmpdir(), "distributary-outbox-"));
afterAll(() => rm(dir, { recursive: true, force: true }));
const store = Layer.orDie(layerFile(dir));
const run = <A>(program: Parameters<typeof runOnTestClock<A>>[0]) => runOnTestClock(program, store);

/** What a start would read: the whole outbox and the journal of what came since (either may not be there yet). */
const onDisk = () =>
  [OUTBOX_FILE, JOURNAL_FILE]
    .map((name) => {
      try {
        return readFileSync(join(dir, name), "utf8");
      } catch {
        return "";
      }
    })
    .join("\n");
const whole = () => readFileSync(join(dir, OUTBOX_FILE), "utf8");

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
    const stored = JSON.parse(whole()).deliveries as Array<{ id: string; state: string; next_at: number }>;
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
    expect(JSON.parse(whole()).deliveries).toEqual([
      expect.objectContaining({ id: pending.id, state: "delivered" }),
    ]);
  } finally {
    await receiver.close();
  }
});

const T0 = Date.parse("2026-12-05T19:00:00Z");

it("with 500 deliveries pending, an attempt appends its lines to the journal and leaves notifications.json as it was", async () => {
  const own = await mkdtemp(join(tmpdir(), "distributary-outbox-backlog-"));
  try {
    const ownStore = Layer.orDie(layerFile(own));
    const url = `http://127.0.0.1:${await closedPort()}/hook`;
    // A receiver down for 500 events: each attempted once, each pending; the stop writes the whole.
    await runOnTestClock(
      Effect.gen(function* () {
        yield* TestClock.setTime(T0);
        const made = yield* (yield* Notifiers).create({
          name: "down",
          kind: "webhook",
          url,
          events: ["input_lost"],
        });
        const bus = yield* EventBus;
        for (let index = 0; index < 500; index++) bus.emit({ type: "input_lost", channel: `c${index}` });
        const notifications = yield* Notifications;
        yield* Effect.promise(() =>
          eventually("500 failed attempts", () =>
            notifications.counts().get(made.id)?.failed === 500 ? true : undefined,
          ),
        );
        // And each attempt's next try written: a line each, after the 500 new deliveries' lines and the header.
        yield* Effect.promise(() =>
          eventually("1,000 changes in the journal", () =>
            readFileSync(join(own, JOURNAL_FILE), "utf8").trim().split("\n").length === 1001
              ? true
              : undefined,
          ),
        );
      }),
      ownStore,
    );
    const wholeBefore = readFileSync(join(own, OUTBOX_FILE), "utf8");
    expect(JSON.parse(wholeBefore).deliveries).toHaveLength(500);
    const journalBefore = readFileSync(join(own, JOURNAL_FILE), "utf8");
    // Started again a second later on the clock, before any of the 500 is due again: one new event, one attempt.
    await runOnTestClock(
      Effect.gen(function* () {
        yield* TestClock.setTime(T0 + 1_000);
        (yield* EventBus).emit({ type: "input_lost", channel: "news" });
        const id = (yield* Notifiers).current()[0]?.id ?? "";
        const notifications = yield* Notifications;
        const latest = yield* Effect.promise(() =>
          eventually("the new delivery's attempt recorded", async () => {
            const [newest] = await Effect.runPromise(notifications.recent(id));
            return newest?.payload.channel?.id === "news" && newest.attempts === 1 && newest.next_at !== null
              ? newest
              : undefined;
          }),
        );
        expect(latest).toMatchObject({ state: "pending", attempts: 1 });
        expect(notifications.counts().get(id)?.failed).toBe(1);
        // The journal holds the new delivery, then its attempt (appended as the attempt's write ends), and no more.
        const added = yield* Effect.promise(() =>
          eventually("the attempt's line", () => {
            const text = readFileSync(join(own, JOURNAL_FILE), "utf8").slice(journalBefore.length);
            return text.trim().split("\n").length >= 2 ? text : undefined;
          }),
        );
        const lines = added.trim().split("\n");
        expect(lines).toHaveLength(2);
        for (const line of lines) expect(JSON.parse(line)).toMatchObject({ set: { id: latest.id } });
        expect(added.length).toBeLessThan(4096);
        expect(readFileSync(join(own, OUTBOX_FILE), "utf8")).toBe(wholeBefore);
      }),
      ownStore,
    );
    // Stopped: the whole again, the 501 in it.
    expect(JSON.parse(readFileSync(join(own, OUTBOX_FILE), "utf8")).deliveries).toHaveLength(501);
  } finally {
    await rm(own, { recursive: true, force: true });
  }
});

it("a start reads the whole and its generation's journal, skips a line cut short, and ignores an older journal", async () => {
  const own = await mkdtemp(join(tmpdir(), "distributary-outbox-journal-"));
  try {
    const row = (id: string, state: string, attempts: number) => ({
      id,
      notifier: "n1",
      node: hostname(),
      type: "input_lost",
      payload: {
        type: "input_lost",
        timestamp: "2026-12-05T19:00:00.000Z",
        node: "a",
        channel: null,
        output: null,
        data: {},
      },
      state,
      attempts,
      status: null,
      message: null,
      created_at: `2026-12-05T19:00:0${id.slice(-1)}.000Z`,
      // Far off: nothing is attempted while the test looks.
      next_at: state === "pending" ? T0 + 86_400_000 : null,
      last_at: null,
    });
    const lines = (generation: number, ...entries: unknown[]) =>
      [{ version: 1, generation }, ...entries].map((entry) => JSON.stringify(entry)).join("\n");
    await writeFile(
      join(own, OUTBOX_FILE),
      JSON.stringify({
        version: 1,
        generation: 3,
        deliveries: [row("msg_1", "pending", 1), row("msg_2", "pending", 0)],
      }),
    );
    // This generation's journal: msg_2 attempted, msg_3 new, msg_1 gone, then msg_4 cut short by a crash.
    await writeFile(
      join(own, JOURNAL_FILE),
      `${lines(3, { set: row("msg_2", "pending", 2) }, { set: row("msg_3", "pending", 0) }, { drop: "msg_1" })}\n${JSON.stringify({ set: row("msg_4", "pending", 0) }).slice(0, 80)}`,
    );
    const ids = await runOnTestClock(
      Effect.gen(function* () {
        yield* TestClock.setTime(T0);
        return (yield* (yield* Notifications).recent("n1")).map((delivery) => [
          delivery.id,
          delivery.attempts,
        ]);
      }),
      Layer.orDie(layerFile(own)),
    );
    expect(ids).toEqual([
      ["msg_3", 0],
      ["msg_2", 2],
    ]);
    // The stop wrote the whole under a new generation, and a journal of that generation with nothing in it.
    const stored = JSON.parse(readFileSync(join(own, OUTBOX_FILE), "utf8"));
    expect(stored.generation).toBeGreaterThan(3);
    expect(readFileSync(join(own, JOURNAL_FILE), "utf8")).toBe(`${lines(stored.generation)}\n`);
    // An older generation's journal (a stop between the whole and the new journal) is read past.
    await writeFile(join(own, JOURNAL_FILE), `${lines(stored.generation - 1, { drop: "msg_3" })}\n`);
    const again = await runOnTestClock(
      Effect.map(
        Effect.flatMap(Notifications, (notifications) => notifications.recent("n1")),
        (rows) => rows.map((delivery) => delivery.id),
      ),
      Layer.orDie(layerFile(own)),
    );
    expect(again).toEqual(["msg_3", "msg_2"]);
  } finally {
    await rm(own, { recursive: true, force: true });
  }
});

it("a journal that cannot be written: each change writes the whole instead, and a restart has every delivery", async () => {
  const own = await mkdtemp(join(tmpdir(), "distributary-outbox-broken-"));
  const receiver = await httpReceiver(() => ({ status: 503 }));
  try {
    const ownStore = Layer.orDie(layerFile(own));
    const attempted = (channel: string) =>
      Effect.gen(function* () {
        const notifications = yield* Notifications;
        const id = (yield* Notifiers).current()[0]?.id ?? "";
        return yield* Effect.promise(() =>
          eventually(`${channel}'s attempt recorded`, async () => {
            const rows = await Effect.runPromise(notifications.recent(id));
            return rows.find((row) => row.payload.channel?.id === channel && row.attempts === 1);
          }),
        );
      });
    await runOnTestClock(
      Effect.gen(function* () {
        yield* TestClock.setTime(T0);
        yield* (yield* Notifiers).create({
          name: "ops",
          kind: "webhook",
          url: receiver.url,
          events: ["input_lost"],
        });
        const bus = yield* EventBus;
        bus.emit({ type: "input_lost", channel: "first" });
        yield* attempted("first");
        // The journal's place taken by a directory: no append (nor replace) can go there any more.
        yield* Effect.promise(async () => {
          await rm(join(own, JOURNAL_FILE));
          await mkdir(join(own, JOURNAL_FILE));
        });
        bus.emit({ type: "input_lost", channel: "second" });
        yield* attempted("second");
        // Written whole instead (as the write that holds the attempt ends), not lost.
        const wholeRows = () => {
          try {
            const stored = JSON.parse(readFileSync(join(own, OUTBOX_FILE), "utf8")).deliveries as Array<{
              payload: { channel: { id: string } };
              attempts: number;
            }>;
            return stored.map((row) => `${row.payload.channel.id} ${row.attempts}`).sort();
          } catch {
            return [];
          }
        };
        yield* Effect.promise(() =>
          eventually("both deliveries in notifications.json", () =>
            wholeRows().join(", ") === "first 1, second 1" ? true : undefined,
          ),
        );
      }),
      ownStore,
    );
    // Started again with the directory still there: the whole is read, each delivery pending as it was.
    const rows = await runOnTestClock(
      Effect.gen(function* () {
        const id = (yield* Notifiers).current()[0]?.id ?? "";
        return (yield* (yield* Notifications).recent(id)).map((row) => [
          row.payload.channel?.id,
          row.state,
          row.attempts,
        ]);
      }),
      ownStore,
    );
    expect(rows.sort()).toEqual([
      ["first", "pending", 1],
      ["second", "pending", 1],
    ]);
  } finally {
    await receiver.close();
    await rm(own, { recursive: true, force: true });
  }
});
