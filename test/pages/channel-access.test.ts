/**
 * Rights per channel in the pages, in Chromium: an admin makes an eu-scoped operator token and tags a channel
 * with the forms; signed in with that token, the overview shows only the eu channels (and keeps to them as it
 * updates live), the events page only their events, a us channel's page and its still are a 403 in words,
 * Settings is refused, and the eu channel's page shows its tags and its operator buttons.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, freeUdpPort, json, useTestApp } from "../support/app.ts";
import { launchChromium, login, newContext } from "../support/browser.ts";

const app = useTestApp();
let base = "";
let browser: Browser;
let admin: Page;

beforeAll(async () => {
  base = `http://127.0.0.1:${await app.listen()}`;
  for (const [id, tags] of [
    ["eu-news", ["eu"]],
    ["us-news", ["us"]],
    ["eu-sport", []],
  ] as const) {
    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ id, name: id, tags, rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort() }),
    });
    expect(created.status).toBe(201);
  }
  browser = await launchChromium();
  admin = await (await newContext(browser)).context.newPage();
  await login(admin, base, ADMIN_TOKEN);
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

describe("rights per channel in the pages", () => {
  it("an eu operator made and scoped with the forms sees and runs only the eu channels", async () => {
    // The channel form's tags: eu-sport joins the eu desk.
    await admin.goto(`${base}/channels/eu-sport/edit`);
    await admin.getByLabel(/^Tags/).fill("eu, sport");
    await admin.getByRole("button", { name: "Save" }).click();
    await admin.waitForURL(`${base}/channels/eu-sport`);
    expect(await admin.locator("#ch-head .badge.tag").allTextContents()).toEqual(["eu", "sport"]);

    await admin.goto(`${base}/settings`);
    await admin.getByLabel("Name", { exact: true }).fill("eu desk");
    await admin.getByLabel("Role").selectOption("operator");
    await admin.getByLabel("Channel tags").fill("eu");
    await admin.getByRole("button", { name: "Create token" }).click();
    const secret = (await admin.locator("#new-token").textContent()) ?? "";
    expect(secret).toMatch(/^dst_/);
    expect(await admin.locator("tr", { hasText: "eu desk" }).textContent()).toContain("tags eu");

    const desk = await (await newContext(browser)).context.newPage();
    await login(desk, base, secret);
    await desk.goto(`${base}/`);
    expect((await desk.locator(".tile").evaluateAll((tiles) => tiles.map((tile) => tile.id))).sort()).toEqual(
      ["tile-eu-news", "tile-eu-sport"],
    );
    // A live update of the overview keeps to the eu channels.
    await app.request("/api/channels/us-news", {
      method: "PATCH",
      body: JSON.stringify({ name: "US news!" }),
    });
    await app.request("/api/channels/eu-news", {
      method: "PATCH",
      body: JSON.stringify({ name: "EU news!" }),
    });
    await expect.poll(() => desk.locator("#tile-eu-news h2").textContent()).toContain("EU news!");
    expect(await desk.locator("#tile-us-news").count()).toBe(0);

    const refused = await desk.goto(`${base}/channels/us-news`);
    expect(refused?.status()).toBe(403);
    expect(await desk.getByRole("alert").textContent()).toBe(
      "channel 'us-news' needs the viewer role; the token 'eu desk' holds operator on tags eu",
    );
    const still = await desk.request.get(`${base}/ui/thumbs/us-news.jpg`);
    expect(still.status()).toBe(403);
    expect((await desk.goto(`${base}/settings`))?.status()).toBe(403);

    await desk.goto(`${base}/channels/eu-news`);
    expect(await desk.locator("#ch-head .badge.tag").allTextContents()).toEqual(["eu"]);
    await desk.getByRole("button", { name: "Start" }).first().click();
    await expect
      .poll(async () => (await json(await app.request("/api/channels/eu-news"))).status)
      .toBe("running");
    await app.request("/api/channels/eu-news/stop", { method: "POST" });

    await desk.goto(`${base}/events`);
    const channels = await desk
      .locator("#event-log li")
      .evaluateAll((items) => items.map((item) => item.textContent ?? ""));
    expect(channels.length).toBeGreaterThan(0);
    expect(channels.some((text) => /eu-news|EU news/.test(text))).toBe(true);
    expect(channels.some((text) => /us-news|US news/.test(text))).toBe(false);
  }, 90_000);
});
