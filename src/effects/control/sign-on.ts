/**
 * Sign-on with the company's identity provider (OpenID Connect), when DISTRIBUTARY_OIDC_ISSUER is set: the
 * pages' authorization code flow with PKCE (S256), state and nonce through openid-client, a certified client
 * that checks the ID token; the API's JWTs checked against the provider's keys (jwt.ts); and a person's
 * principal from their claims and the current access rules (person.ts). The provider is discovered on first
 * use and again after a failure, so a provider down when the service starts delays sign-on, not the service.
 * Sign-ins, sign-outs and refusals are audited with the person's subject, issuer and name, and counted
 * (`distributary_auth_logins_total{outcome}`, `distributary_auth_jwt_rejected_total{reason}`).
 * Without the settings, nothing here is used: local tokens alone, as before.
 */
import { readFileSync } from "node:fs";
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import * as Redacted from "effect/Redacted";
import * as client from "openid-client";
import { Counter } from "prom-client";
import { type Actor, CurrentActor } from "../config/actor.ts";
import { holdSecrets } from "../config/secrets.ts";
import { type OidcSettings, oidcSettings } from "../config/settings.ts";
import { audit, EventBus } from "../events/event-bus.ts";
import { Metrics } from "../status/metrics.ts";
import { AccessRules } from "./access-rules.ts";
import { actorOf, type Principal } from "./auth.ts";
import { JWT_REASONS, type JwtReason, looksLikeJwt, makeJwtVerifier } from "./jwt.ts";
import { claimsActor, personPrincipal } from "./person.ts";

export const LOGIN_OUTCOMES = ["success", "no_role", "failed"] as const;
export type LoginOutcome = (typeof LOGIN_OUTCOMES)[number];

/** What a browser's sign-in carries from /auth/login to /auth/callback (in a short-lived cookie). */
export interface LoginTransaction {
  readonly verifier: string;
  readonly state: string;
  readonly nonce: string;
  /** Where the person goes once signed in: a path on this service. */
  readonly next: string;
}

/** A person signed in through the pages: what their session keeps. */
export interface SignedIn {
  readonly claims: Readonly<Record<string, unknown>>;
  readonly idToken: string;
}

export type BearerOutcome =
  | { readonly ok: true; readonly principal: Principal }
  | {
      readonly ok: false;
      readonly status: 401 | 403 | 503;
      readonly reason: JwtReason;
      readonly words: string;
    };

const isLoopbackHttp = (url: URL) => url.protocol === "http:";

/** The client's secret, from the setting or its file; none for a public client. */
const clientSecretOf = (settings: OidcSettings) =>
  Effect.gen(function* () {
    if (Option.isSome(settings.clientSecret)) return Option.some(Redacted.value(settings.clientSecret.value));
    if (Option.isNone(settings.clientSecretFile)) return Option.none<string>();
    const file = settings.clientSecretFile.value;
    const secret = yield* Effect.try(() => readFileSync(file, "utf8").trim()).pipe(
      Effect.orElse(() => Effect.dieMessage(`DISTRIBUTARY_OIDC_CLIENT_SECRET_FILE: cannot read ${file}`)),
    );
    if (secret === "")
      return yield* Effect.dieMessage(`DISTRIBUTARY_OIDC_CLIENT_SECRET_FILE: ${file} is empty`);
    return Option.some(secret);
  });

