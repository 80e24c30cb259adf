/**
 * Settings' access rules in Chromium: the node's admin adds a rule, is refused in words for a bad tag, edits the
 * rule on its own page and deletes it, each change then read back through `GET /api/access/rules`; an edit of a
 * list someone changed meanwhile saves nothing and says why; a desk's admin may not post the forms. Screenshots
 * light and dark, at 1280 and 390 px, nothing wider than a phone.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, json, loginSession, useTestApp } from "../support/app.ts";
import { launchChromium, login, newContext, overflowWidth, screenshot } from "../support/browser.ts";

const app = useTestApp();
let base = "";
let browser: Browser;
let page: Page;

beforeAll(async () => {
  base = `http://127.0.0.1:${await app.listen()}`;
  browser = await launchChromium();
  const { context } = await newContext(browser);
  page = await context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  await login(page, base, ADMIN_TOKEN);
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

const rules = async () => (await json(await app.request("/api/access/rules"))).rules;
const form = () => page.locator("#access-rule-form");
const notice = () => page.locator("p.notice").first().textContent();

describe("access rules on the Settings page", () => {
  it("adds, refuses in words, edits and deletes a rule; the API reads each change", async () => {
    await page.goto(`${base}/settings`);
    await form().getByLabel("Claim").fill("groups");
    await form().getByLabel("Equals").fill("tv-ops-eu");
    await form().getByLabel("Grants").selectOption("operator");
    await form().getByLabel("Channels by tag").fill("eu, news");
    await form().getByRole("button", { name: "Add rule" }).click();
    expect(await notice()).toContain("Rule groups = tv-ops-eu added.");
    expect(await rules()).toEqual([
      { claim: "groups", equals: "tv-ops-eu", role: "operator", channels: { tags: ["eu", "news"] } },
    ]);
    const row = page.locator("#access-rules tr", { hasText: "tv-ops-eu" });
    expect(await row.textContent()).toContain("tags eu, news");

    await form().getByLabel("Claim").fill("groups");
    await form().getByLabel("Equals").fill("desk");
    await form().getByLabel("Channels by tag").fill("EU desk");
    await form().getByRole("button", { name: "Add rule" }).click();
    const refused = (await notice()) ?? "";
    expect(refused).toContain("The rule was not saved");
    expect(refused).toContain("lower-case letters");
    expect(await rules()).toHaveLength(1);

    await page.goto(`${base}/settings`);
    await page.getByRole("link", { name: "Edit the rule groups = tv-ops-eu" }).click();
    await page.waitForURL(`${base}/settings/access-rules/0`);
    expect(await form().getByLabel("Channels by tag").inputValue()).toBe("eu, news");
    await form().getByLabel("Grants").selectOption("admin");
    await form().getByLabel("Channels by tag").fill("");
    await form().getByLabel("Channels by id").fill("news-1");
    await form().getByRole("button", { name: "Save rule" }).click();
    expect(await notice()).toContain("Rule 1 saved.");
    expect(await rules()).toEqual([
      { claim: "groups", equals: "tv-ops-eu", role: "admin", channels: { ids: ["news-1"] } },
    ]);

    // Screenshots of the section with one rule, then of the edit page.
    for (const dark of [false, true])
      for (const width of [1280, 390]) {
        const { context } = await newContext(browser, { width, height: width === 390 ? 844 : 900, dark });
        const shot = await context.newPage();
        await login(shot, base, ADMIN_TOKEN);
        await shot.goto(`${base}/settings`);
        const name = `${dark ? "dark" : "light"}-${width}`;
        await screenshot(shot, `access-rules-${name}`, "section[aria-labelledby=access-title]");
        expect(await overflowWidth(shot), name).toBeLessThanOrEqual(1);
        await shot.goto(`${base}/settings/access-rules/0`);
        await screenshot(shot, `access-rule-edit-${name}`);
        expect(await overflowWidth(shot), `edit ${name}`).toBeLessThanOrEqual(1);
        await context.close();
      }

    await page.goto(`${base}/settings`);
    await page
      .locator("#access-rules tr", { hasText: "tv-ops-eu" })
      .getByRole("button", { name: "Delete" })
      .click();
    await page.locator("#access-rules-empty").waitFor();
    expect(await notice()).toContain("Rule groups = tv-ops-eu deleted.");
    expect(await rules()).toEqual([]);
  }, 90_000);

  it("an edit of a rule someone changed meanwhile saves nothing and says so", async () => {
    const put = (list: unknown) =>
      app.request("/api/access/rules", { method: "PUT", body: JSON.stringify(list) });
    expect((await put([{ claim: "groups", equals: "a", role: "viewer", channels: "*" }])).status).toBe(200);
    await page.goto(`${base}/settings/access-rules/0`);
    const other = [{ claim: "groups", equals: "b", role: "viewer", channels: "*" }];
    expect((await put(other)).status).toBe(200);
    await form().getByLabel("Grants").selectOption("admin");
    await form().getByRole("button", { name: "Save rule" }).click();
    expect(await notice()).toContain("changed meanwhile");
    expect(await rules()).toEqual(other);
    await page.goto(`${base}/settings`);
    const stale = page.locator("#access-rules tr", { hasText: "groups" });
    expect(await stale.textContent()).toContain("b");
    expect((await put([])).status).toBe(200);
  }, 30_000);

  it("a desk's admin may not post the forms", async () => {
    const created = await app.request("/api/tokens", {
      method: "POST",
      body: JSON.stringify({ name: "eu desk", role: "admin", channels: { tags: ["eu"] } }),
    });
    const cookie = await loginSession(app, String((await json(created)).token));
    const posted = await app.request("http://127.0.0.1/settings/access-rules", {
      method: "POST",
      token: null,
      headers: {
        cookie,
        host: "127.0.0.1",
        origin: "http://127.0.0.1",
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ claim: "groups", equals: "x", role: "admin" }).toString(),
    });
    expect(posted.status).toBe(403);
    expect(await posted.text()).toContain("over every channel");
    expect(await rules()).toEqual([]);
  });
});
