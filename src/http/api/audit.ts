/**
 * `GET /api/audit`: a fleet's audit trail as its database keeps it (one row per changed channel or token, in
 * the change's own transaction, naming the node and the token), newest first. One box keeps no such table:
 * its audit trail is the event log's `api_change` events.
 */
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Option from "effect/Option";
import * as Schema from "effect/Schema";
import { ControlError } from "../../domain/base/errors.ts";
import { type AuditEntry, auditTrail } from "../../effects/config/postgres/audit.ts";
import type { DatabaseShape } from "../../effects/config/postgres/database.ts";
import { problemResponse } from "../problem.ts";
import { type Api, makeApi, type Run, sameShape } from "../routes.ts";

const AuditEntrySchema = Schema.Struct({
  id: Schema.Number,
  at: Schema.String,
  node: Schema.NullOr(Schema.String).annotations({ description: "the node that made the change" }),
  actor: Schema.String.annotations({ description: "the name of the token or person that asked for it" }),
  actor_via: Schema.NullOr(Schema.String).annotations({
    description: "how the actor proved who it is: token, session, jwt or peer; null for the service itself",
  }),
  actor_subject: Schema.NullOr(Schema.String).annotations({
    description: "for a person of the identity provider: their subject (sub); else null",
  }),
  actor_issuer: Schema.NullOr(Schema.String).annotations({
    description: "for a person of the identity provider: the provider (iss); else null",
  }),
  action: Schema.String,
  detail: Schema.String,
  channel: Schema.NullOr(Schema.String),
  revision: Schema.NullOr(Schema.Number),
}).annotations({ identifier: "AuditEntry" });

// The stored row and the documented schema are the same shape, checked both ways by the compiler.
sameShape<AuditEntry, typeof AuditEntrySchema.Type>(true);

const AuditList = Schema.Struct({ entries: Schema.Array(AuditEntrySchema) }).annotations({
  identifier: "AuditList",
});

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** `limit` from the query: a whole number from 1 to 1000, 100 when absent. */
const limitOf = (text: string | undefined) => {
  if (text === undefined) return Either.right(DEFAULT_LIMIT);
  const limit = Number(text);
  return Number.isInteger(limit) && limit >= 1 && limit <= MAX_LIMIT
    ? Either.right(limit)
    : Either.left(
        new ControlError({
          reason: "invalid",
          message: `limit: must be a whole number from 1 to ${MAX_LIMIT}, got ${JSON.stringify(text)}`,
          errors: [{ field: "limit", message: `must be a whole number from 1 to ${MAX_LIMIT}` }],
        }),
      );
};

const oneBox = new ControlError({
  reason: "not_found",
  message:
    "this service runs alone (no DISTRIBUTARY_DATABASE_URL): its audit trail is GET /api/events?type=api_change",
});

export const auditApi = (database: Option.Option<DatabaseShape>, run: Run): Api => {
  const { app, routes, on } = makeApi();
  on(
    {
      method: "get",
      path: "/",
      access: "admin",
      summary:
        "A fleet's audit trail from its database, newest first: who changed which channel or token, on which " +
        "node (query: limit, 1–1000, default 100). One box: GET /api/events?type=api_change",
      response: AuditList,
    },
    (c) =>
      run(
        c,
        Effect.gen(function* () {
          const limit = yield* limitOf(c.req.query("limit"));
          if (Option.isNone(database)) return yield* Effect.fail(oneBox);
          return yield* Effect.either(auditTrail(database.value, limit));
        }),
        (read) =>
          Either.isRight(read)
            ? c.json({ entries: read.right })
            : problemResponse({
                status: 503,
                title: "Database unreachable",
                detail:
                  "the fleet's database cannot be reached, and the audit trail is read from it: try again once it is back",
              }),
      ),
  );
  return { app, routes };
};
