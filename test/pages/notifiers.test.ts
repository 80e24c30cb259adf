/**
 * Settings' notifications in Chromium, against a real HTTP receiver on 127.0.0.1: an admin adds a webhook
 * notifier (its signing secret shown once, and the receiver's test delivery verifies with it), sees the
 * delivery in the notifier's table, edits it (the secret kept) and deletes it; a Slack notifier's URL, a
 * secret whole, is never on the page. No secret is in any page, API answer, log line or event afterwards.
 */
import type { Browser, Page } from "playwright-core";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, useTestApp } from "../support/app.ts";
import { launchChromium, login, newContext, screenshot } from "../support/browser.ts";
import { type HttpReceiver, httpReceiver } from "../support/http-receiver.ts";

const app = useTestApp({ settings: { DISTRIBUTARY_NOTIFY_ALLOW_PRIVATE: "true" } });
let base = "";
let browser: Browser;
let page: Page;
let receiver: HttpReceiver;
const pages: string[] = [];

beforeAll(async () => {
  base = `http://127.0.0.1:${await app.listen()}`;
  receiver = await httpReceiver();
  browser = await launchChromium();
  const { context } = await newContext(browser);
  page = await context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  await login(page, base, ADMIN_TOKEN);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await receiver?.close();
});

const keep = async () => {
  const content = await page.content();
  pages.push(content);
  return content;
};

/** The latest request's headers as standardwebhooks reads them. */
const lastHeaders = () => {
  const last = receiver.received.at(-1);
  return {
    body: last?.body ?? "",
    headers: {
      "webhook-id": String(last?.headers["webhook-id"]),
      "webhook-timestamp": String(last?.headers["webhook-timestamp"]),
      "webhook-signature": String(last?.headers["webhook-signature"]),
    },
  };
};

describe("notifiers on the Settings page", () => {
  it("adds, tests, edits and deletes a notifier; its secret is shown once and never again anywhere", async () => {
    await page.goto(`${base}/settings`);
    await page.getByLabel("Notifier name").fill("on-call hook");
    await page.getByLabel("Kind").selectOption("webhook");
    await page.getByLabel(/^Address/).fill(`${receiver.url}/hook`);
    await page.getByLabel("input_lost").check();
    await page.getByLabel("node_down").check();
    await page.getByRole("button", { name: "Add notifier" }).click();
    const secret = ((await page.locator("#new-secret").textContent()) ?? "").trim();
    expect(secret).toMatch(/^whsec_/);

    const article = page.getByRole("article", { name: "Notifier on-call hook" });
    await article.getByRole("button", { name: "Send a test" }).click();
    await expect.poll(() => page.locator("main .notice").first().textContent()).toContain("Test delivered");
    const delivered = lastHeaders();
    expect(new Webhook(secret).verify(delivered.body, delivered.headers)).toMatchObject({ type: "test" });
    const table = page.getByRole("article", { name: "Notifier on-call hook" }).locator("table");
    expect(await table.locator("tbody tr").first().textContent()).toMatch(/test\s*delivered.*200\s*1/s);
    await screenshot(page, "settings-notifiers", "section[aria-labelledby=notifications-title]");
    const shown = await keep();
    expect(shown).not.toContain(secret);
    expect(shown).toContain("whsec_****");

    // Edit: a new name and one more event; the secret left blank is kept.
    await page
      .getByRole("article", { name: "Notifier on-call hook" })
      .getByRole("link", { name: "Edit" })
      .click();
    await keep();
    await page.getByLabel("Notifier name").fill("night desk");
    await page.getByLabel("input_restored").check();
    await page.getByRole("button", { name: "Save notifier" }).click();
    await expect.poll(() => page.locator("main").textContent()).toContain("Notifier night desk saved.");
    const renamed = page.getByRole("article", { name: "Notifier night desk" });
    expect(await renamed.textContent()).toContain("input_lost, input_restored, node_down");
    await renamed.getByRole("button", { name: "Send a test" }).click();
    await expect.poll(() => receiver.received.length).toBe(2);
    const again = lastHeaders();
    expect(new Webhook(secret).verify(again.body, again.headers)).toMatchObject({ type: "test" });
    expect(await page.getByRole("article", { name: "Notifier night desk" }).locator("tbody tr").count()).toBe(
      2,
    );

    // A Slack notifier: its URL is the secret.
    await page.getByLabel("Notifier name").fill("slack room");
    await page.getByLabel("Kind").selectOption("slack");
    await page.getByLabel(/^Address/).fill(`${receiver.url}/services/T0/B0/slackSECRETpart`);
    await page.getByLabel("failover").check();
    await page.getByRole("button", { name: "Add notifier" }).click();
    await expect.poll(() => page.locator("main").textContent()).toContain("Notifier slack room added.");
    expect(await keep()).not.toContain("slackSECRETpart");

    // A refusal comes back in words.
    await page.getByLabel("Notifier name").fill("no events");
    await page.getByLabel(/^Address/).fill("https://ops.example/hook");
    await page.getByRole("button", { name: "Add notifier" }).click();
    await expect
      .poll(() => page.locator("main .notice").first().textContent())
      .toContain("events: must name at least one");

    await page
      .getByRole("article", { name: "Notifier night desk" })
      .getByRole("button", { name: "Delete" })
      .click();
    await expect.poll(() => page.getByRole("article", { name: "Notifier night desk" }).count()).toBe(0);
    await keep();

    const api = await Promise.all(
      ["/api/notifiers", "/api/events?limit=500", "/metrics"].map(async (path) =>
        (await app.request(path)).text(),
      ),
    );
    const everything = [...pages, ...api, ...app.logs].join("\n");
    for (const hidden of [secret, secret.slice("whsec_".length), "slackSECRETpart"])
      expect(everything).not.toContain(hidden);
    expect(everything).toContain("notifier.delete");
  }, 60_000);
});
