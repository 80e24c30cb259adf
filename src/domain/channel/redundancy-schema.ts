/**
 * The shape of `redundancy` in a request body, as the API takes it (what each field does and how the settings
 * are checked against the channel's inputs: redundancy.ts, which the forwarding threads load without Schema).
 */
import * as Schema from "effect/Schema";
import { intBetween } from "../base/ints.ts";
import { oneOf } from "../base/literals.ts";
import { HealthConfigSchema } from "../health/health-schema.ts";
import { redundancyRanges } from "./redundancy.ts";

/** The shape of `redundancy` in a request body, every field optional. */
export const RedundancyConfigSchema = Schema.Struct({
  mode: Schema.optional(oneOf("failover", "merge", "none")),
  failover_after_ms: Schema.optional(intBetween(...redundancyRanges.failover_after_ms)),
  revert: Schema.optional(oneOf("auto", "sticky")),
  revert_after_ms: Schema.optional(intBetween(...redundancyRanges.revert_after_ms)),
  merge_window_ms: Schema.optional(intBetween(...redundancyRanges.merge_window_ms)),
  fec: Schema.optional(
    Schema.Union(
      Schema.Boolean,
      Schema.Struct({ primary: Schema.Boolean, backup: Schema.Boolean }),
    ).annotations({
      message: (issue) => ({
        message: `must be true, false or {"primary": true|false, "backup": true|false}; got ${JSON.stringify(issue.actual) ?? String(issue.actual)}`,
        override: true,
      }),
    }),
  ),
  health: Schema.optional(Schema.NullOr(HealthConfigSchema)),
});
