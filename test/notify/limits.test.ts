/**
 * The notifications' limits, as a user meets them: at most 200 notifiers (the 201st a 409 in words, through the
 * API); at most 1000 pending deliveries per notifier, past which the oldest is dropped, counted as `overflowed`
 * and recorded in words (a real receiver that never answers, the outbox in real files, on the TestClock); and
 * the IPv6 forms that carry an IPv4 address (`::a.b.c.d`, `::ffff:a.b.c.d`, NAT64, 6to4) judged by the address
 * they carry, refused at delivery in words without DISTRIBUTARY_NOTIFY_ALLOW_PRIVATE.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Layer, TestClock } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { pushAddressProblem } from "../../src/domain/channel/addresses.ts";
import { layerFile } from "../../src/effects/config/store.ts";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { Notifications } from "../../src/effects/notify/deliveries.ts";
import { MAX_PENDING } from "../../src/effects/notify/delivery-queues.ts";
import { Notifiers } from "../../src/effects/notify/notifiers.ts";
import { OUTBOX_FILE } from "../../src/effects/notify/outbox.ts";
import { eventually, json, makeTestApp, useTestApp } from "../support/app.ts";
import { type HttpReceiver, httpReceiver } from "../support/http-receiver.ts";
import { runOnTestClock } from "../support/notify.ts";

const app = useTestApp({
  settings: { DISTRIBUTARY_NOTIFY_ALLOW_PRIVATE: "true", DISTRIBUTARY_WORKERS: "0" },
});
const receivers: HttpReceiver[] = [];
afterAll(async () => {
  for (const receiver of receivers) await receiver.close();
});

describe("the number of notifiers", () => {
  it("the 201st notifier is a 409 that says how many there may be and what to do", async () => {
    const create = (name: string) =>
      app.request("/api/notifiers", {
        method: "POST",
        body: JSON.stringify({
          name,
          kind: "webhook",
          url: "https://ops.example/hook",
          events: ["input_lost"],
        }),
      });
    const ids: string[] = [];
    for (let index = 0; index < 200; index++) {
      const created = await create(`ops ${index}`);
      expect(created.status).toBe(201);
      ids.push(String((await json(created)).id));
    }
    const refused = await create("one too many");
    expect(refused.status).toBe(409);
    expect(refused.headers.get("content-type")).toContain("application/problem+json");
    expect(String((await json(refused)).detail)).toMatch(
      /there are 200 notifiers, the most this service keeps \(200\): delete one you no longer need/,
    );
    expect(((await json(await app.request("/api/notifiers"))).notifiers as unknown[]).length).toBe(200);
    // One deleted, one may come.
    expect((await app.request(`/api/notifiers/${ids[0]}`, { method: "DELETE" })).status).toBe(200);
    const again = await create("in its place");
    expect(again.status).toBe(201);
    ids[0] = String((await json(again)).id);
    for (const id of ids) await app.request(`/api/notifiers/${id}`, { method: "DELETE" });
  });
});

describe("the pending deliveries of a notifier", () => {
  it(`past ${MAX_PENDING} pending, the oldest is dropped, counted and recorded in words; the newest wait`, async () => {
    const silent = await httpReceiver(() => ({ status: 200, delayMs: 600_000 }));
    receivers.push(silent);
    const dir = await mkdtemp(join(tmpdir(), "distributary-pending-cap-"));
    try {
      await runOnTestClock(
        Effect.gen(function* () {
          yield* TestClock.setTime(Date.parse("2026-12-05T19:00:00Z"));
          const made = yield* (yield* Notifiers).create({
            name: "silent",
            kind: "webhook",
            url: silent.url,
            events: ["input_lost"],
          });
          const bus = yield* EventBus;
          for (let index = 0; index < MAX_PENDING + 5; index++)
            bus.emit({ type: "input_lost", channel: `c${index}` });
          const notifications = yield* Notifications;
          yield* Effect.promise(() =>
            eventually("five overflows, and the newest in their place", () =>
              notifications.counts().get(made.id)?.overflowed === 5 &&
              notifications.backlog().get(made.id) === MAX_PENDING
                ? true
                : undefined,
            ),
          );
          expect(notifications.counts().get(made.id)).toMatchObject({ overflowed: 5, dropped: 0 });
        }),
        Layer.orDie(layerFile(dir)),
      );
      const stored = JSON.parse(readFileSync(join(dir, OUTBOX_FILE), "utf8")).deliveries as Array<{
        state: string;
        message: string | null;
        payload: { channel: { id: string } };
      }>;
      const dropped = stored.filter((row) => row.state === "dropped");
      expect(dropped.map((row) => row.payload.channel.id)).toEqual(["c0", "c1", "c2", "c3", "c4"]);
      for (const row of dropped)
        expect(row.message).toBe(
          `dropped: ${MAX_PENDING} deliveries were pending for this notifier, and the oldest made room for a new one`,
        );
      const pending = stored.filter((row) => row.state === "pending").map((row) => row.payload.channel.id);
      expect(pending).toHaveLength(MAX_PENDING);
      expect(pending).toContain(`c${MAX_PENDING + 4}`);
      expect(pending).not.toContain("c4");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("IPv6 forms that carry an IPv4 address", () => {
  it("are refused at delivery, in words, when what they carry is loopback, private or link-local", async () => {
    const hook = await httpReceiver();
    receivers.push(hook);
    const plain = await makeTestApp();
    try {
      const cases: Array<[string, RegExp]> = [
        [`[::127.0.0.1]:${hook.port}`, /is a loopback address \(it carries the IPv4 address 127\.0\.0\.1\)/],
        [`[::ffff:127.0.0.1]:${hook.port}`, /is a loopback address/],
        [
          `[::ffff:0:127.0.0.1]:${hook.port}`,
          /a loopback address \(it carries the IPv4 address 127\.0\.0\.1\)/,
        ],
        [
          `[64:ff9b::127.0.0.1]:${hook.port}`,
          /a loopback address \(it carries the IPv4 address 127\.0\.0\.1\)/,
        ],
        ["[64:ff9b::10.20.30.40]", /a private address \(it carries the IPv4 address 10\.20\.30\.40\)/],
        ["[64:ff9b:1::a00:1]", /is a private address/],
        [`[2002:7f00:1::1]:${hook.port}`, /a loopback address \(it carries the IPv4 address 127\.0\.0\.1\)/],
        ["[2002:c0a8:101::1]", /a private address \(it carries the IPv4 address 192\.168\.1\.1\)/],
        ["[2002:a9fe:a9fe::1]", /a link-local address \(it carries the IPv4 address 169\.254\.169\.254\)/],
      ];
      for (const [host, words] of cases) {
        const created = await plain.request("/api/notifiers", {
          method: "POST",
          body: JSON.stringify({
            name: "mapped",
            kind: "webhook",
            url: `http://${host}/hook`,
            events: ["input_lost"],
          }),
        });
        expect(created.status, host).toBe(201);
        const id = String((await json(created)).id);
        const tested = await json(await plain.request(`/api/notifiers/${id}/test`, { method: "POST" }));
        expect(tested, host).toMatchObject({ ok: false, status: null });
        expect(String(tested.message), host).toMatch(words);
        expect(String(tested.message), host).toContain("notifications go to public addresses only");
        // The delivery's record says the same.
        const [delivery] = (await json(await plain.request(`/api/notifiers/${id}/deliveries`)))
          .deliveries as Array<{ state: string; message: string }>;
        expect(delivery).toMatchObject({ state: "failed", message: tested.message });
      }
      expect(hook.received).toHaveLength(0);
    } finally {
      await plain.close();
    }
  });

  it("a public IPv4 address in them is public, as the address itself would be", () => {
    const policy = { allowPrivate: false };
    for (const address of ["64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8", "2001:db8::1"])
      expect(pushAddressProblem(address, policy, address, false), address).toBeNull();
    // Link-local stays refused even where private and loopback addresses are allowed.
    expect(
      pushAddressProblem("64:ff9b::169.254.169.254", { allowPrivate: true, allowLoopback: true }, "x", false),
    ).toMatch(/link-local address \(it carries the IPv4 address 169\.254\.169\.254\)/);
  });
});
