/**
 * Which of a real OpenID provider's JWTs (oidc-provider on 127.0.0.1) the API takes: access tokens only. The ID
 * token a person got by signing in is refused in words even where the API's audience was set to the client id
 * (the mistake Entra ID makes easy); with DISTRIBUTARY_OIDC_ACCESS_TOKEN_TYPE=at+jwt a token not typed at+jwt
 * is refused; a `sub` that is no non-empty string is refused; and a JWT in X-API-Key (which the docs keep for
 * local tokens) is refused in words, the same token as a bearer taken.
 */
import { importJWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, makeTestApp, type TestApp } from "../support/app.ts";
import { OIDC_AUDIENCE, OIDC_CLIENT_ID, startProvider, type TestProvider } from "../support/oidc.ts";

let provider: TestProvider;
/** Audience the API's own, any token type (the default). */
let plain: TestApp;
/** Audience the client id, as a mistaken setting would have it. */
let clientAudience: TestApp;
/** DISTRIBUTARY_OIDC_ACCESS_TOKEN_TYPE=at+jwt. */
let typed: TestApp;

const rules = [
  { claim: "groups", equals: "tv-ops-eu", role: "operator", channels: "*" },
  { claim: "sub", equals: "eve", role: "operator", channels: "*" },
];

beforeAll(async () => {
  provider = await startProvider("http://127.0.0.1:9");
  const settings = provider.settings("http://127.0.0.1:9");
  plain = await makeTestApp(undefined, undefined, settings);
  clientAudience = await makeTestApp(undefined, undefined, {
    ...settings,
    DISTRIBUTARY_OIDC_AUDIENCE: OIDC_CLIENT_ID,
  });
  typed = await makeTestApp(undefined, undefined, {
    ...settings,
    DISTRIBUTARY_OIDC_ACCESS_TOKEN_TYPE: "at+jwt",
  });
  for (const app of [plain, clientAudience, typed]) {
    const put = await app.request("/api/access/rules", { method: "PUT", body: JSON.stringify({ rules }) });
    expect(put.status, await put.clone().text()).toBe(200);
  }
}, 30_000);
afterAll(async () => {
  for (const app of [plain, clientAudience, typed]) await app?.close();
  await provider?.close();
});

/** A valid token signed with the provider's own key, its header's `typ` and its claims as given. */
const signedAsProvider = async (typ: string | undefined, claims: Record<string, unknown>) => {
  const key = provider.privateKey();
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ groups: ["tv-ops-eu"], sub: "robot-eu", ...claims })
    .setProtectedHeader({ alg: "RS256", kid: String(key.kid), ...(typ === undefined ? {} : { typ }) })
    .setIssuer(provider.issuer)
    .setAudience(typeof claims.aud === "string" ? claims.aud : OIDC_AUDIENCE)
    .setIssuedAt(now - 10)
    .setExpirationTime(now + 120)
    .sign(await importJWK(key, "RS256"));
};

/** The answer to `token` on the channel list: its status and the problem's detail (or "taken"). */
const answerTo = async (app: TestApp, token: string, header: "bearer" | "x-api-key" = "bearer") => {
  const answer = await app.request("/api/channels", {
    token: header === "bearer" ? token : null,
    headers: header === "x-api-key" ? { "x-api-key": token } : {},
  });
  const body = await json(answer);
  return {
    status: answer.status,
    detail: answer.status === 200 ? "taken" : body.detail,
    header: answer.headers.get("www-authenticate"),
  };
};

describe("the API's JWTs", () => {
  it("refuse the ID token of a person's sign-in, even with the client id as the audience", async () => {
    const idToken = await provider.idToken("eve");
    const claims = JSON.parse(Buffer.from(idToken.split(".")[1] ?? "", "base64url").toString()) as Record<
      string,
      unknown
    >;
    expect(claims).toMatchObject({ sub: "eve", aud: OIDC_CLIENT_ID, nonce: "test-nonce" });
    const refused = await answerTo(clientAudience, idToken);
    expect(refused.status).toBe(401);
    expect(refused.detail).toBe(
      "the token is an ID token (it carries nonce): the API takes the provider's access tokens for it, not the ID token of a sign-in",
    );
    expect(refused.header).toContain('error="invalid_token"');
    // Without its nonce, an unscoped token meant for the client id is still an ID token.
    const bare = await signedAsProvider("JWT", { aud: OIDC_CLIENT_ID, sub: "eve" });
    expect(await answerTo(clientAudience, bare)).toMatchObject({
      status: 401,
      detail: `the token is an ID token (meant for the client ${OIDC_CLIENT_ID}, with no scope): the API takes the provider's access tokens for it, not the ID token of a sign-in`,
    });
    // The desk's access token is taken there, and the ID token is refused by the right audience too.
    expect((await answerTo(plain, idToken)).status).toBe(401);
    expect((await answerTo(plain, await provider.robotToken("robot-eu"))).status).toBe(200);
  });

  it("refuse a token not typed at+jwt where that is required, and take the provider's own", async () => {
    const robot = await provider.robotToken("robot-eu");
    const header = JSON.parse(Buffer.from(robot.split(".")[0] ?? "", "base64url").toString()) as Record<
      string,
      unknown
    >;
    expect(header.typ).toBe("at+jwt");
    expect((await answerTo(typed, robot)).status).toBe(200);
    expect((await answerTo(typed, await signedAsProvider("application/at+jwt", {}))).status).toBe(200);
    for (const typ of ["JWT", undefined]) {
      expect(await answerTo(typed, await signedAsProvider(typ, {}))).toMatchObject({
        status: 401,
        detail: `the token's type is ${JSON.stringify(typ ?? null)}, not at+jwt: the API takes only access tokens typed at+jwt (DISTRIBUTARY_OIDC_ACCESS_TOKEN_TYPE)`,
      });
    }
    // Without the setting, an access token typed JWT (as Entra ID and Keycloak type theirs) is taken.
    expect((await answerTo(plain, await signedAsProvider("JWT", { scope: "api" }))).status).toBe(200);
  });

  it("refuse a sub that is no non-empty string", async () => {
    for (const sub of [12345, "", ["robot-eu"], { id: "robot-eu" }, true]) {
      expect([sub, await answerTo(plain, await signedAsProvider("at+jwt", { sub }))]).toMatchObject([
        sub,
        { status: 401 },
      ]);
    }
    expect(await answerTo(plain, await signedAsProvider("at+jwt", { sub: 12345 }))).toMatchObject({
      detail: expect.stringMatching(/sub/),
    });
    expect((await answerTo(plain, await signedAsProvider("at+jwt", { sub: "robot-eu" }))).status).toBe(200);
  });

  it("refuse a JWT in X-API-Key, in words, and take it as a bearer token", async () => {
    const robot = await provider.robotToken("robot-eu");
    expect(await answerTo(plain, robot, "x-api-key")).toMatchObject({
      status: 401,
      detail:
        "the token is not valid here: a JWT is taken only in the Authorization header, never in X-API-Key (which is for local tokens)",
    });
    expect((await answerTo(plain, robot)).status).toBe(200);
    // A local token in X-API-Key works as before.
    const local = await plain.request("/api/channels", {
      token: null,
      headers: { "x-api-key": "test-admin-token-0123456789abcdef" },
    });
    expect(local.status).toBe(200);
  });
});
