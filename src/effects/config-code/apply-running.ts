/**
 * After an apply (config-code.ts) is stored: each running channel it touched takes only what changed, as the
 * control plane's own commands do. A channel deleted, stopped or placed elsewhere stops; a new input or name
 * reconfigures it (or, failing that, restarts it); outputs removed are removed and outputs changed or added are
 * applied, each failure showing in the output's status.
 */
import * as Effect from "effect/Effect";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import { inputChanged } from "../../domain/channel/rules.ts";
import type { Channels } from "../channel/channels.ts";
import type { controlShared } from "../control/shared.ts";

type Shared = Effect.Effect.Success<typeof controlShared>;

export const applyToRunning = (input: {
  /** The channels stored before the apply and after it, by id. */
  readonly before: ReadonlyMap<string, ChannelConfig>;
  readonly after: ReadonlyMap<string, ChannelConfig>;
  /** The ids of the channels the plan changed. */
  readonly touched: Iterable<string | undefined>;
  readonly channels: Channels;
  readonly shared: Pick<Shared, "isRunning" | "spec" | "startChannel" | "applyRuntime">;
  readonly runsHere: (channel: ChannelConfig) => boolean;
}) =>
  Effect.gen(function* () {
    const { channels, runsHere } = input;
    const { isRunning, spec, startChannel, applyRuntime } = input.shared;
    for (const id of input.touched) {
      if (id === undefined) continue;
      const old = input.before.get(id);
      const channel = input.after.get(id);
      if (old === undefined || !isRunning(id as ChannelConfig["id"])) continue;
      if (channel === undefined || channel.desired === "stopped" || runsHere(old) !== runsHere(channel)) {
        yield* channels.stop(channel?.id ?? old.id);
        continue;
      }
      if (inputChanged(old, channel) || old.name !== channel.name)
        yield* channels
          .reconfigure(spec(channel))
          .pipe(
            Effect.catchAll(() =>
              Effect.zipRight(channels.stop(channel.id), Effect.ignore(startChannel(channel))),
            ),
          );
      for (const output of old.outputs)
        if (!channel.outputs.some((kept) => kept.id === output.id))
          yield* applyRuntime(channels.removeOutput(channel.id, output.id));
      const specs = spec(channel).outputs;
      for (const [index, output] of channel.outputs.entries())
        if (output !== old.outputs.find((candidate) => candidate.id === output.id)) {
          const outputSpec = specs[index];
          if (outputSpec !== undefined) yield* applyRuntime(channels.applyOutput(channel.id, outputSpec));
        }
    }
  });
