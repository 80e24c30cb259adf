/**
 * A person's page session, through the memory store as one box keeps it: found by the sha256 of its id only,
 * its principal derived from the stored claims and the rules as they are now (a changed rule applies on the
 * next request; none left, refused in words), ended after 12 h unused or 24 h after the sign-in however used.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AccessRule } from "../../src/domain/control/access.ts";
import { memorySessionStore, sessionHash } from "../../src/effects/config/person-sessions.ts";
import { personPrincipal } from "../../src/effects/control/person.ts";
import {
  makePersonSessions,
  PERSON_ABSOLUTE_MS,
  PERSON_IDLE_MS,
} from "../../src/http/pages/person-sessions.ts";

const eve = { sub: "eve", iss: "https://id.example.test", name: "Eve Operator", groups: ["tv-ops-eu"] };
const euOperator: AccessRule = {
  claim: "groups",
  equals: "tv-ops-eu",
  role: "operator",
  channels: { tags: ["eu"] },
};

const setUp = () => {
  let rules: ReadonlyArray<AccessRule> = [euOperator];
  const store = memorySessionStore();
  const sessions = makePersonSessions(store, (claims) => personPrincipal(rules, claims, "session"));
  return { store, sessions, setRules: (next: ReadonlyArray<AccessRule>) => (rules = next) };
};

afterEach(() => {
  vi.useRealTimers();
});

describe("a person's page session", () => {
  it("is kept under the sha256 of its id, and its principal follows the rules as they are now", async () => {
    const { store, sessions, setRules } = setUp();
    const id = await sessions.start(eve, "id-token");
    expect(await store.get(id)).toBeUndefined();
    expect((await store.get(sessionHash(id)))?.claims).toEqual(eve);
    expect(sessions.principalFor(id)).toMatchObject({
      id: "eve",
      name: "Eve Operator",
      role: "operator",
      via: "session",
      subject: "eve",
      issuer: "https://id.example.test",
      grants: [{ role: "operator", channels: { tags: ["eu"] } }],
    });
    setRules([{ ...euOperator, role: "viewer" }]);
    expect(sessions.principalFor(id)?.role).toBe("viewer");
    setRules([]);
    expect(sessions.principalFor(id)).toBeNull();
    expect(sessions.outcomeFor(id)).toEqual({
      ok: false,
      words: "signed in as Eve Operator, but no access rule gives you a role",
    });
  });

  it("ends after 12 h unused, and 24 h after the sign-in however used", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const { store, sessions } = setUp();
    const idle = await sessions.start(eve, "id-token");
    vi.advanceTimersByTime(PERSON_IDLE_MS - 1000);
    expect(await sessions.load(idle)).toBeDefined();
    vi.advanceTimersByTime(PERSON_IDLE_MS + 1000);
    expect(await sessions.load(idle)).toBeUndefined();
    expect(await store.get(sessionHash(idle))).toBeUndefined();

    const used = await sessions.start(eve, "id-token");
    // Used every 4 hours, up to the 24th: never idle, still ended once 24 h have passed.
    for (let passed = 0; passed < PERSON_ABSOLUTE_MS; passed += 4 * 60 * 60 * 1000) {
      vi.advanceTimersByTime(4 * 60 * 60 * 1000);
      expect(await sessions.load(used)).toBeDefined();
    }
    vi.advanceTimersByTime(60_000);
    expect(await sessions.load(used)).toBeUndefined();
    expect(sessions.principalFor(used)).toBeNull();
  });

  it("ends at once when signed out, and gives back the ID token for the provider's logout", async () => {
    const { sessions } = setUp();
    const id = await sessions.start(eve, "the-id-token");
    expect((await sessions.end(id))?.idToken).toBe("the-id-token");
    expect(await sessions.load(id)).toBeUndefined();
    expect(sessions.principalFor(id)).toBeNull();
  });
});
