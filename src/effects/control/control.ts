/**
 * The control plane's commands. Each takes the write lock, applies the pure rules (domain/rules.ts,
 * channel-checks.ts) to the stored configuration, persists the result, then touches only what changed at runtime:
 * a new output starts, a changed output restarts alone, changed inputs or redundancy settings apply to the running
 * channel with its outputs untouched. Each writes an `api_change` event naming the token that made it (the audit
 * trail) and refreshes the read model, whose view it answers with. The commands on a slate are slate-commands.ts,
 * those that act on a running channel and change nothing stored live-commands.ts: `Control` is all three. Channels
 * that should run are kept running by resume.ts; import and export of the whole configuration live in
 * config-transfer.ts. A schedule owns the outputs its windows name: a schedule saved stores them off outside a
 * window on air, an output added there is stored off, and an operator's enable there is a 409 in words; the
 * schedule's own switch is `scheduleOutput`.
 */
import * as Clock from "effect/Clock";
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Schema from "effect/Schema";
import { frozenRefusal } from "../../core/content/args.ts";
import type { Sight } from "../../domain/access.ts";
import {
  type ChannelBody,
  type ChannelConfig,
  type ChannelPatch,
  MAX_OUTPUTS,
  type OutputBody,
  type OutputConfig,
  OutputConfig as OutputConfigSchema,
  type OutputPatch,
} from "../../domain/channel.ts";
import { checkChannel, idTaken } from "../../domain/channel-checks.ts";
import { ControlError, type FieldIssue } from "../../domain/errors.ts";
import type { ChannelId, OutputId } from "../../domain/ids.ts";
import { tablePidIssues } from "../../domain/output-policy.ts";
import {
  buildChannel,
  buildOutput,
  checkChannelSchedule,
  inputChanged,
  outputLoop,
  patchChannel,
  policyOf,
  scheduledOutput,
  unmask,
  withOutput,
} from "../../domain/rules.ts";
import { enableRefusal, holdOutputs, mayBeOn, windowsOnAir } from "../../domain/schedule.ts";
import { invalid, toFieldIssues } from "../../domain/validate.ts";
import type { ChannelRuntimeStatus } from "../channel/channel-types.ts";
import { Channels } from "../channel/channels.ts";
import { CurrentSight } from "../config/actor.ts";
import { ConfigState } from "../config/config-state.ts";
import { Placement } from "../config/placement.ts";
import { ScheduleStore } from "../config/schedule-progress.ts";
import { checkRecordingOutputs, recordingsRoot } from "../outputs/recordings.ts";
import { localAddresses } from "../runtime/own-ports.ts";
import { ReadModel } from "../status/read-model.ts";
import { liveCommands } from "./live-commands.ts";
import { controlShared } from "./shared.ts";
import { slateCommands } from "./slate-commands.ts";

const fromCheck = (error: ControlError | undefined) =>
  error === undefined ? Effect.void : Effect.fail(error);

/**
 * A frozen picture is judged on key frames: a frozen rule shorter than 1.5 GOPs of a running input, as its
 * watcher measured them, is refused in words. (A channel that is not running is judged once it runs: the rule
 * then cannot judge, and says why.)
 */
const frozenAgainstGop = (next: ChannelConfig, running: ChannelRuntimeStatus | null) => {
  const issues: FieldIssue[] = [];
  for (const [name, rule] of Object.entries(next.redundancy?.health?.rules ?? {})) {
    if (!("frozen" in rule)) continue;
    for (const input of running?.inputs ?? []) {
      const gop = input.health?.watcher?.gopMs ?? null;
      const mode = next.redundancy?.health?.decode === "all_frames" ? "all" : "key";
      const refusal = gop === null ? null : frozenRefusal(rule.for_ms, gop, mode);
      if (refusal === null) continue;
      issues.push({
        field: `redundancy.health.rules.${name}.for_ms`,
        message: `${refusal} (the ${input.role} input)`,
      });
      break;
    }
  }
  return issues.length === 0 ? undefined : invalid(issues);
};

/** Every stored output, marked `unseen` where its channel is beyond the caller's sight. */
const outputsSeen = (channels: ReadonlyArray<ChannelConfig>, sight: Sight) =>
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

