/**
 * Sign-on in a fleet: two real nodes (`bin/distributary serve`, one PostgreSQL) and a real OpenID provider
 * (oidc-provider on 127.0.0.1). A person signed in through node a is signed in on node b too (the session is in
 * the database, b reads it), and signing out on b ends it on a. A desk's JWT sent to a, about a channel b holds,
 * is forwarded with it and checked again by b, whose audit row names the desk's subject and issuer. A sign-in
 * begun on a may come back to b: its signed cookie is signed with a key the nodes share.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeUdpPort, json } from "../support/app.ts";
import { launchChromium, newContext } from "../support/browser.ts";
import { useFleetNodes } from "../support/fleet-nodes.ts";
import { startProvider, type TestProvider } from "../support/oidc.ts";

const fleet = useFleetNodes({
  dbPort: 18853,
  ports: { a: 18805, b: 18806 },
  env: { DISTRIBUTARY_THUMBNAILS: "off" },
});
const { api, base, until } = fleet;
let provider: TestProvider;
let browser: Browser;

beforeAll(async () => {
  // Browsers reach the fleet at a's address (a load balancer's, in service): the provider sends them back there.
  provider = await startProvider(base("a"));
  const env = provider.settings(base("a"));
  await fleet.start("a", env);
  await fleet.start("b", env);
  const rules = [{ claim: "groups", equals: "tv-ops-eu", role: "operator", channels: { tags: ["eu"] } }];
  const put = await api("a", "/api/access/rules", { method: "PUT", body: JSON.stringify({ rules }) });
  expect(put.status, await put.clone().text()).toBe(200);
  const body = JSON.stringify({
    id: "eu-b",
    name: "EU on b",
    rtp_ip: "127.0.0.1",
    rtp_port: await freeUdpPort(),
    nodes: ["b"],
    tags: ["eu"],
  });
  expect((await api("a", "/api/channels", { method: "POST", body })).status).toBe(201);
  expect((await api("a", "/api/channels/eu-b/start", { method: "POST" })).status).toBe(200);
  browser = await launchChromium();
}, 90_000);
afterAll(async () => {
  await browser?.close();
  await provider?.close();
});

describe("sign-on in a fleet", () => {
  it("serves a session made on a from b, and ends it on both when signed out on b", async () => {
    const { context } = await newContext(browser);
    const page = await context.newPage();
    await page.goto(`${base("a")}/login`);
    await page.getByRole("link", { name: /^Sign in with/ }).click();
    await page.locator('input[name="login"]').fill("eve");
    await page.locator('input[name="password"]').fill("any password");
    await page.getByRole("button", { name: "Sign-in" }).click();
    await page.getByRole("button", { name: "Continue" }).click();
    await page.waitForURL(`${base("a")}/`);
    await expect.poll(() => page.locator(".who").textContent()).toBe("Eve Operator · operator");
    const [row] = await fleet
      .pg()
      .admin<{ subject: string; n: number }>(
        "select subject, count(*)::int as n from person_sessions group by subject",
      );
    expect(row).toEqual({ subject: "eve", n: 1 });

    // Cookies do not tell ports apart: the browser sends a's session to b, which finds it in the database.
    await page.goto(`${base("b")}/`);
    await expect.poll(() => page.locator(".who").textContent()).toBe("Eve Operator · operator");
    expect(await page.locator("#tile-eu-b").count()).toBe(1);

    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("button", { name: "Yes, sign me out" }).click();
    await page.waitForURL(`${base("a")}/login`);
    expect(await fleet.pg().admin("select subject from person_sessions")).toEqual([]);
    await page.goto(`${base("a")}/`);
    await page.waitForURL(`${base("a")}/login?next=%2F`);
    await context.close();
  }, 60_000);

  it("takes a sign-in begun on a when the provider sends the browser back to b (one signing key)", async () => {
    const login = await fetch(`${base("a")}/auth/login?next=%2Fevents`, { redirect: "manual" });
    expect(login.status).toBe(302);
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    expect(cookie).toMatch(/^dst_signin=/);
    // The provider's refusal, sent back to b: b reads a's cookie (a 403 naming the provider's error).
    const back = await fetch(`${base("b")}/auth/callback?error=access_denied&error_description=no`, {
      headers: { cookie },
    });
    expect(back.status).toBe(403);
    expect(await back.text()).toContain("The identity provider refused the sign-in: no.");
    // A cookie neither node made is refused by both.
    const [name, value = ""] = cookie.split("=");
    const [body = "", ...rest] = value.split(".");
    const transaction = JSON.parse(Buffer.from(body, "base64url").toString()) as Record<string, string>;
    const changed = Buffer.from(JSON.stringify({ ...transaction, next: "/settings" })).toString("base64url");
    const forged = `${name}=${[changed, ...rest].join(".")}`;
    for (const node of ["a", "b"] as const) {
      const refused = await fetch(`${base(node)}/auth/callback?error=access_denied`, {
        headers: { cookie: forged },
      });
      expect([node, refused.status]).toEqual([node, 400]);
    }
  });

  it("checks a forwarded JWT again on the holder, whose audit row names the desk", async () => {
    const token = await provider.robotToken("robot-eu");
    await until("b to hold eu-b", async () => {
      const channel = await json(await api("a", "/api/channels/eu-b"));
      return (channel.fleet as { holder?: string } | undefined)?.holder === "b";
    });
    const added = await api("a", "/api/channels/eu-b/outputs", {
      method: "POST",
      token,
      body: JSON.stringify({ id: "desk-out", name: "Desk", protocol: "udp", url: "udp://127.0.0.1:19998" }),
    });
    expect(added.status, await added.clone().text()).toBe(201);
    const rows = await fleet.pg().admin<Record<string, string>>(
      `select node, actor, actor_via, actor_subject, actor_issuer from audit
       where channel = 'eu-b' and action = 'channel.update' order by id`,
    );
    expect(rows.at(-1)).toEqual({
      node: "b",
      actor: "robot-eu",
      actor_via: "jwt",
      actor_subject: "robot-eu",
      actor_issuer: provider.issuer,
    });
  }, 30_000);
});
