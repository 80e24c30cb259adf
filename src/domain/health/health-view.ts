/**
 * What the status says of one input's health by its channel's rules (`redundancy.health`, health.ts): the
 * verdict and since when, each rule's state with the figure it read, and the picture-and-sound watcher's cost.
 * The channel's status (views.ts) carries it per input; the channel page draws it as lamps.
 */
import * as Schema from "effect/Schema";

/** One input's health by the channel's rules: the verdict, and each rule's state with what it read. */
export const InputHealthView = Schema.Struct({
  state: Schema.Literal("healthy", "unhealthy"),
  since: Schema.String.annotations({
    description: "when it turned so (or when the rules began to judge it)",
  }),
  rules: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({
      state: Schema.NullOr(Schema.Boolean).annotations({
        description:
          "true: the rule holds; false: it does not; null: it cannot judge now (the figure says why)",
      }),
      figure: Schema.String,
    }),
  }),
  watcher: Schema.NullOr(
    Schema.Struct({
      running: Schema.Boolean,
      cpu_percent: Schema.NullOr(Schema.Number).annotations({
        description: "its ffmpeg's CPU, % of one core",
      }),
      dropped_chunks: Schema.Number,
      restarts: Schema.Number,
      gop_ms: Schema.NullOr(Schema.Number).annotations({
        description:
          "ms between the key frames it decodes (a frozen rule's for_ms must be at least 1.5 of them)",
      }),
    }),
  ).annotations({ description: "the picture-and-sound watcher, while a rule names black, frozen or silent" }),
}).annotations({ identifier: "InputHealth" });
export type InputHealthView = typeof InputHealthView.Type;
