/**
 * The operator pages in a real Chromium, as an operator uses them: log in, create a channel, add outputs from
 * presets, start it while a stream with SCTE-35 flows, and watch status, bitrates, cues and a failing output
 * change live, over the one WebSocket, without a reload; a viewer sees no action; a forged post is refused;
 * nothing leaves 127.0.0.1 and nothing polls; planted secrets appear nowhere; screenshots of the overview and
 * the channel page, light and dark, 1280 and 390 px wide, go to test-results/screenshots.
 */
import { Effect, Layer, Scope } from "effect";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { OutputDefaults } from "../../src/effects/channel/channels.ts";
import { ADMIN_TOKEN, eventually, freeUdpPort, json, useTestApp } from "../support/app.ts";
import { launchChromium, login, newContext, overflowWidth, screenshot } from "../support/browser.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import * as peers from "../support/peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const PASSPHRASE = "planted-pass-phrase-9f3c1e";
const STREAM_KEY = "planted-key-a7b6c5d4";

const app = useTestApp({
  extra: Layer.succeed(OutputDefaults, { reconnect: { firstDelay: "300 millis", maxDelay: "1 second" } }),
});
let base = "";
let browser: Browser;
const scope = Effect.runSync(Scope.make());
let inputPort = 0;
let sinkPort = 0;
let channelId = "";
/** Everything the browser received that could carry text: pages, fragments, WebSocket messages. */
const received: string[] = [];
const offsite: string[] = [];

const watch = (page: Page) => {
  page.on("websocket", (socket) =>
    socket.on("framereceived", (frame) => received.push(String(frame.payload))),
  );
  page.on("response", async (response) => {
    if ((response.headers()["content-type"] ?? "").startsWith("text/"))
      received.push(await response.text().catch(() => ""));
  });
  page.on("dialog", (dialog) => dialog.accept());
};

/** A stream with a splice_insert every second, paced as an encoder sends it, for `seconds`. */
const stream = (seconds: number) => {
  const generator = new TsGenerator({ seed: 21, bitrate: 2_000_000 });
  for (let at = 300; at < seconds * 1000; at += 1000) {
    generator.insertScte35(encodeSection(immediateSpliceOut(7000 + at)), at);
  }
  const datagrams = chunkTs(generator.packets(Math.round((seconds * 250_000) / 188 / 7) * 7));
  return Effect.runPromise(sendPaced(datagrams, inputPort, 0.19));
};

beforeAll(async () => {
  base = `http://127.0.0.1:${await app.listen()}`;
  browser = await launchChromium();
  inputPort = await freeUdpPort();
  sinkPort = (await Effect.runPromise(Scope.extend(peers.udpSink, scope))).port;
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await Effect.runPromise(Scope.close(scope, { _tag: "Success", value: undefined } as never));
});

