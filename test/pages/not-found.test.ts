/**
 * A page route that does not exist: a browser (Accept: text/html) gets a 404 page with the layout — the menu of
 * the signed-in token — and a link home, in a real request and in Chromium; an API client asking the same
 * path, or any client asking under /api, gets problem+json as before.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, json, loginSession, useTestApp } from "../support/app.ts";
import { launchChromium, login, newContext, screenshot } from "../support/browser.ts";

const app = useTestApp();
let base = "";
let browser: Browser;

beforeAll(async () => {
  base = `http://127.0.0.1:${await app.listen()}`;
  browser = await launchChromium();
}, 30_000);
afterAll(async () => {
  await browser?.close();
});

const BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

describe("a page that does not exist", () => {
  it("is a 404 page with the layout and a link home for a browser", async () => {
    const cookie = await loginSession(app, ADMIN_TOKEN);
    const answer = await fetch(`${base}/channels-typo/x?y=1`, {
      headers: { cookie, accept: BROWSER_ACCEPT },
    });
    expect(answer.status).toBe(404);
    expect(answer.headers.get("content-type")).toMatch(/^text\/html/);
    const page = await answer.text();
    expect(page).toContain("<title>Not found · distributary</title>");
    expect(page).toContain('<a href="/settings">Settings</a>');
    expect(page).toContain("There is no page at <code>/channels-typo/x</code>.");
    expect(page).toContain('<a href="/">Back to the channels</a>');
  });

  it("stays a problem for an API client, and under /api for anyone", async () => {
    const cookie = await loginSession(app, ADMIN_TOKEN);
    const plain = await fetch(`${base}/channels-typo`, { headers: { cookie } });
    expect([plain.status, plain.headers.get("content-type")]).toEqual([404, "application/problem+json"]);
    expect((await json(plain)).detail).toBe("no route for GET /channels-typo");
    const api = await fetch(`${base}/api/nothing-here`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, accept: BROWSER_ACCEPT },
    });
    expect([api.status, api.headers.get("content-type")]).toEqual([404, "application/problem+json"]);
  });

  it("shows in Chromium, and its link leads home", async () => {
    const { context, offsite } = await newContext(browser);
    const page = await context.newPage();
    await login(page, base, ADMIN_TOKEN);
    const answer = await page.goto(`${base}/no-such-page`);
    expect(answer?.status()).toBe(404);
    await expect.poll(() => page.getByRole("heading", { level: 1 }).textContent()).toBe("Not found");
    await screenshot(page, "page-not-found");
    await page.getByRole("link", { name: "Back to the channels" }).click();
    await page.waitForURL(`${base}/`);
    expect(offsite).toEqual([]);
    await context.close();
  });
});
