/**
 * The output commands of the control plane (control.ts): add, replace, change, clone and remove an output of a
 * channel, each stored first, then applied to the running channel; the schedule's own switch of an output it
 * owns.
 */
import * as Clock from "effect/Clock";
import type * as Context from "effect/Context";
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Schema from "effect/Schema";
import { ControlError } from "../../domain/base/errors.ts";
import type { ChannelId, OutputId } from "../../domain/base/ids.ts";
import { invalid, toFieldIssues } from "../../domain/base/validate.ts";
import {
  type ChannelConfig,
  MAX_OUTPUTS,
  type OutputBody,
  type OutputConfig,
  OutputConfig as OutputConfigSchema,
  type OutputPatch,
} from "../../domain/channel/channel.ts";
import { outputLoop } from "../../domain/channel/loops.ts";
import { tablePidIssues } from "../../domain/channel/output-policy.ts";
import { buildOutput, policyOf, unmask, withOutput } from "../../domain/channel/rules.ts";
import type { Sight } from "../../domain/control/access.ts";
import { enableRefusal, mayBeOn, windowsOnAir } from "../../domain/schedule/schedule-outputs.ts";
import { scheduledOutput } from "../../domain/schedule/schedule-rules.ts";
import { Channels } from "../channel/channels.ts";
import { CurrentSight } from "../config/actor.ts";
import { ConfigState } from "../config/config-state.ts";
import { ScheduleStore } from "../config/schedule-progress.ts";
import { checkRecordingOutputs, recordingsRoot } from "../outputs/recordings.ts";
import { localAddresses } from "../runtime/sockets/own-ports.ts";
import { ReadModel } from "../status/read-model.ts";
import { controlShared } from "./shared.ts";

/** A check's refusal as the command's failure. */
export const fromCheck = (error: ControlError | undefined) =>
  error === undefined ? Effect.void : Effect.fail(error);

/** Every stored output, marked `unseen` where its channel is beyond the caller's sight. */
export const outputsSeen = (channels: ReadonlyArray<ChannelConfig>, sight: Sight) =>
  channels.flatMap((other) => {
    const unseen = !sight(other);
    return other.outputs.map((kept) => ({ url: kept.url, unseen }));
  });

/** The stored URL when `url` is its masked form; a masked URL that stands for nothing stored is a 400. */
const keepMasked = (url: string, previous: OutputConfig | undefined, field: string) =>
  Either.match(unmask(url, previous, field), {
    onLeft: (issue) => Effect.fail(invalid([issue])),
    onRight: (kept) => Effect.succeed(kept),
  });

/**
 * The windows of the channel's schedule on air now, by its stored progress: a schedule owns the outputs it
 * names, off outside its windows (domain/schedule/schedule-outputs.ts).
 */
export const scheduleOnAir = (schedules: Context.Tag.Service<ScheduleStore>) => (channel: ChannelConfig) =>
  channel.schedule == null
    ? Effect.succeed(new Set<string>() as ReadonlySet<string>)
    : Effect.zipWith(schedules.load(channel.id), Clock.currentTimeMillis, (stored, now) =>
        windowsOnAir(channel, stored.occurrences.values(), now),
      ).pipe(
        Effect.mapError(
          (error) =>
            new ControlError({
              reason: "store_failed",
              message: `the schedule's progress could not be read: ${error.message}`,
            }),
        ),
      );

