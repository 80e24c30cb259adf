/**
 * What anyone may send the sign-in without logging in, against a real OpenID provider (oidc-provider on
 * 127.0.0.1): 2,100 bare callbacks over HTTP leave a channel's events in /api/events (the refusals are recorded
 * at a few a minute per address, the rest counted; the node's events have a ring of their own); a provider's
 * error_description (from whoever made the URL) is kept short and printable; the sign-in's cookie is `__Host-`
 * over https and signed, so a cookie made or changed by anyone else is refused; and the login's `next` stays
 * on this service through the provider too.
 */
import { Effect } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";
import { startProvider, type TestProvider } from "../support/oidc.ts";
import { freeTcpPort } from "../support/peers.ts";

let provider: TestProvider;
let app: TestApp;
let base = "";

beforeAll(async () => {
  const port = await Effect.runPromise(freeTcpPort);
  base = `http://127.0.0.1:${port}`;
  provider = await startProvider(base);
  app = await makeTestApp(undefined, undefined, provider.settings(base));
  await app.listen(port);
  const body = JSON.stringify({
    id: "eu-news",
    name: "EU news",
    rtp_ip: "127.0.0.1",
    rtp_port: await freeUdpPort(),
  });
  expect((await app.request("/api/channels", { method: "POST", body })).status).toBe(201);
  expect((await app.request("/api/channels/eu-news/start", { method: "POST" })).status).toBe(200);
  expect((await app.request("/api/channels/eu-news/stop", { method: "POST" })).status).toBe(200);
}, 30_000);
afterAll(async () => {
  await app?.close();
  await provider?.close();
});

type Event = Record<string, unknown>;
const events = async (query: string) =>
  (await json(await app.request(`/api/events?${query}`))).events as Array<Event>;

/** The sign-in's cookie as /auth/login sets it, "name=value", for a browser reaching the service at `origin`. */
const signInCookie = async (origin = base, next = "/") => {
  const login = await app.request(`${origin}/auth/login?next=${encodeURIComponent(next)}`, {
    token: null,
    redirect: "manual",
  });
  expect(login.status).toBe(302);
  return login.headers.get("set-cookie") ?? "";
};

describe("refused sign-ins of callers nobody knows", () => {
  it("2,100 bare callbacks leave a channel's events, and the audit trail, in /api/events", async () => {
    const channelEvents = (await events("channel=eu-news&limit=2000")).map((event) => event.type);
    expect(channelEvents).toEqual(
      expect.arrayContaining(["api_change", "channel_started", "channel_stopped"]),
    );
    const began = Date.now();
    let sent = 0;
    const statuses = new Map<number, number>();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (sent < 2100) {
          sent += 1;
          const answer = await fetch(`${base}/auth/callback`);
          await answer.arrayBuffer();
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        }
      }),
    );
    expect(Object.fromEntries(statuses)).toEqual({ 400: 2100 });

    // The channel's own history is whole, and the merged list still has its events and the changes made to it.
    expect((await events("channel=eu-news&limit=2000")).map((event) => event.type)).toEqual(channelEvents);
    const everything = await events("limit=2000");
    expect(everything.filter((event) => event.channel === "eu-news").map((event) => event.type)).toEqual(
      channelEvents,
    );
    expect(
      (await events("type=api_change&limit=2000"))
        .filter((event) => event.channel === "eu-news")
        .map((event) => event.action),
    ).toEqual(["channel.create", "channel.start", "channel.stop"]);
    // Merged in order.
    const seqs = everything.map((event) => Number(event.seq));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));

    // A few refusals recorded, the rest counted.
    const refused = everything.filter((event) => event.action === "auth.refused");
    expect(refused.length).toBeGreaterThan(0);
    // Ten at once, then one each 6 s of the flood.
    expect(refused.length).toBeLessThanOrEqual(10 + Math.ceil((Date.now() - began) / 6000));
    expect(refused[0]?.detail).toBe(
      "a callback came without a sign-in started here (or over 10 minutes old)",
    );
    const metrics = await (await app.request("/metrics")).text();
    expect(metrics).toContain(`distributary_auth_refusals_unrecorded_total ${2100 - refused.length}`);
    expect(metrics).toContain('distributary_auth_logins_total{outcome="failed"} 2100');
  });

  it("keeps a provider's error_description short and printable", async () => {
    const cookie = (await signInCookie()).split(";")[0] ?? "";
    const description = `nope\u001b[31m\r\nFAKE LINE\u0000\u202e${"x".repeat(100_000)}`;
    const answer = await app.request(
      `/auth/callback?${new URLSearchParams({ error: "access_denied", error_description: description })}`,
      // In process, without a socket: another address than the flood's (which spent its records).
      { token: null, headers: { cookie } },
    );
    expect(answer.status).toBe(403);
    const page = await answer.text();
    expect(page).toContain("The identity provider refused the sign-in: nope [31m FAKE LINE ");
    expect(page).not.toContain("x".repeat(200));
    const detail = String(
      (await events("type=api_change&limit=2000")).filter((event) => event.action === "auth.refused").at(-1)
        ?.detail,
    );
    const prefix = `the provider ${provider.issuer}/ refused the sign-in: `;
    expect(detail.startsWith(prefix), detail.slice(0, 300)).toBe(true);
    const kept = detail.slice(prefix.length);
    expect(kept).toMatch(/^nope \[31m FAKE LINE x+…$/);
    expect(Array.from(kept)).toHaveLength(200);
    expect(app.logs.join("")).not.toContain("x".repeat(201));
  });
});

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

