/**
 * One running channel: the fiber tree of ARCHITECTURE.md, made of rooms. Its input path (ingest/input-path.ts:
 * sockets, sender filter, FEC, reorder or merge, packet cores, selector) forwards each datagram that reaches the
 * outputs to the fan-out (fan-out.ts), which offers its TS bytes, untouched, to every enabled output of the
 * output set (output-set.ts: each writer its own FiberMap entry, so changing one output restarts only that
 * output) and to the taps that run (taps.ts). Cues, the input's and the operator's, take the cue path
 * (cue-path.ts); the slate (slate.ts) takes the air when every input is lost; a throw is met by the fault
 * handling (fault-handling.ts). A switch, a loss or a recovery only changes which bytes are offered. Closing the
 * channel's scope interrupts every fiber and reaps every child process.
 */
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Runtime from "effect/Runtime";
import type * as Scope from "effect/Scope";
import { type CueInserter, makeCueInserter } from "../../core/cue-insert/inserter.ts";
import type { CoreEvent } from "../../core/packet-core-events.ts";
import {
  describeIssues,
  type InputRole,
  type Redundancy,
  resolveRedundancy,
} from "../../domain/channel/redundancy.ts";
import { remuxFaultChannels, settingNow } from "../config/settings.ts";
import { makeInputPath } from "../ingest/input-path.ts";
import type { InputPath, InputPathError, InputsStatus, InputsSummary } from "../ingest/input-types.ts";
import { makeTurnBatch } from "../runtime/sockets/turn-batch.ts";
import { newCopyStarted } from "../runtime/threads/move-word.ts";
import { asOneTurn } from "../runtime/timers/end-of-turn.ts";
import {
  ChannelError,
  ChannelFaults,
  type ChannelOptions,
  type ChannelRuntimeStatus,
  type ChannelRuntimeSummary,
  type ChannelSpec,
  type RunningChannel,
} from "./channel-types.ts";
import { makeCuePath } from "./cue-path.ts";
import { type FanOut, makeFanOut } from "./fan-out.ts";
import { type FaultHandling, makeFaultHandling } from "./fault-handling.ts";
import { makeOutputSet, type OutputSet } from "./output-set.ts";
import { makeSlate, type Slate } from "./slate.ts";
import { makeTaps } from "./taps.ts";

/**
 * Builds and runs a channel in the current scope; returns once every input listens and every enabled output
 * has started. The outputs and their child processes live until the scope closes.
 */
