/**
 * A person of the company's identity provider as every route sees them: their subject as the id, a name to
 * show, and the grants of the access rules their claims match now. Derived again from the stored claims and
 * the current rules on every request, so a rule changed by an admin applies at once; a person no rule gives a
 * role is refused in words. The audit trail names them with their subject, issuer and how they proved it.
 */
import { type AccessRule, grantsFromClaims, highestRole } from "../../domain/access.ts";
import type { Actor } from "../config/actor.ts";
import { actorOf, type Principal } from "./auth.ts";

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
  const subject = String(claims.sub ?? "");
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

/**
 * Who a principal is in the audit trail: a local token by its name; a person by name, subject, issuer and
 * how they proved it (`Eve (sub eve at https://id.example, jwt)`).
 */
export const actorName = (principal: Principal): string =>
  principal.subject === undefined
    ? principal.name
    : `${principal.name} (sub ${principal.subject}${principal.issuer === undefined ? "" : ` at ${principal.issuer}`}, ${principal.via})`;

/** Who a person is in the audit trail when no principal could be made of their claims (no rule matched). */
export const claimsActor = (claims: Readonly<Record<string, unknown>>, via: "session" | "jwt"): string =>
  `${personName(claims)} (sub ${String(claims.sub ?? "")} at ${String(claims.iss ?? "")}, ${via})`;

/** The actor of an audit row for `principal`: how it proved itself, and a name that says who a person is. */
export const auditActor = (principal: Principal): Actor => ({
  ...actorOf(principal),
  name: actorName(principal),
});
