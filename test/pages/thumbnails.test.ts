/**
 * Stills of a channel's input, as an operator sees them: while the overview is open in Chromium and a real
 * H.264 stream flows, the channel's tile gets a JPEG made from the channel's own bytes; the still is served
 * only to a signed-in session. DISTRIBUTARY_THUMBNAILS=off starts the service with them off.
 */
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, freeUdpPort, loginSession, makeTestApp, type TestApp } from "../support/app.ts";
import { launchChromium, login, newContext } from "../support/browser.ts";
import { encodeTestStream } from "../support/media.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";

let app: TestApp | undefined;
const file = join(tmpdir(), `distributary-thumb-${process.pid}.ts`);
afterAll(async () => {
  await app?.close();
  await rm(file, { force: true });
});

describe("thumbnails", () => {
  it("an open overview gets a still of a running channel's picture, made from its own bytes", async () => {
    app = await makeTestApp();
    const base = `http://127.0.0.1:${await app.listen()}`;
    const input = await freeUdpPort();
    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ id: "pictures", name: "Pictures", rtp_ip: "127.0.0.1", rtp_port: input }),
    });
    expect(created.status).toBe(201);
    expect((await app.request("/api/channels/pictures/start", { method: "POST" })).status).toBe(200);
    await Effect.runPromise(encodeTestStream(file, 30, "1M"));
    const datagrams = chunkTs(new Uint8Array(await readFile(file)));
    // About 1.2 Mbit/s of TS: 0.11 datagrams a millisecond keeps it near real time.
    const flowing = Effect.runPromise(sendPaced(datagrams, input, 0.11));

    const browser = await launchChromium();
    try {
      const { context } = await newContext(browser);
      const page = await context.newPage();
      await login(page, base, ADMIN_TOKEN);
      const still = page.locator("#tile-pictures img.thumb");
      await still.waitFor({ timeout: 30_000 });
      const response = await page.request.get(`${base}${await still.getAttribute("src")}`);
      expect(response.status()).toBe(200);
      expect(response.headers()["content-type"]).toBe("image/jpeg");
      const jpeg = await response.body();
      expect([...jpeg.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
      expect(
        await still.evaluate((image) => (image as unknown as { naturalWidth: number }).naturalWidth),
      ).toBe(320);
      await context.close();
      // Without a session, no still.
      expect((await fetch(`${base}/ui/thumbs/pictures.jpg`)).status).toBe(401);
    } finally {
      await browser.close();
      await flowing;
    }
  }, 120_000);
});

describe("thumbnails setting", () => {
  it("DISTRIBUTARY_THUMBNAILS=off starts the service with thumbnails off, as Settings shows", async () => {
    const off = await makeTestApp(undefined, undefined, { DISTRIBUTARY_THUMBNAILS: "off" });
    try {
      const cookie = await loginSession(off, ADMIN_TOKEN, "/settings");
      const settings = await off.request("http://127.0.0.1/settings", { token: null, headers: { cookie } });
      expect(settings.status).toBe(200);
      const text = await settings.text();
      expect(text).toContain("Now: <strong>off</strong>");
      expect(text).toContain("Turn thumbnails on");
    } finally {
      await off.close();
    }
  });
});
