/**
 * What the Nodes page says of hand-overs, in headless Chromium against two real nodes: each node's upgrade on
 * its box (none yet; then a failed one, in words with why: a fleet node refuses it) and a drained
 * node ("drained: no channel left"), as `/api/nodes` gives them (`upgrade`, `drain`). Screenshots, light
 * and dark, 1280 and 390 px, go to test-results/screenshots (nodes-handover-*).
 */
import { cp, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { execa } from "execa";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeUdpPort, json } from "../support/app.ts";
import { launchChromium, login, newContext, screenshot } from "../support/browser.ts";
import { FLEET_ADMIN, useFleetNodes } from "../support/fleet-nodes.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const fleet = useFleetNodes({
  dbPort: 23852,
  ports: { a: 23803, b: 23804 },
  env: { DISTRIBUTARY_THUMBNAILS: "off", DISTRIBUTARY_UPGRADE_TIMEOUT_S: "20" },
});
const { api, until } = fleet;
const dir = join(tmpdir(), `distributary-h3-nodes-${process.pid}`);
let browser: Browser;

/** A copy of the tree whose src/version.ts is `versionTs` (sharing node_modules and the build). */
const release = async (name: string, versionTs?: string) => {
  const root = join(dir, name);
  await mkdir(root, { recursive: true });
  for (const part of ["bin", "src", "views"])
    await cp(join(ROOT, part), join(root, part), { recursive: true });
  await cp(join(ROOT, "package.json"), join(root, "package.json"));
  await symlink(join(ROOT, "node_modules"), join(root, "node_modules"));
  await symlink(join(ROOT, "build"), join(root, "build"));
  if (versionTs !== undefined) await writeFile(join(root, "src/version.ts"), versionTs);
  return root;
};
/** Points `current` (the installed code, a deployment's link) at `root`. */
const install = async (root: string) => {
  await rm(join(dir, "current"), { force: true });
  await symlink(root, join(dir, "current"));
};

beforeAll(async () => {
  browser = await launchChromium();
  await install(await release("first"));
  await fleet.start("a");
  // b runs the installed code, so that an upgrade starts what is installed then.
  await fleet.start("b", {}, join(dir, "current/bin/distributary"));
  const body = JSON.stringify({
    id: "news",
    name: "News",
    rtp_ip: "127.0.0.1",
    rtp_port: await freeUdpPort(),
    nodes: ["a", "b"],
  });
  expect((await api("a", "/api/channels", { method: "POST", body })).status).toBe(201);
  expect((await api("a", "/api/channels/news/start", { method: "POST" })).status).toBe(200);
  await until(
    "news held by a, b standing by",
    async () => (await fleet.fleetOf("b", "news"))?.holder === "a",
    30_000,
  );
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await rm(dir, { recursive: true, force: true });
});

const signIn = async (options: { width?: number; dark?: boolean } = {}) => {
  const width = options.width ?? 1280;
  const { context, offsite } = await newContext(browser, {
    width,
    height: width === 390 ? 844 : 900,
    ...options,
  });
  const page = await context.newPage();
  await login(page, fleet.base("b"), FLEET_ADMIN);
  await page.goto(`${fleet.base("b")}/nodes`);
  await page.locator("#node-a").waitFor();
  return { context, offsite, page };
};
const upgradeCell = (page: Page, node: string) => page.locator(`#node-${node} td.node-upgrade`);
const overflow = async (page: Page) =>
  (await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")) as number;

describe("the Nodes page's hand-overs", () => {
  it("says a node had no upgrade, then why its upgrade failed, as /api/nodes does", async () => {
    const { context, offsite, page } = await signIn();
    // Its own, and a's as a's heartbeat reports it.
    expect(await upgradeCell(page, "b").textContent()).toBe("no upgrade since it started");
    await expect.poll(() => upgradeCell(page, "a").textContent()).toBe("no upgrade since it started");

    // A fleet node is not upgraded beside itself: b refuses, keeps every channel and says why, in the API and
    // on the page.
    const failed = await execa(
      join(ROOT, "bin/distributary"),
      ["upgrade", "--config-dir", fleet.configDir("b")],
      {
        reject: false,
      },
    );
    expect(failed.exitCode, failed.stderr).toBe(1);
    expect(failed.stderr).toContain("node b is part of a fleet, whose nodes are upgraded one at a time");
    const b = ((await json(await api("b", "/api/nodes"))).nodes as Array<Record<string, unknown>>).find(
      (node) => node.id === "b",
    );
    expect(b?.upgrade).toMatchObject({
      upgrading: null,
      last: { outcome: "failed", to_version: null, channels: 0 },
    });
    await page.reload();
    await expect
      .poll(() => upgradeCell(page, "b").textContent())
      .toMatch(
        /^last upgrade \d+ s ago: failed, version \S+ kept every channel: node b is part of a fleet, whose nodes are upgraded one at a time, .+ \(docs\/upgrades\.md\)$/,
      );
    expect(await page.locator("#node-b td.node-upgrade.upgrade-failed").count()).toBe(1);
    await context.close();
    expect(offsite).toEqual([]);
  }, 60_000);

  it("says a drained node holds no channel, and /api/nodes gives its drain", async () => {
    expect((await api("b", "/api/nodes/a/drain", { method: "POST" })).status).toBe(200);
    await until(
      "b to see a drained",
      async () =>
        (await fleet.nodesSeenBy("b")).some(
          (node) => node.id === "a" && (node as { drain?: { state?: string } }).drain?.state === "drained",
        ),
      20_000,
    );
    const { context, page } = await signIn();
    await expect
      .poll(() => page.locator("#node-a .node-drain").textContent())
      .toBe("drained: no channel left");
    await context.close();
  }, 60_000);

  it("screenshots: the Nodes page, light and dark, 1280 and 390 px", async () => {
    for (const dark of [false, true])
      for (const width of [1280, 390]) {
        const { context, page } = await signIn({ width, dark });
        const name = `${dark ? "dark" : "light"}-${width}`;
        await screenshot(page, `nodes-handover-${name}`);
        expect(await overflow(page), name).toBeLessThanOrEqual(1);
        await context.close();
      }
  }, 90_000);
});
