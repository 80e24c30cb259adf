/**
 * API tokens. Only their sha256 is stored (`tokens.json`, 0600, or a fleet's `tokens` table), so the store
 * does not let anyone in; the token itself is shown once, when it is created. A fresh install creates an admin
 * token on first start and prints how to use it.
 *
 * `DISTRIBUTARY_ADMIN_TOKEN` gives the node an admin of its own instead, checked here and never stored: in a
 * fleet the store is shared, and a node whose variable is missing or different must not be able to revoke or
 * replace the admin of every other node. A node only ever removes a stored token because an admin revoked it.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import * as Redacted from "effect/Redacted";
import * as Schema from "effect/Schema";
import { ControlError, notFound } from "../../domain/base/errors.ts";
import { TokenId } from "../../domain/base/ids.ts";
import { Name } from "../../domain/channel/channel.ts";
import { ChannelScope, type Grant, Role } from "../../domain/control/access.ts";
import type { Actor } from "../config/actor.ts";
import { storeFailed } from "../config/config-state.ts";
import { holdSecrets, releaseSecrets, setTokenNames } from "../config/secrets.ts";
import { adminToken } from "../config/settings.ts";
import { DocumentStore, loadDocument, saveDocument } from "../config/store.ts";
import { audit, EventBus } from "../events/event-bus.ts";

export const TOKENS_FILE = "tokens.json";

const TokenRecord = Schema.Struct({
  id: TokenId,
  name: Name,
  role: Role,
  /** The channels the token reaches; absent: every channel (a token from before scopes). */
  channels: Schema.optional(ChannelScope),
  sha256: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)),
  created_at: Schema.String,
});
type TokenRecord = typeof TokenRecord.Type;

export const TokensDocument = Schema.Struct({
  version: Schema.Literal(1),
  tokens: Schema.Array(TokenRecord),
});
export type TokensDocument = typeof TokensDocument.Type;

export const TokenView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  role: Role,
  channels: ChannelScope.annotations({
    description:
      'the channels the token reaches: "*" (every channel, node-wide routes too) or {"tags", "ids"}',
  }),
  created_at: Schema.String,
  source: Schema.Literal("stored", "environment").annotations({
    description:
      "stored: in the shared store, valid on every node until revoked; environment: this node's " +
      "DISTRIBUTARY_ADMIN_TOKEN, valid on this node while the variable is set (created_at is the node's start)",
  }),
}).annotations({ identifier: "Token" });
export type TokenView = typeof TokenView.Type;

export const TokenBody = Schema.Struct({
  name: Name,
  role: Role,
  channels: Schema.optional(ChannelScope).annotations({
    description:
      'the channels the token reaches: "*" (the default) or {"tags": [...], "ids": [...]}; a token with a ' +
      "scope has no node-wide role (settings, tokens, rules, import/export, nodes need one over every channel)",
  }),
}).annotations({
  identifier: "TokenBody",
  parseOptions: { onExcessProperty: "error" },
});

/** Who is calling, as every route sees it, however they proved it. */
export interface Principal {
  /** The token's id, or for a person signed in through the identity provider their subject. */
  readonly id: string;
  readonly name: string;
  /** The highest role held on any channel. */
  readonly role: Role;
  /** What the caller may do where: see src/domain/control/access.ts. */
  readonly grants: ReadonlyArray<Grant>;
  /** How the caller proved who it is: a local token, a page session, a JWT of the identity provider, a peer. */
  readonly via: "token" | "session" | "jwt" | "peer";
  /** For a person of the identity provider: who (`sub`) and which provider (`iss`). */
  readonly subject?: string;
  readonly issuer?: string;
}

/** The principal of a local token: its role over its channels (every channel unless it was given a scope). */
export const tokenPrincipal = (token: {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  readonly channels?: ChannelScope | undefined;
}): Principal => ({
  id: token.id,
  name: token.name,
  role: token.role,
  grants: [{ role: token.role, channels: token.channels ?? "*" }],
  via: "token",
});

/** The audit trail's actor of a request: who, and how they proved it. */
export const actorOf = (principal: Principal): Actor => ({
  name: principal.name,
  via: principal.via,
  ...(principal.subject === undefined ? {} : { subject: principal.subject }),
  ...(principal.issuer === undefined ? {} : { issuer: principal.issuer }),
});

/** What a caller holds, in words: "operator on tags eu; viewer on every channel". */
export const describeGrants = (grants: ReadonlyArray<Grant>): string =>
  grants.length === 0
    ? "no role on any channel"
    : grants.map((grant) => `${grant.role} on ${describeScope(grant.channels)}`).join("; ");

/** Who a caller is, in words for a refusal: "the token 'eu desk'", or a person's name. */
export const describeCaller = (principal: Principal): string =>
  principal.via === "token" || principal.via === "peer"
    ? `the token '${principal.name}'`
    : `${principal.name} (signed in by ${principal.via === "jwt" ? "a JWT" : "a session"})`;

