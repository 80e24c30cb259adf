/**
 * The fleet on the pages, in headless Chromium against two real nodes: the menu's Nodes link, the Nodes page
 * (state in words, version, channels held, load, heartbeat), where each channel runs on its tile and its page
 * ("on node a · term 1 · standby b"), "holder unreachable" pushed live when the holder dies (and a cue sent then
 * refused with 503, not acknowledged and dropped), a viewer without a
 * Drain button, and an admin's drain after a confirmation. Screenshots of the Nodes page and a channel page,
 * light and dark, 1280 and 390 px, go to test-results/screenshots (fleet-*).
 */

import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeUdpPort, json } from "../support/app.ts";
import { launchChromium, login, newContext, screenshot } from "../support/browser.ts";
import { FLEET_ADMIN, useFleetNodes } from "../support/fleet-nodes.ts";

const fleet = useFleetNodes({
  dbPort: 18852,
  ports: { a: 18803, b: 18804 },
  // b waits for a dead holder's lease (10 s) instead of taking over at once: the time to see it unreachable.
  env: { DISTRIBUTARY_LEASE_MS: "10000", DISTRIBUTARY_THUMBNAILS: "off" },
});
const { api, fleetOf, until } = fleet;
let browser: Browser;
let viewer = "";

beforeAll(async () => {
  browser = await launchChromium();
  await fleet.start("a");
  await fleet.start("b", { DISTRIBUTARY_FAST_TAKEOVER: "off" });
  for (const [id, name, nodes] of [
    ["news", "News", ["a", "b"]],
    ["sport", "Sport", ["b"]],
  ] as const) {
    const body = JSON.stringify({ id, name, rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort(), nodes });
    expect((await api("a", "/api/channels", { method: "POST", body })).status).toBe(201);
    expect((await api("a", `/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
  }
  const created = await json(
    await api("a", "/api/tokens", { method: "POST", body: JSON.stringify({ name: "wall", role: "viewer" }) }),
  );
  viewer = String(created.token);
  await until(
    "b to see News on a with b standing by, and Sport on b",
    async () => {
      const [news, sport] = [await fleetOf("b", "news"), await fleetOf("b", "sport")];
      return news?.holder === "a" && news.standbys.join() === "b" && sport?.holder === "b";
    },
    30_000,
  );
}, 90_000);
afterAll(() => browser?.close());

const signIn = async (token: string, options: { width?: number; dark?: boolean } = {}) => {
  const width = options.width ?? 1280;
  const { context, offsite } = await newContext(browser, {
    width,
    height: width === 390 ? 844 : 900,
    ...options,
  });
  const page = await context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  await login(page, fleet.base("b"), token);
  return { context, offsite, page };
};

/** Nothing wider than the window: the layout holds on a phone. */
const overflow = async (page: Page) =>
  (await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")) as number;

describe("the fleet on the pages", () => {
  it("the Nodes page lists each node's state in words, version, channels held, load and heartbeat", async () => {
    const { context, offsite, page } = await signIn(FLEET_ADMIN);
    await page.getByRole("link", { name: "Nodes" }).click();
    await page.waitForURL(`${fleet.base("b")}/nodes`);
    const rowA = page.locator("#node-a");
    await expect.poll(() => rowA.locator(".badge").textContent()).toBe("up");
    // The load is a's latest heartbeat: one sent before its channel ran says 0, and the page shows the next.
    // A node reports its load at each round (every third of the lease), and the page's node reads it at its own.
    await expect
      .poll(async () => (await rowA.locator("td").allTextContents())[3], { timeout: 10_000 })
      .toMatch(/^1 channel running · \d+ % CPU$/);
    const cells = await rowA.locator("td").allTextContents();
    expect(cells[1]).toMatch(/^\d+\.\d+\.\d+/);
    expect(cells[2]).toBe("1");
    expect(cells[4]).toMatch(/^\d+\.\d s ago$/);
    expect(await page.locator("#node-b th").textContent()).toContain("(this node)");
    expect(await rowA.getByRole("button", { name: "Drain" }).count()).toBe(1);
    expect(offsite).toEqual([]);
    await context.close();
  }, 30_000);

  it("each channel says where it runs, on its tile and its page; a viewer sees no Drain button", async () => {
    const { context, page } = await signIn(viewer);
    expect(await page.locator("#tile-news .fleet-line").textContent()).toMatch(
      /^\s*on node a\s*· term \d+ · standby b\s*$/,
    );
    expect(await page.locator("#tile-sport .fleet-line").textContent()).toMatch(
      /^\s*on node b\s*· term \d+ · no standby\s*$/,
    );
    await page.goto(`${fleet.base("b")}/channels/news`);
    expect(await page.locator("#ch-head .fleet-line").textContent()).toMatch(
      /on node a\s*· term \d+ · standby b/,
    );
    await page.goto(`${fleet.base("b")}/nodes`);
    await page.locator("#node-a").waitFor();
    expect(await page.getByRole("button", { name: "Drain" }).count()).toBe(0);
    await context.close();
  }, 30_000);

  it("screenshots: the Nodes page and a channel page, light and dark, 1280 and 390 px", async () => {
    for (const dark of [false, true]) {
      for (const width of [1280, 390]) {
        const { context, page } = await signIn(FLEET_ADMIN, { width, dark });
        const name = `${dark ? "dark" : "light"}-${width}`;
        await page.goto(`${fleet.base("b")}/nodes`);
        await page.locator("#node-a").waitFor();
        await screenshot(page, `fleet-nodes-${name}`);
        expect(await overflow(page), `nodes ${name}`).toBeLessThanOrEqual(1);
        await page.goto(`${fleet.base("b")}/channels/news`);
        await page.locator("#ch-head .fleet-line").waitFor();
        await screenshot(page, `fleet-channel-${name}`);
        expect(await overflow(page), `channel ${name}`).toBeLessThanOrEqual(1);
        await context.close();
      }
    }
  }, 90_000);

  it("a holder that dies: its channel's page says 'holder unreachable' live, and the Nodes page 'unreachable'", async () => {
    const { context, page } = await signIn(FLEET_ADMIN);
    await page.goto(`${fleet.base("b")}/channels/news`);
    await page.locator("#ch-head .fleet-line").waitFor();
    fleet.process("a").process.kill("SIGKILL");
    // Pushed over the page's WebSocket: no reload.
    await page.locator("#ch-head .badge.state-unreachable", { hasText: "holder unreachable" }).waitFor({
      timeout: 8_000,
    });
    // A cue now would be acknowledged by b and aired by nobody: it is refused, in words.
    const cue = await api("b", "/api/channels/news/cues", {
      method: "POST",
      body: JSON.stringify({ command: "splice_insert", event_id: 4903 }),
    });
    expect(cue.status, await cue.clone().text()).toBe(503);
    expect(cue.headers.get("content-type")).toBe("application/problem+json");
    expect(String((await json(cue)).detail)).toBe(
      "the holder a did not answer: nothing was inserted; send it again once a answers or another node holds " +
        "channel 'news'",
    );
    await screenshot(page, "fleet-channel-holder-unreachable-light-1280");
    await page.goto(`${fleet.base("b")}/nodes`);
    await expect.poll(() => page.locator("#node-a .badge").textContent()).toBe("unreachable");
    await screenshot(page, "fleet-nodes-unreachable-light-1280");
    // Once the lease runs out, b takes News over; the page follows by itself.
    await page.goto(`${fleet.base("b")}/channels/news`);
    await page.locator("#ch-head .fleet-line", { hasText: "on node b" }).waitFor({ timeout: 20_000 });
    await context.close();
  }, 60_000);

  it("an admin drains a node from the Nodes page after a confirmation; its channels go to their standbys", async () => {
    await fleet.start("a");
    await until("a to be up on b's list", async () =>
      (await fleet.nodesSeenBy("b")).some((node) => node.id === "a" && node.state === "up"),
    );
    const { context, page } = await signIn(FLEET_ADMIN);
    await page.goto(`${fleet.base("b")}/nodes`);
    let asked = "";
    page.removeAllListeners("dialog");
    page.on("dialog", (dialog) => {
      asked = dialog.message();
      void dialog.accept();
    });
    await page.locator("#node-b").getByRole("button", { name: "Drain" }).click();
    await page.getByText("Done: node b drained: 2 channels handed to standbys.").waitFor();
    expect(asked).toBe("Drain node b? Its 2 channels move to their standbys, each with a short gap on air.");
    await expect
      .poll(() => page.locator("#node-b .badge").textContent(), { timeout: 10_000 })
      .toBe("drained");
    await until("a to hold News", async () => (await fleetOf("a", "news"))?.holder === "a");
    await page.goto(`${fleet.base("b")}/`);
    await page.locator("#tile-sport .fleet-line", { hasText: "no holder" }).waitFor({ timeout: 10_000 });
    await screenshot(page, "fleet-overview-after-drain-light-1280");
    await context.close();
  }, 60_000);
});
