/**
 * The rules a channel's schedule is held to beside its own (schedule-times.ts): its outputs are the channel's,
 * its preroll and postroll have the channel's slate to show, and an output a window names is not deleted.
 * Taken by the commands and the import through rules.ts.
 */

import { ControlError, type FieldIssue } from "../base/errors.ts";
import { invalid } from "../base/validate.ts";
import type { ChannelConfig } from "../channel/channel.ts";
import { scheduleIssues } from "./schedule-times.ts";

/** The channel's schedule holds at `now`: its rules, zones, exceptions and outputs, and no overlap (400). */
export const checkChannelSchedule = (channel: ChannelConfig, now: number): ControlError | undefined => {
  if (channel.schedule == null) return undefined;
  const outputIds = channel.outputs.map((output) => output.id);
  const issues = [...scheduleIssues(channel.schedule, outputIds, now), ...slateless(channel)];
  return issues.length === 0 ? undefined : invalid(issues);
};

/** A preroll or a postroll is spent on the channel's slate: a window with one needs the slate on. */
const slateless = (channel: ChannelConfig): ReadonlyArray<FieldIssue> =>
  channel.slate != null
    ? []
    : (channel.schedule?.windows ?? []).flatMap((window, index) =>
        window.preroll_s > 0 || window.postroll_s > 0
          ? [
              {
                field: `schedule.windows[${index}]`,
                message: `window ${window.id}: its preroll and postroll show the channel's slate, and the channel has none: turn it on ("slate": {"after_ms": 1000}) or set preroll_s and postroll_s to 0`,
              },
            ]
          : [],
      );

/** An output a schedule's window names stays until the window no longer names it (409). */
export const scheduledOutput = (channel: ChannelConfig, outputId: string): ControlError | undefined => {
  const window = channel.schedule?.windows.find(
    (candidate) => candidate.outputs !== "all" && candidate.outputs.includes(outputId),
  );
  return window === undefined
    ? undefined
    : new ControlError({
        reason: "conflict",
        message: `output ${outputId} is named by the schedule's window ${window.id}; take it out of the window's outputs first`,
      });
};