export class Control extends Effect.Service<Control>()("distributary/Control", {
  effect: Effect.gen(function* () {
    const channels = yield* Channels;
    const configs = yield* ConfigState;
    const readModel = yield* ReadModel;
    const recordings = yield* recordingsRoot;
    const { locked, done, startChannel, isRunning, outputSpec, spec, commitChannel, applyRuntime } =
      yield* controlShared;
    const placement = yield* Placement;
    const schedules = yield* ScheduleStore;
    const { find, findOutput } = configs;

    /**
     * The windows of the channel's schedule on air now, by its stored progress: a schedule owns the outputs it
     * names, off outside its windows (domain/schedule-outputs.ts).
     */
    const onAir = (channel: ChannelConfig) =>
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

    const create = Effect.fn("Control.create")(function* (body: ChannelBody) {
      const config = configs.current();
      const sight = yield* CurrentSight;
      const holder =
        body.id === undefined ? undefined : config.channels.find((channel) => channel.id === body.id);
      if (holder !== undefined) return yield* idTaken(holder.id, holder, sight);
      const channel = yield* buildChannel(body, {
        desired: "stopped",
        created_at: new Date().toISOString(),
      });
      yield* fromCheck(checkChannel(channel, config.channels, localAddresses(), sight));
      yield* fromCheck(checkChannelSchedule(channel, yield* Clock.currentTimeMillis));
      yield* checkRecordingOutputs(
        channel.outputs,
        recordings,
        (index) => `outputs[${index}].url`,
        outputsSeen(config.channels, sight),
      );
      // The outputs its schedule names are off until their window.
      const held = holdOutputs(channel, yield* onAir(channel));
      yield* configs.commit({ ...config, channels: [...config.channels, held] });
      yield* done("channel.create", `channel ${channel.id} (${channel.name}) created`, channel.id);
      return yield* readModel.channel(channel.id);
    }, locked);

    const remove = Effect.fn("Control.remove")(function* (id: ChannelId) {
      const channel = yield* find(id);
      const config = configs.current();
      // Persisted first: a failed write leaves the channel as it was, on air.
      yield* configs.commit({ ...config, channels: config.channels.filter((c) => c.id !== id) });
      yield* channels.stop(channel.id);
      yield* done("channel.delete", `channel ${id} (${channel.name}) deleted`, id);
    }, locked);

    const start = Effect.fn("Control.start")(function* (id: ChannelId) {
      const channel = yield* find(id);
      // Persisted first; a start that then fails puts the stored state back as it was.
      yield* commitChannel({ ...channel, desired: "running" });
      yield* startChannel(channel).pipe(Effect.tapError(() => Effect.ignore(commitChannel(channel))));
      yield* done("channel.start", `channel ${id} (${channel.name}) started`, id);
      return yield* readModel.channel(id);
    }, locked);

    const stop = Effect.fn("Control.stop")(function* (id: ChannelId) {
      const channel = yield* find(id);
      yield* commitChannel({ ...channel, desired: "stopped" });
      yield* channels.stop(id);
      yield* done("channel.stop", `channel ${id} (${channel.name}) stopped`, id);
      return yield* readModel.channel(id);
    }, locked);

    const patch = Effect.fn("Control.patch")(function* (id: ChannelId, changes: ChannelPatch) {
      const channel = yield* find(id);
      const patched = patchChannel(channel, changes);
      // A schedule saved owns the outputs it names: those outside a window on air go off with the save.
      const next = changes.schedule == null ? patched : holdOutputs(patched, yield* onAir(patched));
      yield* fromCheck(checkChannel(next, configs.current().channels, localAddresses(), yield* CurrentSight));
      // A schedule is checked when it (or the slate its preroll needs) changes: an unrelated change never fails
      // on the stored one.
      if (changes.schedule !== undefined || changes.slate !== undefined)
        yield* fromCheck(checkChannelSchedule(next, yield* Clock.currentTimeMillis));
      if (isRunning(id)) yield* fromCheck(frozenAgainstGop(next, yield* channels.status(id)));
      yield* commitChannel(next);
      // Inputs and redundancy change live; a channel that cannot take the change (a new address that will
      // not bind) is started afresh, which answers why it cannot run.
      // A fleet node that stops or starts receiving the channel's input (its `nodes` changed).
      if (placement.runsHere(channel) !== placement.runsHere(next)) {
        if (isRunning(id)) yield* channels.stop(id);
        else if (next.desired === "running") yield* applyRuntime(startChannel(next));
      } else if (isRunning(id) && inputChanged(channel, next)) {
        yield* channels
          .reconfigure(spec(next))
          .pipe(Effect.catchAll(() => Effect.zipRight(channels.stop(id), startChannel(next))));
      }
      const held = next.outputs.filter((output, index) => output !== patched.outputs[index]);
      if (isRunning(id))
        for (const output of held) yield* applyRuntime(channels.applyOutput(id, outputSpec(id, output)));
      const holding =
        held.length === 0
          ? ""
          : `; its schedule holds ${held.map((output) => output.id).join(", ")} off outside its windows`;
      yield* done("channel.update", `channel ${id} (${next.name}) changed${holding}`, id);
      return yield* readModel.channel(id);
    }, locked);

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
      ...(yield* slateCommands),
      ...(yield* liveCommands),
      create,
      remove,
      start,
      stop,
      patch,
      addOutput,
      replaceOutput,
      patchOutput,
      scheduleOutput,
      cloneOutput,
      removeOutput,
    } as const;
  }),
}) {}