/** A scope in words, for audit lines and refusals: "every channel", "tags eu, uk; ids news". */
export const describeScope = (scope: ChannelScope): string => {
  if (scope === "*") return "every channel";
  const parts = [
    ...(scope.tags !== undefined && scope.tags.length > 0 ? [`tags ${scope.tags.join(", ")}`] : []),
    ...(scope.ids !== undefined && scope.ids.length > 0 ? [`ids ${scope.ids.join(", ")}`] : []),
  ];
  return parts.length === 0 ? "no channel" : parts.join("; ");
};

const hash = (token: string) => createHash("sha256").update(token).digest("hex");
/** A token's stored form (the token list's `sha256`); a fleet's token-login sessions keep it too. */
export const tokenHash = hash;
// The prefix lets the log masker and secret scanners recognise a token wherever it turns up.
const generateToken = () => `dst_${randomBytes(32).toString("base64url")}`;
/** How this node's admin from the environment is listed and named in the audit trail. */
const ENV_ADMIN_ID = TokenId.make("admin-from-env");
const ENV_ADMIN_NAME = "admin (DISTRIBUTARY_ADMIN_TOKEN)";
/** Its owner in the secret masker: no stored token's, so that no revocation or reload releases it. */
const ENV_SECRET_OWNER = "environment:admin-token";
/** The admin made at a first start: one id, so that nodes starting together cannot each add one. */
const FIRST_ADMIN_ID = TokenId.make("first-admin");
/** An admin secret from the environment opens everything: at least this long. */
const MIN_ENV_TOKEN_LENGTH = 32;

const toView = ({ id, name, role, channels, created_at }: TokenRecord): TokenView => ({
  id,
  name,
  role,
  channels: channels ?? "*",
  created_at,
  source: "stored",
});

/**
 * The stored tokens this version honours. Older versions stored the variable's token as the record
 * `admin-from-env`; it is neither honoured nor touched (so neither listed, counted nor removed): nodes of an
 * older version still running during an upgrade authenticate through it, and removing it would take their
 * admin away as the defect this replaces did.
 */
const stored = (document: TokensDocument) => document.tokens.filter((token) => token.id !== ENV_ADMIN_ID);

