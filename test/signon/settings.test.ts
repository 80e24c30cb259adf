/**
 * The OIDC settings: none given changes nothing; given together they are taken; a bad one stops the service's
 * start with the reason in words (an http issuer off loopback, a missing client id or public URL, both secrets,
 * scopes without openid, a part set without the issuer); the client's secret is masked wherever it would show.
 */
import { Effect, Either, Option, Redacted } from "effect";
import { describe, expect, it } from "vitest";
import { maskKnownSecrets } from "../../src/effects/config/secrets.ts";
import { checkOidcSettings } from "../../src/effects/config/settings.ts";
import { makeTestApp } from "../support/app.ts";

const none = Option.none();
const given = (values: Partial<Record<string, string>>) => ({
  issuer: Option.fromNullable(values.issuer),
  clientId: Option.fromNullable(values.clientId),
  clientSecret: Option.map(Option.fromNullable(values.clientSecret), Redacted.make),
  clientSecretFile: Option.fromNullable(values.clientSecretFile),
  publicUrl: Option.fromNullable(values.publicUrl),
  scopes: Option.fromNullable(values.scopes),
  audience: Option.fromNullable(values.audience),
  rolesClaim: Option.fromNullable(values.rolesClaim),
  accessTokenType: Option.fromNullable(values.accessTokenType),
});
const good = {
  issuer: "https://id.example.com/realms/tv",
  clientId: "distributary",
  publicUrl: "https://tv.example.com/",
};
const refusal = (values: Partial<Record<string, string>>) => {
  const checked = checkOidcSettings(given(values));
  return Either.isLeft(checked) ? checked.left : "taken";
};

describe("the OIDC settings", () => {
  it("are none when none is given", () => {
    expect(checkOidcSettings(given({}))).toEqual(Either.right(none));
  });

  it("take the defaults beside the three that are needed", () => {
    const checked = checkOidcSettings(given(good));
    const settings = Option.getOrThrow(Either.getOrThrow(checked));
    expect(settings.issuer.href).toBe("https://id.example.com/realms/tv");
    expect(settings.publicUrl).toBe("https://tv.example.com");
    expect(settings.scopes).toBe("openid profile email");
    expect(settings.rolesClaim).toBe("groups");
    expect(Option.isNone(settings.audience)).toBe(true);
    expect(settings.accessTokenType).toBe("any");
  });

  it("take at+jwt or any as the access tokens' type, nothing else", () => {
    expect(refusal({ ...good, accessTokenType: "at+jwt" })).toBe("taken");
    expect(refusal({ ...good, accessTokenType: "JWT" })).toBe(
      'DISTRIBUTARY_OIDC_ACCESS_TOKEN_TYPE must be at+jwt (the API takes only access tokens typed so) or any (by default); got "JWT"',
    );
  });

  it("take an http issuer on loopback only", () => {
    expect(refusal({ ...good, issuer: "http://127.0.0.1:9000" })).toBe("taken");
    expect(refusal({ ...good, issuer: "http://localhost:9000/" })).toBe("taken");
    expect(refusal({ ...good, issuer: "http://id.example.com" })).toMatch(
      /DISTRIBUTARY_OIDC_ISSUER must be the provider's https:\/\/ issuer URL \(http:\/\/ only for a provider on this host's loopback\)/,
    );
    expect(refusal({ ...good, issuer: "id.example.com" })).toMatch(/got "id.example.com"/);
  });

  it("refuse what is missing or contradicts, in words", () => {
    expect(refusal({ ...good, clientId: undefined })).toMatch(/DISTRIBUTARY_OIDC_CLIENT_ID must be set/);
    expect(refusal({ ...good, publicUrl: undefined })).toMatch(/DISTRIBUTARY_OIDC_PUBLIC_URL must be/);
    expect(refusal({ ...good, publicUrl: "ftp://tv" })).toMatch(/got "ftp:\/\/tv"/);
    expect(refusal({ ...good, clientSecret: "s3cret-value", clientSecretFile: "/run/secret" })).toMatch(
      /not both/,
    );
    expect(refusal({ ...good, scopes: "profile email" })).toMatch(/must include openid/);
    expect(refusal({ clientId: "distributary", audience: "api" })).toBe(
      "DISTRIBUTARY_OIDC_ISSUER is not set, but other DISTRIBUTARY_OIDC_ settings are (DISTRIBUTARY_OIDC_CLIENT_ID, DISTRIBUTARY_OIDC_AUDIENCE): set the issuer too, or none of them",
    );
  });

  it("stop the service's start with the reason", async () => {
    const started = await Effect.runPromise(
      Effect.either(
        Effect.tryPromise(() =>
          makeTestApp(undefined, undefined, {
            DISTRIBUTARY_OIDC_ISSUER: "http://id.example.com",
            DISTRIBUTARY_OIDC_CLIENT_ID: "distributary",
            DISTRIBUTARY_OIDC_PUBLIC_URL: "https://tv.example.com",
          }),
        ),
      ),
    );
    expect(Either.isLeft(started) ? String(started.left.cause) : "started").toMatch(
      /DISTRIBUTARY_OIDC_ISSUER must be the provider's https:\/\/ issuer URL/,
    );
  });

  it("keep the client's secret masked once the service holds it", async () => {
    const secret = "oidc-client-secret-4f9a2c7e1b";
    const app = await makeTestApp(undefined, undefined, {
      ...Object.fromEntries(
        Object.entries({ ISSUER: good.issuer, CLIENT_ID: good.clientId, PUBLIC_URL: good.publicUrl }).map(
          ([name, value]) => [`DISTRIBUTARY_OIDC_${name}`, value],
        ),
      ),
      DISTRIBUTARY_OIDC_CLIENT_SECRET: secret,
    });
    try {
      expect(maskKnownSecrets(`the provider refused client secret ${secret}`)).toBe(
        "the provider refused client secret ****",
      );
    } finally {
      await app.close();
    }
  });
});
