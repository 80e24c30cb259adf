/**
 * PagerDuty and Slack bodies against the real thing: Debian's Alertmanager 0.25 (`prometheus-alertmanager`)
 * runs on 127.0.0.1 with a pagerduty_configs and a slack_configs aimed at a receiver of ours; an alert posted
 * to its /api/v2/alerts, firing and then resolved, gives the bodies it sends. Our notifiers, aimed at the same
 * receiver, send theirs for the same condition (an input lost, then restored), and each of ours carries every
 * key path of Alertmanager's (the values are ours). PagerDuty's trigger and resolve share one dedup key.
 * Teams, which Alertmanager 0.25 does not speak, is checked for the Adaptive Card's shape.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { Notifiers } from "../../src/effects/notify/notifiers.ts";
import { eventually } from "../support/app.ts";
import { type HttpReceiver, httpReceiver } from "../support/http-receiver.ts";
import { notifyLayer } from "../support/notify.ts";
import { stopChild } from "../support/peers.ts";

const missing = (() => {
  try {
    execFileSync("prometheus-alertmanager", ["--version"], { stdio: "ignore" });
    return null;
  } catch {
    return "prometheus-alertmanager is not installed";
  }
})();

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/** Every key path of a JSON value: `payload.custom_details.firing`, `attachments[].title`. */
const keyPaths = (value: unknown, prefix = ""): ReadonlyArray<string> => {
  if (Array.isArray(value)) return [`${prefix}[]`, ...value.flatMap((item) => keyPaths(item, `${prefix}[]`))];
  if (value !== null && typeof value === "object")
    return Object.entries(value).flatMap(([key, inner]) => {
      const path = prefix === "" ? key : `${prefix}.${key}`;
      return [path, ...keyPaths(inner, path)];
    });
  return [];
};

let receiver: HttpReceiver;
let alertmanager: ChildProcess | undefined;
let dir: string;
let amUrl: string;

