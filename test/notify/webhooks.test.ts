/**
 * Notifiers through the API, delivering to real HTTP receivers on 127.0.0.1 (the service runs with
 * DISTRIBUTARY_NOTIFY_ALLOW_PRIVATE=true): a real channel loses its input and gets it back, and the webhook's
 * bodies verify with the `standardwebhooks` package (a changed body, or the same delivery read after the
 * package's tolerance, are refused by it); a redirect is not followed; a receiver that answers after 10 s
 * does not delay another notifier (and its own attempt gives up at 10 s); bad bodies are 400s in words; and no secret is ever in an answer, a log
 * line or an event. Without the setting, a loopback address is refused at delivery.
 */
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { eventually, freeUdpPort, json, makeTestApp, udpSource, useTestApp } from "../support/app.ts";
import { type HttpReceiver, httpReceiver } from "../support/http-receiver.ts";

const app = useTestApp({
  settings: { DISTRIBUTARY_NOTIFY_ALLOW_PRIVATE: "true", DISTRIBUTARY_WORKERS: "0" },
});
const receivers: HttpReceiver[] = [];
afterAll(async () => {
  for (const receiver of receivers) await receiver.close();
});
const receiver = async (...args: Parameters<typeof httpReceiver>) => {
  const made = await httpReceiver(...args);
  receivers.push(made);
  return made;
};
/** Every answer the tests read, to look for secrets in. */
const answers: string[] = [];
const call = async (path: string, init: RequestInit = {}) => {
  const response = await app.request(path, init);
  const text = await response.text();
  answers.push(text);
  return { status: response.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
};
const post = (path: string, body: unknown) => call(path, { method: "POST", body: JSON.stringify(body) });
const cleanup: string[] = [];
afterEach(async () => {
  for (const id of cleanup.splice(0)) await call(`/api/notifiers/${id}`, { method: "DELETE" });
});
const notifier = async (body: Record<string, unknown>) => {
  const created = await post("/api/notifiers", {
    name: "ops",
    kind: "webhook",
    events: ["input_lost"],
    ...body,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  cleanup.push(String(created.body.id));
  return created.body;
};

/** A real channel whose input comes for a moment and stops: input_restored, then input_lost. */
const loseInput = async (id: string) => {
  const port = await freeUdpPort();
  const created = await post("/api/channels", {
    id,
    name: `Channel ${id}`,
    rtp_ip: "127.0.0.1",
    rtp_port: port,
  });
  expect(created.status).toBe(201);
  expect((await post(`/api/channels/${id}/start`, {})).status).toBe(200);
  const source = udpSource(port);
  await eventually(`${id}'s input to arrive`, async () => {
    const events = await call(`/api/events?type=input_restored&channel=${id}`);
    return (events.body.events as unknown[]).length > 0 ? true : undefined;
  });
  await source.close();
};

describe("webhooks, as Standard Webhooks", () => {
  it("signs each delivery so that standardwebhooks verifies it, and refuses a changed body and an old timestamp", async () => {
    const hook = await receiver();
    const created = await notifier({
      url: `${hook.url}/hook`,
      events: ["input_lost", "input_restored"],
      channels: ["news"],
    });
    // The secret made for it is in this answer, once.
    const secret = String(created.secret);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    const again = await call(`/api/notifiers/${String(created.id)}`);
    expect(again.body.secret).toBe("whsec_****");
    expect((await call("/api/notifiers")).body.notifiers).toMatchObject([{ secret: "whsec_****" }]);

    await loseInput("news");
    const request = await eventually("the input_lost delivery", () =>
      hook.received.find((entry) => entry.body.includes('"type":"input_lost"')),
    );
    const headers = {
      "webhook-id": String(request.headers["webhook-id"]),
      "webhook-timestamp": String(request.headers["webhook-timestamp"]),
      "webhook-signature": String(request.headers["webhook-signature"]),
    };
    const payload = new Webhook(secret).verify(request.body, headers) as Record<string, unknown>;
    expect(payload).toMatchObject({
      type: "input_lost",
      channel: { id: "news", name: "Channel news" },
      output: null,
      data: {},
    });
    expect(typeof payload.node).toBe("string");
    expect(Date.parse(String(payload.timestamp))).toBeGreaterThan(Date.now() - 60_000);
    expect(request.path).toBe("/hook");
    expect(() =>
      new Webhook(secret).verify(request.body.replace("input_lost", "input_restored"), headers),
    ).toThrow(/signature/i);
    // The same delivery, read ten minutes later: past the package's five minutes of tolerance.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 10 * 60_000 });
    try {
      expect(() => new Webhook(secret).verify(request.body, headers)).toThrow(/too old/i);
    } finally {
      vi.useRealTimers();
    }
    // The channel's other event reached it too; a channel it does not follow sends nothing.
    expect(hook.received.some((entry) => entry.body.includes('"type":"input_restored"'))).toBe(true);
    const seen = hook.received.length;
    await loseInput("sports");
    await eventually("sports' input_lost in the events", async () => {
      const events = await call("/api/events?type=input_lost&channel=sports");
      return (events.body.events as unknown[]).length > 0 ? true : undefined;
    });
    expect(hook.received.length).toBe(seen);
    // Its deliveries, seen.
    const shown = await call(`/api/notifiers/${String(created.id)}/deliveries`);
    const metrics = await (await app.request("/metrics")).text();
    expect(metrics).toContain(
      `distributary_notifications_total{notifier="${String(created.id)}",outcome="delivered"} ${hook.received.length}`,
    );
    expect(metrics).toContain(`distributary_notification_backlog{notifier="${String(created.id)}"} 0`);
    expect(shown.body.deliveries).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: "input_lost", state: "delivered", status: 200, attempts: 1 }),
      ]),
    );
  });

  it("a redirect is not followed: a failure, and the address it points to hears nothing", async () => {
    const elsewhere = await receiver();
    const redirecting = await receiver(() => ({
      status: 302,
      headers: { location: `${elsewhere.url}/caught` },
    }));
    const created = await notifier({ url: redirecting.url });
    const tested = await post(`/api/notifiers/${String(created.id)}/test`, {});
    expect(tested.status).toBe(200);
    expect(tested.body).toMatchObject({ ok: false, status: 302 });
    expect(String(tested.body.message)).toContain("redirects are not followed");
    expect(redirecting.received.length).toBe(1);
    expect(elsewhere.received.length).toBe(0);
  });

  it("a receiver that answers after 10 s does not delay another notifier's delivery", async () => {
    const slow = await receiver(() => ({ status: 200, delayMs: 12_000 }));
    const fast = await receiver();
    const slowOne = await notifier({ name: "slow", url: slow.url, events: ["input_restored"] });
    await notifier({ name: "fast", url: fast.url, events: ["input_restored"] });
    const began = Date.now();
    await loseInput("weather");
    await eventually("the fast receiver's delivery", () => (fast.received.length > 0 ? true : undefined));
    await eventually("the slow receiver's request", () => (slow.received.length > 0 ? true : undefined));
    // The slow one holds its request open; the fast one had its delivery long before that answer could come.
    expect((fast.received[0]?.at ?? Number.POSITIVE_INFINITY) - began).toBeLessThan(5_000);
    // The slow one's attempt gives up after 10 s, before its receiver's answer at 12 s, to be tried again.
    const tried = await eventually(
      "the slow attempt to time out",
      async () => {
        const [latest] = (await call(`/api/notifiers/${String(slowOne.id)}/deliveries`)).body
          .deliveries as Array<{ attempts: number; state: string; status: number | null; message: string }>;
        return latest?.attempts === 1 ? latest : undefined;
      },
      15_000,
    );
    const tookMs = Date.now() - (slow.received[0]?.at ?? 0);
    expect(tried).toMatchObject({ state: "pending", status: null });
    expect(tried.message).toContain("did not answer within 10 s");
    expect(tookMs).toBeGreaterThanOrEqual(9_500);
    expect(tookMs).toBeLessThan(12_000);
  }, 30_000);

  it("bad bodies are 400 problems that say what to fix", async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [
        { name: "x", kind: "email", events: ["input_lost"], url: "https://a.example" },
        /kind.*webhook, pagerduty, slack, teams/,
      ],
      [
        { name: "x", kind: "webhook", events: ["input_gone"], url: "https://a.example" },
        /input_lost, input_restored, failover.*medialive_state/,
      ],
      [{ name: "x", kind: "webhook", events: [], url: "https://a.example" }, /events.*at least one/],
      [{ name: "x", kind: "webhook", events: ["input_lost"] }, /url: is required/],
      [
        { name: "x", kind: "webhook", events: ["input_lost"], url: "ftp://a.example" },
        /http:\/\/ or https:\/\//,
      ],
      [
        { name: "x", kind: "webhook", events: ["input_lost"], url: "https://a.example", secret: "hunter2" },
        /secret: must be whsec_/,
      ],
      [{ name: "x", kind: "pagerduty", events: ["node_down"] }, /routing_key: is required/],
      [
        {
          name: "x",
          kind: "slack",
          events: ["node_down"],
          url: "https://hooks.example/x",
          routing_key: "abc",
        },
        /routing_key: is for pagerduty/,
      ],
      [
        { name: "x", kind: "webhook", events: ["input_lost"], url: "https://a.example", channels: "news" },
        /channels/,
      ],
      [
        { name: "x", kind: "webhook", events: ["input_lost"], url: "https://a.example", colour: "red" },
        /colour/,
      ],
    ];
    for (const [body, words] of cases) {
      const response = await app.request("/api/notifiers", { method: "POST", body: JSON.stringify(body) });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.headers.get("content-type")).toContain("application/problem+json");
      expect(JSON.stringify(await response.json()), JSON.stringify(body)).toMatch(words);
    }
    const made = await notifier({ url: "https://ops.example/hook" });
    const patched = await call(`/api/notifiers/${String(made.id)}`, {
      method: "PATCH",
      body: JSON.stringify({ url: "nowhere" }),
    });
    expect(patched.status).toBe(400);
    expect(JSON.stringify(patched.body)).toMatch(/url: is not a URL/);
    expect((await call("/api/notifiers/none")).status).toBe(404);
  });

  it("never shows a secret: answers, logs and events mask them all", async () => {
    const hook = await receiver();
    const webhook = await notifier({ url: hook.url, secret: "whsec_c2VjcmV0LXNpZ25pbmcta2V5LTEyMzQ1Njc4" });
    expect(webhook.secret).toBe("whsec_****");
    const pd = await notifier({
      kind: "pagerduty",
      routing_key: "R0UT1NGK3Y0123456789abcdef012345",
      url: `${hook.url}/pd`,
      events: ["node_down"],
    });
    const slack = await notifier({
      kind: "slack",
      url: `${hook.url}/services/T000/B000/XXXXsecretpath`,
      events: ["input_lost"],
    });
    expect(pd.routing_key).toBe("****");
    expect(String(slack.url)).not.toContain("XXXXsecretpath");
    await call(`/api/notifiers/${String(slack.id)}`, {
      method: "PATCH",
      body: JSON.stringify({ name: "alerts", routing_key: "x" }),
    });
    for (const id of [webhook.id, pd.id, slack.id]) await post(`/api/notifiers/${String(id)}/test`, {});
    await call("/api/notifiers");
    await call("/api/events?limit=500");
    answers.push(await (await app.request("/metrics")).text());
    const everything = [...answers, ...app.logs].join("\n");
    for (const secret of [
      "c2VjcmV0LXNpZ25pbmcta2V5LTEyMzQ1Njc4",
      "R0UT1NGK3Y0123456789abcdef012345",
      "XXXXsecretpath",
    ])
      expect(everything).not.toContain(secret);
    // What was done is in the audit trail, in words.
    expect(everything).toContain("notifier.create");
    // The test deliveries were real: each kind's body reached the receiver.
    expect(hook.received.map((entry) => entry.path).sort()).toEqual([
      "/",
      "/pd",
      "/services/T000/B000/XXXXsecretpath",
    ]);
  });
});

