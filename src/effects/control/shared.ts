/**
 * What the commands, the channel restarts and config transfer share, built from the services they all use:
 * the write lock (whatever a command's outcome, readers see the state it left), the audit of a change and
 * starting a channel's runtime from its stored configuration. Private to control/.
 */
import { Effect } from "effect";
import type { ChannelConfig } from "../../domain/channel.ts";
import { ControlError } from "../../domain/errors.ts";
import type { ChannelId, OutputId } from "../../domain/ids.ts";
import { channelInputs } from "../../domain/rules.ts";
import type { ChannelSpec } from "../channel/channel.ts";
import { Channels } from "../channel/channels.ts";
import { ConfigState } from "../config/config-state.ts";
import { audit, EventBus } from "../events/event-bus.ts";
import { ReadModel } from "../status/read-model.ts";

/** What the channel runtime needs of a stored channel. */
export const toSpec = (channel: ChannelConfig): ChannelSpec => ({
  id: channel.id,
  name: channel.name,
  ...channelInputs(channel),
  redundancy: channel.redundancy,
  outputs: channel.outputs.map(({ id, name, url, enabled }) => ({ id, name, url, enabled })),
});

export const controlShared = Effect.gen(function* () {
  const channels = yield* Channels;
  const configs = yield* ConfigState;
  const readModel = yield* ReadModel;
  const bus = yield* EventBus;

  return {
    /** One command at a time; whatever the outcome, readers see the state it left. */
    locked: <A, E>(command: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      configs.locked(command).pipe(Effect.onError(() => readModel.refresh)),

    /** The audit event of a change, then a fresh snapshot so the answer and every reader see it. */
    done: (action: string, detail: string, channel?: ChannelId, output?: OutputId) =>
      Effect.zipRight(
        audit(bus, action, detail, {
          ...(channel === undefined ? {} : { channel }),
          ...(output === undefined ? {} : { output }),
        }),
        readModel.refresh,
      ),

    /** Starts the channel's runtime; a failure is a `start_failed` that says why. */
    startChannel: (channel: ChannelConfig) =>
      channels.start(toSpec(channel)).pipe(
        Effect.mapError(
          (error) =>
            new ControlError({
              reason: "start_failed",
              message: `channel '${channel.name}' could not start: ${error.message}`,
            }),
        ),
      ),

    isRunning: (id: ChannelId) => channels.state(id) === "running",
  } as const;
});