describe("operator pages in Chromium", () => {
  it("log in, create a channel, add outputs from presets, start it: status, bitrates, cues and a failing output go live", async () => {
    const { context, offsite: refused } = await newContext(browser);
    const page = await context.newPage();
    watch(page);
    await login(page, base, ADMIN_TOKEN);

    await page.getByRole("link", { name: "New channel" }).click();
    await page.getByLabel("Name", { exact: true }).fill("Evening News");
    await page.locator("fieldset").first().getByLabel("Address").fill("127.0.0.1");
    await page.locator("fieldset").first().getByLabel("Port").fill(String(inputPort));
    await page.getByRole("button", { name: "Save" }).click();
    await page.waitForURL(/\/channels\/[^/]+$/);
    channelId = page.url().split("/").at(-1) ?? "";
    await expect.poll(() => page.locator("#ch-head").textContent()).toContain("stopped");

    // A bad URL: the problem beside the field, what was typed still there.
    const form = page.locator("#add-output form");
    await form.getByLabel("Preset").selectOption("udp");
    await expect.poll(() => form.getByLabel("URL").inputValue()).toBe("udp://HOST:PORT");
    await form.getByLabel("URL").fill("udp://127.0.0.1:99999");
    await form.getByRole("button", { name: "Add output" }).click();
    await expect.poll(() => page.locator("#url-error").textContent()).toMatch(/port/i);
    expect(await page.locator("#add-output").getByLabel("URL").inputValue()).toBe("udp://127.0.0.1:99999");

    // UDP from its preset.
    await page.locator("#add-output").getByLabel("Preset").selectOption("udp");
    await page.locator("#add-output").getByLabel("URL").fill(`udp://127.0.0.1:${sinkPort}`);
    await page.locator("#add-output").getByLabel("Name").fill("Playout");
    await page.locator("#add-output").getByRole("button", { name: "Add output" }).click();
    await page.locator("#ch-outputs").getByText("Playout").waitFor();

    // SRT caller from its preset, to a port where nobody listens, with a passphrase.
    const nobody = await freeUdpPort();
    await page.locator("#add-output").getByLabel("Preset").selectOption("srt-caller");
    expect(await page.locator("[data-preset-hint]").textContent()).toContain("passphrase");
    await page
      .locator("#add-output")
      .getByLabel("URL")
      .fill(`srt://127.0.0.1:${nobody}?mode=caller&latency=80&passphrase=${PASSPHRASE}`);
    await page.locator("#add-output").getByLabel("Name").fill("Partner SRT");
    await page.locator("#add-output").getByRole("button", { name: "Add output" }).click();
    await page.locator("#ch-outputs").getByText("Partner SRT").waitFor();

    // A stream with cues flows; start the channel.
    const flowing = stream(25);
    await page.getByRole("button", { name: "Start channel" }).click();
    await page.waitForURL(`${base}/channels/${channelId}`);
    let navigations = 0;
    page.on("framenavigated", () => {
      navigations += 1;
    });
    await expect
      .poll(() => page.locator("#ch-head .badge").first().textContent(), { timeout: 10_000 })
      .toBe("running");
    // Bitrates and a cue arrive over the WebSocket.
    await expect
      .poll(() => page.locator("#ch-inputs").textContent(), { timeout: 10_000 })
      .toMatch(/[1-9][\d.]* (Mbit|kbit)\/s/);
    await expect
      .poll(() => page.locator("#ch-outputs tr", { hasText: "Playout" }).textContent(), { timeout: 10_000 })
      .toMatch(/[1-9][\d.]* (Mbit|kbit)\/s/);
    await expect.poll(() => page.locator("#cue-log li").count(), { timeout: 10_000 }).toBeGreaterThan(0);
    expect(await page.locator("#cue-log li").first().textContent()).toContain("splice_insert");
    // Each cue opens to its decoded fields and full JSON.
    await page.locator("#cue-log li summary").first().click();
    expect(await page.locator("#cue-log li").first().locator("dl").textContent()).toContain(
      "out (break starts)",
    );
    expect(await page.locator("#cue-log li").first().locator("pre").textContent()).toContain(
      '"splice_event_id"',
    );
    // The SRT destination is down: reconnecting, with the reason in words.
    const srtRow = page.locator("#ch-outputs tr", { hasText: "Partner SRT" });
    await expect.poll(() => srtRow.textContent(), { timeout: 20_000 }).toContain("reconnecting");
    expect((await srtRow.locator(".error-text").textContent())?.length ?? 0).toBeGreaterThan(5);
    expect(navigations).toBe(0);
    expect(await page.locator("#connection").textContent()).toBe("live");

    await screenshot(page, "channel-light-1280");
    await page.goto(`${base}/`);
    await expect
      .poll(() => page.locator(`#tile-${channelId}`).textContent(), { timeout: 5000 })
      .toContain("running");
    await screenshot(page, "overview-light-1280");

    // Disable, then remove the UDP output.
    await page.goto(`${base}/channels/${channelId}`);
    const playout = page.locator("#ch-outputs tr", { hasText: "Playout" });
    await playout.getByRole("button", { name: "Disable" }).click();
    await expect
      .poll(() => page.locator("#ch-outputs tr", { hasText: "Playout" }).textContent())
      .toContain("disabled");
    await page
      .locator("#ch-outputs tr", { hasText: "Playout" })
      .getByRole("button", { name: "Remove" })
      .click();
    await expect.poll(() => page.locator("#ch-outputs tr", { hasText: "Playout" }).count()).toBe(0);

    offsite.push(...refused);
    await flowing;
    await context.close();
  }, 120_000);

  it("a viewer sees the pages without any action; a forged post without the session's origin is refused", async () => {
    const created = await json(
      await app.request("/api/tokens", {
        method: "POST",
        body: JSON.stringify({ name: "wall screen", role: "viewer" }),
      }),
    );
    const { context, offsite: refused } = await newContext(browser);
    const page = await context.newPage();
    watch(page);
    await login(page, base, String(created.token));
    for (const path of ["/", `/channels/${channelId}`]) {
      await page.goto(`${base}${path}`);
      await page.locator("main h1").first().waitFor();
      expect(await page.locator("main form[method='post']").count(), path).toBe(0);
      // Copy buttons change nothing; every other button is an action.
      expect(await page.locator("main button:not([data-copy])").count(), path).toBe(0);
    }
    expect(await page.getByRole("link", { name: "Settings" }).count()).toBe(0);

    // An admin's session, a post from another origin: refused, the channel still runs.
    const admin = await newContext(browser);
    const adminPage = await admin.context.newPage();
    await login(adminPage, base, ADMIN_TOKEN);
    const forged = await adminPage.request.post(`${base}/channels/${channelId}/stop`, {
      headers: { origin: "http://attacker.invalid" },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    const sameSite = await adminPage.request.post(`${base}/channels/${channelId}/stop`, { maxRedirects: 0 });
    expect(sameSite.status()).toBe(403);
    expect((await json(await app.request(`/api/channels/${channelId}`))).status).toBe("running");
    offsite.push(...refused, ...admin.offsite);
    await admin.context.close();
    await context.close();
  }, 60_000);

  it("after load only the WebSocket talks: no XHR or fetch in 10 s, and no request leaves 127.0.0.1", async () => {
    const { context, offsite: refused } = await newContext(browser);
    const page = await context.newPage();
    watch(page);
    await login(page, base, ADMIN_TOKEN);
    await page.goto(`${base}/channels/${channelId}`);
    await expect.poll(() => page.locator("#connection").textContent()).toBe("live");
    const polled: string[] = [];
    page.on("request", (request) => {
      if (["xhr", "fetch", "eventsource"].includes(request.resourceType())) polled.push(request.url());
    });
    const messagesBefore = received.length;
    await page.waitForTimeout(10_000);
    expect(polled).toEqual([]);
    expect(received.length).toBeGreaterThan(messagesBefore);
    offsite.push(...refused);
    expect(offsite).toEqual([]);
    await context.close();
  }, 60_000);

  it("screenshots: overview and channel page, light and dark, 1280 and 390 px", async () => {
    for (const dark of [false, true]) {
      for (const width of [1280, 390]) {
        const { context } = await newContext(browser, { width, height: width === 390 ? 844 : 900, dark });
        const page = await context.newPage();
        watch(page);
        await login(page, base, ADMIN_TOKEN);
        const name = `${dark ? "dark" : "light"}-${width}`;
        await page.locator(".tile").first().waitFor();
        await screenshot(page, `overview-${name}`);
        await page.goto(`${base}/channels/${channelId}`);
        await page.locator("#ch-outputs").waitFor();
        await screenshot(page, `channel-${name}`);
        // Nothing wider than the window: the layout holds on a phone.
        expect(await overflowWidth(page), name).toBeLessThanOrEqual(1);
        await context.close();
      }
    }
  }, 90_000);

  it("the planted passphrase and stream key appear in no page, fragment or WebSocket message", async () => {
    const added = await app.request(`/api/channels/${channelId}/outputs`, {
      method: "POST",
      body: JSON.stringify({
        name: "Social",
        protocol: "rtmp",
        url: `rtmp://127.0.0.1:1935/live/${STREAM_KEY}`,
      }),
    });
    expect(added.status).toBe(201);
    const { context } = await newContext(browser);
    const page = await context.newPage();
    watch(page);
    await login(page, base, ADMIN_TOKEN);
    await page.goto(`${base}/channels/${channelId}`);
    await page.locator("#ch-outputs").getByText("Social").waitFor();
    await page.goto(`${base}/channels/${channelId}/outputs/${await outputIdNamed("Social")}/edit`);
    await page.goto(`${base}/events`);
    await page.goto(`${base}/settings`);
    await eventually("a few live messages", () => (received.length > 10 ? true : undefined));
    const everything = received.join("\n");
    expect(everything.length).toBeGreaterThan(1000);
    expect(everything).not.toContain(PASSPHRASE);
    expect(everything).not.toContain(STREAM_KEY);
    expect(everything).not.toContain(ADMIN_TOKEN);
    await context.close();
  }, 60_000);
});

const outputIdNamed = async (name: string) => {
  const channel = await json(await app.request(`/api/channels/${channelId}`));
  const outputs = channel.outputs as Array<{ id: string; name: string }>;
  return outputs.find((output) => output.name === name)?.id ?? "";
};
