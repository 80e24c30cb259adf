/**
 * The planner's diff for config-code.ts: what a plan changes (channels, their outputs, notifiers, access rules),
 * field by field with each value shown as a reference or masked, what each change costs a running channel, and
 * the plan in words. Pure: the caller passes the state before and after.
 */

import type { ChannelConfig } from "../../domain/channel/channel.ts";
import type { AccessRule } from "../../domain/control/access.ts";
import {
  type Action,
  channelCost,
  declaredChannel,
  declaredNotifier,
  type FieldChange,
  leafChanges,
  NO_INTERRUPTION,
  outputCost,
  type PlannedChange,
  planLine,
} from "../../domain/control/config-code.ts";
import type { NotifierRecord } from "../../domain/events/notifiers.ts";
import { ownerOf } from "../../domain/schedule/schedule-outputs.ts";

type Shown = (field: string, value: unknown) => unknown;

/** The changes from the stored state to the planned one, in the order a plan lists them. */
export const planChanges = (input: {
  /** The channels stored now, and by id. */
  readonly current: ReadonlyArray<ChannelConfig>;
  readonly byId: ReadonlyMap<string, ChannelConfig>;
  /** The channels the document declares, as they would be stored. */
  readonly next: ReadonlyArray<ChannelConfig>;
  /** Whether what the document leaves out is deleted. */
  readonly prune: boolean;
  readonly storedNotifiers: ReadonlyArray<NotifierRecord>;
  readonly keptNotifiers: ReadonlyArray<NotifierRecord>;
  readonly rules: ReadonlyArray<AccessRule>;
  readonly nextRules: ReadonlyArray<AccessRule>;
  /** A field's value as shown before and after the change. */
  readonly before: Shown;
  readonly after: Shown;
  readonly isRunning: (id: ChannelConfig["id"]) => boolean;
  readonly runsHere: (channel: ChannelConfig) => boolean;
}): { readonly changes: ReadonlyArray<PlannedChange>; readonly touchesRules: boolean } => {
  const { current, byId, next, prune, storedNotifiers, keptNotifiers, before, after, isRunning } = input;
  const fieldsOf = (from: unknown, to: unknown, prefix: string): FieldChange[] =>
    leafChanges(from, to, "").map((change) => ({
      field: change.field,
      before: before(`${prefix}.${change.field}`, change.before),
      after: after(`${prefix}.${change.field}`, change.after),
    }));
  // References changed with the same value are a change of the document alone.
  const changes: PlannedChange[] = [];
  const push = (change: Omit<PlannedChange, "words">) =>
    changes.push({ ...change, words: planLine({ ...change, words: "" }) });
  const nextIds = new Set(next.map((channel) => channel.id));
  for (const channel of next) {
    const old = byId.get(channel.id);
    const { outputs: outs, ...own } = declaredChannel(channel);
    const prefix = `channels.${channel.id}`;
    const running = isRunning(channel.id);
    if (old === undefined) {
      push({
        kind: "channel",
        action: "create",
        id: channel.id,
        fields: fieldsOf({}, own, prefix),
        cost: channel.desired === "running" ? `channel ${channel.name} starts` : NO_INTERRUPTION,
      });
      for (const output of channel.outputs)
        push({
          kind: "output",
          action: "create",
          id: `${channel.id}/${output.id}`,
          fields: fieldsOf({}, outs?.[output.id], `${prefix}.outputs.${output.id}`),
          cost: NO_INTERRUPTION,
        });
      continue;
    }
    const { outputs: oldOuts, ...oldOwn } = declaredChannel(old);
    const ownFields = fieldsOf(oldOwn, own, prefix);
    const moves = input.runsHere(old) !== input.runsHere(channel);
    if (ownFields.length > 0)
      push({
        kind: "channel",
        action: "change",
        id: channel.id,
        fields: ownFields,
        cost: channelCost(channel.name, ownFields, running, moves),
      });
    const stopping = ownFields.some((field) => field.field === "desired") || moves;
    for (const output of channel.outputs) {
      const was = oldOuts?.[output.id];
      const fields = fieldsOf(was ?? {}, outs?.[output.id], `${prefix}.outputs.${output.id}`).filter(
        // A schedule's windows switch the outputs they name: their switch is theirs.
        (field) =>
          !(was !== undefined && field.field === "enabled" && ownerOf(channel, output.id) !== undefined),
      );
      const action: Action = was === undefined ? "create" : "change";
      if (fields.length === 0) continue;
      push({
        kind: "output",
        action,
        id: `${channel.id}/${output.id}`,
        fields,
        cost: outputCost(output.name, action, fields, running && !stopping, output.enabled),
      });
    }
    for (const output of old.outputs)
      if (!channel.outputs.some((kept) => kept.id === output.id))
        push({
          kind: "output",
          action: "delete",
          id: `${channel.id}/${output.id}`,
          fields: [],
          cost: outputCost(output.name, "delete", [], running, output.enabled),
        });
  }
  if (prune)
    for (const channel of current)
      if (!nextIds.has(channel.id))
        push({
          kind: "channel",
          action: "delete",
          id: channel.id,
          fields: [],
          cost: isRunning(channel.id)
            ? `channel ${channel.name} stops: every output goes dark`
            : NO_INTERRUPTION,
        });
  for (const record of keptNotifiers) {
    const old = storedNotifiers.find((candidate) => candidate.id === record.id);
    const fields = fieldsOf(
      old === undefined ? {} : declaredNotifier(old),
      declaredNotifier(record),
      `notifiers.${record.id}`,
    );
    if (fields.length > 0)
      push({
        kind: "notifier",
        action: old === undefined ? "create" : "change",
        id: record.id,
        fields,
        cost: NO_INTERRUPTION,
      });
  }
  for (const old of storedNotifiers)
    if (!keptNotifiers.some((record) => record.id === old.id))
      push({ kind: "notifier", action: "delete", id: old.id, fields: [], cost: NO_INTERRUPTION });
  const ruleFields = leafChanges(input.rules, input.nextRules, "access_rules");
  if (ruleFields.length > 0)
    push({
      kind: "access_rules",
      action: "change",
      id: "access_rules",
      fields: ruleFields,
      cost: NO_INTERRUPTION,
    });
  return { changes, touchesRules: ruleFields.length > 0 };
};

/** The plan's count of each action and its words, a line a change and a total. */
export const planWords = (changes: ReadonlyArray<PlannedChange>) => {
  const count = (action: Action) => changes.filter((change) => change.action === action).length;
  return {
    no_changes: changes.length === 0,
    summary: { create: count("create"), change: count("change"), delete: count("delete") },
    text:
      changes.length === 0
        ? "no changes: the configuration matches the document"
        : `${changes.map((change) => change.words).join("\n")}\nplan: ${count("create")} to create, ${count("change")} to change, ${count("delete")} to delete`,
  };
};
