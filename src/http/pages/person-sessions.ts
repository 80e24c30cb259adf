/**
 * The pages' sessions of people signed in through the identity provider (session.ts keeps the token ones).
 * Kept in a store (memory on one box, PostgreSQL in a fleet: effects/config/person-sessions.ts) under the
 * sha256 of the cookie's random id; a session ends after 12 h unused or 24 h after the sign-in, whichever comes
 * first. Each request of the pages reads its session from the store first (`load`), so a sign-out on one node
 * ends it on every other at once; what then asks synchronously (the HLS files, the stills, the live WebSocket)
 * finds it here, and the live WebSocket's session is read again in the background every few seconds. The
 * principal is derived from the stored claims and the current access rules each time it is asked for.
 */
import { randomBytes } from "node:crypto";
import {
  type PersonSession,
  type PersonSessionStore,
  sessionHash,
} from "../../effects/config/person-sessions.ts";
import type { Principal } from "../../effects/control/auth.ts";
import type { PersonOutcome } from "../../effects/control/person.ts";

export const PERSON_IDLE_MS = 12 * 60 * 60 * 1000;
export const PERSON_ABSOLUTE_MS = 24 * 60 * 60 * 1000;
/** How often a session's last use is written back: not on every request. */
export const TOUCH_EVERY_MS = 60_000;
/** How old a session read may be before what asks synchronously has it read again in the background. */
const REREAD_AFTER_MS = 5_000;
/** How many sessions are kept here at most (the store keeps them all). */
const MAX_KEPT = 10_000;

interface Kept {
  session: PersonSession;
  readAt: number;
}

export const makePersonSessions = (
  store: PersonSessionStore,
  principalOf: (claims: Readonly<Record<string, unknown>>) => PersonOutcome,
) => {
  const kept = new Map<string, Kept>();
  const expired = (session: PersonSession, now: number) =>
    now - session.lastSeen > PERSON_IDLE_MS || now - session.createdAt > PERSON_ABSOLUTE_MS;

  /** Reads session `id` from the store; undefined (and removed) when gone or expired. */
  const load = async (id: string): Promise<PersonSession | undefined> => {
    const idHash = sessionHash(id);
    const now = Date.now();
    const session = await store.get(idHash).catch(() => kept.get(idHash)?.session);
    if (session === undefined || expired(session, now)) {
      kept.delete(idHash);
      if (session !== undefined) await store.remove(idHash).catch(() => undefined);
      return undefined;
    }
    let current = session;
    if (now - session.lastSeen > TOUCH_EVERY_MS) {
      current = { ...session, lastSeen: now };
      await store.touch(idHash, now).catch(() => undefined);
    }
    kept.delete(idHash);
    kept.set(idHash, { session: current, readAt: now });
    while (kept.size > MAX_KEPT) {
      const oldest = kept.keys().next().value;
      if (oldest === undefined) break;
      kept.delete(oldest);
    }
    return current;
  };

  /** The session's outcome as last read: its principal, or the refusal of rules that give no role. */
  const outcomeFor = (id: string | undefined): PersonOutcome | null => {
    if (id === undefined) return null;
    const entry = kept.get(sessionHash(id));
    if (entry === undefined || expired(entry.session, Date.now())) return null;
    if (Date.now() - entry.readAt > REREAD_AFTER_MS) {
      entry.readAt = Date.now();
      void load(id);
    }
    return principalOf(entry.session.claims);
  };

  return {
    load,
    outcomeFor,
    principalFor: (id: string | undefined): Principal | null => {
      const outcome = outcomeFor(id);
      return outcome?.ok === true ? outcome.principal : null;
    },
    /** Whether `id` is a person's session read here (rather than a token's). */
    has: (id: string) => kept.has(sessionHash(id)),
    /** A new session for the signed-in person; its cookie's id. */
    start: async (claims: Readonly<Record<string, unknown>>, idToken: string): Promise<string> => {
      const id = randomBytes(32).toString("base64url");
      const now = Date.now();
      const session: PersonSession = { claims, idToken, createdAt: now, lastSeen: now };
      await store.put(sessionHash(id), session);
      kept.set(sessionHash(id), { session, readAt: now });
      await store.removeExpired(now - PERSON_IDLE_MS, now - PERSON_ABSOLUTE_MS).catch(() => undefined);
      return id;
    },
    /** Ends session `id` here and in the store; what it kept (for the provider's logout), if it was one. */
    end: async (id: string): Promise<PersonSession | undefined> => {
      const idHash = sessionHash(id);
      const session = kept.get(idHash)?.session ?? (await store.get(idHash).catch(() => undefined));
      kept.delete(idHash);
      await store.remove(idHash);
      return session;
    },
  };
};

export type PersonSessions = ReturnType<typeof makePersonSessions>;
