/**
 * The MediaLive panel of the channel page in Chromium, against a real moto_server: its state in words, the
 * destinations checked against our inputs, the cost guard's pending stop with "Keep running", start and stop
 * by button (the page follows live), the overview tile's line, the note's link to the AWS console; with
 * screenshots in light and dark, on a desktop and a phone.
 */
import { StartChannelCommand } from "@aws-sdk/client-medialive";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, freeUdpPort, makeTestApp, type TestApp } from "../support/app.ts";
import { launchChromium, login, newContext, screenshot } from "../support/browser.ts";
import { createMediaLiveChannel, type Moto, motoMissing, startMoto } from "../support/moto.ts";

const missing = motoMissing();
const CREDENTIALS = { AWS_ACCESS_KEY_ID: "AKIAPAGETEST", AWS_SECRET_ACCESS_KEY: "page-test-secret" };
let moto: Moto;
let app: TestApp;
let base = "";
let browser: Browser;
let idleId = "";

beforeAll(async () => {
  if (missing !== null) return;
  Object.assign(process.env, CREDENTIALS);
  moto = await startMoto();
  app = await makeTestApp(undefined, undefined, { DISTRIBUTARY_AWS_ENDPOINT: moto.endpoint });
  base = `http://127.0.0.1:${await app.listen()}`;
  const client = moto.client();
  const [primary, backup] = [await freeUdpPort(), await freeUdpPort()];
  idleId = await createMediaLiveChannel(client, {
    name: "evening",
    destinations: [`rtp://127.0.0.1:${primary}`, `rtp://127.0.0.1:${backup + 1}`],
    egress: ["198.18.0.10", "198.18.0.11"],
  });
  const runningId = await createMediaLiveChannel(client, {
    name: "late",
    destinations: [`rtp://127.0.0.1:${primary + 2}`],
  });
  await client.send(new StartChannelCommand({ ChannelId: runningId }));
  const create = (body: Record<string, unknown>) =>
    app.request("/api/channels", { method: "POST", body: JSON.stringify(body) });
  const evening = await create({
    id: "evening",
    name: "Evening news",
    rtp_ip: "127.0.0.1",
    rtp_port: primary,
    backup_rtp_port: backup,
    medialive: { channel_id: idleId, region: "eu-west-1", stop_when_idle: true },
  });
  expect(evening.status).toBe(201);
  const late = await create({
    id: "late",
    name: "Late show",
    rtp_ip: "127.0.0.1",
    rtp_port: primary + 2,
    medialive: { channel_id: runningId, region: "eu-west-1", stop_when_idle: true, idle_minutes: 30 },
  });
  expect(late.status).toBe(201);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  for (const name of Object.keys(CREDENTIALS)) delete process.env[name];
  await browser?.close();
  await app?.close();
  await moto?.stop();
});

const panel = (page: Page) => page.locator("#ch-medialive");

describe.skipIf(missing !== null)("the MediaLive panel (moto, Chromium)", () => {
  it("shows the state, the destinations against our inputs, and starts and stops MediaLive by button", async () => {
    const { context } = await newContext(browser);
    const page = await context.newPage();
    page.on("dialog", (dialog) => dialog.accept());
    await login(page, base, ADMIN_TOKEN);
    await page.goto(`${base}/channels/evening`);
    await expect.poll(() => page.locator("#connection").textContent()).toBe("live");
    await expect
      .poll(() => panel(page).locator(".badge").first().textContent(), { timeout: 10_000 })
      .toBe("IDLE");
    const text = await panel(page).textContent();
    expect(text).toContain(idleId);
    expect(text).toContain("198.18.0.10, 198.18.0.11");
    expect(text).toMatch(/pipeline 1 sends to rtp:\/\/127\.0\.0\.1:\d+, not to the backup input/);
    expect(await panel(page).getByText("does not match").count()).toBe(1);
    expect(await panel(page).getByText("matches", { exact: true }).count()).toBe(1);
    await expect
      .poll(() => page.locator("#medialive-note").locator("..").getByRole("link").getAttribute("href"))
      .toContain(`#/channels/${idleId}`);

    await panel(page).getByRole("button", { name: "Start MediaLive" }).click();
    await expect
      .poll(() => panel(page).locator(".badge").first().textContent(), { timeout: 20_000 })
      .toBe("RUNNING");
    // RUNNING with nothing sending: the cost guard's stop is on its way, and says when.
    await expect
      .poll(() => panel(page).textContent(), { timeout: 20_000 })
      .toContain("MediaLive will be stopped at");
    await panel(page).getByRole("button", { name: "Stop MediaLive" }).click();
    await expect
      .poll(() => panel(page).locator(".badge").first().textContent(), { timeout: 20_000 })
      .toBe("IDLE");
    await context.close();
  });

  it("the cost guard's pending stop is called off with Keep running; the tile says it too", async () => {
    const { context } = await newContext(browser);
    const page = await context.newPage();
    await login(page, base, ADMIN_TOKEN);
    await expect
      .poll(() => page.locator("#tile-late").textContent(), { timeout: 20_000 })
      .toContain("stop pending");
    expect(await page.locator("#tile-late").textContent()).toContain("RUNNING");
    await page.goto(`${base}/channels/late`);
    await expect
      .poll(() => panel(page).textContent(), { timeout: 20_000 })
      .toContain("MediaLive will be stopped at");
    await panel(page).getByRole("button", { name: "Keep running" }).click();
    await expect
      .poll(() => panel(page).textContent())
      .toContain("stop called off until an output sends again");
    expect(await panel(page).getByRole("button", { name: "Keep running" }).count()).toBe(0);
    await context.close();
  });

  it("looks right in light and dark, on a desktop and a phone", async () => {
    for (const [name, options] of [
      ["light-1280", { width: 1280, height: 900 }],
      ["dark-1280", { width: 1280, height: 900, dark: true }],
      ["light-390", { width: 390, height: 844 }],
      ["dark-390", { width: 390, height: 844, dark: true }],
    ] as const) {
      const { context, offsite } = await newContext(browser, options);
      const page = await context.newPage();
      await login(page, base, ADMIN_TOKEN);
      await page.goto(`${base}/channels/evening`);
      await expect
        .poll(() => panel(page).locator(".badge").first().textContent(), { timeout: 10_000 })
        .toBe("IDLE");
      await screenshot(page, `medialive-channel-${name}`);
      // The panel fits the phone's width: nothing wider than the viewport but its own scrolling tables.
      const overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth",
      );
      expect(overflow).toBeLessThanOrEqual(0);
      expect(offsite).toEqual([]);
      await context.close();
    }
  });
});
