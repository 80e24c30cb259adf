/**
 * Who is making the current change, and how they proved it: set by the HTTP layer for each request (API or
 * page) and read by the control plane when it writes the audit event. A local token is its name; a person
 * signed in through the company's identity provider is their name, subject and issuer, by a page session or a
 * JWT. Changes made by the service itself (resume at start) are made by "system".
 */
import * as Context from "effect/Context";
import { type Sight, seesEveryChannel } from "../../domain/control/access.ts";

export interface Actor {
  readonly name: string;
  /** How the caller proved who it is; absent for the service itself. */
  readonly via?: "token" | "session" | "jwt" | "peer";
  /** For a person of the identity provider: who (`sub`) and which provider (`iss`). */
  readonly subject?: string;
  readonly issuer?: string;
}

export class CurrentActor extends Context.Reference<CurrentActor>()("distributary/CurrentActor", {
  defaultValue: (): Actor => ({ name: "system" }),
}) {}

/**
 * Which channels the current caller sees (its grants): a refusal that another channel holds what it asked for
 * names that channel only when it does. The service itself (resume, an import by the node's admin) sees all.
 */
export class CurrentSight extends Context.Reference<CurrentSight>()("distributary/CurrentSight", {
  defaultValue: (): Sight => seesEveryChannel,
}) {}
