/**
 * Live updates as a keyboard user and a restart see them, in Chromium: the swaps that keep a channel page
 * current leave focus on the control it was on, and when the service stops the page's WebSocket is closed as
 * a restart (1012), so the page tries again by itself.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ADMIN_TOKEN, freeUdpPort, useTestApp } from "../support/app.ts";
import { launchChromium, login, newContext } from "../support/browser.ts";

const app = useTestApp();
let base = "";
let browser: Browser;

beforeAll(async () => {
  base = `http://127.0.0.1:${await app.listen()}`;
  const created = await app.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      id: "focus",
      name: "focus",
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
      outputs: [{ id: "out", name: "sink", protocol: "udp", url: `udp://127.0.0.1:${await freeUdpPort()}` }],
    }),
  });
  expect(created.status).toBe(201);
  expect((await app.request("/api/channels/focus/start", { method: "POST" })).status).toBe(200);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

it("focus stays on the same control across live updates; a stopping service closes the page as a restart and the page tries again", async () => {
  const { context } = await newContext(browser);
  const page = await context.newPage();
  await login(page, base, ADMIN_TOKEN);
  await page.goto(`${base}/channels/focus`);
  await expect.poll(() => page.locator("#connection").textContent()).toBe("live");
  // Browser-side code as strings: these run in the page, not in Node.
  await page.evaluate(`
    window.swaps = 0;
    window.closes = [];
    document.addEventListener("htmx:oobAfterSwap", () => { window.swaps += 1; });
    document.addEventListener("htmx:wsClose", (event) => { window.closes.push(event.detail.event.code); });
  `);
  const swaps = () => page.evaluate("window.swaps") as Promise<number>;

  const disable = page.locator("#ch-outputs").getByRole("button", { name: "Disable" });
  await disable.focus();
  // Several snapshots (a second apart) replace the outputs section meanwhile.
  const swapsNow = await swaps();
  await expect.poll(swaps, { timeout: 10_000 }).toBeGreaterThan(swapsNow + 6);
  const focused = await page.evaluate(`({
    text: document.activeElement?.textContent ?? "",
    form: document.activeElement?.closest("form")?.getAttribute("action") ?? "",
    inOutputs: document.activeElement?.closest("#ch-outputs") !== null,
  })`);
  expect(focused).toEqual({
    text: "Disable",
    form: expect.stringContaining("/outputs/out"),
    inOutputs: true,
  });

  const sockets: string[] = [];
  page.on("websocket", (socket) => sockets.push(socket.url()));
  await app.close();
  await expect.poll(() => page.evaluate("window.closes") as Promise<number[]>).toContain(1012);
  // The extension reconnects after a 1012: it opens the page's socket again (nothing answers it here).
  await expect.poll(() => sockets.length, { timeout: 15_000 }).toBeGreaterThan(0);
  expect(sockets[0]).toContain("/ui/ws?page=channel");
}, 60_000);