export const startChannel = (
  initial: ChannelSpec,
  options: ChannelOptions = {},
): Effect.Effect<RunningChannel, ChannelError, Scope.Scope> =>
  Effect.gen(function* () {
    let spec = initial;
    const channelId = () => spec.id;
    const emit = options.emit ?? (() => {});
    const startedAt = Date.now();
    /** Runs an effect in the channel's runtime: on a forwarding thread, its logger is the service's (masking). */
    const log = Runtime.runFork(yield* Effect.runtime<never>());
    const faults = yield* makeFaultHandling(channelId, log);
    const inserter = makeCueInserter();
    const sent = makeSentCc(inserter);
    const { outputs, fanOut, cues } = yield* makeStages(spec, options, {
      faults,
      log,
      inserter,
      lastCcOut: sent.read,
    });
    const taps = yield* makeTaps(fanOut.taps, options.previewIdleMs ?? 20_000);

    const redundancy = yield* resolvedRedundancy(spec);
    fanOut.setFailoverAfterMs(redundancy.failover_after_ms);
    fanOut.rebuild();
    // A move's new copy has its outputs ready before its inputs take the stream from the old copy: from that
    // moment on the moved channel is silent until the old copy lets go, and building four outputs took as long
    // again as the rest of the hand-over (docs/benchmarks.md).
    const moving = options.handover !== undefined;
    if (moving) for (const output of spec.outputs) yield* outputs.apply(output);
    const inputs: InputPath = yield* makeInputPath({
      channel: spec.id,
      primary: spec.primary,
      backup: spec.backup,
      redundancy,
      forward: fanOut.forward,
      forwardRun: fanOut.forwardRun,
      takesRuns: fanOut.takesRuns,
      onCoreEvent: (event: CoreEvent) => {
        if (event.type === "pat" || event.type === "pmt") fanOut.groups.psi(event);
        if (event.type === "scte35") cues.onCue(event.pid, event.pcr, event.section, { origin: "input" });
      },
      emit,
      guarded: faults.guarded,
      seams: options.faults ?? (yield* ChannelFaults),
      handover: options.handover,
      pace: fanOut.pace,
      ristSrpDir: options.outputs?.ristSrpDir ?? null,
    }).pipe(Effect.mapError(inputPathFailure));
    // A move's outputs were made before its inputs: until now, no counter had left but the cue stage's.
    yield* sent.from(() => inputCc(inputs.status()));
    // A move's inputs now hear the stream and its outputs are ready: the old copy may let go at once, while
    // this one makes its slate (nothing after this point fails but a defect).
    if (moving && options.handedOver !== undefined) newCopyStarted(options.handedOver);

    // The slate reads the input path and sends through the fan-out; from now on it watches the path (until then,
    // nothing it would have heard could have put it on: it did not exist).
    const slate = yield* makeSlate(
      {
        channel: spec.id,
        emit,
        send: (chunks) =>
          asOneTurn(() => {
            for (const chunk of chunks) fanOut.deliver(chunk);
          }),
        taps: fanOut.taps,
        inputOk: () => inputs.selector.health() === "ok",
        lastPcr: (pcrPid) => inputClock(inputs.status(), pcrPid),
        livePids: () => activeInput(inputs.status())?.core.pids.map((entry) => entry.pid) ?? [],
        failoverAfterMs: () => inputs.redundancy().failover_after_ms,
        divert: fanOut.divert,
      },
      spec.slate,
    );
    yield* inputs.watch(slate);
    yield* sent.from(slate.lastCc);

    if (!moving) for (const output of spec.outputs) yield* outputs.apply(output);

    return {
      spec: () => spec,
      senders: inputs.senders,
      release: (maxMs: number) => release(inputs, outputs, maxMs),
      cut: () => inputs.readLast() && !outputs.queued(),
      settle: Effect.sync(() => {
        fanOut.letGo();
        inputs.takeAnySender();
      }),
      fleetCut: () => fanOut.cutStage?.cut() ?? Promise.resolve(null),
      fleetResume: (how) => fanOut.cutStage?.resume(how),
      fleetResumed: (withinMs) => fanOut.cutStage?.resumed(withinMs) ?? Promise.resolve(null),
      status: (): ChannelRuntimeStatus =>
        report({ spec, startedAt, slate, outputs, fanOut }, inputs.status()),
      summary: (): ChannelRuntimeSummary =>
        report({ spec, startedAt, slate, outputs, fanOut }, inputs.summary()),
      traffic: () => ({ inputs: inputs.traffic(), outputs: outputs.traffic() }),
      watcher: cues.watcher,
      activeInput: inputs.selector.active,
      switchInput: (role: InputRole) =>
        Effect.suspend(() => switchInput(spec, inputs.redundancy().mode, inputs.selector.switchTo(role))),
      insertCue: cues.insertCue,
      events: inputs.selector.events,
      crashed: faults.crashed,
      capture: taps.capture,
      hls: (outputId: string) => outputs.get(outputId)?.output.hls ?? null,
      preview: taps.preview,
      previewActive: taps.previewActive,
      reconfigure: (next) =>
        Effect.tap(reconfigureInputs(next, inputs, fanOut), () => {
          const { name, primary, backup, redundancy, slate: slateSpec } = next;
          spec = { ...spec, name, primary, backup, redundancy, slate: slateSpec };
          slate.setSpec(next.slate);
        }),
      applyOutput: (next) =>
        Effect.tap(outputs.apply(next), () => {
          spec = { ...spec, outputs: [...spec.outputs.filter((o) => o.id !== next.id), next] };
        }),
      removeOutput: (outputId) =>
        Effect.tap(outputs.remove(outputId), () => {
          spec = { ...spec, outputs: spec.outputs.filter((o) => o.id !== outputId) };
        }),
    } satisfies RunningChannel;
  });

/**
 * What lies between the input path and the outputs: the output set, the fan-out that feeds it and the cue path
 * beside them, sharing the turn batch of the plain UDP outputs and the operator's cue stage.
 */
const makeStages = (
  spec: ChannelSpec,
  options: ChannelOptions,
  shared: {
    readonly faults: FaultHandling;
    readonly log: (line: Effect.Effect<void>) => void;
    readonly inserter: CueInserter;
    readonly lastCcOut: () => Map<number, number>;
  },
) =>
  Effect.gen(function* () {
    const { faults, log, inserter, lastCcOut } = shared;
    const channelId = () => spec.id;
    const emit = options.emit ?? (() => {});
    const turnBatch = makeTurnBatch(() => fanOut.rebuild());
    const outputs = yield* makeOutputSet({
      channelId,
      emit,
      outputOptions: options.outputs ?? {},
      sendGate: spec.sendGate,
      turnBatch,
      changed: () => fanOut.rebuild(),
      contained: faults.contained,
      remuxFault: settingNow(remuxFaultChannels, "").split(",").includes(spec.name),
    });
    const fanOut: FanOut = yield* makeFanOut({
      channelId,
      sendGate: spec.sendGate,
      outputs,
      turnBatch,
      inserter,
      holds: options.handover !== undefined,
      handedOver: options.handedOver,
      lastCcOut,
      log,
    });
    const cues = makeCuePath({
      channelId,
      emit,
      outputs,
      groups: fanOut.groups,
      inserter,
      send: (packets) => asOneTurn(() => fanOut.send(packets)),
      lastCcOut,
      contained: faults.contained,
    });
    return { outputs, fanOut, cues };
  });

