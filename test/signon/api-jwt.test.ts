/**
 * The API's bearer JWTs from a real OpenID provider (oidc-provider on 127.0.0.1, test/support/oidc.ts): a
 * desk's token is its access rules' role on its channels only; a token the service must not take is a 401 whose
 * WWW-Authenticate and body say why in words — expired, meant for another audience, `alg: none`, HS256 signed
 * with the provider's public key as the secret — counted by reason in /metrics; a valid token no access rule
 * gives a role is a 403 in words; a local token works as before.
 * The provider's rotated key is taken after the key set is fetched again, at most once per cooldown.
 */
import { exportSPKI, importJWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeJwtVerifier } from "../../src/effects/control/jwt.ts";
import { eventually, freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";
import { OIDC_AUDIENCE, startProvider, type TestProvider } from "../support/oidc.ts";

let provider: TestProvider;
let app: TestApp;

beforeAll(async () => {
  provider = await startProvider("http://127.0.0.1:9");
  app = await makeTestApp(undefined, undefined, provider.settings("http://127.0.0.1:9"));
  const rules = [{ claim: "groups", equals: "tv-ops-eu", role: "operator", channels: { tags: ["eu"] } }];
  const put = await app.request("/api/access/rules", { method: "PUT", body: JSON.stringify({ rules }) });
  expect(put.status, await put.clone().text()).toBe(200);
  for (const [id, tags] of [
    ["eu-news", ["eu"]],
    ["us-news", ["us"]],
  ] as const) {
    const body = JSON.stringify({ id, name: id, rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort(), tags });
    expect((await app.request("/api/channels", { method: "POST", body })).status).toBe(201);
  }
}, 30_000);
afterAll(async () => {
  await app?.close();
  await provider?.close();
});

/** A token signed with the provider's own key, as it would sign one, with `claims` over a valid set. */
const signedAsProvider = async (claims: Record<string, unknown>) => {
  const key = provider.privateKey();
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ groups: ["tv-ops-eu"], ...claims })
    .setProtectedHeader({ alg: "RS256", kid: String(key.kid), typ: "at+jwt" })
    .setIssuer(provider.issuer)
    .setAudience(OIDC_AUDIENCE)
    .setSubject("robot-eu")
    .setIssuedAt(now - 600)
    .setExpirationTime(now - 120)
    .sign(await importJWK(key, "RS256"));
};

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** The refusal of `token`: its status, what WWW-Authenticate says, and the body's detail. */
const refusal = async (token: string) => {
  const answer = await app.request("/api/channels", { token });
  const body = await json(answer);
  return { status: answer.status, header: answer.headers.get("www-authenticate"), detail: body.detail };
};