beforeAll(async () => {
  receiver = await httpReceiver();
  if (missing !== null) return;
  dir = mkdtempSync(join(tmpdir(), "alertmanager-"));
  const port = await freePort();
  amUrl = `http://127.0.0.1:${port}`;
  writeFileSync(
    join(dir, "alertmanager.yml"),
    [
      "route: {receiver: ours, group_wait: 0s, group_interval: 1s, repeat_interval: 1h}",
      "receivers:",
      "- name: ours",
      "  pagerduty_configs:",
      `  - {url: "${receiver.url}/am/pagerduty", routing_key: "0123456789abcdef0123456789abcdef", send_resolved: true}`,
      "  slack_configs:",
      `  - {api_url: "${receiver.url}/am/slack", send_resolved: true}`,
      "",
    ].join("\n"),
  );
  alertmanager = spawn(
    "prometheus-alertmanager",
    [
      `--config.file=${join(dir, "alertmanager.yml")}`,
      `--storage.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--cluster.listen-address=",
    ],
    { stdio: "ignore" },
  );
  await eventually(
    "Alertmanager to be ready",
    async () => ((await fetch(`${amUrl}/-/ready`).catch(() => undefined))?.ok ? true : undefined),
    20_000,
  );
}, 30_000);
afterAll(async () => {
  // Waited for: a SIGTERM alone left it running after the file (test/support/file-leftovers.ts named it).
  if (alertmanager !== undefined) await stopChild(alertmanager);
  await receiver?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const bodyAt = (path: string, where: (body: Record<string, unknown>) => boolean) =>
  eventually(`a body at ${path}`, () => {
    const found = receiver.received.find((entry) => entry.path === path && where(JSON.parse(entry.body)));
    return found === undefined ? undefined : (JSON.parse(found.body) as Record<string, unknown>);
  });

const alert = (endsAt?: string) =>
  fetch(`${amUrl}/api/v2/alerts`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify([
      {
        labels: { alertname: "input_lost", channel: "news" },
        annotations: { summary: "the input of channel news is lost" },
        ...(endsAt === undefined ? {} : { endsAt }),
      },
    ]),
  });

describe.skipIf(missing !== null)("bodies beside Alertmanager 0.25's", () => {
  it("PagerDuty and Slack bodies carry every field Alertmanager sends, firing and resolved; Teams sends an Adaptive Card", async () => {
    expect((await alert()).status).toBe(200);
    const amTrigger = await bodyAt("/am/pagerduty", (body) => body.event_action === "trigger");
    const amSlackFiring = await bodyAt("/am/slack", (body) => JSON.stringify(body).includes("FIRING"));
    expect((await alert(new Date().toISOString())).status).toBe(200);
    const amResolve = await bodyAt("/am/pagerduty", (body) => body.event_action === "resolve");
    const amSlackResolved = await bodyAt("/am/slack", (body) => JSON.stringify(body).includes("RESOLVED"));

    await Effect.runPromise(
      Effect.gen(function* () {
        const notifiers = yield* Notifiers;
        const bus = yield* EventBus;
        const events = ["input_lost", "input_restored"] as const;
        yield* notifiers.create({
          name: "pd",
          kind: "pagerduty",
          url: `${receiver.url}/ours/pagerduty`,
          routing_key: "fedcba9876543210fedcba9876543210",
          events: [...events],
        });
        yield* notifiers.create({
          name: "slack",
          kind: "slack",
          url: `${receiver.url}/ours/slack`,
          events: [...events],
        });
        yield* notifiers.create({
          name: "teams",
          kind: "teams",
          url: `${receiver.url}/ours/teams`,
          events: [...events],
        });
        bus.emit({ type: "input_lost", channel: "news" });
        yield* Effect.promise(() =>
          eventually("our three bodies", () =>
            receiver.received.filter((entry) => entry.path.startsWith("/ours/")).length === 3
              ? true
              : undefined,
          ),
        );
        bus.emit({ type: "input_restored", channel: "news", input: "primary" });
        yield* Effect.promise(() =>
          eventually("our six bodies", () =>
            receiver.received.filter((entry) => entry.path.startsWith("/ours/")).length === 6
              ? true
              : undefined,
          ),
        );
      }).pipe(Effect.provide(notifyLayer()), Effect.scoped),
    );

    const ourTrigger = await bodyAt("/ours/pagerduty", (body) => body.event_action === "trigger");
    const ourResolve = await bodyAt("/ours/pagerduty", (body) => body.event_action === "resolve");
    const ourSlack = await bodyAt("/ours/slack", (body) => JSON.stringify(body).includes("input_lost"));
    const ourSlackRestored = await bodyAt("/ours/slack", (body) =>
      JSON.stringify(body).includes("input_restored"),
    );
    for (const [ours, theirs] of [
      [ourTrigger, amTrigger],
      [ourResolve, amResolve],
      [ourSlack, amSlackFiring],
      [ourSlackRestored, amSlackResolved],
    ] as const) {
      const missingPaths = keyPaths(theirs).filter((path) => !keyPaths(ours).includes(path));
      expect(missingPaths).toEqual([]);
    }
    // Sanity: Alertmanager's own bodies are what we compare with (its PagerDuty fields, its Slack attachment).
    expect(keyPaths(amTrigger)).toEqual(
      expect.arrayContaining([
        "routing_key",
        "dedup_key",
        "payload.summary",
        "payload.custom_details.firing",
        "client_url",
      ]),
    );
    expect(keyPaths(amSlackFiring)).toEqual(
      expect.arrayContaining(["attachments[].title", "attachments[].fallback"]),
    );
    expect(ourTrigger.dedup_key).toBe(ourResolve.dedup_key);
    expect(ourTrigger.routing_key).toBe("fedcba9876543210fedcba9876543210");
    expect(ourTrigger.payload).toMatchObject({ severity: "error", class: "input_lost", component: "news" });

    const card = JSON.parse(receiver.received.find((entry) => entry.path === "/ours/teams")?.body ?? "{}");
    expect(card).toMatchObject({
      type: "message",
      attachments: [
        {
          contentType: "application/vnd.microsoft.card.adaptive",
          content: {
            type: "AdaptiveCard",
            version: "1.4",
            $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
          },
        },
      ],
    });
    const body = card.attachments[0].content.body as Array<{ type: string; text?: string }>;
    expect(body.map((element) => element.type)).toEqual(["TextBlock", "FactSet"]);
    expect(body[0]?.text).toContain("input_lost on channel news");
  }, 60_000);
});