export const outputCommands = Effect.gen(function* () {
  const channels = yield* Channels;
  const configs = yield* ConfigState;
  const readModel = yield* ReadModel;
  const recordings = yield* recordingsRoot;
  const { locked, done, isRunning, outputSpec, commitChannel, applyRuntime } = yield* controlShared;
  const schedules = yield* ScheduleStore;
  const { find, findOutput } = configs;
  const onAir = scheduleOnAir(schedules);

  /** Stores the channel with one output added or replaced, then applies it to the running channel. */
  const putOutput = Effect.fnUntraced(function* (
    channel: ChannelConfig,
    given: OutputConfig,
    action: string,
    verb: string,
    bySchedule = false,
  ) {
    let output = given;
    const before = channel.outputs.find((candidate) => candidate.id === output.id);
    const adding = before === undefined;
    if (adding && channel.outputs.length >= MAX_OUTPUTS) {
      return yield* new ControlError({
        reason: "conflict",
        message: `channel '${channel.name}' already has ${MAX_OUTPUTS} outputs, the most a channel may have; remove one first`,
      });
    }
    yield* fromCheck(
      outputLoop(
        output,
        "url",
        configs.current().channels.map((stored) => (stored.id === channel.id ? channel : stored)),
        localAddresses(),
        yield* CurrentSight,
      ),
    );
    yield* checkRecordingOutputs(
      [output],
      recordings,
      () => "url",
      outputsSeen(
        configs
          .current()
          .channels.map((other) =>
            other.id === channel.id
              ? { ...other, outputs: other.outputs.filter((kept) => kept.id !== output.id) }
              : other,
          ),
        yield* CurrentSight,
      ),
    );
    if (output.policy != null && isRunning(channel.id)) {
      const live = yield* channels.status(channel.id);
      const issues = tablePidIssues(
        output.policy,
        live?.inputs.flatMap((input) => input.core.programs) ?? [],
      );
      if (issues.length > 0) return yield* Effect.fail(invalid(issues));
    }
    // An output the schedule owns, switched on outside its windows, is stored off (the status says until when).
    const switchedOn = output.enabled && before?.enabled !== true;
    if (switchedOn && !bySchedule && !mayBeOn(channel, output.id, yield* onAir(channel)))
      output = { ...output, enabled: false };
    yield* commitChannel(withOutput(channel, output));
    if (isRunning(channel.id)) {
      yield* applyRuntime(channels.applyOutput(channel.id, outputSpec(channel.id, output)));
    }
    yield* done(
      action,
      `output ${output.id} (${output.name}) of channel ${channel.id} ${verb}`,
      channel.id,
      output.id,
    );
    return yield* readModel.output(channel.id, output.id);
  });

  const addOutput = Effect.fn("Control.addOutput")(function* (id: ChannelId, body: OutputBody) {
    const channel = yield* find(id);
    if (body.id !== undefined && channel.outputs.some((output) => output.id === body.id)) {
      return yield* new ControlError({
        reason: "conflict",
        message: `id: output '${body.id}' already exists in channel '${channel.name}'`,
        errors: [{ field: "id", message: `output '${body.id}' already exists` }],
      });
    }
    const url = yield* keepMasked(body.url, undefined, "url");
    return yield* putOutput(
      channel,
      buildOutput({ ...body, url }, channel.outputs),
      "output.create",
      "added",
    );
  }, locked);

  const replaceOutput = Effect.fn("Control.replaceOutput")(function* (
    id: ChannelId,
    outputId: OutputId,
    body: OutputBody,
  ) {
    const channel = yield* find(id);
    const previous = yield* findOutput(channel, outputId);
    if (body.id !== undefined && body.id !== outputId) {
      return yield* Effect.fail(
        invalid([{ field: "id", message: `must be '${outputId}' (the output in the path) or left out` }]),
      );
    }
    const url = yield* keepMasked(body.url, previous, "url");
    const output = buildOutput({ ...body, url }, channel.outputs, previous);
    return yield* putOutput(channel, output, "output.replace", "replaced");
  }, locked);

  /** An output's change; `bySchedule`: the schedule's own enable or disable, which its windows allow. */
  const changeOutput = Effect.fnUntraced(function* (
    id: ChannelId,
    outputId: OutputId,
    changes: OutputPatch,
    bySchedule: boolean,
  ) {
    const channel = yield* find(id);
    const previous = yield* findOutput(channel, outputId);
    if (
      !bySchedule &&
      changes.enabled === true &&
      !previous.enabled &&
      !mayBeOn(channel, outputId, yield* onAir(channel))
    )
      return yield* new ControlError({
        reason: "conflict",
        message: enableRefusal(channel, outputId, yield* Clock.currentTimeMillis),
      });
    const merged = {
      id: previous.id,
      name: changes.name ?? previous.name,
      protocol: changes.protocol ?? previous.protocol,
      url: changes.url === undefined ? previous.url : yield* keepMasked(changes.url, previous, "url"),
      enabled: changes.enabled ?? previous.enabled,
      ...policyOf(changes.policy, previous.policy),
    };
    // The merged output is checked whole: a new protocol must match the URL it now goes with.
    const output = yield* Schema.decodeUnknown(OutputConfigSchema, { errors: "all" })(merged).pipe(
      Effect.mapError((error) => invalid(toFieldIssues(error))),
    );
    const verb =
      changes.enabled !== undefined && changes.enabled !== previous.enabled
        ? changes.enabled
          ? "enabled"
          : "disabled"
        : "changed";
    return yield* putOutput(channel, output, "output.update", verb, bySchedule);
  });

  const patchOutput = Effect.fn("Control.patchOutput")(
    (id: ChannelId, outputId: OutputId, changes: OutputPatch) => changeOutput(id, outputId, changes, false),
    locked,
  );

  /** The schedule's switch of an output it owns: on at its window's preroll, off at its end (as `schedule`). */
  const scheduleOutput = Effect.fn("Control.scheduleOutput")(
    (id: ChannelId, outputId: OutputId, enabled: boolean) => changeOutput(id, outputId, { enabled }, true),
    locked,
  );

  /**
   * A copy of an output with its stored URL (stream key included), disabled, so that two outputs never
   * publish the same key at once: the operator edits the copy, then enables it.
   */
  const cloneOutput = Effect.fn("Control.cloneOutput")(function* (id: ChannelId, outputId: OutputId) {
    const channel = yield* find(id);
    const original = yield* findOutput(channel, outputId);
    const copy = buildOutput(
      {
        name: `${original.name} (copy)`.slice(0, 100),
        protocol: original.protocol,
        url: original.url,
        enabled: false,
        policy: original.policy,
      },
      channel.outputs,
    );
    return yield* putOutput(channel, copy, "output.clone", `cloned from ${outputId}`);
  }, locked);

  const removeOutput = Effect.fn("Control.removeOutput")(function* (id: ChannelId, outputId: OutputId) {
    const channel = yield* find(id);
    const output = yield* findOutput(channel, outputId);
    yield* fromCheck(scheduledOutput(channel, outputId));
    yield* commitChannel({ ...channel, outputs: channel.outputs.filter((o) => o.id !== outputId) });
    if (isRunning(id)) yield* applyRuntime(channels.removeOutput(id, outputId));
    yield* done(
      "output.delete",
      `output ${outputId} (${output.name}) of channel ${id} removed`,
      id,
      outputId,
    );
  }, locked);

  return {
    addOutput,
    replaceOutput,
    patchOutput,
    scheduleOutput,
    cloneOutput,
    removeOutput,
  } as const;
});