describe("the sign-in's cookie", () => {
  it("is __Host- over https: Secure, Path=/, no Domain, HttpOnly, for 10 minutes", async () => {
    const cookie = await signInCookie("https://distributary.test");
    expect(cookie).toMatch(
      /^__Host-dst_signin=[\w-]+\.[\da-z]+\.[\w-]+; Max-Age=600; Path=\/; HttpOnly; Secure; SameSite=Lax$/,
    );
  });

  it("is signed: one changed or made by anyone else is refused", async () => {
    const cookie = (await signInCookie("https://distributary.test")).split(";")[0] ?? "";
    const [name, value = ""] = cookie.split("=");
    const [body = "", ...rest] = value.split(".");
    const mac = rest.at(-1) ?? "";
    const respelled = `${mac.slice(0, -1)}${ALPHABET[ALPHABET.indexOf(mac.at(-1) ?? "") ^ 1]}`;
    expect(Buffer.from(respelled, "base64url")).toEqual(Buffer.from(mac, "base64url"));
    const transaction = JSON.parse(Buffer.from(body, "base64url").toString()) as Record<string, string>;
    expect(transaction.next).toBe("/");
    const changed = Buffer.from(JSON.stringify({ ...transaction, next: "/settings" })).toString("base64url");
    const made = Buffer.from(
      JSON.stringify({ verifier: "v".repeat(43), state: "s", nonce: "n", next: "/" }),
    ).toString("base64url");
    for (const forged of [
      `${name}=${[changed, ...rest].join(".")}`,
      `${name}=${made}`,
      `dst_signin=${made}`,
      `${name}=${value.slice(0, -2)}`,
      // The same bytes in another spelling: base64url's last character has two spare bits.
      `${name}=${value.slice(0, -1)}${ALPHABET[ALPHABET.indexOf(value.at(-1) ?? "") ^ 1]}`,
    ]) {
      const answer = await app.request("https://distributary.test/auth/callback?error=access_denied", {
        token: null,
        headers: { cookie: forged },
      });
      expect([answer.status, forged]).toEqual([400, forged]);
      expect(await answer.text()).toContain(
        "This sign-in was not started here, or took over 10 minutes: sign in again.",
      );
    }
    // The cookie as made is taken: the provider's error is what is answered then.
    const taken = await app.request("https://distributary.test/auth/callback?error=access_denied", {
      token: null,
      headers: { cookie },
    });
    expect(taken.status).toBe(403);
  });

  it("carries only a next on this service through the provider", async () => {
    for (const next of ["/.//evil.example/x", "/%2e//evil.example", "//evil.example"]) {
      const cookie = await signInCookie(base, next);
      const value = /^dst_signin=([^;]+)/.exec(cookie)?.[1] ?? "";
      const transaction = JSON.parse(
        Buffer.from(value.split(".")[0] ?? "", "base64url").toString(),
      ) as Record<string, string>;
      expect([next, transaction.next]).toEqual([next, "/"]);
    }
  });
});
