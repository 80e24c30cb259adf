/**
 * The control plane's commands. Each takes the write lock, applies the pure rules (domain/rules.ts) to the
 * stored configuration, persists the result, then touches only what changed at runtime: a new output starts,
 * a changed output restarts alone, changed inputs or redundancy settings apply to the running channel with its
 * outputs untouched. Each writes an `api_change` event naming the token that made it (the audit trail) and
 * refreshes the read model, whose view it answers with. Channels that should run are kept running by
 * resume.ts; import and export of the whole configuration live in config-transfer.ts.
 */
import { Buffer } from "node:buffer";
import { createHash, randomInt } from "node:crypto";
import { Effect, Either, Schema } from "effect";
import { encodeOperatorCue } from "../../core/cue-insert/operator-cue.ts";
import { readSlateImage } from "../../core/slate/image.ts";
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
import type { CueInsertBody } from "../../domain/cue-insert.ts";
import { ControlError } from "../../domain/errors.ts";
import type { ChannelId, OutputId } from "../../domain/ids.ts";
import { tablePidIssues } from "../../domain/output-policy.ts";
import {
  buildChannel,
  buildOutput,
  checkChannel,
  inputChanged,
  outputLoop,
  patchChannel,
  policyOf,
  unmask,
  withOutput,
} from "../../domain/rules.ts";
import type { SlateConfig, SlateImage } from "../../domain/slate.ts";
import { invalid, toFieldIssues } from "../../domain/validate.ts";
import { Channels } from "../channel/channels.ts";
import { CurrentActor } from "../config/actor.ts";
import { ConfigState } from "../config/config-state.ts";
import { Placement } from "../config/placement.ts";
import { operatorCuesPerMinute } from "../config/settings.ts";
import { checkRecordingOutputs, recordingsRoot } from "../outputs/recordings.ts";
import { localAddresses } from "../runtime/own-ports.ts";
import { unavailableHere } from "../runtime/runtime.ts";
import { ReadModel } from "../status/read-model.ts";
import { makeCueLimit } from "./cue-limit.ts";
import { controlShared } from "./shared.ts";

/** A picture that cannot be a slate: a 400 that says what to send instead. */
const invalidImage = (problem: string) => Effect.fail(invalid([{ field: "(body)", message: problem }]));

