/**
 * Configuration as code in a fleet of two nodes on one PostgreSQL (bin/distributary serve on 127.0.0.1): node a
 * holds its secrets in its environment, node b in a secrets directory (one file a secret).
 * - Acceptance 1 on the fleet: the every-feature document applied through a, exported as YAML from b, planned
 *   again on both: "no changes"; PostgreSQL's rows hold the references and no value, and b resolved them.
 * - The file as the source of truth with DISTRIBUTARY_CONFIG_FILE on both nodes: each version of the file is
 *   applied once, by one node (one `config.apply` among both nodes' events, one audit row); an edit reaches
 *   both; a hand change on one node is drift 1 on both, with the plan that undoes it.
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { json } from "../support/app.ts";
import {
  everyFeature,
  HOOK,
  PD_KEY,
  RIST_SECRET,
  RTSP_PASSWORD,
  ref,
  SLACK_PATH,
  SRT_PASS,
  TEAMS_URL,
  YT_KEY,
} from "../support/config-code.ts";
import { FLEET_ADMIN, useFleetNodes } from "../support/fleet-nodes.ts";

const dir = mkdtempSync(join(tmpdir(), "h7-config-fleet-"));
const recordings = join(dir, "recordings");
const secretsDir = join(dir, "secrets");
mkdirSync(recordings);
mkdirSync(secretsDir);
const SECRETS: Record<string, string> = {
  H13_YT_KEY: YT_KEY,
  H13_SRT_PASS: SRT_PASS,
  H13_PD_KEY: PD_KEY,
  H13_HOOK: HOOK,
  H13_TEAMS_URL: TEAMS_URL,
  H7_RIST_SECRET: RIST_SECRET,
  H7_RTSP_PASSWORD: RTSP_PASSWORD,
};
for (const [name, value] of Object.entries(SECRETS)) writeFileSync(join(secretsDir, name), `${value}\n`);
const envA = Object.fromEntries(
  Object.entries(SECRETS).map(([name, value]) => [`DISTRIBUTARY_SECRET_${name}`, value]),
);
const envB = { DISTRIBUTARY_SECRETS_DIR: secretsDir };
const VALUES = [...Object.values(SECRETS), HOOK.slice("whsec_".length), SLACK_PATH];
const expectNoSecret = (text: string, where: string) => {
  for (const value of VALUES) expect(text, where).not.toContain(value);
};

const fleet = useFleetNodes({
  dbPort: 27051,
  ports: { a: 27001, b: 27002 },
  env: { DISTRIBUTARY_RECORDINGS_DIR: recordings, DISTRIBUTARY_THUMBNAILS: "off" },
});
const { api, until } = fleet;
const NODES = ["a", "b"] as const;
const envOf = (node: string, more: NodeJS.ProcessEnv = {}) => ({ ...(node === "a" ? envA : envB), ...more });

beforeAll(async () => {
  await Promise.all(NODES.map((node) => fleet.start(node, envOf(node))));
}, 90_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Plan {
  plan_id: string;
  no_changes: boolean;
  text: string;
  changes: Array<{
    kind: string;
    id: string;
    fields: Array<{ field: string; before: unknown; after: unknown }>;
  }>;
}
const post = (node: string, path: string, body: unknown) =>
  api(node, path, { method: "POST", body: JSON.stringify(body) });
const plan = async (node: string, document: string): Promise<Plan> => {
  const response = await post(node, "/api/config/plan", { document, file: "channels.yaml" });
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as Plan;
};
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

describe("configuration as code in a fleet", () => {
  it("every feature applied through one node, exported from the other, plans as no changes; the rows hold references", async () => {
    const document = everyFeature(recordings);
    const first = await plan("a", document);
    expect(first.no_changes).toBe(false);
    expectNoSecret(JSON.stringify(first), "the plan");
    const applied = await post("a", "/api/config/apply", { plan_id: first.plan_id });
    expect(applied.status, await applied.clone().text()).toBe(200);
    await until("b to know the whole document", async () => {
      const [output, notifier] = await Promise.all([
        api("b", "/api/channels/sports/outputs/web"),
        api("b", "/api/notifiers/teams"),
      ]);
      return output.status === 200 && notifier.status === 200;
    });

    const exported = await api("b", "/api/config/document?format=yaml");
    expect(exported.status).toBe(200);
    const yaml = await exported.text();
    expectNoSecret(yaml, "b's export");
    expect(yaml).toContain(`passphrase=${ref("H13_SRT_PASS")}`);
    expect(yaml).toContain(`secret=${ref("H7_RIST_SECRET")}`);
    expect(yaml).toContain(`rtsp://h7:${ref("H7_RTSP_PASSWORD")}@127.0.0.1:47164/live/cam`);
    expect(yaml).toContain(`routing_key: ${ref("H13_PD_KEY")}`);
    const outputs = (
      parse(yaml) as { channels: { sports: { outputs: Record<string, { protocol: string }> } } }
    ).channels.sports.outputs;
    expect(new Set(Object.values(outputs).map((output) => output.protocol))).toEqual(
      new Set(["udp", "rist", "rtmps", "rtsp", "rtsps", "file", "hls"]),
    );
    for (const node of NODES) {
      expect((await plan(node, yaml)).text, node).toBe("no changes: the configuration matches the document");
      expect((await plan(node, document)).no_changes, node).toBe(true);
    }

    // PostgreSQL holds the references, never a value.
    const rows = await fleet
      .pg()
      .admin<{ body: string }>(
        "select body::text as body from channels union all select body::text from notifiers",
      );
    const stored = rows.map((row) => row.body).join("\n");
    // (The Slack URL is written whole in the document, so it is stored as written.)
    for (const value of [...Object.values(SECRETS), HOOK.slice("whsec_".length)])
      expect(stored, "the database's rows").not.toContain(value);
    for (const name of Object.keys(SECRETS)) expect(stored).toContain(ref(name));
    // Each node resolved them itself: b from its secrets directory (its admin's backup carries the values).
    const backup = await (await api("b", "/api/config?secrets=true")).text();
    expect(backup).toContain(`passphrase=${SRT_PASS}`);
    expect(backup).toContain(`rtmp://127.0.0.1:47126/live/${YT_KEY}`);
    for (const node of NODES) {
      expectNoSecret(fleet.process(node).output(), `${node}'s log`);
      expectNoSecret(await (await api(node, "/api/events?limit=500")).text(), `${node}'s events`);
    }
  });

  it("with the file on both nodes, each version is applied once, by one node; drift is the same on both", async () => {
    const filed = (name: string) => `version: 1
channels:
  filed:
    name: ${name}
    rtp_ip: 127.0.0.1
    rtp_port: 27140
    outputs:
      out: { name: Out, protocol: udp, url: "udp://127.0.0.1:27142" }
`;
    const fileOf = (node: string) => join(dir, `${node}.yaml`);
    const write = (text: string) => {
      for (const node of NODES) writeFileSync(fileOf(node), text);
    };
    /** The config.apply events of the document with this digest, among both nodes' own events. */
    const appliesOf = async (digest: string) => {
      let count = 0;
      for (const node of NODES) {
        const events = (await json(await api(node, "/api/events?type=api_change&limit=500")))
          .events as Array<{
          action: string;
          detail: string;
        }>;
        count += events.filter(
          (event) => event.action === "config.apply" && event.detail.includes(digest),
        ).length;
      }
      return count;
    };
    const auditRows = async (digest: string) =>
      Number(
        (
          await fleet
            .pg()
            .admin<{ count: string }>(
              "select count(*) as count from audit where action = 'config.apply' and detail like $1",
              [`%${digest}%`],
            )
        )[0]?.count,
      );
    const taken = (digest: string) =>
      until("both nodes to have taken the file", async () => {
        for (const node of NODES)
          if ((await json(await api(node, "/api/config/drift"))).document_sha256 !== digest) return false;
        return true;
      });

    write(filed("Filed"));
    for (const node of NODES) {
      fleet.process(node).process.kill("SIGKILL");
      await fleet.process(node).exited;
    }
    await Promise.all(
      NODES.map((node) => fleet.start(node, envOf(node, { DISTRIBUTARY_CONFIG_FILE: fileOf(node) }))),
    );
    const firstDigest = sha256(filed("Filed"));
    await taken(firstDigest);
    expect(await appliesOf(firstDigest)).toBe(1);
    await until("the apply in the fleet's audit trail", async () => (await auditRows(firstDigest)) > 0);
    expect(await auditRows(firstDigest)).toBe(1);
    for (const node of NODES) expect((await json(await api(node, "/api/channels/filed"))).name).toBe("Filed");

    write(filed("Filed again"));
    const secondDigest = sha256(filed("Filed again"));
    await until(
      "the edit on both nodes",
      async () => {
        for (const node of NODES)
          if ((await json(await api(node, "/api/channels/filed"))).name !== "Filed again") return false;
        return true;
      },
      5_000,
    );
    await taken(secondDigest);
    expect(await appliesOf(secondDigest)).toBe(1);
    const [cluster] = await fleet
      .pg()
      .admin<{ value: string }>("select value from cluster where key = 'config_file_sha256'");
    expect(cluster?.value).toBe(secondDigest);

    // A hand change through one node: drift 1 on both, with the plan that undoes it.
    const patched = await api("b", "/api/channels/filed", {
      method: "PATCH",
      body: JSON.stringify({ name: "By hand" }),
    });
    expect(patched.status).toBe(200);
    for (const node of NODES) {
      const drift = await until("drift to show", async () => {
        const shown = await json(await api(node, "/api/config/drift"));
        return shown.drift === 1;
      }).then(async () => json(await api(node, "/api/config/drift")));
      expect((drift.plan as Plan).changes, node).toEqual([
        expect.objectContaining({
          kind: "channel",
          id: "filed",
          fields: [{ field: "name", before: "By hand", after: "Filed again" }],
        }),
      ]);
      expect(await (await api(node, "/metrics")).text(), node).toMatch(/^distributary_config_drift 1$/m);
      const login = await fetch(`${fleet.base(node)}/login`, {
        method: "POST",
        headers: { origin: fleet.base(node), "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token: FLEET_ADMIN, next: "/settings" }).toString(),
        redirect: "manual",
      });
      expect(login.status, node).toBe(303);
      const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
      const settings = await (await api(node, "/settings", { token: null, headers: { cookie } })).text();
      expect(settings, node).toContain("Drift: 1 change since the file was applied");
      expect(settings, node).toContain("~ channel filed: name");
    }
    // Nobody applies that version again, not even a node started again with it: the hand change stays, as
    // drift, until the file changes.
    fleet.process("a").process.kill("SIGKILL");
    await fleet.process("a").exited;
    await fleet.start("a", envOf("a", { DISTRIBUTARY_CONFIG_FILE: fileOf("a") }));
    await taken(secondDigest);
    await until(
      "a's drift after its start",
      async () => (await json(await api("a", "/api/config/drift"))).drift === 1,
    );
    await until(
      "the second apply in the fleet's audit trail",
      async () => (await auditRows(secondDigest)) > 0,
    );
    expect(await auditRows(secondDigest)).toBe(1);
    for (const node of NODES)
      expect((await json(await api(node, "/api/channels/filed"))).name, node).toBe("By hand");
  });
});
