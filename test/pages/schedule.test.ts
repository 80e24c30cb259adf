/**
 * The schedule on the pages, in a real Chromium, on the real clock: a channel whose window is in its preroll
 * with manual staging shows the phase, that it waits for an operator's go-live, and the next occurrences with
 * their times in the window's zone; an operator's Go live takes it live (the page says so, the API agrees, the
 * audit trail names the operator), a viewer sees no button; the overview's tile shows the phase. Screenshots
 * in light and dark, desktop and phone, and the layout holds on a phone.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, useTestApp } from "../support/app.ts";
import { launchChromium, login, newContext, overflowWidth, screenshot } from "../support/browser.ts";

const app = useTestApp();
let base = "";
let browser: Browser;
const tokens: Record<"operator" | "viewer", string> = { operator: "", viewer: "" };
const S = 1000;

beforeAll(async () => {
  base = `http://127.0.0.1:${await app.listen()}`;
  browser = await launchChromium();
  for (const role of ["operator", "viewer"] as const) {
    const created = await json(
      await app.request("/api/tokens", {
        method: "POST",
        body: JSON.stringify({ name: `${role} desk`, role }),
      }),
    );
    tokens[role] = String(created.token);
  }
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

/** A channel whose one-off window went past T0 a few seconds ago, waiting for an operator (manual staging). */
const createWaiting = async (id: string) => {
  const t0 = Math.floor(Date.now() / 1000) * 1000 - 5 * S;
  const response = await app.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      id,
      name: `Saturday match ${id}`,
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
      slate: { after_ms: 1000 },
      outputs: [
        { id: "out1", protocol: "udp", url: `udp://127.0.0.1:${await freeUdpPort()}`, enabled: false },
      ],
      schedule: {
        windows: [
          {
            id: "kickoff",
            start: new Date(t0).toISOString(),
            time_zone: "Europe/Paris",
            duration_s: 3600,
            preroll_s: 600,
            postroll_s: 120,
            staging: "manual",
          },
          {
            id: "sat",
            rrule: "DTSTART;TZID=Europe/Paris:20261205T200000\nRRULE:FREQ=WEEKLY;BYDAY=SA",
            duration_s: 7200,
            exdates: ["2026-12-26"],
          },
        ],
      },
    }),
  });
  expect(response.status, await response.clone().text()).toBe(201);
  await eventually("the runner to put the window on its preroll", async () => {
    const view = await json(await app.request(`/api/channels/${id}/schedule`));
    return (view.current as { done?: string[] } | null)?.done?.includes("slate_on") ? true : undefined;
  });
  return t0;
};

const pageAs = async (token: string, options: { width?: number; height?: number; dark?: boolean } = {}) => {
  const { context } = await newContext(browser, options);
  const page = await context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  await login(page, base, token);
  return page;
};

const sectionText = async (page: Page) =>
  ((await page.locator("#ch-schedule").textContent()) ?? "").replace(/\s+/g, " ");

/** "Sat 5 Dec 20:00:00"-like, as the page writes an instant in Paris. */
const paris = (ms: number) =>
  new Intl.DateTimeFormat("en-GB", {
    timeZone: "Europe/Paris",
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).format(new Date(ms));

describe("the schedule on the channel page", () => {
  it("shows the preroll waiting for the operator; Go live takes it live; a viewer sees no button", async () => {
    const t0 = await createWaiting("match");
    const page = await pageAs(tokens.operator);
    await page.goto(`${base}/channels/match`);
    const text = await sectionText(page);
    expect(text).toContain("SCHEDULE · preroll");
    expect(text).toContain("Waiting for an operator's go-live");
    expect(text).toContain(paris(t0));
    expect(text).toContain("Europe/Paris");
    // The weekly window's next Saturday 20:00 in Paris.
    expect(text).toMatch(/Sat \d+ Dec, 20:00:00|Sat \d+ Dec 20:00:00/);
    await screenshot(page, "schedule-channel-light", "#ch-schedule");
    await page.goto(`${base}/`);
    expect(await page.locator("#tile-match").textContent()).toContain("SCHEDULE · preroll");
    await screenshot(page, "schedule-overview-light", "#tile-match");

    await page.goto(`${base}/channels/match`);
    await page.locator("#ch-schedule").getByRole("button", { name: "Go live" }).click();
    await page.waitForURL(`${base}/channels/match`);
    await expect.poll(async () => sectionText(page)).toContain("SCHEDULE · live");
    const view = await json(await app.request("/api/channels/match/schedule"));
    expect(view.phase).toBe("live");
    const audit = (await json(await app.request("/api/events?type=api_change&limit=500"))).events as Array<
      Record<string, unknown>
    >;
    expect(
      audit.some((event) => event.action === "schedule.go-live" && event.actor === "operator desk"),
    ).toBe(true);

    const viewer = await pageAs(tokens.viewer);
    await viewer.goto(`${base}/channels/match`);
    expect(await sectionText(viewer)).toContain("SCHEDULE · live");
    expect(await viewer.locator("#ch-schedule button").count()).toBe(0);
  });

  it("dark and on a phone: the section reads and the layout holds", async () => {
    await createWaiting("phone");
    const dark = await pageAs(tokens.operator, { dark: true });
    await dark.goto(`${base}/channels/phone`);
    await screenshot(dark, "schedule-channel-dark", "#ch-schedule");
    const phone = await pageAs(tokens.operator, { width: 390, height: 844 });
    await phone.goto(`${base}/channels/phone`);
    expect(await sectionText(phone)).toContain("SCHEDULE · preroll");
    expect(await overflowWidth(phone)).toBe(0);
    await screenshot(phone, "schedule-channel-phone", "#ch-schedule");
    const phoneDark = await pageAs(tokens.operator, { width: 390, height: 844, dark: true });
    await phoneDark.goto(`${base}/`);
    await screenshot(phoneDark, "schedule-overview-phone-dark", "#tile-phone");
  });
});