const fromCheck = (error: ControlError | undefined) =>
  error === undefined ? Effect.void : Effect.fail(error);

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
    const { locked, done, startChannel, isRunning, outputSpec, spec } = yield* controlShared;
    const placement = yield* Placement;
    const cuesPerMinute = yield* Effect.orDie(operatorCuesPerMinute);
    const cueLimit = makeCueLimit(cuesPerMinute);
    const { find, findOutput } = configs;

    const commitChannel = (channel: ChannelConfig) => configs.commit(configs.replacing(channel));

    /** Runtime changes after the store has accepted them; a failure shows in the output's status. */
    const applyRuntime = (effect: Effect.Effect<void, { readonly message: string }>) =>
      effect.pipe(
        Effect.catchAll((error) => Effect.logWarning(`could not apply a change: ${error.message}`)),
      );

    const create = Effect.fn("Control.create")(function* (body: ChannelBody) {
      const config = configs.current();
      if (body.id !== undefined && config.channels.some((channel) => channel.id === body.id)) {
        return yield* new ControlError({
          reason: "conflict",
          message: `id: channel '${body.id}' already exists`,
        });
      }
      const channel = yield* buildChannel(body, {
        desired: "stopped",
        created_at: new Date().toISOString(),
      });
      yield* fromCheck(checkChannel(channel, config.channels, localAddresses()));
      yield* checkRecordingOutputs(
        channel.outputs,
        recordings,
        (index) => `outputs[${index}].url`,
        config.channels.flatMap((other) => other.outputs),
      );
      yield* configs.commit({ ...config, channels: [...config.channels, channel] });
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
      const next = patchChannel(channel, changes);
      yield* fromCheck(checkChannel(next, configs.current().channels, localAddresses()));
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
      yield* done("channel.update", `channel ${id} (${next.name}) changed`, id);
      return yield* readModel.channel(id);
    }, locked);

    /** Stores the channel with one output added or replaced, then applies it to the running channel. */
    const putOutput = Effect.fnUntraced(function* (
      channel: ChannelConfig,
      output: OutputConfig,
      action: string,
      verb: string,
    ) {
      const adding = !channel.outputs.some((candidate) => candidate.id === output.id);
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
        ),
      );
      yield* checkRecordingOutputs(
        [output],
        recordings,
        () => "url",
        configs
          .current()
          .channels.flatMap((other) =>
            other.outputs.filter((kept) => other.id !== channel.id || kept.id !== output.id),
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

    const patchOutput = Effect.fn("Control.patchOutput")(function* (
      id: ChannelId,
      outputId: OutputId,
      changes: OutputPatch,
    ) {
      const channel = yield* find(id);
      const previous = yield* findOutput(channel, outputId);
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
      return yield* putOutput(channel, output, "output.update", verb);
    }, locked);

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
      yield* commitChannel({ ...channel, outputs: channel.outputs.filter((o) => o.id !== outputId) });
      if (isRunning(id)) yield* applyRuntime(channels.removeOutput(id, outputId));
      yield* done(
        "output.delete",
        `output ${outputId} (${output.name}) of channel ${id} removed`,
        id,
        outputId,
      );
    }, locked);

    /** It changes nothing stored, so it takes no write lock: an operator's switch never waits behind a command. */
    const switchInput = Effect.fn("Control.switchInput")(function* (
      id: ChannelId,
      active: "primary" | "backup",
    ) {
      const channel = yield* find(id);
      if (!isRunning(id)) {
        return yield* new ControlError({
          reason: "conflict",
          message: `channel '${channel.name}' is not running; start it before switching inputs`,
        });
      }
      yield* channels
        .switchInput(id, active)
        .pipe(Effect.mapError((error) => new ControlError({ reason: "conflict", message: error.message })));
      yield* done("input.switch", `channel ${id}: operator switched to the ${active} input`, id);
      return yield* readModel.channel(id);
    });

    /**
     * "Insert a break now": the operator's cue, encoded here, onto the running channel's SCTE-35 PID (one is
     * added to its PMT when the input has none) and to every output whose policy keeps it. Nothing stored
     * changes; the audit names the operator, and the cue log keeps it with its origin.
     */
    const insertCue = Effect.fn("Control.insertCue")(function* (id: ChannelId, body: CueInsertBody) {
      const channel = yield* find(id);
      if (!isRunning(id)) {
        return yield* new ControlError({
          reason: "conflict",
          message: `channel '${channel.name}' is not running; start it before inserting a cue`,
        });
      }
      const wait = cueLimit.wait(id);
      if (wait !== null) {
        return yield* new ControlError({
          reason: "rate_limited",
          retry_after_s: wait,
          message: `channel '${channel.name}' has had ${cuesPerMinute} operator cues in the last minute, the most it takes (DISTRIBUTARY_OPERATOR_CUES_PER_MINUTE); nothing was inserted: the next may go in ${wait} s`,
        });
      }
      const actor = yield* CurrentActor;
      const eventId = body.event_id ?? randomInt(1, 0xffffffff);
      const section = encodeOperatorCue(body, eventId);
      const inserted = yield* channels
        .insertCue(id, section, body.program ?? null, actor.name)
        .pipe(Effect.mapError((error) => new ControlError({ reason: "conflict", message: error.message })));
      cueLimit.taken(id);
      const what = `${body.command} ${body.command === "splice_insert" && body.out === false ? "in" : "out"}`;
      const length = body.duration_s === undefined ? "open-ended" : `${body.duration_s} s`;
      const when = body.at_pts === undefined ? "immediate" : `at PTS ${body.at_pts}`;
      yield* done(
        "cue.insert",
        `channel ${id}: operator inserted a ${what} (event ${eventId}, ${length}, ${when}) on PID ${inserted.pid}`,
        id,
      );
      return {
        id: inserted.id,
        pid: inserted.pid,
        event_id: eventId,
        section_base64: Buffer.from(section).toString("base64"),
      };
    });

    /**
     * A running channel's inputs take the senders they trust now (the linked MediaLive channel's egress
     * endpoints changed), live: the outputs go on. Nothing stored changes, so nothing is audited.
     */
    const applySenders = Effect.fn("Control.applySenders")(function* (id: ChannelId) {
      const channel = configs.channel(id);
      if (channel === undefined || !isRunning(id)) return;
      yield* applyRuntime(channels.reconfigure(spec(channel)));
      yield* Effect.logInfo(
        `channel ${id} (${channel.name}): its inputs' allowed senders follow MediaLive's egress`,
      );
    }, locked);

    /** A running channel to another forwarding worker, its outputs going on (Channels.move). */
    const move = Effect.fn("Control.move")(function* (id: ChannelId, worker: number) {
      const channel = yield* find(id);
      if (unavailableHere.move !== null)
        return yield* new ControlError({ reason: "unavailable", message: unavailableHere.move });
      if (!isRunning(id)) {
        return yield* new ControlError({
          reason: "conflict",
          message: `channel '${channel.name}' is not running; only a running channel moves between workers`,
        });
      }
      const from = channels.placement(id);
      yield* channels
        .move(id, worker)
        .pipe(Effect.mapError((error) => new ControlError({ reason: "conflict", message: error.message })));
      yield* done("channel.move", `channel ${id}: moved from forwarding worker ${from} to ${worker}`, id);
      return yield* readModel.channel(id);
    }, locked);

    /** The channel's slate, which must exist: a hand switch or a picture needs one to apply to. */
    const withSlate = (channel: ChannelConfig, what: string) =>
      channel.slate == null
        ? Effect.fail(
            new ControlError({
              reason: "conflict",
              message: `channel '${channel.name}' has no slate; turn one on first with PATCH /api/channels/${channel.id} {"slate": {"after_ms": 1000}} before ${what}`,
            }),
          )
        : Effect.succeed(channel.slate);

    /** Stores a slate change and applies it to the running channel (its outputs go on). */
    const commitSlate = (channel: ChannelConfig, slate: SlateConfig) =>
      Effect.gen(function* () {
        const next = { ...channel, slate };
        yield* commitChannel(next);
        if (isRunning(channel.id)) yield* applyRuntime(channels.reconfigure(spec(next)));
      });

    /** Puts the channel on its slate by hand, or takes it off (then the inputs decide, as without a hand). */
    const switchSlate = Effect.fn("Control.switchSlate")(function* (id: ChannelId, on: boolean) {
      const channel = yield* find(id);
      const slate = yield* withSlate(channel, on ? "putting it on the slate" : "taking it off the slate");
      yield* commitSlate(channel, { ...slate, manual: on });
      yield* done(
        on ? "slate.on" : "slate.off",
        `channel ${id} (${channel.name}) ${on ? "put on the slate" : "taken off the slate"} by hand`,
        id,
      );
      return yield* readModel.channel(id);
    }, locked);

    /** A new picture for the slate (checked: PNG or JPEG, bounded), or none: the generated card. */
    const putSlateImage = Effect.fn("Control.putSlateImage")(function* (
      id: ChannelId,
      bytes: Uint8Array | null,
    ) {
      const channel = yield* find(id);
      const slate = yield* withSlate(channel, "giving it a picture");
      let image: SlateImage | null = null;
      if (bytes !== null) {
        const read = readSlateImage(bytes);
        if ("problem" in read) return yield* invalidImage(read.problem);
        image = {
          type: read.type,
          width: read.width,
          height: read.height,
          bytes: bytes.length,
          sha256: createHash("sha256").update(bytes).digest("hex"),
          data: Buffer.from(bytes).toString("base64"),
        };
      }
      yield* commitSlate(channel, { ...slate, image });
      yield* done(
        "slate.image",
        image === null
          ? `channel ${id} (${channel.name}): its slate shows the generated card`
          : `channel ${id} (${channel.name}): its slate shows a ${image.width}×${image.height} ${image.type === "image/png" ? "PNG" : "JPEG"} picture`,
        id,
      );
      return yield* readModel.channel(id);
    }, locked);

    /** The slate's uploaded picture; a 404 that says so when there is none. */
    const slateImage = Effect.fn("Control.slateImage")(function* (id: ChannelId) {
      const channel = yield* find(id);
      const image = channel.slate?.image;
      if (image == null)
        return yield* new ControlError({
          reason: "not_found",
          message: `channel '${channel.name}' has no slate picture; its slate (if on) shows a generated card`,
        });
      return image;
    });

    return {
      slateImage,
      switchSlate,
      putSlateImage,
      create,
      remove,
      start,
      stop,
      patch,
      addOutput,
      replaceOutput,
      patchOutput,
      cloneOutput,
      removeOutput,
      switchInput,
      insertCue,
      move,
      applySenders,
    } as const;
  }),
}) {}