describe("API JWTs", () => {
  it("give a desk its rules' role on its channels only", async () => {
    const token = await provider.robotToken("robot-eu");
    const eu = await app.request("/api/channels/eu-news", { token });
    expect(eu.status).toBe(200);
    expect((await json(eu)).id).toBe("eu-news");
    const started = await app.request("/api/channels/eu-news/start", { method: "POST", token });
    expect(started.status, await started.clone().text()).toBe(200);
    expect((await app.request("/api/channels/us-news", { token })).status).toBe(403);
    expect((await app.request("/api/tokens", { token })).status).toBe(403);
    const listed = (await json(await app.request("/api/channels", { token }))).channels as Array<{
      id: string;
    }>;
    expect(listed.map((channel) => channel.id)).toEqual(["eu-news"]);
    const audit = (await json(await app.request("/api/events?type=api_change"))).events as Array<
      Record<string, unknown>
    >;
    expect(audit.filter((event) => event.action === "channel.start")).toMatchObject([
      { actor: "robot-eu", actor_via: "jwt", actor_subject: "robot-eu", actor_issuer: provider.issuer },
    ]);
    await app.request("/api/channels/eu-news/stop", { method: "POST" });
  });

  it("open a desk's HLS files, in the header, on its channels only", async () => {
    const token = await provider.robotToken("robot-eu");
    const eu = await app.request("/hls/eu-news/out/index.m3u8", { token });
    expect([eu.status, (await json(eu)).detail]).toEqual([404, "channel eu-news runs no HLS output out"]);
    expect((await app.request("/hls/us-news/out/index.m3u8", { token })).status).toBe(403);
  });

  it("keep a WebSocket opened with one open while the token is valid", async () => {
    const port = await app.listen();
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { authorization: `Bearer ${await provider.robotToken("robot-eu")}` },
    } as unknown as string[]);
    const messages: string[] = [];
    let closed: number | undefined;
    socket.onmessage = (event) => messages.push(String(event.data));
    socket.onclose = (event) => {
      closed = event.code;
    };
    await eventually("the first snapshot", () => (messages.length > 0 ? true : undefined));
    // A change sends every socket a message, each socket's token checked again first.
    const body = JSON.stringify({
      id: "eu-late",
      name: "eu-late",
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
      tags: ["eu"],
    });
    expect((await app.request("/api/channels", { method: "POST", body })).status).toBe(201);
    await eventually("a message after the change", () => (messages.length > 1 ? true : undefined));
    expect(closed).toBeUndefined();
    socket.close();
  });

  it("refuses an expired token in words, beyond the 30 s tolerance", async () => {
    expect(await refusal(await signedAsProvider({}))).toEqual({
      status: 401,
      header: 'Bearer realm="distributary", error="invalid_token", error_description="the token has expired"',
      detail: "the token has expired",
    });
  });

  it("refuses a token of the provider meant for another audience", async () => {
    const token = await provider.robotToken("robot-eu", "https://elsewhere.test/api");
    const refused = await refusal(token);
    expect(refused.status).toBe(401);
    expect(refused.detail).toBe(
      `the token is not meant for this service: its audience is not ${OIDC_AUDIENCE}`,
    );
    expect(refused.header).toContain('error="invalid_token"');
  });

  it("refuses alg none and HS256 signed with the provider's public key", async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: provider.issuer,
      aud: OIDC_AUDIENCE,
      sub: "robot-admin",
      groups: ["tv-admins"],
      iat: now,
      exp: now + 300,
    };
    const none = `${base64url({ alg: "none", typ: "JWT" })}.${base64url(claims)}.`;
    expect(await refusal(none)).toMatchObject({
      status: 401,
      detail:
        "the token's algorithm \"none\" is not allowed: only the provider's asymmetric signatures (RS*, PS*, ES*, EdDSA) are",
    });
    const publicPem = await exportSPKI(
      (await importJWK(provider.publicKey(), "RS256", { extractable: true })) as Parameters<
        typeof exportSPKI
      >[0],
    );
    const hs256 = await new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256", kid: String(provider.publicKey().kid) })
      .sign(new TextEncoder().encode(publicPem));
    const refused = await refusal(hs256);
    expect(refused.status).toBe(401);
    expect(refused.detail).toMatch(/^the token's algorithm "HS256" is not allowed/);
    expect(refused.header).toMatch(/error_description="the token's algorithm 'HS256' is not allowed/);
  });

  it("answers a valid token whose claims no rule matches with 403 in words", async () => {
    const answer = await app.request("/api/channels", { token: await provider.robotToken("robot-staff") });
    expect(answer.status).toBe(403);
    expect((await json(answer)).detail).toBe("signed in as robot-staff, but no access rule gives you a role");
  });

  it("counts the refusals by reason in /metrics", async () => {
    const text = await (await app.request("/metrics")).text();
    for (const [reason, count] of [
      ["expired", 1],
      ["audience", 1],
      ["algorithm", 2],
      ["signature", 0],
      ["no_role", 1],
    ] as const) {
      expect(text).toContain(`distributary_auth_jwt_rejected_total{reason="${reason}"} ${count}`);
    }
  });

  it("takes a local token as before", async () => {
    expect((await app.request("/api/tokens")).status).toBe(200);
  });

  // Last: it leaves this test client's address limited.
  it("counts refused JWTs with wrong tokens: past 10 in a minute, 429; a valid token still passes", async () => {
    const expired = await signedAsProvider({});
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 8; attempt++)
      statuses.push((await app.request("/api/channels", { token: expired })).status);
    // Four refusals came before this test: the eleventh is past the limit.
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401, 429, 429]);
    const limited = await app.request("/api/channels", { token: expired });
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    const robot = await provider.robotToken("robot-eu");
    expect((await app.request("/api/channels/eu-news", { token: robot })).status).toBe(200);
    expect((await app.request("/api/tokens")).status).toBe(200);
  });
});

describe("the provider's keys", () => {
  it("take a rotated key after one refetch, and a burst of unknown keys costs no more", async () => {
    const check = makeJwtVerifier({
      issuer: provider.issuer,
      audience: OIDC_AUDIENCE,
      jwksUri: new URL(`${provider.issuer}/jwks`),
      cooldownMs: 5_000,
    });
    const before = provider.requests("/jwks");
    expect(await check(await provider.robotToken("robot-eu"))).toMatchObject({ ok: true });
    expect(provider.requests("/jwks")).toBe(before + 1);
    await provider.rotateKeys();
    const rotated = await provider.robotToken("robot-eu");
    // Within the cooldown the key is unknown and the set is not fetched again, however often it is asked.
    const burst = await Promise.all(Array.from({ length: 20 }, () => check(rotated)));
    expect(new Set(burst.map((outcome) => (outcome.ok ? "taken" : outcome.words)))).toEqual(
      new Set(["the token was signed with a key the provider does not publish"]),
    );
    expect(provider.requests("/jwks")).toBe(before + 1);
    const accepted = await eventually(
      "the rotated key to be taken",
      async () => {
        const outcome = await check(rotated);
        return outcome.ok ? outcome : undefined;
      },
      15_000,
    );
    expect(accepted.claims.groups).toEqual(["tv-ops-eu"]);
    expect(provider.requests("/jwks")).toBe(before + 2);
  });
});
