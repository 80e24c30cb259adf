/**
 * Whether every live node of the fleet reads what a change would write (src/domain/channel/config-reads.ts). Only the
 * PostgreSQL store provides it (postgres/node-reads.ts); on one box nobody else reads, and nothing is asked.
 */
import * as Context from "effect/Context";
import type * as Effect from "effect/Effect";
import type { ConfigRead } from "../../domain/channel/config-reads.ts";

export class FleetReads extends Context.Tag("distributary/FleetReads")<
  FleetReads,
  {
    /** The live nodes (other than this one) that have not said they read every one of `reads`. */
    readonly unable: (reads: ReadonlyArray<ConfigRead>) => Effect.Effect<ReadonlyArray<string>>;
  }
>() {}
