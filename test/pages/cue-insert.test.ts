/**
 * "Insert a break" on the channel page, in a real headless Chromium: an operator signed in on a running channel
 * (a UDP stream flowing in, a UDP output) chooses a splice_insert of 12 s, accepts the browser's confirm, and
 * the cue log on the page shows the cue "inserted by" the operator's name; the cue reaches the UDP output with
 * the bytes the cue log keeps. A viewer sees no such form.
 */
import { Effect, Either, Exit, Scope } from "effect";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeSection } from "../../src/core/scte35/index.ts";
import { eventually, freeUdpPort, json, udpSource, useTestApp } from "../support/app.ts";
import { launchChromium, login, newContext, screenshot } from "../support/browser.ts";
import * as peers from "../support/peers.ts";

const app = useTestApp();
const scope = Effect.runSync(Scope.make());
const OPERATOR = "page desk";
const CHANNEL = "pagebreaks";
const PACKET = 188;
type Json = Record<string, unknown>;

let base = "";
let browser: Browser;
let sink: peers.UdpSink;
let source: { close: () => Promise<void> } | undefined;
const tokens = { operator: "", viewer: "" };

beforeAll(async () => {
  base = `http://127.0.0.1:${await app.listen()}`;
  browser = await launchChromium();
  for (const [role, name] of [
    ["operator", OPERATOR],
    ["viewer", "page viewer"],
  ] as const) {
    const created = await json(
      await app.request("/api/tokens", { method: "POST", body: JSON.stringify({ name, role }) }),
    );
    tokens[role] = String(created.token);
  }
  sink = await Effect.runPromise(Scope.extend(peers.udpSink, scope));
  const input = await freeUdpPort();
  const created = await app.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      id: CHANNEL,
      name: "Page breaks",
      rtp_ip: "127.0.0.1",
      rtp_port: input,
      outputs: [{ id: "out", name: "Out", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
    }),
  });
  expect(created.status).toBe(201);
  expect((await app.request(`/api/channels/${CHANNEL}/start`, { method: "POST" })).status).toBe(200);
  source = udpSource(input);
  // The stream's tables are known to the channel once its output has had a good part of it.
  await eventually("the stream at the output", () => (sink.totalBytes() > 200 * PACKET ? true : undefined));
}, 60_000);

afterAll(async () => {
  await source?.close();
  await browser?.close();
  await Effect.runPromise(Scope.close(scope, Exit.void));
});

const pageAs = async (token: string): Promise<{ page: Page; dialogs: string[] }> => {
  const { context } = await newContext(browser);
  const page = await context.newPage();
  const dialogs: string[] = [];
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    void dialog.accept();
  });
  await login(page, base, token);
  return { page, dialogs };
};

/** The SCTE-35 sections (table 0xFC) that start in a packet on `pid`: pointer_field, then the section. */
const sectionsOn = (ts: Uint8Array, pid: number): string[] => {
  const found: string[] = [];
  for (let at = 0; at + PACKET <= ts.length; at += PACKET) {
    const packetPid = (((ts[at + 1] ?? 0) & 0x1f) << 8) | (ts[at + 2] ?? 0);
    if (packetPid !== pid || ((ts[at + 1] ?? 0) & 0x40) === 0) continue;
    const start = ((ts[at + 3] ?? 0) & 0x20) !== 0 ? at + 5 + (ts[at + 4] ?? 0) : at + 4;
    const first = start + 1 + (ts[start] ?? 0);
    if (ts[first] !== 0xfc) continue;
    const length = 3 + ((((ts[first + 1] ?? 0) & 0x0f) << 8) | (ts[first + 2] ?? 0));
    // The section may go on into the PID's next packets: enough for the short cues here.
    if (first + length > at + PACKET) throw new Error(`a section of ${length} bytes spans packets`);
    found.push(Buffer.from(ts.subarray(first, first + length)).toString("base64"));
  }
  return found;
};

