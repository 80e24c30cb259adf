/**
 * The file as the source of truth (DISTRIBUTARY_CONFIG_FILE): applied at start and within 2 s of an edit; a bad
 * file changes nothing and says why; a hand change through the API is drift, with the plan that undoes it.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { layerMemory } from "../../src/effects/config/store.ts";
import { ADMIN_TOKEN, eventually, json, loginSession, useTestApp } from "../support/app.ts";

const dir = mkdtempSync(join(tmpdir(), "h13-file-"));
const path = join(dir, "channels.yaml");
const document = (name: string) => `version: 1
channels:
  filed:
    name: ${name}
    rtp_ip: 127.0.0.1
    rtp_port: 47140
    outputs:
      out: { name: Out, protocol: udp, url: "udp://127.0.0.1:47142" }
`;
writeFileSync(path, document("Filed"));
const app = useTestApp({ store: layerMemory, settings: { DISTRIBUTARY_CONFIG_FILE: path } });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const nameOf = async () => (await json(await app.request("/api/channels/filed"))).name;

describe("DISTRIBUTARY_CONFIG_FILE", () => {
  it("is applied at start and within 2 s of an edit; a bad file changes nothing; a hand change is drift", async () => {
    expect(await nameOf()).toBe("Filed");
    writeFileSync(path, document("Filed again"));
    await eventually(
      "the edit to be applied",
      async () => ((await nameOf()) === "Filed again" ? true : undefined),
      2000,
    );

    writeFileSync(path, `${document("Broken")}    nonsense: [\n`);
    const refusal = await eventually("the bad file's event", async () => {
      const events = await json(await app.request("/api/events?type=api_change&limit=200"));
      return (events.events as Array<{ action: string; detail: string }>).find(
        (event) => event.action === "config.file_refused",
      );
    });
    expect(refusal.detail).toContain(`${path} was not applied, nothing changed: `);
    expect(refusal.detail).toMatch(/channels\.yaml:\d+:\d+/);
    expect(await (await app.request("/metrics")).text()).toMatch(
      /distributary_config_file_errors_total [1-9]/,
    );
    expect(await nameOf()).toBe("Filed again");

    writeFileSync(path, document("Filed again"));
    const sha256 = createHash("sha256").update(document("Filed again")).digest("hex");
    await eventually("the file to be taken again", async () =>
      (await json(await app.request("/api/config/drift"))).document_sha256 === sha256 ? true : undefined,
    );
    const patched = await app.request("/api/channels/filed", {
      method: "PATCH",
      body: JSON.stringify({ name: "By hand" }),
    });
    expect(patched.status).toBe(200);
    const drift = await eventually("drift to show", async () => {
      const shown = await json(await app.request("/api/config/drift"));
      return shown.drift === 1 ? shown : undefined;
    });
    expect((drift.plan as { changes: unknown[] }).changes).toEqual([
      expect.objectContaining({
        kind: "channel",
        id: "filed",
        fields: [{ field: "name", before: "By hand", after: "Filed again" }],
      }),
    ]);
    expect(await (await app.request("/metrics")).text()).toMatch(/^distributary_config_drift 1$/m);
    expect(await nameOf()).toBe("By hand");
    const cookie = await loginSession(app, ADMIN_TOKEN);
    const settings = await (
      await app.request("http://127.0.0.1/settings", { token: null, headers: { cookie } })
    ).text();
    expect(settings).toContain("Drift: 1 change since the file was applied");
    expect(settings).toContain(
      "<pre>~ channel filed: name (no interruption (channel Filed again is not running here))",
    );
  });
});
