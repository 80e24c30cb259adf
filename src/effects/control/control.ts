/**
 * The control plane's commands. Each takes the write lock, applies the pure rules (domain/channel/rules.ts,
 * channel-checks.ts) to the stored configuration, persists the result, then touches only what changed at runtime:
 * a new output starts, a changed output restarts alone, changed inputs or redundancy settings apply to the running
 * channel with its outputs untouched. Each writes an `api_change` event naming the token that made it (the audit
 * trail) and refreshes the read model, whose view it answers with. The commands on a slate are slate-commands.ts,
 * those that act on a running channel and change nothing stored live-commands.ts, an output's output-commands.ts: `Control` is all four. Channels
 * that should run are kept running by resume.ts; import and export of the whole configuration live in
 * config-transfer.ts. A schedule owns the outputs its windows name: a schedule saved stores them off outside a
 * window on air, an output added there is stored off, and an operator's enable there is a 409 in words; the
 * schedule's own switch is `scheduleOutput`.
 */
import * as Clock from "effect/Clock";
import * as Effect from "effect/Effect";
import { frozenRefusal } from "../../core/content/args.ts";
import type { FieldIssue } from "../../domain/base/errors.ts";
import type { ChannelId } from "../../domain/base/ids.ts";
import { invalid } from "../../domain/base/validate.ts";
import type { ChannelBody, ChannelConfig, ChannelPatch } from "../../domain/channel/channel.ts";
import { checkChannel, idTaken } from "../../domain/channel/channel-checks.ts";
import { buildChannel, inputChanged, patchChannel } from "../../domain/channel/rules.ts";
import { holdOutputs } from "../../domain/schedule/schedule-outputs.ts";
import { checkChannelSchedule } from "../../domain/schedule/schedule-rules.ts";
import type { ChannelRuntimeStatus } from "../channel/channel-types.ts";
import { Channels } from "../channel/channels.ts";
import { CurrentSight } from "../config/actor.ts";
import { ConfigState } from "../config/config-state.ts";
import { Placement } from "../config/placement.ts";
import { ScheduleStore } from "../config/schedule-progress.ts";
import { checkRecordingOutputs, recordingsRoot } from "../outputs/recordings.ts";
import { localAddresses } from "../runtime/sockets/own-ports.ts";
import { ReadModel } from "../status/read-model.ts";
import { liveCommands } from "./live-commands.ts";
import { fromCheck, outputCommands, outputsSeen, scheduleOnAir } from "./output-commands.ts";
import { controlShared } from "./shared.ts";
import { slateCommands } from "./slate-commands.ts";

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
    const { find } = configs;

    const onAir = scheduleOnAir(schedules);

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

    return {
      ...(yield* slateCommands),
      ...(yield* liveCommands),
      ...(yield* outputCommands),
      create,
      remove,
      start,
      stop,
      patch,
    } as const;
  }),
}) {}