describe("the Insert break control on the channel page", () => {
  it("an operator inserts a 12 s splice_insert: the confirm is asked, the cue log shows it inserted by them, the UDP output gets it", async () => {
    const { page, dialogs } = await pageAs(tokens.operator);
    await page.goto(`${base}/channels/${CHANNEL}`);
    const form = page.locator("form.insert-break");
    await form.getByLabel("Break").selectOption("splice_insert");
    await form.getByLabel("Duration (s)").fill("12");
    await form.getByRole("button", { name: "Insert break" }).click();

    const mine = page.locator("#cue-log li", { hasText: `inserted by ${OPERATOR}` });
    await mine.first().waitFor({ state: "visible", timeout: 10_000 });
    expect(dialogs).toHaveLength(1);
    expect(dialogs[0]).toContain("Insert a break into Page breaks now?");
    expect(await mine.count()).toBe(1);
    const text = ((await mine.first().textContent()) ?? "").replace(/\s+/g, " ");
    expect(text).toContain("splice_insert");
    await screenshot(page, "cue-insert-page");

    const cues = (await json(await app.request(`/api/channels/${CHANNEL}/cues`))).cues as Json[];
    const operatorCues = cues.filter((cue) => cue.origin === "operator");
    expect(operatorCues).toHaveLength(1);
    const cue = operatorCues[0] as { pid: number; section_base64: string; by: string };
    expect(cue.by).toBe(OPERATOR);
    // What the form asked for: an immediate splice_insert out, 12 s.
    const decoded = decodeSection(Buffer.from(cue.section_base64, "base64"));
    if (Either.isLeft(decoded)) throw new Error("the cue log's section does not decode");
    const section = decoded.right;
    if (section.encrypted_packet || section.splice_command_type !== 0x05)
      throw new Error("not a splice_insert");
    expect(section.splice_command).toMatchObject({
      out_of_network_indicator: true,
      splice_immediate_flag: true,
      break_duration: { duration: 12 * 90_000 },
    });
    expect(text).toContain(String(section.splice_command.splice_event_id));

    await eventually("the cue at the UDP output", () =>
      sectionsOn(sink.bytes(), cue.pid).includes(cue.section_base64) ? true : undefined,
    );
    expect(sectionsOn(sink.bytes(), cue.pid).filter((s) => s === cue.section_base64)).toHaveLength(1);

    const audit = ((await json(await app.request("/api/events?type=api_change"))).events as Json[]).filter(
      (event) => event.action === "cue.insert",
    );
    expect(audit).toMatchObject([{ actor: OPERATOR }]);
    await page.context().close();
  });

  it("a viewer sees the cue log but no Insert break form", async () => {
    const { page } = await pageAs(tokens.viewer);
    await page.goto(`${base}/channels/${CHANNEL}`);
    await page.locator("#cues-title").waitFor();
    expect(await page.locator("form.insert-break").count()).toBe(0);
    await page.context().close();
  });

  it("an output's policy is said under its name, with what cannot apply; the cue log says who withheld a cue (light and dark, desktop and phone)", async () => {
    for (const output of [
      {
        id: "partner",
        name: "Partner",
        protocol: "udp",
        url: `udp://127.0.0.1:${sink.port + 1}`,
        policy: { scte35: "strip" },
      },
      {
        id: "other",
        name: "Other programme",
        protocol: "udp",
        url: `udp://127.0.0.1:${sink.port + 2}`,
        policy: { program: 7 },
      },
    ]) {
      const added = await app.request(`/api/channels/${CHANNEL}/outputs`, {
        method: "POST",
        body: JSON.stringify(output),
      });
      expect(added.status).toBe(201);
    }
    const inserted = await app.request(`/api/channels/${CHANNEL}/cues`, {
      method: "POST",
      body: JSON.stringify({ command: "time_signal", duration_s: 60 }),
    });
    expect(inserted.status).toBe(201);
    for (const [dark, width] of [
      [false, 1280],
      [true, 390],
      [false, 390],
      [true, 1280],
    ] as const) {
      const { context } = await newContext(browser, { dark, width });
      const page = await context.newPage();
      await login(page, base, tokens.operator);
      await page.goto(`${base}/channels/${CHANNEL}`);
      const partner = page.locator("#out-partner");
      await partner.locator(".policy").waitFor();
      expect((await partner.locator(".policy").textContent())?.replace(/\s+/g, " ")).toContain(
        "policy: SCTE-35 stripped",
      );
      const other = page.locator("#out-other");
      await other.locator(".policy-problem").waitFor();
      expect(await other.locator(".policy-problem").textContent()).toBe(
        "programme 7 is not in the input (it carries 1)",
      );
      const withheld = page.locator("#cue-log li .cue-withheld").first();
      // The programme filter keeps cues of the programme it takes: only the strip withheld this one.
      expect((await withheld.textContent())?.replace(/\s+/g, " ")).toBe("withheld from Partner (strip)");
      // Nothing wider than the screen.
      expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(width);
      await screenshot(page, `policy-${dark ? "dark" : "light"}-${width}`);
      await context.close();
    }
  });
});
