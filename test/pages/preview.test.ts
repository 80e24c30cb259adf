/**
 * The channel page's live preview in Chromium: nothing of the player loads until the preview is opened; then
 * hls.js (served from the npm package, nothing off the machine) plays the channel's own preview rendition of
 * an encoded stream sent to its input, and the video's currentTime advances, with no Content-Security-Policy
 * violation.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ADMIN_TOKEN, freeUdpPort, useTestApp } from "../support/app.ts";
import { launchChromium, login, newContext, screenshot } from "../support/browser.ts";
import { encodeTestStream } from "../support/media.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";

const app = useTestApp();
let base = "";
let browser: Browser;
let input = 0;
let dir = "";

beforeAll(async () => {
  base = `http://127.0.0.1:${await app.listen()}`;
  input = await freeUdpPort();
  const created = await app.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({ id: "look", name: "Look", rtp_ip: "127.0.0.1", rtp_port: input }),
  });
  expect(created.status).toBe(201);
  expect((await app.request("/api/channels/look/start", { method: "POST" })).status).toBe(200);
  dir = await mkdtemp(join(tmpdir(), "distributary-preview-"));
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await rm(dir, { recursive: true, force: true });
});

it("opens a preview that plays the channel's input: hls.js loads only then, and the video's time advances", async () => {
  const path = join(dir, "source.ts");
  await Effect.runPromise(encodeTestStream(path, 30, "500k", "320x180"));
  const datagrams = chunkTs(new Uint8Array(await readFile(path)));
  // At the stream's own rate (30 s of it), as an encoder sends it.
  const sending = Effect.runPromise(sendPaced(datagrams, input, datagrams.length / 30_000));

  const { context, offsite } = await newContext(browser);
  const page = await context.newPage();
  const requested: string[] = [];
  page.on("request", (request) => requested.push(new URL(request.url()).pathname));
  // The player runs under the pages' Content-Security-Policy (its worker and media come from blob: URLs).
  const violations: string[] = [];
  page.on("console", (message) => {
    if (message.text().includes("Content Security Policy")) violations.push(message.text());
  });
  await login(page, base, ADMIN_TOKEN);
  await page.goto(`${base}/channels/look`);
  expect(requested.filter((url) => url.includes("hls") || url.includes("preview"))).toEqual([]);

  const h264 = await page.evaluate(`MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001e"')`);
  await page.getByText("Preview", { exact: true }).click();
  await expect.poll(() => requested.includes("/assets/hls.min.js")).toBe(true);
  await expect.poll(() => requested.includes("/ui/preview/look/index.m3u8"), { timeout: 10_000 }).toBe(true);
  const details = page.locator("details[data-preview]");
  await expect.poll(() => details.getAttribute("data-fragments"), { timeout: 20_000 }).not.toBeNull();
  if (h264) {
    const time = () => page.evaluate(`document.querySelector("details[data-preview] video").currentTime`);
    await expect.poll(time, { timeout: 20_000 }).toBeGreaterThan(0.5);
    const then = (await time()) as number;
    await expect.poll(time, { timeout: 10_000 }).toBeGreaterThan(then + 1);
    await expect.poll(() => details.locator("[data-preview-status]").textContent()).toBe("playing");
  } else {
    // This Chromium cannot decode H.264: hls.js loaded the playlist and its fragments, which is what we can see.
    expect(Number(await details.getAttribute("data-fragments"))).toBeGreaterThan(1);
  }
  expect(offsite).toEqual([]);
  expect(violations).toEqual([]);
  // What the operator sees: the channel page with its preview open, light on a desktop, dark on a phone.
  await screenshot(page, "preview-light-1280");
  await page.emulateMedia({ colorScheme: "dark" });
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot(page, "preview-dark-390");
  // Nothing wider than the phone's screen.
  expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
  await context.close();
  await sending;
}, 90_000);