describe("without DISTRIBUTARY_NOTIFY_ALLOW_PRIVATE", () => {
  it("refuses a loopback address at delivery, in words, and the receiver hears nothing", async () => {
    const hook = await receiver();
    const plain = await makeTestApp();
    try {
      const created = await plain.request("/api/notifiers", {
        method: "POST",
        body: JSON.stringify({ name: "local", kind: "webhook", url: hook.url, events: ["input_lost"] }),
      });
      expect(created.status).toBe(201);
      const tested = await json(
        await plain.request(`/api/notifiers/${String((await json(created)).id)}/test`, { method: "POST" }),
      );
      expect(tested).toMatchObject({ ok: false, status: null });
      expect(String(tested.message)).toContain("a loopback address");
      expect(String(tested.message)).toContain("DISTRIBUTARY_NOTIFY_ALLOW_PRIVATE=true");
      // A name that resolves to one is refused as well.
      const named = await plain.request("/api/notifiers", {
        method: "POST",
        body: JSON.stringify({
          name: "named",
          kind: "webhook",
          url: `http://localhost:${hook.port}/`,
          events: ["input_lost"],
        }),
      });
      const byName = await json(
        await plain.request(`/api/notifiers/${String((await json(named)).id)}/test`, { method: "POST" }),
      );
      expect(String(byName.message)).toMatch(/resolves to (127\.0\.0\.1|::1), a loopback address/);
      expect(hook.received.length).toBe(0);
    } finally {
      await plain.close();
    }
  });
});
