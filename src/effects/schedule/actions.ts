/**
 * What each of the schedule's actions does, through the services an operator's commands use: MediaLive's
 * start and stop (checked against its state, a `medialive_action` by `schedule`), the listed outputs enabled
 * or disabled as the API's PATCH does (the schedule's own switch, which its windows allow), and the slate put on or lifted under the schedule's own flag (an
 * operator's own slate stays). Each runs as the actor `schedule`, so the audit trail says who changed what.
 */
import * as Effect from "effect/Effect";
import type { OutputId } from "../../domain/base/ids.ts";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import type { ScheduleAction, ScheduleWindow } from "../../domain/schedule/schedule-window.ts";
import { CurrentActor } from "../config/actor.ts";
import type { Control } from "../control/control.ts";
import type { MediaLive } from "../medialive/medialive.ts";

interface ActionServices {
  readonly control: Control;
  readonly medialive: MediaLive;
}

/** The window's outputs that exist in the channel: all of them, or those it lists. */
const listed = (channel: ChannelConfig, window: ScheduleWindow) =>
  channel.outputs.filter(
    (output) => window.outputs === "all" || (window.outputs as ReadonlyArray<string>).includes(output.id),
  );

const setOutputs = (services: ActionServices, channel: ChannelConfig, window: ScheduleWindow, on: boolean) =>
  Effect.forEach(
    listed(channel, window).filter((output) => output.enabled !== on),
    (output) => services.control.scheduleOutput(channel.id, output.id as OutputId, on),
    { discard: true },
  );

/**
 * Outputs the schedule owns that were found on outside its windows (enabled other than by its commands: a
 * configuration stored before schedules owned their outputs, another node's older version) switched off.
 */
export const holdOff = (services: ActionServices, channel: ChannelConfig, outputs: ReadonlyArray<OutputId>) =>
  Effect.forEach(outputs, (output) => services.control.scheduleOutput(channel.id, output, false), {
    discard: true,
  }).pipe(Effect.provideService(CurrentActor, { name: "schedule" }));

/**
 * Does one action; what it did, in words, for the phase's event. A failure (MediaLive refusing, the store)
 * is left to the caller, which records nothing and tries again.
 */
export const perform = (
  services: ActionServices,
  channel: ChannelConfig,
  window: ScheduleWindow,
  action: ScheduleAction,
) =>
  Effect.gen(function* () {
    const { control, medialive } = services;
    switch (action) {
      case "start_medialive":
        yield* medialive.scheduled(channel.id, "start");
        return "MediaLive started";
      case "stop_medialive":
        yield* medialive.scheduled(channel.id, "stop");
        return "MediaLive stopped";
      case "enable_outputs":
        yield* setOutputs(services, channel, window, true);
        return "outputs enabled";
      case "slate_on":
      case "slate_postroll":
        return (yield* control.scheduleSlate(channel.id, true)) ? "on the slate" : "no slate to show";
      case "go_live":
        yield* control.scheduleSlate(channel.id, false);
        return "live from the input";
      case "disable_outputs":
        yield* setOutputs(services, channel, window, false);
        // The postroll's slate is lifted with the outputs: the next time they are enabled they carry the input.
        yield* control.scheduleSlate(channel.id, false);
        return "outputs disabled";
    }
  }).pipe(Effect.provideService(CurrentActor, { name: "schedule" }));