export class SignOn extends Effect.Service<SignOn>()("distributary/SignOn", {
  effect: Effect.gen(function* () {
    const settings = yield* oidcSettings;
    const bus = yield* EventBus;
    const metrics = yield* Metrics;
    const logins = new Counter({
      name: "distributary_auth_logins_total",
      help: "Sign-ins through the identity provider by outcome: success, no_role (signed in at the provider, but no access rule gives a role), failed (the provider's answer was refused or could not be had)",
      labelNames: ["outcome"],
      registers: [metrics.registry],
    });
    const jwtRejected = new Counter({
      name: "distributary_auth_jwt_rejected_total",
      help: "API JWTs refused, by reason: malformed, algorithm, expired, not_yet_valid, issuer, audience, unknown_key, signature, not_access_token (an ID token, or not typed at+jwt where that is required), subject (no string sub), keys_unavailable, no_role",
      labelNames: ["reason"],
      registers: [metrics.registry],
    });
    const unrecorded = new Counter({
      name: "distributary_auth_refusals_unrecorded_total",
      help: "Refused sign-ins of callers nobody knows yet (a callback with no sign-in started here, a provider's error) left out of the event history: past a few a minute from one address, they are only counted here",
      registers: [metrics.registry],
    });
    if (Option.isSome(settings)) {
      for (const outcome of LOGIN_OUTCOMES) logins.inc({ outcome }, 0);
      for (const reason of JWT_REASONS) jwtRejected.inc({ reason }, 0);
    }
    const accessRules = yield* AccessRules;
    const rules = () => accessRules.current();

    /** As `who`, audited: a sign-in, sign-out or refusal in the trail. */
    const audited = (who: Principal | Actor | string, action: string, detail: string) =>
      audit(bus, action, detail).pipe(
        Effect.provideService(
          CurrentActor,
          typeof who === "string" ? { name: who } : "grants" in who ? actorOf(who) : who,
        ),
      );

    if (Option.isNone(settings)) return { active: null, audited };
    const oidc = settings.value;
    const secret = yield* clientSecretOf(oidc);
    if (Option.isSome(secret)) holdSecrets("oidc:client-secret", [secret.value]);
    const redirectUri = `${oidc.publicUrl}/auth/callback`;

    let discovered: Promise<client.Configuration> | undefined;
    /** The provider's configuration, discovered once; a failed discovery is tried again on the next use. */
    const configuration = (): Promise<client.Configuration> => {
      discovered ??= client
        .discovery(
          oidc.issuer,
          oidc.clientId,
          undefined,
          Option.isSome(secret) ? client.ClientSecretBasic(secret.value) : client.None(),
          isLoopbackHttp(oidc.issuer) ? { execute: [client.allowInsecureRequests] } : {},
        )
        .catch((error: unknown) => {
          discovered = undefined;
          throw error;
        });
      return discovered;
    };

    let verifier: ReturnType<typeof makeJwtVerifier> | undefined;
    const verifyJwt = async (token: string) => {
      if (verifier === undefined) {
        const metadata = (await configuration()).serverMetadata();
        if (metadata.jwks_uri === undefined) throw new Error("the provider publishes no jwks_uri");
        verifier = makeJwtVerifier({
          issuer: metadata.issuer,
          audience: Option.getOrThrow(oidc.audience),
          jwksUri: new URL(metadata.jwks_uri),
          clientId: oidc.clientId,
          accessTokenType: oidc.accessTokenType,
        });
      }
      return verifier(token);
    };

    /** A bearer JWT's principal, or why not (each refusal counted by its reason). */
    const verifyBearer = async (token: string): Promise<BearerOutcome> => {
      const outcome: BearerOutcome = await verifyJwt(token).then(
        (checked): BearerOutcome => {
          if (!checked.ok) return { ...checked, status: 401 };
          const person = personPrincipal(rules(), checked.claims, "jwt");
          return person.ok ? person : { ok: false, status: 403, reason: "no_role", words: person.words };
        },
        (): BearerOutcome => ({
          ok: false,
          status: 503,
          reason: "keys_unavailable",
          words: "the identity provider could not be reached to check the token; try again shortly",
        }),
      );
      if (!outcome.ok) jwtRejected.inc({ reason: outcome.reason });
      return outcome;
    };

    const active = {
      /** The provider's name as the login page shows it: its issuer's host. */
      providerName: oidc.issuer.host,
      issuer: oidc.issuer.href,
      /** Whether browsers reach this service over https (its cookies are Secure then, whatever the proxy says). */
      httpsPublic: oidc.publicUrl.startsWith("https:"),
      /** Where the pages' sign-in and sign-out may send a browser: the provider's origin. */
      providerOrigin: oidc.issuer.origin,
      /**
       * The values of the roles claim (DISTRIBUTARY_OIDC_ROLES_CLAIM) in words, for the audit trail: what an
       * admin writing access rules needs to see of a person refused ("groups staff, tv-ops-us").
       */
      rolesOf: (claims: Readonly<Record<string, unknown>>) => {
        const value = claims[oidc.rolesClaim];
        const values = Array.isArray(value) ? value.map(String) : value === undefined ? [] : [String(value)];
        return `${oidc.rolesClaim} ${values.length === 0 ? "none" : values.join(", ")}`;
      },
      /** How the audit trail names a person whose claims gave no principal. */
      actorFor: (claims: Readonly<Record<string, unknown>>) => claimsActor(claims, "session"),
      /** Whether the API takes JWTs (an audience is set) and `token` looks like one. */
      takesJwt: (token: string) => Option.isSome(oidc.audience) && looksLikeJwt(token),
      verifyBearer,
      /** A person's principal from their stored claims and the rules as they are now. */
      sessionPrincipal: (claims: Readonly<Record<string, unknown>>) =>
        personPrincipal(rules(), claims, "session"),
      /** Starts a sign-in: the provider's authorization URL, and what the callback must find again. */
      beginLogin: async (next: string) => {
        const config = await configuration();
        const transaction: LoginTransaction = {
          verifier: client.randomPKCECodeVerifier(),
          state: client.randomState(),
          nonce: client.randomNonce(),
          next,
        };
        const url = client.buildAuthorizationUrl(config, {
          redirect_uri: redirectUri,
          scope: oidc.scopes,
          code_challenge: await client.calculatePKCECodeChallenge(transaction.verifier),
          code_challenge_method: "S256",
          state: transaction.state,
          nonce: transaction.nonce,
        });
        return { url: url.href, transaction };
      },
      /**
       * Ends a sign-in at the callback: the code exchanged (with the PKCE verifier), the ID token checked
       * (issuer, audience, nonce, signature), and the person's claims: the ID token's, with the userinfo's.
       */
      finishLogin: async (query: string, transaction: LoginTransaction): Promise<SignedIn> => {
        const config = await configuration();
        const tokens = await client.authorizationCodeGrant(config, new URL(`${redirectUri}${query}`), {
          pkceCodeVerifier: transaction.verifier,
          expectedState: transaction.state,
          expectedNonce: transaction.nonce,
          idTokenExpected: true,
        });
        const idClaims = tokens.claims();
        if (idClaims === undefined || tokens.id_token === undefined)
          throw new Error("the provider sent no ID token");
        let userinfo: Readonly<Record<string, unknown>> = {};
        if (config.serverMetadata().userinfo_endpoint !== undefined) {
          userinfo = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub).catch(() => ({}));
        }
        // The ID token's own claims win: the userinfo adds what the ID token left out (groups, often).
        return { claims: { ...userinfo, ...idClaims }, idToken: tokens.id_token };
      },
      /** Where the browser goes to be signed out at the provider too; null when it has no end_session_endpoint. */
      endSessionUrl: async (idToken: string): Promise<string | null> => {
        const config = await configuration().catch(() => undefined);
        if (config?.serverMetadata().end_session_endpoint === undefined) return null;
        return client.buildEndSessionUrl(config, {
          id_token_hint: idToken,
          post_logout_redirect_uri: `${oidc.publicUrl}/login`,
        }).href;
      },
      /** Counts a sign-in's outcome and audits it. */
      recordLogin: (outcome: LoginOutcome, who: Principal | Actor | string, detail: string) => {
        logins.inc({ outcome });
        return audited(who, outcome === "success" ? "auth.sign_in" : "auth.refused", detail);
      },
      /** Counts a failed sign-in that is not written to the event history (its address sent too many). */
      countUnrecorded: () =>
        Effect.sync(() => {
          logins.inc({ outcome: "failed" });
          unrecorded.inc();
        }),
    };
    return {
      /** The sign-on's workings; null when no DISTRIBUTARY_OIDC_ setting is given. */
      active: active as typeof active | null,
      audited,
    };
  }),
}) {}

export type ActiveSignOn = NonNullable<SignOn["active"]>;
