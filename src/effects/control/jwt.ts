/**
 * The API's JWTs from the company's identity provider, checked with jose against the provider's published keys
 * (its JWKS, from discovery): the issuer, the audience, the expiry and not-before with 30 s of tolerance for
 * clocks that differ, and the signature — made with an asymmetric key only. `none` is refused, and so is HS*,
 * whose "secret" an attacker could take from the provider's public key. A token signed with a key the cached
 * set does not have makes jose fetch the set again, at most once per cooldown, so a provider's rotated key
 * is taken within it and a stream of made-up key ids cannot make this service hammer the provider.
 * Only access tokens are taken: never an ID token (one carries `nonce` or `at_hash`, or is meant for this
 * service's client id with no scope), and with DISTRIBUTARY_OIDC_ACCESS_TOKEN_TYPE=at+jwt only a token typed
 * `at+jwt` (RFC 9068). The subject must be a non-empty string: it names the caller in the audit trail.
 * Each refusal says why in words, and has a reason of a fixed set, counted in the metrics.
 */
import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  jwtVerify,
} from "jose";

/** The algorithms of asymmetric keys: what a provider signs with. */
export const ALLOWED_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
] as const;

export const JWT_REASONS = [
  "malformed",
  "algorithm",
  "expired",
  "not_yet_valid",
  "issuer",
  "audience",
  "unknown_key",
  "signature",
  "not_access_token",
  "subject",
  "keys_unavailable",
  "no_role",
] as const;
export type JwtReason = (typeof JWT_REASONS)[number];

export type JwtOutcome =
  | { readonly ok: true; readonly claims: JWTPayload }
  | { readonly ok: false; readonly reason: JwtReason; readonly words: string };

/** Seconds a token's exp and nbf may be off, for clocks that differ between the provider and this node. */
export const CLOCK_TOLERANCE_S = 30;
/** The least time between two fetches of the key set that an unknown key id makes. */
export const KEY_REFETCH_COOLDOWN_MS = 30_000;

/** Whether `token` has a JWT's shape (three base64url parts, the last empty for `alg: none`). */
export const looksLikeJwt = (token: string) => /^[\w-]+\.[\w-]+\.[\w-]*$/.test(token);

/**
 * Whether a JWT checked when a WebSocket opened is still within its time: a socket's token is checked again
 * before each message, and a JWT (unlike a local token) cannot be revoked, only expire.
 */
export const jwtUnexpired = (token: string, now = Date.now()): boolean => {
  try {
    const { exp } = decodeJwt(token);
    return typeof exp === "number" && (exp + CLOCK_TOLERANCE_S) * 1000 > now;
  } catch {
    return false;
  }
};

const refused = (reason: JwtReason, words: string): JwtOutcome => ({ ok: false, reason, words });

const claimRefusal = (error: errors.JWTClaimValidationFailed, issuer: string, audience: string) => {
  if (error.claim === "iss") return refused("issuer", `the token was not issued by ${issuer}`);
  if (error.claim === "aud")
    return refused("audience", `the token is not meant for this service: its audience is not ${audience}`);
  if (error.claim === "nbf") return refused("not_yet_valid", "the token is not valid yet (nbf)");
  return refused("malformed", `the token's ${error.claim} claim is not valid: ${error.reason}`);
};

/** The claims only an ID token carries (OpenID Connect Core 2 and 3.3.2.11). */
const ID_TOKEN_CLAIMS = ["nonce", "at_hash", "c_hash", "s_hash"] as const;

/** Why a verified token is no access token of this API, or undefined when it is one. */
export const notAnAccessToken = (
  header: { readonly typ?: unknown },
  claims: JWTPayload,
  options: { readonly clientId?: string; readonly accessTokenType?: "at+jwt" | "any" },
): string | undefined => {
  const typ = typeof header.typ === "string" ? header.typ.toLowerCase() : undefined;
  const typed = typ === "at+jwt" || typ === "application/at+jwt";
  const idClaim = ID_TOKEN_CLAIMS.find((claim) => claim in claims);
  const audiences = typeof claims.aud === "string" ? [claims.aud] : (claims.aud ?? []);
  const scoped = "scope" in claims || "scp" in claims || "roles" in claims;
  if (
    !typed &&
    (idClaim !== undefined ||
      (options.clientId !== undefined && audiences.includes(options.clientId) && !scoped))
  )
    return `the token is an ID token (${idClaim === undefined ? `meant for the client ${options.clientId}, with no scope` : `it carries ${idClaim}`}): the API takes the provider's access tokens for it, not the ID token of a sign-in`;
  if (options.accessTokenType === "at+jwt" && !typed)
    return `the token's type is ${JSON.stringify(header.typ ?? null)}, not at+jwt: the API takes only access tokens typed at+jwt (DISTRIBUTARY_OIDC_ACCESS_TOKEN_TYPE)`;
  return undefined;
};

export const makeJwtVerifier = (options: {
  readonly issuer: string;
  readonly audience: string;
  readonly jwksUri: URL;
  readonly cooldownMs?: number;
  /** This service's client id: a token meant for it with no scope is an ID token. */
  readonly clientId?: string;
  readonly accessTokenType?: "at+jwt" | "any";
}) => {
  const keys = createRemoteJWKSet(options.jwksUri, {
    cooldownDuration: options.cooldownMs ?? KEY_REFETCH_COOLDOWN_MS,
    timeoutDuration: 5_000,
  });
  return async (token: string): Promise<JwtOutcome> => {
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return refused("malformed", "the token is not a JWT: its header cannot be read");
    }
    if (typeof alg !== "string" || !(ALLOWED_ALGORITHMS as ReadonlyArray<string>).includes(alg)) {
      return refused(
        "algorithm",
        `the token's algorithm ${JSON.stringify(alg)} is not allowed: only the provider's asymmetric signatures (RS*, PS*, ES*, EdDSA) are`,
      );
    }
    try {
      const { payload, protectedHeader } = await jwtVerify(token, keys, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: [...ALLOWED_ALGORITHMS],
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ["sub", "exp"],
      });
      const notAccess = notAnAccessToken(protectedHeader, payload, options);
      if (notAccess !== undefined) return refused("not_access_token", notAccess);
      if (typeof payload.sub !== "string" || payload.sub.trim() === "")
        return refused("subject", "the token's sub claim must be a non-empty string: it names the caller");
      return { ok: true, claims: payload };
    } catch (error) {
      if (error instanceof errors.JWTExpired) return refused("expired", "the token has expired");
      if (error instanceof errors.JWTClaimValidationFailed)
        return claimRefusal(error, options.issuer, options.audience);
      if (error instanceof errors.JOSEAlgNotAllowed)
        return refused("algorithm", "the token's algorithm is not allowed for the provider's key");
      if (error instanceof errors.JWKSNoMatchingKey)
        return refused("unknown_key", "the token was signed with a key the provider does not publish");
      if (error instanceof errors.JWSSignatureVerificationFailed)
        return refused("signature", "the token's signature does not match the provider's key");
      if (
        error instanceof errors.JWKSTimeout ||
        error instanceof errors.JWKSInvalid ||
        error instanceof TypeError
      )
        return refused(
          "keys_unavailable",
          "the identity provider's keys could not be fetched to check the token",
        );
      if (error instanceof errors.JOSEError) return refused("malformed", "the token is not a valid JWT");
      return refused(
        "keys_unavailable",
        "the identity provider's keys could not be fetched to check the token",
      );
    }
  };
};
