/**
 * The current caller's role over every channel (the node's role: an admin of one desk's channels holds none),
 * set by the HTTP layer for each request beside CurrentActor and read where a change reaches beyond channels: a
 * RIST listener's `srpfile` names a file on this node's disk, so only the node's admin may name one
 * (config-state.ts). The service itself (resume at start, a fleet's reload) is the node's admin.
 */
import * as Context from "effect/Context";
import type { Role } from "../../domain/control/access.ts";

export class CurrentNodeRole extends Context.Reference<CurrentNodeRole>()("distributary/CurrentNodeRole", {
  defaultValue: (): Role | null => "admin",
}) {}
