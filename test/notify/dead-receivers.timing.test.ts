/**
 * A slow or dead receiver delays only its own deliveries: 100 webhook notifiers whose receiver is dead (a
 * closed port; a real HTTP server that takes each request and never answers) beside one healthy webhook, a real
 * HTTP receiver that verifies every delivery with the `standardwebhooks` package; 30 events, and each of the
 * healthy webhook's 30 deliveries arrives, signed, within 15 s of its event. The outbox is the real file store
 * in a temporary directory, the clock the real one.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Layer } from "effect";
import { Webhook } from "standardwebhooks";
import { afterEach, expect, it } from "vitest";
import { layerFile } from "../../src/effects/config/store.ts";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { Notifications } from "../../src/effects/notify/deliveries.ts";
import { Notifiers } from "../../src/effects/notify/notifiers.ts";
import { eventually } from "../support/app.ts";
import { closedPort, type HttpReceiver, httpReceiver } from "../support/http-receiver.ts";
import { notifyLayer } from "../support/notify.ts";

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const DEAD = 100;
const EVENTS = 30;

/** 100 dead notifiers and one healthy one, 30 events: when each of the healthy receiver's deliveries came. */
const crowd = async (deadUrl: string) => {
  const dir = await mkdtemp(join(tmpdir(), "distributary-dead-receivers-"));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const verified: Array<{ type: string; channel: string; at: number }> = [];
  let secret = "";
  const healthy: HttpReceiver = await httpReceiver((_index, request) => {
    const payload = new Webhook(secret).verify(request.body, {
      "webhook-id": String(request.headers["webhook-id"]),
      "webhook-timestamp": String(request.headers["webhook-timestamp"]),
      "webhook-signature": String(request.headers["webhook-signature"]),
    }) as { type: string; channel: { id: string } };
    verified.push({ type: payload.type, channel: payload.channel.id, at: Date.now() });
    return { status: 200 };
  });
  cleanup.push(() => healthy.close());
  const emitted = new Map<string, number>();
  await Effect.runPromise(
    Effect.gen(function* () {
      const notifiers = yield* Notifiers;
      for (let index = 0; index < DEAD; index++)
        yield* notifiers.create({
          name: `dead ${index}`,
          kind: "webhook",
          url: `${deadUrl}/hook/${index}`,
          events: ["input_lost"],
        });
      const made = yield* notifiers.create({
        name: "healthy",
        kind: "webhook",
        url: `${healthy.url}/hook`,
        events: ["input_lost"],
      });
      secret = String(made.secret);
      yield* Notifications;
      const bus = yield* EventBus;
      for (let index = 0; index < EVENTS; index++) {
        const channel = `news-${index}`;
        emitted.set(channel, Date.now());
        bus.emit({ type: "input_lost", channel });
        // Events as a real incident brings them: a few a second, not all in one tick.
        yield* Effect.sleep("100 millis");
      }
      // Past 30 s the assertions below say which came late, or how many never came.
      yield* Effect.ignore(
        Effect.tryPromise(() =>
          eventually(
            "the healthy webhook's 30 deliveries",
            () => (verified.length >= EVENTS ? true : undefined),
            30_000,
          ),
        ),
      );
    }).pipe(Effect.provide(notifyLayer(Layer.orDie(layerFile(dir)))), Effect.scoped),
  );
  return { verified, emitted };
};

const expectOnTime = ({ verified, emitted }: Awaited<ReturnType<typeof crowd>>) => {
  expect(verified).toHaveLength(EVENTS);
  expect(new Set(verified.map((entry) => entry.channel)).size).toBe(EVENTS);
  const late = verified
    .map((entry) => ({ channel: entry.channel, ms: entry.at - (emitted.get(entry.channel) ?? 0) }))
    .filter((entry) => entry.ms > 15_000);
  expect(late, "deliveries that took more than 15 s").toEqual([]);
};

it("100 notifiers whose receiver's port is closed do not delay a healthy webhook's deliveries", async () => {
  expectOnTime(await crowd(`http://127.0.0.1:${await closedPort()}`));
}, 90_000);

it("100 notifiers whose receiver never answers do not delay a healthy webhook's deliveries", async () => {
  const silent = await httpReceiver(() => ({ status: 200, delayMs: 600_000 }));
  cleanup.push(() => silent.close());
  expectOnTime(await crowd(silent.url));
}, 90_000);
