/**
 * A person of the company's identity provider as every route sees them: their subject as the id, a name to
 * show, and the grants of the access rules their claims match now. Derived again from the stored claims and
 * the current rules on every request, so a rule changed by an admin applies at once; a person no rule gives a
 * role is refused in words. The audit trail names them with their subject, issuer and how they proved it
 * (auth.ts's actorOf, or claimsActor here when no rule matched).
 */
import { type AccessRule, grantsFromClaims, highestRole } from "../../domain/control/access.ts";
import type { Actor } from "../config/actor.ts";
import type { Principal } from "./auth.ts";

const text = (value: unknown): string | undefined =>
  typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;

/** The name a person is shown as: `name`, else `preferred_username`, else `email`, else their subject. */
export const personName = (claims: Readonly<Record<string, unknown>>): string =>
  text(claims.name) ?? text(claims.preferred_username) ?? text(claims.email) ?? String(claims.sub ?? "");

export type PersonOutcome =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly words: string };

export const personPrincipal = (
  rules: ReadonlyArray<AccessRule>,
  claims: Readonly<Record<string, unknown>>,
  via: "session" | "jwt",
): PersonOutcome => {
  if (typeof claims.sub !== "string" || claims.sub.trim() === "")
    return { ok: false, words: "the provider named no subject: sub must be a non-empty string" };
  const subject = claims.sub;
  const name = personName(claims);
  const grants = grantsFromClaims(rules, claims);
  const role = highestRole(grants);
  if (role === null) {
    return { ok: false, words: `signed in as ${name}, but no access rule gives you a role` };
  }
  const issuer = text(claims.iss);
  return {
    ok: true,
    principal: {
      id: subject,
      name,
      role,
      grants,
      via,
      subject,
      ...(issuer === undefined ? {} : { issuer }),
    },
  };
};

/** Who a person is in the audit trail when no principal could be made of their claims (no rule matched). */
export const claimsActor = (claims: Readonly<Record<string, unknown>>, via: "session" | "jwt"): Actor => ({
  name: personName(claims),
  via,
  subject: String(claims.sub ?? ""),
  ...(typeof claims.iss === "string" ? { issuer: claims.iss } : {}),
});
