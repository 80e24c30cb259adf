/**
 * The slate on the pages, in a real Chromium: a channel with a slate (not running, no stream) shows it off with
 * the generated card; an admin uploads a PNG through the form and the page shows it (the API says its size),
 * while a text file is refused in words and changes nothing; an operator puts the channel on the slate by hand
 * and takes it off; a viewer sees no button and a viewer's post is refused; the channel form sets, refuses and
 * removes the slate's time. The SLATE badge on the head and the overview tile, from a channel view on the slate.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChannelView } from "../../src/domain/views/views.ts";
import { channelHead } from "../../views/channel.ts";
import { channelTile } from "../../views/overview.ts";
import { ADMIN_TOKEN, freeUdpPort, json, useTestApp } from "../support/app.ts";
import { launchChromium, login, newContext } from "../support/browser.ts";

const app = useTestApp();
let base = "";
let browser: Browser;
let dir = "";
let picture = "";
let notPicture = "";
const tokens: Record<"operator" | "viewer", string> = { operator: "", viewer: "" };

interface Slate {
  readonly after_ms: number;
  readonly alert_after_s: number;
  readonly manual: boolean;
  readonly image: { readonly width: number; readonly height: number; readonly sha256: string } | null;
}
const slateOf = async (id: string) =>
  (await json(await app.request(`/api/channels/${id}`))).slate as Slate | null;

const createChannel = async (name: string, slate: unknown = { after_ms: 1000 }) => {
  const response = await app.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({ name, rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort(), slate }),
  });
  expect(response.status).toBe(201);
  return String((await json(response)).id);
};

const pageAs = async (token: string) => {
  const { context } = await newContext(browser);
  const page = await context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  await login(page, base, token);
  return page;
};

/** An <img>'s width once it has loaded (0 while it has not, or could not). */
const loadedWidth = (element: unknown) => {
  const image = element as { readonly complete: boolean; readonly naturalWidth: number };
  return image.complete ? image.naturalWidth : 0;
};

const slateText = async (page: Page) =>
  ((await page.locator("#ch-slate").textContent()) ?? "").replace(/\s+/g, " ");

