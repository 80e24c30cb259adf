/**
 * A fleet's sessions of people signed in through the identity provider, in the `person_sessions` table
 * (migration 7), and of token logins, in `token_sessions` (migration 8): made on one node, served by every
 * other. Keyed by the sha256 of the cookie's id.
 */
import * as Effect from "effect/Effect";
import type { PersonSession, PersonSessionStore, TokenSessionStore } from "../person-sessions.ts";
import type { DatabaseShape } from "./database.ts";

export const postgresSessionStore = (db: DatabaseShape): PersonSessionStore => {
  const run = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromise(effect);
  return {
    get: async (idHash) => {
      const rows = await run(
        db.query<{ claims: Record<string, unknown>; id_token: string; created_at: Date; last_seen: Date }>(
          "select claims, id_token, created_at, last_seen from person_sessions where id_hash = $1",
          [idHash],
        ),
      );
      const row = rows[0];
      return row === undefined
        ? undefined
        : ({
            claims: row.claims,
            idToken: row.id_token,
            createdAt: row.created_at.getTime(),
            lastSeen: row.last_seen.getTime(),
          } satisfies PersonSession);
    },
    put: async (idHash, session) => {
      await run(
        db.query(
          `insert into person_sessions (id_hash, subject, claims, id_token, created_at, last_seen)
           values ($1, $2, $3, $4, $5, $6)`,
          [
            idHash,
            String(session.claims.sub ?? ""),
            JSON.stringify(session.claims),
            session.idToken,
            new Date(session.createdAt),
            new Date(session.lastSeen),
          ],
        ),
      );
    },
    touch: async (idHash, lastSeen) => {
      await run(
        db.query("update person_sessions set last_seen = $2 where id_hash = $1", [
          idHash,
          new Date(lastSeen),
        ]),
      );
    },
    remove: async (idHash) => {
      await run(db.query("delete from person_sessions where id_hash = $1", [idHash]));
    },
    removeExpired: async (idleBefore, madeBefore) => {
      await run(
        db.query("delete from person_sessions where last_seen < $1 or created_at < $2", [
          new Date(idleBefore),
          new Date(madeBefore),
        ]),
      );
    },
  };
};

export const postgresTokenSessionStore = (db: DatabaseShape): TokenSessionStore => {
  const run = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromise(effect);
  return {
    get: async (idHash) => {
      const rows = await run(
        db.query<{ token_sha256: string; last_seen: Date }>(
          "select token_sha256, last_seen from token_sessions where id_hash = $1",
          [idHash],
        ),
      );
      const row = rows[0];
      return row === undefined
        ? undefined
        : { tokenSha256: row.token_sha256, lastSeen: row.last_seen.getTime() };
    },
    put: async (idHash, tokenSha256, lastSeen) => {
      await run(
        db.query("insert into token_sessions (id_hash, token_sha256, last_seen) values ($1, $2, $3)", [
          idHash,
          tokenSha256,
          new Date(lastSeen),
        ]),
      );
    },
    touch: async (idHash, lastSeen) => {
      await run(
        db.query("update token_sessions set last_seen = $2 where id_hash = $1", [idHash, new Date(lastSeen)]),
      );
    },
    remove: async (idHash) => {
      await run(db.query("delete from token_sessions where id_hash = $1", [idHash]));
    },
  };
};