export class Auth extends Effect.Service<Auth>()("distributary/Auth", {
  effect: Effect.gen(function* () {
    const store = yield* DocumentStore;
    const bus = yield* EventBus;
    const save = (next: TokensDocument) =>
      saveDocument(TOKENS_FILE, TokensDocument, next).pipe(
        Effect.provideService(DocumentStore, store),
        Effect.catchAll((error) =>
          Effect.flatMap(
            error.reason === "conflict" || error.reason === "unavailable" || error.reason === "unconfirmed"
              ? storeFailed(error)
              : Effect.succeed(new ControlError({ reason: "store_failed", message: error.message })),
            Effect.fail,
          ),
        ),
      );
    const load = loadDocument(TOKENS_FILE, TokensDocument, { version: 1, tokens: [] }).pipe(
      Effect.provideService(DocumentStore, store),
    );
    let document = yield* load;
    const writeLock = yield* Effect.makeSemaphore(1);

    // This node's own admin, checked here and never stored: a node started without the variable (or with
    // another value) has no say in it, and no other node's start can take it away.
    const fromEnv = yield* adminToken;
    let envAdmin: { readonly sha256: string; readonly view: TokenView } | null = null;
    if (Option.isSome(fromEnv)) {
      const secret = Redacted.value(fromEnv.value);
      holdSecrets(ENV_SECRET_OWNER, [secret]);
      if (secret.length < MIN_ENV_TOKEN_LENGTH) {
        return yield* Effect.dieMessage(
          `DISTRIBUTARY_ADMIN_TOKEN must be at least ${MIN_ENV_TOKEN_LENGTH} characters (random ones, e.g. ` +
            "`openssl rand -base64 32`): it opens everything, and a shorter one can be guessed",
        );
      }
      envAdmin = {
        sha256: hash(secret),
        view: {
          id: ENV_ADMIN_ID,
          name: ENV_ADMIN_NAME,
          role: "admin",
          channels: "*",
          created_at: new Date().toISOString(),
          source: "environment",
        },
      };
    }

    let firstStartSecret: string | null = null;
    if (envAdmin === null && stored(document).length === 0) {
      // Nodes of a fleet starting together on an empty store all find it empty: each tries to add the first
      // admin under one id, the store refuses all but the first as a conflict, and the others read the list
      // again and find it there. One first admin for the fleet, printed by the node that made it.
      const secret = generateToken();
      const record: TokenRecord = {
        id: FIRST_ADMIN_ID,
        name: "first admin",
        role: "admin",
        sha256: hash(secret),
        created_at: new Date().toISOString(),
      };
      const addFirstAdmin = Effect.gen(function* () {
        document = yield* load;
        if (stored(document).length > 0) return false;
        const next = { ...document, tokens: [...document.tokens, record] };
        yield* save(next);
        document = next;
        return true;
      });
      holdSecrets(`token:${FIRST_ADMIN_ID}`, [secret]);
      const added = yield* addFirstAdmin.pipe(
        Effect.retry({ times: 3, while: (error) => error.reason === "conflict" }),
        Effect.orDie,
      );
      if (!added) releaseSecrets(`token:${FIRST_ADMIN_ID}`);
      else {
        // Printed once by the HTTP layer, which knows the address: the only time the token exists in clear.
        firstStartSecret = secret;
      }
    }

    const byHash = () => new Map(stored(document).map((token) => [token.sha256, token]));
    let index = byHash();
    const names = () => [
      ...stored(document).map((token) => token.name),
      ...(envAdmin ? [ENV_ADMIN_NAME] : []),
    ];
    setTokenNames(names());
    const take = (next: TokensDocument) => {
      document = next;
      index = byHash();
      setTokenNames(names());
    };
    const commit = (next: TokensDocument) => Effect.tap(save(next), () => take(next));

    return {
      /** The admin token created at a first start, once: whoever prints it takes it. */
      takeFirstStartSecret: (): string | null => {
        const secret = firstStartSecret;
        firstStartSecret = null;
        return secret;
      },
      authenticate: (secret: string): Option.Option<Principal> => {
        const sha256 = hash(secret);
        if (envAdmin !== null && envAdmin.sha256 === sha256)
          return Option.some(tokenPrincipal(envAdmin.view));
        return Option.map(Option.fromNullable(index.get(sha256)), tokenPrincipal);
      },
      /** The same check from a token's sha256 (a page session's, made on this node or another). */
      authenticateHash: (sha256: string): Option.Option<Principal> => {
        if (envAdmin !== null && envAdmin.sha256 === sha256)
          return Option.some(tokenPrincipal(envAdmin.view));
        return Option.map(Option.fromNullable(index.get(sha256)), tokenPrincipal);
      },
      /** The stored tokens, and this node's admin from the environment where it has one. */
      list: Effect.sync(() => [...stored(document).map(toView), ...(envAdmin ? [envAdmin.view] : [])]),
      /**
       * Reads the token list again and takes it as current (another node changed it); a token gone from it no
       * longer authenticates here. Returns the stored lists before and after.
       */
      reload: writeLock.withPermits(1)(
        Effect.gen(function* () {
          const next = yield* load;
          const before = stored(document);
          const kept = new Set(stored(next).map((token) => token.id));
          for (const token of before) if (!kept.has(token.id)) releaseSecrets(`token:${token.id}`);
          take(next);
          return { previous: before.map(toView), current: stored(next).map(toView) } as const;
        }),
      ),
      create: Effect.fn("Auth.create")(function* (body: typeof TokenBody.Type) {
        return yield* writeLock.withPermits(1)(
          Effect.gen(function* () {
            const secret = generateToken();
            const id = TokenId.make(randomUUID());
            holdSecrets(`token:${id}`, [secret]);
            const record: TokenRecord = {
              id,
              name: body.name,
              role: body.role,
              // Every channel is stored as no scope, as tokens from before scopes are.
              ...(body.channels === undefined || body.channels === "*" ? {} : { channels: body.channels }),
              sha256: hash(secret),
              created_at: new Date().toISOString(),
            };
            yield* commit({ ...document, tokens: [...document.tokens, record] });
            yield* audit(
              bus,
              "token.create",
              `token ${record.id} (${record.name}, ${record.role} on ${describeScope(record.channels ?? "*")}) created`,
            );
            return { ...toView(record), token: secret };
          }),
        );
      }),
      revoke: Effect.fn("Auth.revoke")(function* (id: string) {
        yield* writeLock.withPermits(1)(
          Effect.gen(function* () {
            if (envAdmin !== null && id === ENV_ADMIN_ID) {
              return yield* new ControlError({
                reason: "conflict",
                message:
                  "this is this node's DISTRIBUTARY_ADMIN_TOKEN, which is not stored: it is valid on this node " +
                  "while the variable is set; unset it and restart the node to remove it",
              });
            }
            const token = stored(document).find((candidate) => candidate.id === id);
            if (token === undefined) return yield* Effect.fail(notFound("token", id));
            // The admins that open this node: the stored ones and its own from the environment.
            const admins =
              stored(document).filter((candidate) => candidate.role === "admin").length +
              (envAdmin === null ? 0 : 1);
            if (token.role === "admin" && admins === 1) {
              return yield* new ControlError({
                reason: "conflict",
                message: "this is the last admin token; create another admin token before deleting it",
              });
            }
            yield* commit({
              ...document,
              tokens: document.tokens.filter((candidate) => candidate.id !== id),
            });
            releaseSecrets(`token:${id}`);
            yield* audit(bus, "token.revoke", `token ${id} (${token.name}) revoked`);
          }),
        );
      }),
    } as const;
  }),
}) {}