beforeAll(async () => {
  base = `http://127.0.0.1:${await app.listen()}`;
  browser = await launchChromium();
  dir = await mkdtemp(join(tmpdir(), "slate-pages-"));
  picture = join(dir, "card.png");
  await execa("ffmpeg", [
    ...["-hide_banner", "-loglevel", "error", "-y"],
    ...["-f", "lavfi", "-i", "testsrc2=s=320x180", "-frames:v", "1", picture],
  ]);
  notPicture = join(dir, "notes.png");
  await writeFile(notPicture, "this is a text file, not a picture\n");
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
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

describe("the slate on the channel page", () => {
  it("shows the slate off with the generated card; an admin's PNG replaces it, a text file is refused in words", async () => {
    const id = await createChannel("Slate Picture");
    const page = await pageAs(ADMIN_TOKEN);
    await page.goto(`${base}/channels/${id}`);
    const section = page.locator("#ch-slate");
    expect(await slateText(page)).toContain("off: the channel is not running");
    expect(await slateText(page)).toContain("generated card with the channel's name");
    expect(await slateText(page)).toContain("1000 ms");
    expect(await section.locator("img").count()).toBe(0);

    await section.getByLabel(/New picture/).setInputFiles(picture);
    await section.getByRole("button", { name: "Upload picture" }).click();
    await page.waitForURL(`${base}/channels/${id}`);
    const image = page.locator("#ch-slate img.slate-picture");
    await expect.poll(() => image.evaluate(loadedWidth)).toBe(320);
    expect(await slateText(page)).toContain("320×180 PNG");
    const stored = await slateOf(id);
    expect(stored?.image?.width).toBe(320);
    expect(stored?.image?.height).toBe(180);

    // Not a picture: the problem in words beside the upload, the stored picture as it was.
    await page
      .locator("#ch-slate")
      .getByLabel(/New picture/)
      .setInputFiles(notPicture);
    await page.locator("#ch-slate").getByRole("button", { name: "Upload picture" }).click();
    const problem = page.locator("#slate-image-error");
    await problem.waitFor();
    expect(await problem.textContent()).toMatch(/notes\.png: .*(PNG|JPEG)/);
    expect(await page.locator("#ch-slate input[type=file]").getAttribute("aria-invalid")).toBe("true");
    expect((await slateOf(id))?.image?.sha256).toBe(stored?.image?.sha256);

    // The generated card again.
    await page.goto(`${base}/channels/${id}`);
    await page.locator("#ch-slate").getByRole("button", { name: "Use the generated card" }).click();
    await page.waitForURL(`${base}/channels/${id}`);
    await expect.poll(() => slateText(page)).toContain("generated card with the channel's name");
    expect((await slateOf(id))?.image).toBeNull();
    await page.context().close();
  });

  it("an operator puts the channel on the slate by hand and takes it off; no picture upload for an operator", async () => {
    const id = await createChannel("Slate By Hand");
    const page = await pageAs(tokens.operator);
    await page.goto(`${base}/channels/${id}`);
    expect(await page.locator("#ch-slate form[enctype='multipart/form-data']").count()).toBe(0);
    let asked = "";
    page.on("dialog", (dialog) => {
      asked = dialog.message();
    });
    await page.locator("#ch-slate").getByRole("button", { name: "Put on slate" }).click();
    await page.waitForURL(`${base}/channels/${id}`);
    expect(asked).toContain("on the slate");
    await expect.poll(async () => (await slateOf(id))?.manual).toBe(true);
    await expect.poll(() => slateText(page)).toContain("it goes on the slate by hand as soon as it runs");
    expect(await page.locator("#ch-slate").getByRole("button", { name: "Put on slate" }).count()).toBe(0);

    await page.locator("#ch-slate").getByRole("button", { name: "Take off slate" }).click();
    await page.waitForURL(`${base}/channels/${id}`);
    await expect.poll(async () => (await slateOf(id))?.manual).toBe(false);
    await expect.poll(() => slateText(page)).not.toContain("by hand");
    expect(await page.locator("#ch-slate").getByRole("button", { name: "Put on slate" }).count()).toBe(1);
    await page.context().close();
  });

  it("a viewer sees the slate and its picture without any button; a viewer's post is refused", async () => {
    const id = await createChannel("Slate Viewer");
    const put = await app.request(`/api/channels/${id}/slate/image`, {
      method: "PUT",
      headers: { "content-type": "image/png" },
      body: await readFile(picture),
    });
    expect(put.status).toBe(200);
    const page = await pageAs(tokens.viewer);
    await page.goto(`${base}/channels/${id}`);
    const section = page.locator("#ch-slate");
    expect(await slateText(page)).toContain("off");
    expect(await section.locator("button").count()).toBe(0);
    expect(await section.locator("form").count()).toBe(0);
    await expect.poll(() => section.locator("img").evaluate(loadedWidth)).toBe(320);

    for (const [path, form] of [
      [`/channels/${id}/slate`, { on: "true" }],
      [`/channels/${id}/slate/card`, {}],
    ] as const) {
      const refused = await page.request.post(`${base}${path}`, {
        headers: { origin: base },
        form,
        maxRedirects: 0,
      });
      expect(refused.status(), path).toBe(403);
    }
    expect((await slateOf(id))?.manual).toBe(false);
    expect((await slateOf(id))?.image?.width).toBe(320);
    await page.context().close();
  });

  it("a channel without a slate says so, and an admin is pointed to the form", async () => {
    const id = await createChannel("No Slate", null);
    const page = await pageAs(ADMIN_TOKEN);
    await page.goto(`${base}/channels/${id}`);
    expect(await slateText(page)).toContain("No slate");
    expect(await page.locator("#ch-slate a", { hasText: "Edit channel" }).getAttribute("href")).toBe(
      `/channels/${id}/edit`,
    );
    expect(await page.locator("#ch-slate button").count()).toBe(0);
    await page.context().close();
  });
});

describe("the slate in the channel form", () => {
  it("sets the slate's time, shows a time below the failover time on its field, and blank removes it", async () => {
    const id = await createChannel("Slate Form", null);
    const page = await pageAs(ADMIN_TOKEN);
    await page.goto(`${base}/channels/${id}/edit`);
    const field = page.getByLabel("Slate after (ms)");
    expect(await field.inputValue()).toBe("");

    // Below the failover time (500 ms, the default): the message on this field, what was typed kept.
    await field.fill("100");
    await page.getByRole("button", { name: "Save" }).click();
    const error = page.locator('[id="slate.after_ms-error"]');
    await error.waitFor();
    expect(await error.textContent()).toContain("failover time");
    expect(await page.getByLabel("Slate after (ms)").inputValue()).toBe("100");
    expect(await page.getByLabel("Slate after (ms)").getAttribute("aria-invalid")).toBe("true");
    expect(await slateOf(id)).toBeNull();

    await page.getByLabel("Slate after (ms)").fill("1500");
    await page.getByRole("button", { name: "Save" }).click();
    await page.waitForURL(`${base}/channels/${id}`);
    expect((await slateOf(id))?.after_ms).toBe(1500);
    // A change of time keeps the stored alert time and the hand switch.
    await app.request(`/api/channels/${id}`, {
      method: "PATCH",
      body: JSON.stringify({ slate: { after_ms: 1500, alert_after_s: 60 } }),
    });
    await app.request(`/api/channels/${id}/slate`, { method: "POST", body: JSON.stringify({ on: true }) });
    await page.goto(`${base}/channels/${id}/edit`);
    expect(await page.getByLabel("Slate after (ms)").inputValue()).toBe("1500");
    await page.getByLabel("Slate after (ms)").fill("2000");
    await page.getByRole("button", { name: "Save" }).click();
    await page.waitForURL(`${base}/channels/${id}`);
    expect(await slateOf(id)).toMatchObject({ after_ms: 2000, alert_after_s: 60, manual: true });

    await page.goto(`${base}/channels/${id}/edit`);
    await page.getByLabel("Slate after (ms)").fill("");
    await page.getByRole("button", { name: "Save" }).click();
    await page.waitForURL(`${base}/channels/${id}`);
    expect(await slateOf(id)).toBeNull();
    expect(await slateText(page)).toContain("No slate");
    await page.context().close();
  });

  it("a new channel from the form gets the slate's time; blank leaves it without one", async () => {
    const page = await pageAs(ADMIN_TOKEN);
    for (const [name, after] of [
      ["Form Slate", "800"],
      ["Form No Slate", ""],
    ] as const) {
      await page.goto(`${base}/channels/new`);
      await page.getByLabel("Name", { exact: true }).fill(name);
      await page
        .locator("fieldset")
        .first()
        .getByLabel("Port")
        .fill(String(await freeUdpPort()));
      await page.getByLabel("Slate after (ms)").fill(after);
      await page.getByRole("button", { name: "Save" }).click();
      await page.waitForURL(/\/channels\/[^/]+$/);
      const id = page.url().split("/").at(-1) ?? "";
      expect((await slateOf(id))?.after_ms ?? null, name).toBe(after === "" ? null : 800);
    }
    await page.context().close();
  });
});

describe("the SLATE badge", () => {
  const view = (slate: Partial<NonNullable<ChannelView["slate"]>> | null): ChannelView => ({
    id: "badge",
    name: "Badge",
    rtp_ip: "127.0.0.1",
    rtp_port: 5000,
    backup_rtp_ip: null,
    backup_rtp_port: null,
    rtp_allowed_sources: null,
    backup_rtp_allowed_sources: null,
    input_url: null,
    backup_input_url: null,
    redundancy: null,
    status: "running",
    desired: "running",
    uptime: 30,
    error: null,
    worker: 0,
    input_bitrate_bps: 0,
    active_input: "primary",
    input: "lost",
    failovers: 0,
    last_switch: null,
    failovers_by_reason: { silence: 0, rule: 0, operator: 0, primary_restored: 0 },
    inputs: [],
    cues: { total: 0, last_at: null, last: null, by_command: {}, by_segmentation_type: {} },
    expect_cues_within_s: null,
    slate:
      slate === null
        ? null
        : {
            after_ms: 1000,
            alert_after_s: 300,
            manual: false,
            scheduled: false,
            on_unhealthy: false,
            image: null,
            on: false,
            reason: null,
            since: null,
            seconds: 0,
            ready: true,
            preparing: false,
            format: "H.264 1280×720 25 fps, AAC 48 kHz stereo",
            problem: null,
            ...slate,
          },
    created_at: "2026-01-01T00:00:00.000Z",
    outputs: [],
  });
  const viewer = { name: "wall", role: "viewer" } as const;
  const badge = async (rendered: unknown) => {
    const text = String(await rendered);
    const found = /<span class="badge slate-badge" title="([^"]*)">(.*?)<\/span>/s.exec(text);
    return found === null
      ? null
      : { title: found[1] ?? "", words: (found[2] ?? "").replace(/<[^>]+>/g, "").replace(/\s+/g, " ") };
  };

  it("on the head and the tile while the outputs carry the slate, with the reason in words", async () => {
    const lost = view({ on: true, reason: "input_lost", since: "2026-01-01T10:00:05.000Z", seconds: 12 });
    for (const rendered of [channelHead(lost, viewer), channelTile(lost, viewer, null)]) {
      const found = await badge(rendered);
      expect(found?.words).toBe("SLATE · input lost");
      expect(found?.title).toContain("every input is silent since 10:00:05 UTC");
    }
    const hand = view({ on: true, reason: "manual", manual: true, since: "2026-01-01T10:00:05.000Z" });
    for (const rendered of [channelHead(hand, viewer), channelTile(hand, viewer, null)]) {
      expect((await badge(rendered))?.words).toBe("SLATE · by hand");
    }
    for (const off of [view({ on: false }), view({ on: false, manual: true }), view(null)]) {
      expect(await badge(channelHead(off, viewer))).toBeNull();
      expect(await badge(channelTile(off, viewer, null))).toBeNull();
    }
  });
});
