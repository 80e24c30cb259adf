/**
 * Who is making the current change: the token's name, set by the HTTP layer for each request (API or page)
 * and read by the control plane when it writes the audit event. Changes made by the service itself (resume
 * at start) are made by "system".
 */
import { Context } from "effect";

interface Actor {
  readonly name: string;
}

export class CurrentActor extends Context.Reference<CurrentActor>()("distributary/CurrentActor", {
  defaultValue: (): Actor => ({ name: "system" }),
}) {}
