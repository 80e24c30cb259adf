/**
 * Configuration as code through the API: a declarative document with many features applied to an empty
 * service, exported as YAML and planned again ("no changes"); secrets by reference never shown; a stale plan
 * refused; an error named by its line. The runtime effects of single edits are config-code-live.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ADMIN_TOKEN, json, loginSession, useTestApp } from "../support/app.ts";
import {
  DOCUMENT,
  HOOK,
  PD_KEY,
  ref,
  SLACK_PATH,
  SRT_PASS,
  TEAMS_URL,
  YT_KEY,
} from "../support/config-code.ts";

const secretsDir = mkdtempSync(join(tmpdir(), "h13-secrets-"));

beforeAll(() => {
  process.env.DISTRIBUTARY_SECRET_H13_YT_KEY = YT_KEY;
  process.env.DISTRIBUTARY_SECRET_H13_PD_KEY = PD_KEY;
  process.env.DISTRIBUTARY_SECRET_H13_HOOK = HOOK;
  process.env.DISTRIBUTARY_SECRET_H13_TEAMS_URL = TEAMS_URL;
  // One a file, as Kubernetes mounts them.
  writeFileSync(join(secretsDir, "H13_SRT_PASS"), `${SRT_PASS}\n`);
  process.env.DISTRIBUTARY_SECRETS_DIR = secretsDir;
});
afterAll(() => {
  delete process.env.DISTRIBUTARY_SECRET_H13_YT_KEY;
  delete process.env.DISTRIBUTARY_SECRET_H13_PD_KEY;
  delete process.env.DISTRIBUTARY_SECRET_H13_HOOK;
  delete process.env.DISTRIBUTARY_SECRET_H13_TEAMS_URL;
  delete process.env.DISTRIBUTARY_SECRETS_DIR;
  rmSync(secretsDir, { recursive: true, force: true });
});

const app = useTestApp();

const post = (path: string, body: unknown) =>
  app.request(path, { method: "POST", body: JSON.stringify(body) });

interface Plan {
  plan_id: string;
  no_changes: boolean;
  text: string;
  summary: { create: number; change: number; delete: number };
  changes: Array<{
    kind: string;
    action: string;
    id: string;
    fields: Array<{ field: string }>;
    cost: string;
  }>;
}
const plan = async (document: string, prune = false): Promise<Plan> => {
  const response = await post("/api/config/plan", { document, file: "channels.yaml", prune });
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as Plan;
};
const SECRETS = [YT_KEY, SRT_PASS, PD_KEY, HOOK, HOOK.slice("whsec_".length), SLACK_PATH, TEAMS_URL];
const expectNoSecret = (text: string) => {
  for (const secret of SECRETS) expect(text).not.toContain(secret);
};

describe("configuration as code", () => {
  it("applies a document to an empty service; its YAML export plans as no changes; secrets stay references", async () => {
    const first = await plan(DOCUMENT);
    expect(first.no_changes).toBe(false);
    expect(first.summary).toEqual({ create: 11, change: 1, delete: 0 });
    expect(first.text).toContain("+ channel evening-news");
    expect(first.text).toContain("+ output evening-news/youtube");
    expect(first.text).toContain("+ notifier oncall");
    expectNoSecret(JSON.stringify(first));
    expect(JSON.stringify(first)).toContain(ref("H13_YT_KEY"));

    const applied = await post("/api/config/apply", { plan_id: first.plan_id });
    expect(applied.status, await applied.clone().text()).toBe(200);
    // The destination's URL carries the value: the stored channel (with secrets, the admin's backup) has it.
    const backup = await (await app.request("/api/config?secrets=true")).text();
    expect(backup).toContain(`rtmp://127.0.0.1:47126/live/${YT_KEY}`);
    expect(backup).toContain(`passphrase=${SRT_PASS}`);
    // What the store keeps is the reference, never the value (referring-store.ts).
    const stored = (await app.storeText()) ?? "";
    expect(stored).toContain(`passphrase=${ref("H13_SRT_PASS")}`);
    expect(stored).toContain(`/live/${ref("H13_YT_KEY")}`);
    expectNoSecret(stored);

    const exported = await app.request("/api/config/document?format=yaml");
    expect(exported.status).toBe(200);
    const yaml = await exported.text();
    expectNoSecret(yaml);
    expect(yaml).toContain(`rtmp://127.0.0.1:47126/live/${ref("H13_YT_KEY")}`);
    expect(yaml).toContain(`passphrase=${ref("H13_SRT_PASS")}`);
    expect(yaml).toContain(`routing_key: ${ref("H13_PD_KEY")}`);
    const document = parse(yaml) as { channels: Record<string, unknown>; access_rules: unknown[] };
    expect(Object.keys(document.channels)).toEqual(["evening-news", "sports"]);
    expect(document.access_rules).toHaveLength(2);

    const again = await plan(yaml);
    expect(again.text).toBe("no changes: the configuration matches the document");
    expect(again.no_changes).toBe(true);
    expect((await plan(DOCUMENT)).no_changes).toBe(true);

    // One audit event, with the document's digest; neither logs nor events nor the API show a value.
    const events = await json(await app.request("/api/events?type=api_change&limit=200"));
    const applies = (events.events as Array<{ action: string; detail: string }>).filter(
      (event) => event.action === "config.apply",
    );
    expect(applies).toHaveLength(1);
    expect(applies[0]?.detail).toMatch(/document sha256 [0-9a-f]{64}/);
    expectNoSecret(JSON.stringify(events));
    expectNoSecret(app.logs.join("\n"));
    expectNoSecret(await (await app.request("/api/channels/evening-news")).text());
    expectNoSecret(await (await app.request("/api/notifiers")).text());
    expectNoSecret(await (await app.request("/api/config")).text());
    // Nor the pages.
    const cookie = await loginSession(app, ADMIN_TOKEN);
    for (const page of [
      "/channels/evening-news",
      "/settings",
      "/settings/notifiers/oncall",
      "/channels/evening-news/edit",
    ]) {
      const shown = await app.request(`http://127.0.0.1${page}`, { token: null, headers: { cookie } });
      expect(shown.status, page).toBe(200);
      expectNoSecret(await shown.text());
    }
  });

  it("names exactly the changed fields and their cost; refuses a plan made stale by an API change", async () => {
    const edited = DOCUMENT.replace("name: Local UDP", "name: Local UDP (renamed)").replace(
      "url: udp://127.0.0.1:47128",
      "url: udp://127.0.0.1:47129",
    );
    const changed = await plan(edited);
    expect(
      changed.changes.map(({ kind, action, id, fields, cost }) => ({ kind, action, id, fields, cost })),
    ).toEqual([
      {
        kind: "output",
        action: "change",
        id: "evening-news/local",
        fields: [{ field: "name", before: "Local UDP", after: "Local UDP (renamed)" }],
        cost: "no interruption (the channel is not running here)",
      },
      {
        kind: "output",
        action: "change",
        id: "sports/main",
        fields: [{ field: "url", before: "udp://127.0.0.1:47128", after: "udp://127.0.0.1:47129" }],
        cost: "no interruption (the channel is not running here)",
      },
    ]);
    // Someone changes a channel through the API: the plan is stale.
    const patched = await app.request("/api/channels/sports", {
      method: "PATCH",
      body: JSON.stringify({ name: "Sports (by hand)" }),
    });
    expect(patched.status).toBe(200);
    const stale = await post("/api/config/apply", { plan_id: changed.plan_id });
    expect(stale.status).toBe(409);
    expect((await json(stale)).detail).toMatch(/configuration changed since plan .* was made .* plan again/);
    const output = await json(await app.request("/api/channels/evening-news/outputs/local"));
    expect(output.name).toBe("Local UDP");
    // Planned again, the hand change is part of what the document puts back.
    const fresh = await plan(edited);
    expect(fresh.changes.find((change) => change.id === "sports")?.fields).toEqual([
      { field: "name", before: "Sports (by hand)", after: "Sports" },
    ]);
  });

  it("names the line and column of an error, and an unknown secret, and applies nothing", async () => {
    const lines = DOCUMENT.split("\n");
    expect(lines[36]).toBe("        protocol: srt");
    const wrong = [...lines.slice(0, 36), "        protocol: carrier-pigeon", ...lines.slice(37)].join("\n");
    const before = await app.request("/api/config?secrets=true").then((r) => r.text());
    const refused = await post("/api/config/plan", { document: wrong, file: "channels.yaml" });
    expect(refused.status).toBe(400);
    const problem = await json(refused);
    expect(String(problem.detail)).toMatch(
      /^channels\.yaml:37:\d+: channels\.evening-news\.outputs\.contribution\.protocol: /,
    );

    const unknown = await post("/api/config/plan", {
      document: DOCUMENT.replace(ref("H13_YT_KEY"), ref("H13_NOT_THERE")),
      file: "channels.yaml",
    });
    expect(unknown.status).toBe(400);
    expect(String((await json(unknown)).detail)).toContain(
      "secret 'H13_NOT_THERE' is not known to the server: set DISTRIBUTARY_SECRET_H13_NOT_THERE",
    );
    const broken = await post("/api/config/plan", { document: "version: 1\nchannels: [\n", file: "x.yaml" });
    expect(broken.status).toBe(400);
    expect(String((await json(broken)).detail)).toMatch(/x\.yaml:\d+:\d+/);
    expect(await app.request("/api/config?secrets=true").then((r) => r.text())).toBe(before);

    // A channel made through the API keeps its generated id: the export names it, and plans as no changes.
    const made = await post("/api/channels", {
      name: "Made by hand",
      rtp_ip: "127.0.0.1",
      rtp_port: 47150,
      outputs: [{ protocol: "rtmp", url: `rtmp://127.0.0.1:47152/live/h13-hand-key-Ww91xQ` }],
    });
    expect(made.status).toBe(201);
    const id = String((await json(made)).id);
    const yaml = await (await app.request("/api/config/document?format=yaml")).text();
    expect(yaml).toContain(`  ${id}:\n    name: Made by hand`);
    expect(yaml).not.toContain("h13-hand-key-Ww91xQ");
    expect((await plan(yaml)).text).toBe("no changes: the configuration matches the document");
    expect((await json(await app.request("/api/config/schema"))).$schema).toMatch(/json-schema/);
  });
});
