/**
 * Where the pages' sessions of people signed in through the identity provider are kept: in this process's
 * memory on one box, in PostgreSQL in a fleet (postgres/person-sessions.ts), so that any node serves a session
 * made on another (a load balancer need not stick). Each is found by the sha256 of its cookie's random id, never
 * the id itself; it keeps the person's claims (their principal is derived from them and the current rules on
 * every request), the ID token (the hint the provider's logout asks for), and when it was made and last used.
 */
import { createHash } from "node:crypto";

export interface PersonSession {
  readonly claims: Readonly<Record<string, unknown>>;
  readonly idToken: string;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  readonly lastSeen: number;
}

export interface PersonSessionStore {
  readonly get: (idHash: string) => Promise<PersonSession | undefined>;
  readonly put: (idHash: string, session: PersonSession) => Promise<void>;
  readonly touch: (idHash: string, lastSeen: number) => Promise<void>;
  readonly remove: (idHash: string) => Promise<void>;
  /** Removes the sessions last used before `idleBefore` or made before `madeBefore`. */
  readonly removeExpired: (idleBefore: number, madeBefore: number) => Promise<void>;
}

/**
 * Where a fleet keeps the pages' sessions of token logins (session.ts keeps them in memory on one box): the
 * sha256 of the token, as the token list keeps it, never the token; every node checks it against its own list
 * (and its own DISTRIBUTARY_ADMIN_TOKEN) at each request.
 */
export interface TokenSessionStore {
  readonly get: (
    idHash: string,
  ) => Promise<{ readonly tokenSha256: string; readonly lastSeen: number } | undefined>;
  readonly put: (idHash: string, tokenSha256: string, lastSeen: number) => Promise<void>;
  readonly touch: (idHash: string, lastSeen: number) => Promise<void>;
  readonly remove: (idHash: string) => Promise<void>;
}

/** A session id's stored form. */
export const sessionHash = (id: string) => createHash("sha256").update(id).digest("hex");

/** One box's store: a map, bounded (the least recently used session goes first past `max`). */
export const memorySessionStore = (max = 10_000): PersonSessionStore => {
  const sessions = new Map<string, PersonSession>();
  return {
    get: async (idHash) => sessions.get(idHash),
    put: async (idHash, session) => {
      sessions.delete(idHash);
      sessions.set(idHash, session);
      while (sessions.size > max) {
        const oldest = sessions.keys().next().value;
        if (oldest === undefined) break;
        sessions.delete(oldest);
      }
    },
    touch: async (idHash, lastSeen) => {
      const session = sessions.get(idHash);
      if (session === undefined) return;
      sessions.delete(idHash);
      sessions.set(idHash, { ...session, lastSeen });
    },
    remove: async (idHash) => {
      sessions.delete(idHash);
    },
    removeExpired: async (idleBefore, madeBefore) => {
      for (const [idHash, session] of sessions)
        if (session.lastSeen < idleBefore || session.createdAt < madeBefore) sessions.delete(idHash);
    },
  };
};
