/**
 * The health rules in the channel form, in a real Chromium: a new channel with a backup gets its rules (JSON),
 * its expression, its clear time and the slate's on-unhealthy box; what the API refuses shows at the field it
 * concerns, with the API's own words and what was typed kept (text that is not JSON, a name that is no rule, a
 * rule of no known shape, the box without a slate); the edit form shows them back, and blank rules remove them.
 * A screenshot of the form with a refusal goes to test-results/screenshots/health-form-light-1280.png.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChannelView } from "../../src/domain/views/views.ts";
import { ADMIN_TOKEN, freeUdpPort, json, useTestApp } from "../support/app.ts";
import { launchChromium, login, newContext, screenshot } from "../support/browser.ts";

const app = useTestApp();
let base = "";
let browser: Browser;

const channelOf = async (id: string) =>
  (await json(await app.request(`/api/channels/${id}`))) as unknown as ChannelView;

const rules = { no_video: { pid_missing: "video", for_ms: 1000 }, no_pcr: { pcr_missing_ms: 500 } };

beforeAll(async () => {
  base = `http://127.0.0.1:${await app.listen()}`;
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

const save = (page: Page) => page.getByRole("button", { name: "Save" }).click();

/** The message beside a field, once the form is back with it. */
const errorAt = async (page: Page, field: string) => {
  const error = page.locator(`[id="${field}-error"]`);
  await error.waitFor();
  return (await error.textContent()) ?? "";
};

describe("the health rules in the channel form", () => {
  it("a new channel gets its rules; a refusal shows at its field in the API's words, with what was typed kept", async () => {
    const { context } = await newContext(browser);
    const page = await context.newPage();
    await login(page, base, ADMIN_TOKEN);
    await page.goto(`${base}/channels/new`);
    await page.getByLabel("Name", { exact: true }).fill("Ruled");
    const [primary, backup] = [page.locator("fieldset").nth(0), page.locator("fieldset").nth(1)];
    await primary.getByLabel("Port").fill(String(await freeUdpPort()));
    await backup.getByLabel("Address").fill("127.0.0.1");
    await backup.getByLabel("Port").fill(String(await freeUdpPort()));

    // Not JSON, and the slate's box without a slate: the form says both, each at its field.
    const box = () => page.getByLabel("Also while every input is unhealthy by the health rules");
    await page.getByLabel("Rules (JSON)").fill("{no_video: pid_missing}");
    await page.getByLabel("Unhealthy when").fill("no_video");
    await box().check();
    await save(page);
    expect(await errorAt(page, "redundancy.health.rules")).toContain("must be JSON");
    expect(await errorAt(page, "slate.on_unhealthy")).toContain("needs a slate");
    expect(await page.getByLabel("Rules (JSON)").inputValue()).toBe("{no_video: pid_missing}");
    expect(await page.getByLabel("Rules (JSON)").getAttribute("aria-invalid")).toBe("true");
    expect(await box().isChecked()).toBe(true);
    await box().uncheck();

    // A name the rules do not have: the API's message at the expression.
    await page.getByLabel("Rules (JSON)").fill(JSON.stringify(rules));
    await page.getByLabel("Unhealthy when").fill("no_video || silent");
    await save(page);
    expect(await errorAt(page, "redundancy.health.unhealthy_when")).toBe(
      "names 'silent', which is not a rule: the rules are no_video, no_pcr",
    );
    expect(await page.getByLabel("Unhealthy when").inputValue()).toBe("no_video || silent");
    await screenshot(page, "health-form-light-1280");

    // A rule of no known shape: the problem names the rule.
    await page.getByLabel("Rules (JSON)").fill(JSON.stringify({ ...rules, odd: { loud: true } }));
    await page.getByLabel("Unhealthy when").fill("no_video || no_pcr");
    await save(page);
    expect(await errorAt(page, "redundancy.health.rules")).toMatch(/^rules\.odd[.:]/);

    await page.getByLabel("Rules (JSON)").fill(JSON.stringify(rules));
    await box().check();
    await page.getByLabel("Slate after (ms)").fill("2000");
    await page.getByLabel("Healthy again after (ms)").fill("5000");
    await page.getByLabel("Black, frozen and silent judged on").selectOption("all_frames");
    await save(page);
    await page.waitForURL(/\/channels\/[^/]+$/);
    const id = page.url().split("/").at(-1) ?? "";
    const channel = await channelOf(id);
    expect(channel.redundancy?.health).toEqual({
      rules,
      unhealthy_when: "no_video || no_pcr",
      clear_after_ms: 5000,
      decode: "all_frames",
    });
    expect(channel.slate).toMatchObject({ after_ms: 2000, on_unhealthy: true });

    // The edit form shows them back; blank rules and expression remove them, an unticked box clears it.
    await page.goto(`${base}/channels/${id}/edit`);
    expect(JSON.parse(await page.getByLabel("Rules (JSON)").inputValue())).toEqual(rules);
    expect(await page.getByLabel("Unhealthy when").inputValue()).toBe("no_video || no_pcr");
    expect(await page.getByLabel("Healthy again after (ms)").inputValue()).toBe("5000");
    expect(await page.getByLabel("Black, frozen and silent judged on").inputValue()).toBe("all_frames");
    expect(await box().isChecked()).toBe(true);
    await page.getByLabel("Rules (JSON)").fill("");
    await page.getByLabel("Unhealthy when").fill("");
    await box().uncheck();
    await save(page);
    await page.waitForURL(`${base}/channels/${id}`);
    const after = await channelOf(id);
    expect(after.redundancy?.health).toBeNull();
    expect(after.slate).toMatchObject({ after_ms: 2000, on_unhealthy: false });
    await context.close();
  }, 60_000);
});
