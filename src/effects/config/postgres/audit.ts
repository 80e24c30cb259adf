/**
 * The fleet's audit trail as stored: one row per changed channel or token, written in the change's own
 * transaction (document-store.ts), newest first here.
 */
import * as Effect from "effect/Effect";
import type { DatabaseShape } from "./database.ts";

export interface AuditEntry {
  readonly id: number;
  /** ISO 8601, the database's clock. */
  readonly at: string;
  /** The node that made the change; null for `distributary migrate`'s import run elsewhere. */
  readonly node: string | null;
  /** The token's or the person's name, or "system". */
  readonly actor: string;
  /** How the actor proved who it is (token, session, jwt, peer); null for the service itself. */
  readonly actor_via: string | null;
  /** For a person of the identity provider: their subject and the provider; else null. */
  readonly actor_subject: string | null;
  readonly actor_issuer: string | null;
  /** channel.create, channel.update, channel.delete, token.create, token.revoke */
  readonly action: string;
  readonly detail: string;
  readonly channel: string | null;
  readonly revision: number | null;
}

/** The latest `limit` audit rows, newest first. */
export const auditTrail = (db: DatabaseShape, limit: number) =>
  db
    .query<{
      id: string;
      at: Date;
      node: string | null;
      actor: string;
      actor_via: string | null;
      actor_subject: string | null;
      actor_issuer: string | null;
      action: string;
      detail: string;
      channel: string | null;
      revision: string | null;
    }>(
      `select id, at, node, actor, actor_via, actor_subject, actor_issuer, action, detail, channel, revision
       from audit order by id desc limit $1`,
      [Math.max(0, Math.floor(limit))],
    )
    .pipe(
      Effect.map((rows) =>
        rows.map(
          (row): AuditEntry => ({
            ...row,
            id: Number(row.id),
            at: row.at.toISOString(),
            revision: row.revision === null ? null : Number(row.revision),
          }),
        ),
      ),
    );
