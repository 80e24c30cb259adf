/**
 * What the commands, the channel restarts and config transfer share, built from the services they all use:
 * the write lock (whatever a command's outcome, readers see the state it left), the audit of a change and
 * starting a channel's runtime from its stored configuration. Private to control/.
 */
import * as Effect from "effect/Effect";
import { ControlError } from "../../domain/base/errors.ts";
import type { ChannelId, OutputId } from "../../domain/base/ids.ts";
import type { ChannelConfig, OutputConfig } from "../../domain/channel/channel.ts";
import { channelInputs } from "../../domain/channel/channel-checks.ts";
import type { SlateConfig } from "../../domain/channel/slate.ts";
import { trustSenders } from "../../domain/medialive/medialive.ts";
import type { ChannelSpec, OutputSpec, SlateSpec } from "../channel/channel-types.ts";
import { Channels } from "../channel/channels.ts";
import { ConfigState } from "../config/config-state.ts";
import { Placement } from "../config/placement.ts";
import { audit, EventBus } from "../events/event-bus.ts";
import { MediaLive } from "../medialive/medialive.ts";
import { gateSlot } from "../runtime/sockets/send-gates.ts";
import { ReadModel } from "../status/read-model.ts";

/** What the channel runtime needs of a stored output: in a fleet, only the lease holder sends. */
const toOutputSpec = (output: OutputConfig, holds: boolean): OutputSpec => ({
  id: output.id,
  name: output.name,
  url: output.url,
  enabled: output.enabled && holds,
  policy: output.policy ?? null,
});

/**
 * What the channel runtime needs of a stored channel. A fleet node that does not hold the channel's lease
 * (`holds` false) runs it as a standby: inputs, core, selector and SCTE-35 watcher warm, every output idle.
 * `senders` are trusted by both inputs beside their own lists: the linked MediaLive channel's egress.
 */
const toSpec = (
  channel: ChannelConfig,
  holds = true,
  senders: ReadonlyArray<string> = [],
  sendGate?: number,
): ChannelSpec => {
  const { primary, backup } = channelInputs(channel);
  return {
    id: channel.id,
    name: channel.name,
    primary: trustSenders(primary, senders),
    backup: backup === null ? null : trustSenders(backup, senders),
    redundancy: channel.redundancy,
    outputs: channel.outputs.map((output) => toOutputSpec(output, holds)),
    ...(sendGate === undefined ? {} : { sendGate }),
    ...(channel.slate == null ? {} : { slate: slateSpec(channel.name, channel.slate) }),
  };
};

const slateSpec = (name: string, slate: SlateConfig): SlateSpec => ({
  afterMs: slate.after_ms,
  manual: slate.manual ?? false,
  scheduled: slate.scheduled ?? false,
  onUnhealthy: slate.on_unhealthy ?? false,
  picture:
    slate.image == null
      ? { kind: "card", title: name }
      : { kind: "image", data: slate.image.data, sha256: slate.image.sha256 },
});

export const controlShared = Effect.gen(function* () {
  const channels = yield* Channels;
  const configs = yield* ConfigState;
  const readModel = yield* ReadModel;
  const bus = yield* EventBus;
  const placement = yield* Placement;
  const medialive = yield* MediaLive;
  /** The channel as the runtime runs it here, now. */
  const spec = (channel: ChannelConfig) =>
    toSpec(
      channel,
      placement.holds(channel.id),
      medialive.trustedSenders(channel.id),
      // A fleet node's outputs send only while its lease allows, checked by the forwarding thread itself.
      placement.node() === null ? undefined : gateSlot(channel.id),
    );

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

    /**
     * Starts the channel's runtime; a failure is a `start_failed` that says why. A fleet node that does not
     * receive the channel's input (`nodes` names others) leaves it to them.
     */
    startChannel: (channel: ChannelConfig) =>
      (placement.runsHere(channel) ? channels.start(spec(channel)) : Effect.void).pipe(
        Effect.mapError(
          (error) =>
            new ControlError({
              reason: "start_failed",
              message: `channel '${channel.name}' could not start: ${error.message}`,
            }),
        ),
      ),

    isRunning: (id: ChannelId) => channels.state(id) === "running",

    /** Stores one channel as it now is, the others as they are. */
    commitChannel: (channel: ChannelConfig) => configs.commit(configs.replacing(channel)),

    /** Runtime changes after the store has accepted them; a failure shows in the output's status. */
    applyRuntime: (effect: Effect.Effect<void, { readonly message: string }>) =>
      effect.pipe(
        Effect.catchAll((error) => Effect.logWarning(`could not apply a change: ${error.message}`)),
      ),

    spec,

    /** A stored output as the runtime should run it here: idle on a fleet node that does not hold the channel. */
    outputSpec: (channelId: ChannelId, output: OutputConfig) =>
      toOutputSpec(output, placement.holds(channelId)),
  } as const;
});
