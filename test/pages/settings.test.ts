/**
 * The overview's filter and bulk actions, and the admin pages, in Chromium: a token's secret shown once and
 * revoked; an import previewed (what it would create and delete) before it is applied, and applied only as
 * previewed; the export downloads with the page's session; the events page's live events keep its filters.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROTOCOLS } from "../../src/domain/channel/channel.ts";
import { ADMIN_TOKEN, freeUdpPort, json, useTestApp } from "../support/app.ts";
import { launchChromium, login, newContext, screenshot } from "../support/browser.ts";

const app = useTestApp();
let base = "";
let browser: Browser;
let page: Page;

beforeAll(async () => {
  base = `http://127.0.0.1:${await app.listen()}`;
  for (const id of ["alpha", "bravo"]) {
    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ id, name: `${id} channel`, rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort() }),
    });
    expect(created.status).toBe(201);
  }
  browser = await launchChromium();
  const { context } = await newContext(browser);
  page = await context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  await login(page, base, ADMIN_TOKEN);
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

const status = async (id: string) => (await json(await app.request(`/api/channels/${id}`))).status;

describe("overview and admin pages in Chromium", () => {
  it("the filter narrows the tiles; the selected channels start and stop with one confirmation", async () => {
    await page.goto(`${base}/`);
    await page.getByLabel("Filter").fill("brav");
    expect(await page.locator("#tile-alpha").isHidden()).toBe(true);
    expect(await page.locator("#tile-bravo").isVisible()).toBe(true);
    await page.getByLabel("Filter").fill("");

    let confirmations = 0;
    page.on("dialog", () => {
      confirmations += 1;
    });
    await page.getByLabel("Select alpha channel").check();
    await page.getByLabel("Select bravo channel").check();
    await page.getByRole("button", { name: "Start selected" }).click();
    await page.waitForURL(`${base}/`);
    expect(confirmations).toBe(1);
    expect([await status("alpha"), await status("bravo")]).toEqual(["running", "running"]);
    await expect.poll(() => page.locator("#tile-alpha .badge").first().textContent()).toBe("running");

    await page.getByLabel("Select alpha channel").check();
    await page.getByLabel("Select bravo channel").check();
    await page.getByRole("button", { name: "Stop selected" }).click();
    await page.waitForURL(`${base}/`);
    expect([await status("alpha"), await status("bravo")]).toEqual(["stopped", "stopped"]);
  }, 60_000);

  it("a token's secret is shown once, then never; revoking removes it", async () => {
    await page.goto(`${base}/settings`);
    await page.getByLabel("Name", { exact: true }).fill("night shift");
    await page.getByLabel("Role").selectOption("operator");
    await page.getByRole("button", { name: "Create token" }).click();
    const secret = (await page.locator("#new-token").textContent()) ?? "";
    expect(secret).toMatch(/^dst_/);
    // The secret works, once shown.
    expect((await app.request("/api/channels", { token: secret })).status).toBe(200);
    await page.goto(`${base}/settings`);
    expect(await page.content()).not.toContain(secret);
    const row = page.locator("tr", { hasText: "night shift" });
    await row.getByRole("button", { name: "Revoke" }).click();
    await expect.poll(() => page.locator("tr", { hasText: "night shift" }).count()).toBe(0);
    expect((await app.request("/api/channels", { token: secret })).status).toBe(401);
  }, 60_000);

  it("an import is previewed — what it creates and deletes — before it is applied", async () => {
    const port = await freeUdpPort();
    const document = {
      version: 1,
      channels: [
        {
          id: "alpha",
          name: "alpha channel",
          rtp_ip: "127.0.0.1",
          rtp_port: (await json(await app.request("/api/channels/alpha"))).rtp_port,
        },
        { id: "charlie", name: "charlie channel", rtp_ip: "127.0.0.1", rtp_port: port },
      ],
    };
    await page.goto(`${base}/settings`);
    await page.getByLabel(/Import/).fill(JSON.stringify(document));
    await page.getByLabel("Channels the document does not name").selectOption("replace");
    await page.getByRole("button", { name: "Preview the changes" }).click();
    const preview = (await page.locator("#import-preview").textContent()) ?? "";
    expect(preview).toContain("create 1: charlie channel (charlie)");
    expect(preview).toContain("delete 1: bravo channel (bravo)");
    // Nothing changed yet.
    expect((await app.request("/api/channels/bravo")).status).toBe(200);
    await page.getByRole("button", { name: "Apply" }).click();
    await expect
      .poll(() => page.locator("main").textContent())
      .toContain("Configuration imported (replace): 1 created, 0 changed, 1 deleted.");
    expect((await app.request("/api/channels/bravo")).status).toBe(404);
    expect((await app.request("/api/channels/charlie")).status).toBe(200);

    // A document that cannot be imported says why, and offers no Apply.
    await page.getByLabel(/Import/).fill('{"version": 1, "channels": [{"name": ""}]}');
    await page.getByRole("button", { name: "Preview the changes" }).click();
    expect(await page.locator("#import-preview").textContent()).toContain("channels[0]");
    expect(await page.getByRole("button", { name: "Apply" }).count()).toBe(0);
  }, 60_000);

  it("Apply imports only the document that was previewed; an edited one is previewed again, not applied", async () => {
    const before = (await json(await app.request("/api/channels"))).channels as unknown[];
    const channel = (id: string, port: number) => ({
      id,
      name: `${id} channel`,
      rtp_ip: "127.0.0.1",
      rtp_port: port,
    });
    await page.goto(`${base}/settings`);
    await page
      .getByLabel(/Import/)
      .fill(JSON.stringify({ version: 1, channels: [channel("delta", await freeUdpPort())] }));
    await page.getByRole("button", { name: "Preview the changes" }).click();
    expect(await page.locator("#import-preview").textContent()).toContain("create 1: delta channel (delta)");
    // Edited after the preview: Apply must not import what nobody saw.
    await page
      .getByLabel(/Import/)
      .fill(JSON.stringify({ version: 1, channels: [channel("echo", await freeUdpPort())] }));
    await page.getByRole("button", { name: "Apply" }).click();
    await expect.poll(() => page.locator("main").textContent()).toContain("Nothing was imported");
    expect(await page.locator("#import-preview").textContent()).toContain("create 1: echo channel (echo)");
    expect((await app.request("/api/channels/echo")).status).toBe(404);
    expect((await app.request("/api/channels/delta")).status).toBe(404);
    expect((await json(await app.request("/api/channels"))).channels).toHaveLength(before.length);
    // Now previewed: Apply imports it.
    await page.getByRole("button", { name: "Apply" }).click();
    await expect.poll(() => page.locator("main").textContent()).toContain("1 created");
    expect((await app.request("/api/channels/echo")).status).toBe(200);
  }, 60_000);

  it("Export downloads the configuration with the page's session, secrets masked", async () => {
    const added = await app.request("/api/channels/alpha/outputs", {
      method: "POST",
      body: JSON.stringify({
        name: "yt",
        protocol: "rtmp",
        url: "rtmp://127.0.0.1:1935/live2/sEcReT-stream-key-42",
      }),
    });
    expect(added.status).toBe(201);
    await page.goto(`${base}/settings`);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Export (secrets masked)" }).click(),
    ]);
    const path = await download.path();
    const { readFile } = await import("node:fs/promises");
    const exported = JSON.parse(await readFile(path, "utf8")) as {
      version: number;
      channels: Array<{ id: string }>;
    };
    expect(exported.version).toBe(1);
    const listed = (await json(await app.request("/api/channels"))).channels as Array<{ id: string }>;
    expect(exported.channels.map((channel) => channel.id).sort()).toEqual(
      listed.map((channel) => channel.id).sort(),
    );
    expect(download.suggestedFilename()).toBe("distributary-config.json");
    const text = JSON.stringify(exported);
    expect(text).not.toContain("sEcReT-stream-key-42");
    expect(text).toContain("rtmp://127.0.0.1:1935/live2/****");

    // The backup carries the key, and says in the audit trail who took it.
    const [backup] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Backup (with secrets)" }).click(),
    ]);
    expect(backup.suggestedFilename()).toBe("distributary-backup.json");
    expect(await readFile(await backup.path(), "utf8")).toContain(
      "rtmp://127.0.0.1:1935/live2/sEcReT-stream-key-42",
    );
    const audit = await json(await app.request("/api/events?type=api_change"));
    expect(JSON.stringify(audit.events)).toContain("config.export");
  }, 60_000);

  it("the events page's live events keep its filters", async () => {
    await page.goto(`${base}/events?type=api_change&channel=alpha`);
    await expect.poll(() => page.locator("#connection").textContent()).toBe("live");
    const shown = await page.locator("#event-log li").count();
    // An api_change of another channel, and another type of event of alpha: neither belongs in this list.
    await app.request("/api/channels/charlie", {
      method: "PATCH",
      body: JSON.stringify({ name: "charlie renamed" }),
    });
    await app.request("/api/channels/alpha/start", { method: "POST" });
    await app.request("/api/channels/alpha", {
      method: "PATCH",
      body: JSON.stringify({ name: "alpha renamed" }),
    });
    await expect.poll(() => page.locator("#event-log").textContent()).toContain("alpha renamed");
    const items = await page.locator("#event-log li").allTextContents();
    expect(items.length).toBeGreaterThan(shown);
    expect(items.join("\n")).not.toContain("charlie renamed");
    // Only api_change items: the channel's start shows as its audit entry, never as a channel_started event.
    expect(await page.locator("#event-log li:not(.event-api_change)").count()).toBe(0);
    await app.request("/api/channels/alpha/stop", { method: "POST" });
  }, 60_000);

  it("an original channels.json is previewed with what it leaves out and what it ignores", async () => {
    const original = {
      foxtrot: {
        config: {
          name: "foxtrot channel",
          rtp_ip: "127.0.0.1",
          rtp_port: await freeUdpPort(),
          description: "from the old box",
          outputs: [
            { name: "cdn", protocol: "udp", url: "udp://127.0.0.1:7100" },
            { name: "odd", protocol: "carrier-pigeon", url: "pigeon://loft" },
          ],
        },
      },
    };
    await page.goto(`${base}/settings`);
    await page.getByLabel(/Import/).fill(JSON.stringify(original));
    await page.getByLabel("Channels the document does not name").selectOption("merge");
    await page.getByRole("button", { name: "Preview the changes" }).click();
    const preview = (await page.locator("#import-preview").textContent()) ?? "";
    expect(preview).toContain("create 1: foxtrot channel (foxtrot)");
    expect(preview).toContain(
      `foxtrot, not taken: config.outputs[1].protocol: must be one of ${PROTOCOLS.join(", ")}; got "carrier-pigeon"`,
    );
    expect(preview).toContain("foxtrot, ignored: config.description: is not a known field; ignored");
    // What the admin sees: the settings page with this preview, light on a desktop, dark on a phone.
    await screenshot(page, "settings-light-1280");
    await page.emulateMedia({ colorScheme: "dark" });
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, "settings-dark-390");
    expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    await page.emulateMedia({ colorScheme: "light" });
    await page.setViewportSize({ width: 1280, height: 900 });
  }, 60_000);
});
