/**
 * Signing in to the pages through a real OpenID provider (oidc-provider on 127.0.0.1) in Chromium: the login
 * page offers "Sign in with …" beside the token form; the provider's login page, then back through the
 * callback (code + PKCE S256, state, nonce) to the overview, where a person of the EU desk (groups tv-ops-eu,
 * a rule giving operator on tag eu) sees only the eu channels and their name in the header; signing out ends
 * the session here and at the provider (the next sign-in asks for the login again). A person no rule gives a
 * role is told so in words and gets no session. Every outcome is audited with the subject and counted.
 */
import { Effect } from "effect";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";
import { launchChromium, newContext, screenshot } from "../support/browser.ts";
import { startProvider, type TestProvider } from "../support/oidc.ts";
import { freeTcpPort } from "../support/peers.ts";

let provider: TestProvider;
let app: TestApp;
let base = "";
let browser: Browser;

beforeAll(async () => {
  const port = await Effect.runPromise(freeTcpPort);
  base = `http://127.0.0.1:${port}`;
  provider = await startProvider(base);
  app = await makeTestApp(undefined, undefined, provider.settings(base));
  await app.listen(port);
  for (const [id, tags] of [
    ["eu-news", ["eu"]],
    ["eu-sport", ["eu", "sport"]],
    ["us-news", ["us"]],
  ] as const) {
    const body = JSON.stringify({ id, name: id, rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort(), tags });
    expect((await app.request("/api/channels", { method: "POST", body })).status).toBe(201);
  }
  const rules = [
    { claim: "groups", equals: "tv-ops-eu", role: "operator", channels: { tags: ["eu"] } },
    { claim: "groups", equals: "tv-admins", role: "admin", channels: "*" },
  ];
  const put = await app.request("/api/access/rules", { method: "PUT", body: JSON.stringify({ rules }) });
  expect(put.status).toBe(200);
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await app?.close();
  await provider?.close();
});

/** From the service's login page through the provider's: signed in (or refused) as `login`. */
const signIn = async (page: Page, login: string) => {
  await page.goto(`${base}/`);
  await page.getByRole("link", { name: `Sign in with ${new URL(provider.issuer).host}` }).click();
  await page.waitForURL(`${provider.issuer}/**`);
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill("any password");
  await page.getByRole("button", { name: "Sign-in" }).click();
  // The provider asks once for consent to share the claims.
  await page.getByRole("button", { name: "Continue" }).click();
  await page.waitForURL(`${base}/**`);
};

/** The audit events as lines: action | actor, how, subject, issuer | detail. */
const auditLines = async () =>
  (
    (await json(await app.request("/api/events?type=api_change"))).events as Array<Record<string, unknown>>
  ).map(
    (event) =>
      `${event.action} | ${event.actor}, ${event.actor_via}, ${event.actor_subject}, ${event.actor_issuer} | ${event.detail}`,
  );

describe("sign-on in Chromium", () => {
  it("refuses a person no access rule gives a role, in words, with no session", async () => {
    const { context } = await newContext(browser);
    const page = await context.newPage();
    await signIn(page, "nemo");
    await expect
      .poll(() => page.locator("#token-error").textContent())
      .toBe(
        "signed in as Nemo Nobody, but no access rule gives you a role. Ask an admin for an access rule.",
      );
    expect((await context.cookies()).map((cookie) => cookie.name)).not.toContain("dst_session");
    expect(await auditLines()).toContainEqual(
      `auth.refused | Nemo Nobody, session, nemo, ${provider.issuer} | sign-in of nemo at ${provider.issuer} (groups staff) refused: signed in as Nemo Nobody, but no access rule gives you a role`,
    );
    await context.close();
  });

  it("signs an EU operator in with code + PKCE, shows only the eu channels, and signs out here and there", async () => {
    const { context } = await newContext(browser);
    const page = await context.newPage();
    await signIn(page, "eve");
    await page.waitForURL(`${base}/`);
    await expect.poll(() => page.locator(".who").textContent()).toBe("Eve Operator · operator");
    const tiles = await page.locator("[id^=tile-]").evaluateAll((nodes) => nodes.map((node) => node.id));
    expect(tiles.sort()).toEqual(["tile-eu-news", "tile-eu-sport"]);
    await screenshot(page, "sign-on-eu-operator");
    const cookie = (await context.cookies()).find((candidate) => candidate.name === "dst_session");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Lax" });
    expect(await auditLines()).toContainEqual(
      `auth.sign_in | Eve Operator, session, eve, ${provider.issuer} | Eve Operator (eve at ${provider.issuer}; groups tv-ops-eu, staff) signed in as operator`,
    );

    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("button", { name: "Yes, sign me out" }).click();
    await page.waitForURL(`${base}/login`);
    expect(await auditLines()).toContainEqual(
      `auth.sign_out | Eve Operator, session, eve, ${provider.issuer} | eve at ${provider.issuer} signed out`,
    );
    // Gone here: the old cookie opens nothing.
    const stale = await app.request("/", {
      token: null,
      headers: { cookie: `dst_session=${cookie?.value}` },
      redirect: "manual",
    });
    expect(stale.headers.get("location")).toBe("/login?next=%2F");
    // Gone at the provider: signing in again asks for the login again.
    await page.getByRole("link", { name: /^Sign in with/ }).click();
    await expect.poll(() => page.locator('input[name="login"]').count()).toBe(1);
    await context.close();
  });

  it("counts the sign-ins by outcome", async () => {
    const text = await (await app.request("/metrics")).text();
    expect(text).toContain('distributary_auth_logins_total{outcome="success"} 1');
    expect(text).toContain('distributary_auth_logins_total{outcome="no_role"} 1');
    expect(text).toContain('distributary_auth_logins_total{outcome="failed"} 0');
  });
});
