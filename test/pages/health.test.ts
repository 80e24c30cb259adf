/**
 * Each input's health by the channel's rules on the channel page, in a real Chromium: two running channels fed
 * an ffmpeg-made stream (played by ffmpeg in real time over UDP). On "sick" a rule watches a PID the stream does
 * not carry, so it holds within 100 ms: the page shows the primary "unhealthy since hh:mm:ss UTC", the rule's
 * lamp as holding (in words and a mark, not colour alone) and the watcher's cost line of its black rule; on
 * "well" the video PID's rule does not hold, its lamp says ok and the input is healthy. The switch reason of a
 * rule (`rule: black && silent`) reads in the event log and the last-switch line. Screenshots of the lamps,
 * light and dark, desktop and phone, go to test-results/screenshots/health-*.png.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import { execa, type ResultPromise } from "execa";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChannelEvent } from "../../src/domain/events/events.ts";
import type { ChannelView } from "../../src/domain/views/views.ts";
import { channelHead } from "../../views/channel.ts";
import { eventItem } from "../../views/events.ts";
import { ADMIN_TOKEN, freeUdpPort, json, useTestApp } from "../support/app.ts";
import { launchChromium, login, newContext, overflowWidth, screenshot } from "../support/browser.ts";
import { encodeTestStream } from "../support/media.ts";

const app = useTestApp();
let base = "";
let browser: Browser;
let dir = "";
const players: ResultPromise[] = [];

/** A PID no stream of ffmpeg's carries (its muxer puts the PMT at 0x1000 and the streams from 0x100). */
const ABSENT_PID = 0x1ff0;

const rules = {
  sick: {
    rules: {
      gone: { pid_missing: ABSENT_PID, for_ms: 100 },
      black: { black: { pixel_threshold: 0.1, picture_ratio: 0.98 }, for_ms: 3000 },
    },
    unhealthy_when: "gone || black",
  },
  well: { rules: { no_video: { pid_missing: "video", for_ms: 1000 } }, unhealthy_when: "no_video" },
} as const;

/**
 * ffmpeg playing the file over and over in real time to the port, untouched (`-c copy`), 7 packets a datagram;
 * the file (30 s) outlasts the tests, so no loop's gap shows as an input lost.
 */
const play = (file: string, port: number) => {
  const child = execa(
    "ffmpeg",
    [
      ...["-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", file],
      ...["-c", "copy", "-f", "mpegts", `udp://127.0.0.1:${port}?pkt_size=1316`],
    ],
    { reject: false },
  );
  players.push(child);
};

