/**
 * A real OpenID provider on 127.0.0.1 for the sign-on tests: `oidc-provider` (a certified implementation) with
 * its development login page (any login, any password), people whose `groups` claims the access rules match,
 * the service's web client (code + PKCE, its callback and post-logout URIs) and one client-credentials client
 * per desk whose JWT access tokens carry that desk's groups for the API's audience. Its keys are made here, so
 * a test can rotate them (the provider starts again on the same port with a new key) or sign a token with
 * them as the provider would.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import Provider from "oidc-provider";

export const OIDC_CLIENT_ID = "distributary";
export const OIDC_CLIENT_SECRET = "oidc-test-client-secret-5d1c9e7a3f";
export const OIDC_AUDIENCE = "https://distributary.test/api";

/** The people who may sign in: a login (their subject), their name and their groups. */
export const PEOPLE: Readonly<
  Record<string, { readonly name: string; readonly groups: ReadonlyArray<string> }>
> = {
  eve: { name: "Eve Operator", groups: ["tv-ops-eu", "staff"] },
  ada: { name: "Ada Admin", groups: ["tv-admins"] },
  nemo: { name: "Nemo Nobody", groups: ["staff"] },
};

/** Client-credentials clients standing for a desk's automation: their id is their subject. */
export const ROBOTS: Readonly<Record<string, ReadonlyArray<string>>> = {
  "robot-eu": ["tv-ops-eu"],
  "robot-admin": ["tv-admins"],
  "robot-staff": ["staff"],
};
export const ROBOT_SECRET = "oidc-test-robot-secret-8b2e4f6a1c";

export interface TestProvider {
  readonly issuer: string;
  /** How many requests the provider had for `path` (its key set is at /jwks). */
  readonly requests: (path: string) => number;
  /** The provider's current signing key, private part included (for tokens a test signs as the provider). */
  readonly privateKey: () => JWK;
  readonly publicKey: () => JWK;
  /** A JWT access token for `robot`, for `resource` (the API's audience unless given). */
  readonly robotToken: (robot: string, resource?: string) => Promise<string>;
  /**
   * The ID token the provider gives the service's web client when `login` signs in (code + PKCE, nonce), got
   * as a browser and the service would, without either: what someone who signed in holds.
   */
  readonly idToken: (login: string) => Promise<string>;
  /** Starts the provider again on its port with a new signing key (its sessions are gone with the old one). */
  readonly rotateKeys: () => Promise<void>;
  /** The settings that point a service at this provider, with `publicUrl` as the service's address. */
  readonly settings: (publicUrl: string) => Record<string, string>;
  readonly close: () => Promise<void>;
}

let keyCount = 0;
const signingKey = async () => {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  keyCount += 1;
  return { ...(await exportJWK(privateKey)), kid: `test-key-${keyCount}`, alg: "RS256", use: "sig" };
};

const publicPart = ({ kty, n, e, kid, alg, use }: JWK): JWK => ({ kty, n, e, kid, alg, use });

/**
 * The provider; `redirectBase` is where the service will listen (its callback and post-logout URIs), known
 * before either starts.
 */
