/**
 * API tokens. Only their sha256 is stored (`tokens.json`, 0600), so the file does not let anyone in; the token
 * itself is shown once, when it is created. A fresh install creates an admin token on first start and prints
 * how to use it; `DISTRIBUTARY_ADMIN_TOKEN` sets the admin token instead.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { Effect, Option, Redacted, Schema } from "effect";
import { Name } from "../../domain/channel.ts";
import { ControlError, notFound } from "../../domain/errors.ts";
import { TokenId } from "../../domain/ids.ts";
import { storeFailed } from "../config/config-state.ts";
import { holdSecrets, releaseSecrets, setTokenNames } from "../config/secrets.ts";
import { adminToken } from "../config/settings.ts";
import { DocumentStore, loadDocument, saveDocument } from "../config/store.ts";
import { audit, EventBus } from "../events/event-bus.ts";

export const TOKENS_FILE = "tokens.json";

export const Role = Schema.Literal("viewer", "operator", "admin").annotations({
  message: (issue) => `must be viewer, operator or admin; got ${JSON.stringify(issue.actual)}`,
});
export type Role = typeof Role.Type;

const rank: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
export const allows = (held: Role, needed: Role) => rank[held] >= rank[needed];

const TokenRecord = Schema.Struct({
  id: TokenId,
  name: Name,
  role: Role,
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
  created_at: Schema.String,
}).annotations({ identifier: "Token" });
export type TokenView = typeof TokenView.Type;

export const TokenBody = Schema.Struct({ name: Name, role: Role }).annotations({
  identifier: "TokenBody",
  parseOptions: { onExcessProperty: "error" },
});

export interface Principal {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
}

const hash = (token: string) => createHash("sha256").update(token).digest("hex");
// The prefix lets the log masker and secret scanners recognise a token wherever it turns up.
const generateToken = () => `dst_${randomBytes(32).toString("base64url")}`;
const ENV_ADMIN_ID = TokenId.make("admin-from-env");
/** An admin secret from the environment opens everything: at least this long. */
export const MIN_ENV_TOKEN_LENGTH = 32;

const toView = ({ id, name, role, created_at }: TokenRecord): TokenView => ({ id, name, role, created_at });

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
    let document = yield* loadDocument(TOKENS_FILE, TokensDocument, { version: 1, tokens: [] });
    const writeLock = yield* Effect.makeSemaphore(1);

    const fromEnv = yield* adminToken;
    if (Option.isSome(fromEnv)) {
      const secret = Redacted.value(fromEnv.value);
      holdSecrets(`token:${ENV_ADMIN_ID}`, [secret]);
      if (secret.length < MIN_ENV_TOKEN_LENGTH) {
        return yield* Effect.dieMessage(
          `DISTRIBUTARY_ADMIN_TOKEN must be at least ${MIN_ENV_TOKEN_LENGTH} characters (random ones, e.g. ` +
            "`openssl rand -base64 32`): it opens everything, and a shorter one can be guessed",
        );
      }
      const record: TokenRecord = {
        id: ENV_ADMIN_ID,
        name: "admin (DISTRIBUTARY_ADMIN_TOKEN)",
        role: "admin",
        sha256: hash(secret),
        created_at: new Date().toISOString(),
      };
      // Nodes of a fleet starting together each find the token missing and add it; all but the first are
      // refused as a conflict, read the list again and find it there.
      const addEnvAdmin = Effect.gen(function* () {
        document = yield* loadDocument(TOKENS_FILE, TokensDocument, { version: 1, tokens: [] });
        if (document.tokens.find((token) => token.id === ENV_ADMIN_ID)?.sha256 === record.sha256) return;
        const next = {
          ...document,
          tokens: [...document.tokens.filter((t) => t.id !== ENV_ADMIN_ID), record],
        };
        yield* save(next);
        document = next;
      });
      yield* addEnvAdmin.pipe(
        Effect.retry({ times: 3, while: (error) => error.reason === "conflict" }),
        Effect.orDie,
      );
    }
    if (Option.isNone(fromEnv) && document.tokens.some((token) => token.id === ENV_ADMIN_ID)) {
      // Started without the variable: the admin token it gave earlier is no longer valid.
      document = { ...document, tokens: document.tokens.filter((token) => token.id !== ENV_ADMIN_ID) };
      yield* save(document).pipe(Effect.orDie);
    }
    let firstStartSecret: string | null = null;
    if (Option.isNone(fromEnv) && document.tokens.length === 0) {
      const secret = generateToken();
      const id = TokenId.make(randomUUID());
      holdSecrets(`token:${id}`, [secret]);
      document = {
        ...document,
        tokens: [
          {
            id,
            name: "first admin",
            role: "admin",
            sha256: hash(secret),
            created_at: new Date().toISOString(),
          },
        ],
      };
      yield* save(document).pipe(Effect.orDie);
      // Printed once by the HTTP layer, which knows the address: the only time the token exists in clear.
      firstStartSecret = secret;
    }

    const byHash = () => new Map(document.tokens.map((token) => [token.sha256, token]));
    let index = byHash();
    setTokenNames(document.tokens.map((token) => token.name));
    const take = (next: TokensDocument) => {
      document = next;
      index = byHash();
      setTokenNames(document.tokens.map((token) => token.name));
    };
    const commit = (next: TokensDocument) => Effect.tap(save(next), () => take(next));

    return {
      /** The admin token created at a first start, once: whoever prints it takes it. */
      takeFirstStartSecret: (): string | null => {
        const secret = firstStartSecret;
        firstStartSecret = null;
        return secret;
      },
      authenticate: (secret: string): Option.Option<Principal> =>
        Option.map(Option.fromNullable(index.get(hash(secret))), toView),
      list: Effect.sync(() => document.tokens.map(toView)),
      /**
       * Reads the token list again and takes it as current (another node changed it); a token gone from it no
       * longer authenticates here. Returns the lists before and after.
       */
      reload: writeLock.withPermits(1)(
        Effect.gen(function* () {
          const next = yield* loadDocument(TOKENS_FILE, TokensDocument, { version: 1, tokens: [] }).pipe(
            Effect.provideService(DocumentStore, store),
          );
          const before = document;
          const kept = new Set(next.tokens.map((token) => token.id));
          for (const token of before.tokens) if (!kept.has(token.id)) releaseSecrets(`token:${token.id}`);
          take(next);
          return { previous: before.tokens.map(toView), current: next.tokens.map(toView) } as const;
        }),
      ),
      create: Effect.fn("Auth.create")(function* (body: { readonly name: string; readonly role: Role }) {
        return yield* writeLock.withPermits(1)(
          Effect.gen(function* () {
            const secret = generateToken();
            const id = TokenId.make(randomUUID());
            holdSecrets(`token:${id}`, [secret]);
            const record: TokenRecord = {
              id,
              name: body.name,
              role: body.role,
              sha256: hash(secret),
              created_at: new Date().toISOString(),
            };
            yield* commit({ ...document, tokens: [...document.tokens, record] });
            yield* audit(bus, "token.create", `token ${record.id} (${record.name}, ${record.role}) created`);
            return { ...toView(record), token: secret };
          }),
        );
      }),
      revoke: Effect.fn("Auth.revoke")(function* (id: string) {
        yield* writeLock.withPermits(1)(
          Effect.gen(function* () {
            const token = document.tokens.find((candidate) => candidate.id === id);
            if (token === undefined) return yield* Effect.fail(notFound("token", id));
            const admins = document.tokens.filter((candidate) => candidate.role === "admin");
            if (token.role === "admin" && admins.length === 1) {
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