const startChannel = async (id: keyof typeof rules, file: string) => {
  const port = await freeUdpPort();
  const created = await app.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      id,
      name: id === "sick" ? "Sick feed" : "Well feed",
      rtp_ip: "127.0.0.1",
      rtp_port: port,
      backup_rtp_ip: "127.0.0.1",
      backup_rtp_port: await freeUdpPort(),
      redundancy: { mode: "failover", health: rules[id] },
      outputs: [{ id: "out", name: "sink", protocol: "udp", url: `udp://127.0.0.1:${await freeUdpPort()}` }],
    }),
  });
  expect(created.status, await created.clone().text()).toBe(201);
  expect((await app.request(`/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
  play(file, port);
};

/** The primary input's health as the API shows it. */
const primaryHealth = async (id: string) => {
  const channel = (await json(await app.request(`/api/channels/${id}`))) as unknown as ChannelView;
  return channel.inputs.find((input) => input.role === "primary")?.health ?? null;
};

const words = async (page: Page, selector: string) =>
  ((await page.locator(selector).textContent()) ?? "").replace(/\s+/g, " ").trim();

beforeAll(async () => {
  base = `http://127.0.0.1:${await app.listen()}`;
  dir = await mkdtemp(join(tmpdir(), "health-pages-"));
  const file = join(dir, "programme.ts");
  await Effect.runPromise(encodeTestStream(file, 30, "400k", "320x180"));
  await startChannel("sick", file);
  await startChannel("well", file);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  for (const player of players) player.kill();
  await Promise.all(players);
  await browser?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("health lamps on the channel page", () => {
  it("a rule that holds: the input unhealthy since a time, its lamp holding in words; the watcher's cost", async () => {
    await expect
      .poll(async () => (await primaryHealth("sick"))?.state, { timeout: 15_000 })
      .toBe("unhealthy");
    const { context } = await newContext(browser);
    const page = await context.newPage();
    await login(page, base, ADMIN_TOKEN);
    await page.goto(`${base}/channels/sick`);

    const health = page.locator("#health-primary");
    await expect
      .poll(() => words(page, "#health-primary h3"))
      .toMatch(/^primary · unhealthy since \d\d:\d\d:\d\d UTC$/);
    // The API's since, as the page shows it.
    const since = (await primaryHealth("sick"))?.since;
    expect(await health.locator(".state-unhealthy time").getAttribute("datetime")).toBe(since);
    // The overview's tile says the input on air is unhealthy, and by which rule; the healthy channel's does not.
    await page.goto(`${base}/`);
    const tile = page.locator("#tile-sick .state-unhealthy");
    expect(await words(page, "#tile-sick .state-unhealthy")).toBe("UNHEALTHY · primary");
    expect(await tile.getAttribute("title")).toMatch(
      /^The primary input on air is unhealthy by the channel's rules since \d\d:\d\d:\d\d UTC: gone hold$/,
    );
    expect(await page.locator("#tile-well .state-unhealthy").count()).toBe(0);
    await page.goto(`${base}/channels/sick`);
    // The inputs table says it too, beside receiving.
    expect(await words(page, "#ch-inputs tbody tr:first-child")).toMatch(/receiving unhealthy/);

    const gone = health.locator(".lamp", { hasText: "gone" });
    expect(await gone.getAttribute("class")).toContain("lamp-holds");
    expect(await words(page, "#health-primary .lamp:has-text('gone')")).toMatch(
      /^! gone holds \d+ ms since its last packet$/,
    );
    expect(await gone.getAttribute("title")).toMatch(/^gone holds: \d+ ms since its last packet$/);
    // The page's live updates re-render the lamps: the figure moves on without a reload.
    const figure = await gone.locator("small").textContent();
    await expect.poll(() => gone.locator("small").textContent(), { timeout: 10_000 }).not.toBe(figure);
    // Not by colour alone: the mark is hidden from a screen reader, the word is not.
    expect(await gone.locator(".lamp-mark").getAttribute("aria-hidden")).toBe("true");
    expect(await page.getByRole("list", { name: "Health rules of the primary input" }).count()).toBe(1);
    expect(await words(page, "#ch-inputs .health-panel > p")).toBe("Unhealthy when gone || black");

    // The black rule runs a watcher: its lamp waits for a verdict or has one, and its cost is on a line.
    await expect
      .poll(() => words(page, "#health-primary .watcher"), { timeout: 15_000 })
      .toMatch(
        /^Picture-and-sound watcher: running · CPU (\d+\.\d %|not measured yet) · \d+ chunks? dropped · \d+ restarts?$/,
      );
    expect(await health.locator(".lamp", { hasText: "black" }).getAttribute("class")).toMatch(
      /lamp-(ok|unknown)/,
    );
    await context.close();
  }, 60_000);

  it("a rule that does not hold: its lamp ok and the input healthy", async () => {
    await expect
      .poll(async () => (await primaryHealth("well"))?.rules.no_video?.state, { timeout: 15_000 })
      .toBe(false);
    const { context } = await newContext(browser);
    const page = await context.newPage();
    await login(page, base, ADMIN_TOKEN);
    await page.goto(`${base}/channels/well`);
    await expect.poll(() => words(page, "#health-primary h3")).toBe("primary · healthy");
    const lamp = page.locator("#health-primary .lamp", { hasText: "no_video" });
    expect(await lamp.getAttribute("class")).toContain("lamp-ok");
    expect(await words(page, "#health-primary .lamp:has-text('no_video')")).toMatch(
      /^✓ no_video ok \d+ ms since its last packet$/,
    );
    expect(await page.locator("#health-primary .watcher").count()).toBe(0);
    expect(await page.locator("#ch-inputs .state-unhealthy").count()).toBe(0);
    await context.close();
  }, 60_000);

  it("screenshots: the lamps light and dark, 1280 and 390 px, nothing wider than a phone", async () => {
    await expect
      .poll(async () => (await primaryHealth("sick"))?.watcher?.running, { timeout: 15_000 })
      .toBe(true);
    for (const dark of [false, true])
      for (const width of [1280, 390]) {
        const { context } = await newContext(browser, { width, height: width === 390 ? 844 : 900, dark });
        const page = await context.newPage();
        await login(page, base, ADMIN_TOKEN);
        await page.goto(`${base}/channels/sick`);
        await page.locator("#health-primary .watcher").waitFor();
        const name = `${dark ? "dark" : "light"}-${width}`;
        await screenshot(page, `health-${name}`);
        await screenshot(page, `health-inputs-${name}`, "#ch-inputs");
        expect(await overflowWidth(page), name).toBeLessThanOrEqual(1);
        await page.goto(`${base}/`);
        await page.locator("#tile-sick .state-unhealthy").waitFor();
        await screenshot(page, `health-overview-${name}`);
        expect(await overflowWidth(page), `overview ${name}`).toBeLessThanOrEqual(1);
        await context.close();
      }
  }, 90_000);
});

/** What a reader sees of rendered HTML: its text, entities read, spaces folded. */
const text = async (rendered: unknown) =>
  String(await rendered)
    .replace(/<[^>]+>/g, " ")
    .replaceAll("&amp;", "&")
    .replaceAll("&#39;", "'")
    .replace(/\s+/g, " ");

describe("a switch by the health rules in words", () => {
  const at = "2026-11-27T05:01:02.000Z";

  it("the event log and the last-switch line name the rules that held", async () => {
    const event = {
      type: "input_switched",
      at,
      channel: "sick",
      channel_name: "Sick feed",
      from: "primary",
      to: "backup",
      reason: "rule",
      rule: "black && silent",
    } as unknown as ChannelEvent;
    const item = await text(eventItem(event));
    expect(item).toContain("switched from the primary to the backup input (rule: black && silent)");
    const silence = await text(
      eventItem({ ...event, reason: "primary_restored", rule: undefined } as ChannelEvent),
    );
    expect(silence).toContain("(primary restored)");

    const channel = (await json(await app.request("/api/channels/sick"))) as unknown as ChannelView;
    const head = await text(
      channelHead(
        {
          ...channel,
          last_switch: { at, from: "primary", to: "backup", reason: "rule", rule: "black && silent" },
        },
        { name: "ops", role: "viewer" },
      ),
    );
    expect(head).toMatch(/Last switch: primary → backup \(rule: black && silent\) at 05:01:02 UTC/);
  });

  it("the slate's event says when every input is unhealthy", async () => {
    const item = await text(
      eventItem({
        type: "slate_on",
        at,
        channel: "sick",
        channel_name: "Sick feed",
        reason: "unhealthy",
      } as ChannelEvent),
    );
    expect(item).toContain("on the slate: every input is unhealthy by the channel's health rules");
  });
});