export const startProvider = async (redirectBase: string): Promise<TestProvider> => {
  let handler: (request: IncomingMessage, response: ServerResponse) => void = (_request, response) =>
    response.writeHead(503).end();
  const asked = new Map<string, number>();
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://provider").pathname;
    asked.set(path, (asked.get(path) ?? 0) + 1);
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let key = await signingKey();

  const build = () => {
    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: OIDC_CLIENT_ID,
          client_secret: OIDC_CLIENT_SECRET,
          redirect_uris: [`${redirectBase}/auth/callback`],
          post_logout_redirect_uris: [`${redirectBase}/login`],
          grant_types: ["authorization_code"],
          response_types: ["code"],
        },
        ...Object.keys(ROBOTS).map((client_id) => ({
          client_id,
          client_secret: ROBOT_SECRET,
          grant_types: ["client_credentials"],
          response_types: [],
          redirect_uris: [],
        })),
      ],
      jwks: { keys: [key] },
      claims: { openid: ["sub"], profile: ["name"], email: ["email"], groups: ["groups"] },
      scopes: ["openid", "profile", "email", "groups", "offline_access"],
      findAccount: (_ctx, sub) => {
        const person = PEOPLE[sub];
        return person === undefined
          ? undefined
          : {
              accountId: sub,
              claims: () => ({
                sub,
                name: person.name,
                email: `${sub}@example.test`,
                groups: [...person.groups],
              }),
            };
      },
      pkce: { required: () => true },
      cookies: { keys: ["oidc-test-cookie-key-0123456789"] },
      features: {
        devInteractions: { enabled: true },
        clientCredentials: { enabled: true },
        rpInitiatedLogout: { enabled: true },
        resourceIndicators: {
          enabled: true,
          // The web client's access token stays opaque (for userinfo); the robots' are the API's JWTs.
          defaultResource: (_ctx: unknown, client?: { clientId: string }) =>
            client?.clientId === OIDC_CLIENT_ID ? undefined : OIDC_AUDIENCE,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, resource: string) => ({
            scope: "api",
            audience: resource,
            accessTokenFormat: "jwt",
            accessTokenTTL: 300,
            jwt: { sign: { alg: "RS256" } },
          }),
        },
      },
      extraTokenClaims: (_ctx, token) => {
        const groups = "clientId" in token ? ROBOTS[String(token.clientId)] : undefined;
        return groups === undefined ? undefined : { groups: [...groups] };
      },
    });
    handler = provider.callback();
  };
  build();

  return {
    issuer,
    requests: (path) => asked.get(path) ?? 0,
    privateKey: () => key,
    publicKey: () => publicPart(key),
    robotToken: async (robot, resource = OIDC_AUDIENCE) => {
      const answer = await fetch(`${issuer}/token`, {
        method: "POST",
        headers: {
          authorization: `Basic ${Buffer.from(`${robot}:${ROBOT_SECRET}`).toString("base64")}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ grant_type: "client_credentials", resource, scope: "api" }),
      });
      const body = (await answer.json()) as { access_token?: string };
      if (body.access_token === undefined)
        throw new Error(`the provider gave no token: ${JSON.stringify(body)}`);
      return body.access_token;
    },
    idToken: async (login) => {
      const jar = new Map<string, string>();
      const go = async (url: string, form?: Record<string, string>) => {
        const answer = await fetch(new URL(url, issuer), {
          method: form === undefined ? "GET" : "POST",
          redirect: "manual",
          headers: {
            cookie: [...jar].map(([name, value]) => `${name}=${value}`).join("; "),
            ...(form === undefined ? {} : { "content-type": "application/x-www-form-urlencoded" }),
          },
          ...(form === undefined ? {} : { body: new URLSearchParams(form).toString() }),
        });
        for (const line of answer.headers.getSetCookie()) {
          const pair = line.split(";")[0] ?? "";
          jar.set(pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1));
        }
        return answer;
      };
      const redirectUri = `${redirectBase}/auth/callback`;
      const verifier = randomBytes(32).toString("base64url");
      let answer = await go(
        `/auth?${new URLSearchParams({
          client_id: OIDC_CLIENT_ID,
          response_type: "code",
          scope: "openid profile groups",
          redirect_uri: redirectUri,
          code_challenge: createHash("sha256").update(verifier).digest("base64url"),
          code_challenge_method: "S256",
          state: "test-state",
          nonce: "test-nonce",
        })}`,
      );
      // Through the provider's login and consent pages to the redirect back, whose code is exchanged here.
      for (let step = 0; step < 12; step++) {
        const location = answer.headers.get("location");
        if (location === null) throw new Error(`the provider answered ${answer.status} without a redirect`);
        if (location.startsWith(redirectUri)) {
          const code = new URL(location).searchParams.get("code");
          if (code === null) throw new Error(`the provider sent back no code: ${location}`);
          const tokens = await fetch(`${issuer}/token`, {
            method: "POST",
            headers: {
              authorization: `Basic ${Buffer.from(`${OIDC_CLIENT_ID}:${OIDC_CLIENT_SECRET}`).toString("base64")}`,
              "content-type": "application/x-www-form-urlencoded",
            },
            body: new URLSearchParams({
              grant_type: "authorization_code",
              code,
              redirect_uri: redirectUri,
              code_verifier: verifier,
            }),
          });
          const body = (await tokens.json()) as { id_token?: string };
          if (body.id_token === undefined) throw new Error(`no ID token: ${JSON.stringify(body)}`);
          return body.id_token;
        }
        const interaction = /^\/interaction\/([^/]+)$/.exec(new URL(location, issuer).pathname)?.[1];
        if (interaction === undefined) {
          answer = await go(location);
          continue;
        }
        const page = await (await go(location)).text();
        answer = await go(
          `/interaction/${interaction}`,
          page.includes('name="login"')
            ? { prompt: "login", login, password: "any password" }
            : { prompt: "consent" },
        );
      }
      throw new Error("the provider's sign-in did not come back to the service");
    },
    rotateKeys: async () => {
      key = await signingKey();
      build();
    },
    settings: (publicUrl) => ({
      DISTRIBUTARY_OIDC_ISSUER: issuer,
      DISTRIBUTARY_OIDC_CLIENT_ID: OIDC_CLIENT_ID,
      DISTRIBUTARY_OIDC_CLIENT_SECRET: OIDC_CLIENT_SECRET,
      DISTRIBUTARY_OIDC_PUBLIC_URL: publicUrl,
      DISTRIBUTARY_OIDC_SCOPES: "openid profile email groups",
      DISTRIBUTARY_OIDC_AUDIENCE: OIDC_AUDIENCE,
    }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};