/**
 * New inputs or redundancy settings, live: the input path binds again only an input whose address changed.
 * The outputs go on.
 */
const reconfigureInputs = (next: ChannelSpec, inputs: InputPath, fanOut: FanOut) =>
  Effect.gen(function* () {
    const redundancy = yield* resolvedRedundancy(next);
    yield* inputs.reconfigure(next, redundancy).pipe(Effect.mapError(inputPathFailure));
    fanOut.setFailoverAfterMs(redundancy.failover_after_ms);
    fanOut.rebuild();
  });

/**
 * Each PID's last continuity counter as it left the channel's stages for the outputs, from what sends to them:
 * the active input's, the slate's while its packets are what goes out, the operator's cue stage's where it
 * keeps the counters (a later one's counter over an earlier one's). The input path and the slate count from
 * when they are made (`from`); the cue stage is made first.
 */
const makeSentCc = (inserter: CueInserter) => {
  const senders: Array<() => ReadonlyMap<number, number>> = [];
  return {
    read: (): Map<number, number> => {
      const last = new Map<number, number>();
      for (const sender of senders) for (const [pid, cc] of sender()) last.set(pid, cc);
      for (const [pid, cc] of inserter.lastCc()) last.set(pid, cc);
      return last;
    },
    from: (sender: () => ReadonlyMap<number, number>) =>
      Effect.sync(() => {
        senders.push(sender);
      }),
  };
};

/** The active input's last continuity counter on each PID. */
const inputCc = (status: InputsStatus): ReadonlyMap<number, number> => {
  const last = new Map<number, number>();
  const input = status.inputs.find((candidate) => candidate.active);
  for (const pid of input?.core.pids ?? []) if (pid.lastCc !== null) last.set(pid.pid, pid.lastCc);
  return last;
};

/** The one projection of the channel: the input path's summary or detail, with its name and outputs. */
const report = <I extends InputsSummary>(
  channel: {
    readonly spec: ChannelSpec;
    readonly startedAt: number;
    readonly slate: Slate;
    readonly outputs: OutputSet;
    readonly fanOut: FanOut;
  },
  inputsReport: I,
) => {
  const { groups } = channel.fanOut;
  return {
    id: channel.spec.id,
    name: channel.spec.name,
    startedAt: channel.startedAt,
    ...inputsReport,
    slate: channel.slate.status(),
    outputs: channel.outputs.statuses((output) => ({
      problems: groups.problems(output.id),
      packetsDropped: groups.counts(output.id)?.packetsDropped ?? 0,
      cuesWithheld: groups.counts(output.id)?.cuesWithheld ?? 0,
    })),
  };
};

/** Closes the inputs, then waits up to `maxMs` for the connected outputs to send what they queued. */
const release = (inputs: InputPath, outputs: OutputSet, maxMs: number) =>
  Effect.gen(function* () {
    yield* inputs.close;
    const deadline = Date.now() + maxMs;
    while (outputs.queued() && Date.now() < deadline) yield* Effect.sleep("2 millis");
  });

/** The operator's input switch: only a channel in failover mode has one to make. */
const switchInput = (
  spec: ChannelSpec,
  mode: Redundancy["mode"],
  switchTo: Effect.Effect<void, ChannelError>,
) => {
  if (mode === "failover") return switchTo;
  const why = spec.backup === null ? "it has no backup input" : `its redundancy mode is ${mode}`;
  return Effect.fail(
    new ChannelError({
      reason: "invalid_switch",
      message: `channel ${spec.id} cannot switch inputs: ${why}`,
    }),
  );
};

const resolvedRedundancy = (spec: ChannelSpec): Effect.Effect<Redundancy, ChannelError> =>
  Either.match(resolveRedundancy(spec.redundancy, spec), {
    onLeft: (issues) =>
      Effect.fail(new ChannelError({ reason: "invalid_redundancy", message: describeIssues(issues) })),
    onRight: Effect.succeed,
  });

/** A core that cannot load ends the channel as a crash would; a socket that cannot listen fails its input. */
const inputPathFailure = (error: InputPathError): ChannelError =>
  new ChannelError({
    reason: error.reason === "core_failed" ? "crashed" : "input_failed",
    message: error.message,
  });

/** The input being forwarded (the first in merge mode, where both are). */
const activeInput = (status: InputsStatus) =>
  status.inputs.find((candidate) => candidate.active) ?? status.inputs[0];

/** The active input's last PCR on `pcrPid` (27 MHz), and how long ago its last datagram came. */
const inputClock = (status: InputsStatus, pcrPid: number) => {
  const input = activeInput(status);
  const pcr = input?.core.pids.find((pid) => pid.pid === pcrPid)?.lastPcr ?? null;
  if (input === undefined || pcr === null) return null;
  return { pcr, ageMs: input.lastPacketAgeMs ?? 0 };
};
