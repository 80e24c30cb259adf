/**
 * One running channel: the fiber tree of ARCHITECTURE.md. Its input path (ingest/input-path.ts: sockets,
 * sender filter, FEC, reorder or merge, packet cores, selector) calls `forward` once per datagram that reaches
 * the outputs; the fan-out offers that datagram's TS bytes, untouched, to every enabled output's queue and to
 * the taps that run (taps.ts: the pages' preview, a capture for a still). Each output's writer runs as its
 * own FiberMap entry, so changing one output restarts only that output, and a switch, a loss or a recovery
 * only changes which bytes are offered. Closing the channel's scope interrupts every fiber and reaps every
 * child process.
 *
 * The fan-out is plain synchronous code: it allocates nothing beyond the chunk it forwards (one copy of the
 * datagram's TS, shared by every output) and never waits on an output.
 */
import { Deferred, Effect, Either, Exit, FiberMap, Runtime, type Scope } from "effect";
import { makeCueInserter } from "../../core/cue-insert.ts";
import { FlvRemux } from "../../core/flv/remux.ts";
import type { CoreEvent, PacketCore } from "../../core/packet-core.ts";
import { cueVerdict } from "../../core/ts-policy/cue-verdict.ts";
import { moveBridges, type Route, untouchedRoute } from "../../core/ts-policy/move-bridges.ts";
import type { OutputError } from "../../domain/errors.ts";
import { isUntouched } from "../../domain/output-policy.ts";
import {
  describeIssues,
  type InputRole,
  type Redundancy,
  resolveRedundancy,
} from "../../domain/redundancy.ts";
import type { OutputProtocol } from "../../domain/url.ts";
import { remuxFaultChannels, settingNow } from "../config/settings.ts";
import { makeInputPath } from "../ingest/input-path.ts";
import type { InputPathError, InputsStatus, InputsSummary } from "../ingest/input-types.ts";
import { makeOutput, type Output, type OutputEvent } from "../outputs/writer.ts";
import { type ReadPace, readPaceMs } from "../runtime/batch-reader.ts";
import { asOneTurn } from "../runtime/end-of-turn.ts";
import { gateOpen, watchGate } from "../runtime/send-gates.ts";
import type { BatchSink } from "../runtime/thread-sender.ts";
import { makeTurnBatch, type TurnBatch } from "../runtime/turn-batch.ts";
import {
  ChannelError,
  ChannelFaults,
  type ChannelOptions,
  type ChannelRuntimeStatus,
  type ChannelRuntimeSummary,
  type ChannelSpec,
  type OutputEntryStatus,
  type OutputSpec,
  type RunningChannel,
  type SlateStatus,
} from "./channel-types.ts";
import { makePolicyGroups, type PolicyMember } from "./policy-groups.ts";
import { type CueOrigin, makeScte35Watcher } from "./scte35-watcher.ts";
import { makeSlate, type Slate } from "./slate.ts";
import { type FanOutTaps, makeTaps } from "./taps.ts";

export * from "./channel-types.ts";

interface OutputEntry {
  readonly spec: OutputSpec;
  /** Made (URL validated) even while disabled; only enabled outputs are fed and run. */
  readonly output: Output;
}

/** What a moved copy holds at most until the old copy is done: ~5 s of a 7 Mbit/s stream. */
const MAX_HELD = 4096;

/**
 * Outputs that send the TS packets as they come, for whom every millisecond a datagram waits to be read is
 * added latency; the others (RTMP, RTSP, HLS, files) send whole frames or segments.
 */
const AS_THEY_COME: ReadonlySet<OutputProtocol> = new Set(["udp", "rtp", "srt"]);

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
    const outputOptions = options.outputs ?? {};
    const emit = options.emit ?? (() => {});
    const faults = options.faults ?? (yield* ChannelFaults);
    const startedAt = Date.now();
    // What the channel logs from its callbacks goes through the runtime it was started in: in a forwarding
    // thread, the thread's logger, which hands the line to the service's (masked there); never Effect's
    // default one, which would print it past the masking.
    const log = Runtime.runFork(yield* Effect.runtime<never>());
    const crash = yield* Deferred.make<never, ChannelError>();
    let crashed = false;
    /** The packet path threw: stop forwarding at once and let the supervisor end the channel. */
    const fail = (where: string, thrown: unknown) => {
      if (crashed) return;
      crashed = true;
      const detail = thrown instanceof Error ? thrown.message : String(thrown);
      const message = `the channel stopped after an internal error in ${where}: ${detail}`;
      Deferred.unsafeDone(crash, Exit.fail(new ChannelError({ reason: "crashed", message })));
    };
    /**
     * Wraps a per-datagram callback so a throw ends this channel only. Two arguments at most, passed as they
     * are: a rest parameter would make an array per datagram.
     */
    const guarded =
      <A, B>(where: string, callback: (a: A, b: B) => void) =>
      (a: A, b?: B) => {
        if (crashed) return;
        try {
          callback(a, b as B);
        } catch (thrown) {
          fail(where, thrown);
        }
      };

    /**
     * A fault in what reads inside the stream beside the TS fan-out — the remux, the cue watcher: the work
     * of that datagram is lost to it alone, the fault is counted and logged (at most once per 10 s), and the
     * input path and every other output go on. Only a fault of the input path itself ends the channel.
     */
    const faultsSeen = { count: 0, loggedAt: 0 };
    const contained = (where: string, thrown: unknown) => {
      faultsSeen.count++;
      const now = Date.now();
      if (now - faultsSeen.loggedAt < 10_000) return;
      faultsSeen.loggedAt = now;
      const detail = thrown instanceof Error ? thrown.message : String(thrown);
      log(
        Effect.logWarning(
          `channel ${spec.id}: ${where} failed (${faultsSeen.count} times so far): ${detail}; the channel and its other outputs go on`,
        ),
      );
    };
    const remuxFault = settingNow(remuxFaultChannels, "").split(",").includes(spec.name);

    const watcher = makeScte35Watcher((cue) =>
      emit({
        type: "scte35_cue",
        channel: spec.id,
        pid: cue.pid,
        command: cue.command,
        summary: cue.summary,
        event_id: cue.event_id,
        segmentation_type: cue.segmentation_types[0] ?? null,
        section_base64: cue.section_base64,
        ...(cue.origin === "operator" ? { origin: "operator", by: cue.by ?? "" } : {}),
        ...(cue.withheld === undefined || cue.withheld.length === 0 ? {} : { withheld: cue.withheld }),
      }),
    );
    /**
     * The TS → FLV remux every RTMP output of the channel shares: it exists while the channel has an enabled
     * RTMP output and reads the TS only while one of them runs (core/flv/remux.ts).
     */
    let flv: FlvRemux | null = null;
    const onCoreEvent = (event: CoreEvent) => {
      if (event.type === "pat" || event.type === "pmt") groups.psi(event);
      if (event.type === "pmt") slate?.onPmt();
      if (event.type !== "scte35") return;
      onCue(event.pid, event.pcr, event.section, { origin: "input" });
    };
    /** A cue going out (the input's, or an operator's): the cue log, and the RTMP outputs as a data message. */
    const onCue = (pid: number, pcr: number | null, section: Uint8Array, origin: CueOrigin) => {
      let cueId: string | null = null;
      try {
        const enabled = [...entries.values()]
          .filter((entry) => entry.spec.enabled)
          .map((entry) => entry.spec);
        cueId = watcher.onSection(pid, pcr, section, origin, groups.withheld(section, enabled)).id;
      } catch (thrown) {
        contained("the SCTE-35 cue log", thrown);
      }
      try {
        // Each RTMP output that sends it as a data message is named in the cue's record (the cue log).
        flv?.cue(section, (output, format) => {
          if (cueId !== null)
            watcher.sentBy(cueId, { output, name: entries.get(output)?.spec.name ?? output, format });
        });
      } catch (thrown) {
        remuxFailed(thrown);
      }
      return cueId;
    };
    /** The remux threw out of its own guard: counted as a frame it lost, its outputs go on (see `contained`). */
    const remuxFailed = (thrown: unknown) => {
      if (flv !== null) {
        flv.dropped.internal_error++;
        flv.lastDrop = `the remux failed: ${thrown instanceof Error ? thrown.message : String(thrown)}`;
      }
      contained("the RTMP remux", thrown);
    };
    /** The operator's cues go on the channel's SCTE-35 PID: this stage learns the PSI, and rewrites once used. */
    const inserter = makeCueInserter();
    /** What the fan-out offers the remux: a throw stays with the remux's outputs. */
    const remuxOffer = (remux: FlvRemux) => (chunk: Uint8Array) => {
      try {
        if (remuxFault) throw new Error("a fault injected for a test (DISTRIBUTARY_TEST_REMUX_FAULT)");
        remux.push(chunk);
      } catch (thrown) {
        remuxFailed(thrown);
      }
    };

    const writers = yield* FiberMap.make<string, never, OutputError>();
    const entries = new Map<string, OutputEntry>();
    /** The preview and captures running now: they get what the outputs get. */
    const tapping = new Set<(chunk: Uint8Array) => void>();
    // The fan-out reads a plain array: cheaper per datagram than iterating a Map.
    let offers: ReadonlyArray<(chunk: Uint8Array) => void> = [];
    /** Whether an offer keeps the chunk it is given (a queue, a tap); the remux copies what it needs. */
    let kept = false;
    /** How long the inputs' datagrams may wait to be read: the outputs and the failover time say (ReadPace). */
    const pace: ReadPace = { ms: readPaceMs(true, 0) };
    let failoverAfterMs = 0;
    /**
     * On a fleet node, the channel's send gate: open while its lease was renewed in time. Checked here, on the
     * thread that forwards (every 100 ms, and at each rebuild); closed, the outputs get nothing (the preview
     * still does).
     */
    const gate = spec.sendGate;
    // Its sinks are set below, with the fan-out: an output that starts or stops sending batches rebuilds it.
    const turnBatch: TurnBatch = makeTurnBatch(() => rebuildFanOut());
    /** The outputs with a policy, one rewriter per distinct policy (policy-groups.ts). */
    const groups = makePolicyGroups(() => rebuildFanOut());
    /** The path each enabled output took at the last rebuild: an output that changes path gets bridges. */
    let routes = new Map<string, Route>();
    const rebuildFanOut = () => {
      const open = gate === undefined || gateOpen(gate);
      const enabled = open ? [...entries.values()].filter((entry) => entry.spec.enabled) : [];
      const remuxed = enabled.some((entry) => entry.output.flv !== null);
      if (!remuxed && [...entries.values()].every((entry) => entry.output.flv === null)) flv = null;
      const sinks: BatchSink[] = [];
      const queued: Array<(chunk: Uint8Array) => void> = [];
      const members: PolicyMember[] = [];
      for (const { spec: outputSpec, output } of enabled) {
        const policy = outputSpec.policy;
        if (output.flv === null && policy != null && !isUntouched(policy)) {
          members.push({ id: outputSpec.id, name: outputSpec.name, policy, output });
          continue;
        }
        const sink = output.batchSink();
        if (sink !== null) sinks.push(sink);
        else if (output.flv === null) queued.push(output.offer);
      }
      turnBatch.sinks = sinks;
      const rewritten = groups.rebuild(members);
      const before = routes;
      routes = new Map();
      let lastCc: Map<number, number> | undefined;
      for (const { spec: outputSpec, output } of enabled) {
        const now = groups.route(outputSpec.id) ?? untouchedRoute;
        routes.set(outputSpec.id, now);
        const was = before.get(outputSpec.id);
        if (was === undefined || was === now) continue;
        lastCc ??= lastCcOut();
        const bridges = moveBridges(was, now, lastCc);
        if (bridges === null) continue;
        const sink = output.batchSink();
        if (sink !== null) sink(Buffer.from(bridges), bridges.length);
        else output.offer(bridges);
      }
      offers = [...queued, ...(remuxed && flv !== null ? [remuxOffer(flv)] : []), ...rewritten, ...tapping];
      kept = queued.length > 0 || tapping.size > 0;
      pace.ms = readPaceMs(
        enabled.some((entry) => AS_THEY_COME.has(entry.output.protocol)),
        failoverAfterMs,
      );
    };
    const fanOutTaps: FanOutTaps = {
      attach: (offer) => {
        tapping.add(offer);
        rebuildFanOut();
      },
      detach: (offer) => {
        if (tapping.delete(offer)) rebuildFanOut();
      },
    };
    const taps = yield* makeTaps(fanOutTaps, options.previewIdleMs ?? 20_000);

    /**
     * A copy started by a move holds what it forwards until the old copy has sent its last datagrams (`settle`):
     * the old copy's inputs still hold datagrams older than the new copy's first, and two threads sending at
     * once would reorder them at the destination.
     */
    let held: Uint8Array[] | null = options.handover === undefined ? null : [];
    /** The channel's slate (slate.ts), made once the input path exists; while `diverted`, live TS goes to it. */
    let slate: Slate | null = null;
    let diverted = false;

    /** Offers the TS packets `core` just found in `datagram` to every output (or to the slate's return). */
    const forward = (datagram: Uint8Array, core: PacketCore) => {
      const start = core.payloadOffset;
      const end = start + core.payloadLength;
      const view = start === 0 && end === datagram.length ? datagram : datagram.subarray(start, end);
      if (diverted && slate !== null) return slate.live(view);
      deliver(view);
    };
    /** Offers TS packets to every output: the input's, or the slate's; after an operator's cue, through its stage. */
    const deliver = (view: Uint8Array) => send(inserter.active ? inserter.push(view) : view);
    const send = (view: Uint8Array) => {
      if (held === null) {
        // The plain UDP outputs take it in the turn's batch, which copies it.
        if (turnBatch.sinks.length > 0) turnBatch.add(view);
        // Only the remux reads it (it copies what it keeps): the view itself will do.
        if (!kept) return offerAll(view);
      }
      // The queues keep chunks by reference, and a datagram is a view into memory that is reused (the
      // socket's batch, a WebAssembly buffer): it is copied once, into Node's buffer pool, for all outputs.
      const chunk = Buffer.allocUnsafe(view.length);
      chunk.set(view);
      if (held !== null) {
        held.push(chunk);
        // Bounded: a settle that never comes lets go after a few seconds of stream rather than holding it.
        if (held.length >= MAX_HELD) letGo();
        return;
      }
      offerAll(chunk);
    };
    /**
     * Whether the plain UDP outputs' turn batch is all that takes the inputs' datagrams now (no queue, remux,
     * tap or held copy): a UDP input's whole read then comes at once, to `forwardRun`.
     */
    const takesRuns = () => held === null && offers.length === 0 && !diverted && !inserter.active;
    /** Offers the TS payloads `core` accepted from one whole read to the turn batch, as one run. */
    const forwardRun = (core: PacketCore) => {
      if (turnBatch.sinks.length === 0) return;
      const run = core.uniformRun();
      if (run !== null) turnBatch.addRun(run);
      else core.runPayloads(turnBatch.add);
    };
    /** Sends what a moved copy held, in order, and forwards as usual from then on. */
    const letGo = () => {
      const waiting = held;
      held = null;
      if (waiting !== null)
        asOneTurn(() => {
          for (const chunk of waiting) {
            if (turnBatch.sinks.length > 0) turnBatch.add(chunk);
            offerAll(chunk);
          }
        });
    };
    const offerAll = (chunk: Uint8Array) => {
      for (let i = 0; i < offers.length; i++) offers[i]?.(chunk);
    };

    if (gate !== undefined) {
      yield* Effect.acquireRelease(
        Effect.sync(() =>
          watchGate(gate, (open, lapsed) => {
            rebuildFanOut();
            // A gate the node closed itself (a release, a hand-over, a drain) is said by the node, with why.
            if (!open && !lapsed) return;
            log(
              open
                ? Effect.logInfo(`channel ${spec.id}: its lease was renewed: its outputs send again`)
                : Effect.logWarning(
                    `channel ${spec.id}: its lease was not renewed in time: its outputs stopped on the forwarding thread`,
                  ),
            );
          }),
        ),
        (stop) => Effect.sync(stop),
      );
    }

    const redundancy = yield* resolvedRedundancy(spec);
    failoverAfterMs = redundancy.failover_after_ms;
    rebuildFanOut();
    const inputs = yield* makeInputPath({
      channel: spec.id,
      primary: spec.primary,
      backup: spec.backup,
      redundancy,
      forward,
      forwardRun,
      takesRuns,
      onCoreEvent,
      emit: (event) => {
        emit(event);
        slate?.onEvent(event);
      },
      guarded,
      seams: faults,
      handover: options.handover,
      pace,
    }).pipe(Effect.mapError(inputPathFailure));

    slate = yield* makeSlate(
      {
        channel: spec.id,
        emit,
        send: (chunks) =>
          asOneTurn(() => {
            for (const chunk of chunks) deliver(chunk);
          }),
        taps: fanOutTaps,
        inputOk: () => inputs.selector.health() === "ok",
        lastPcr: (pcrPid) => inputClock(inputs.status(), pcrPid),
        livePids: () => activeInput(inputs.status())?.core.pids.map((entry) => entry.pid) ?? [],
        failoverAfterMs: () => failoverAfterMs,
        divert: (on) => {
          diverted = on;
        },
      },
      spec.slate,
    );

    /**
     * New inputs or redundancy settings, live: the input path binds again only an input whose address
     * changed. The outputs go on.
     */
    const reconfigure = (next: ChannelSpec) =>
      Effect.gen(function* () {
        const redundancy = yield* resolvedRedundancy(next);
        yield* inputs.reconfigure(next, redundancy).pipe(Effect.mapError(inputPathFailure));
        failoverAfterMs = redundancy.failover_after_ms;
        rebuildFanOut();
        spec = {
          ...spec,
          name: next.name,
          primary: next.primary,
          backup: next.backup,
          redundancy: next.redundancy,
          slate: next.slate,
        };
        slate?.setSpec(next.slate);
      });

    const removeOutput = (outputId: string) =>
      Effect.gen(function* () {
        const entry = entries.get(outputId);
        if (entry === undefined) return;
        entries.delete(outputId);
        rebuildFanOut();
        // Waits for the writer to finish: its socket or child process is released before this returns.
        yield* FiberMap.remove(writers, outputId);
      });

    const outputEvents =
      (outputId: string) =>
      (event: OutputEvent): void => {
        if (event.type === "reconnect") {
          emit({
            type: "output_reconnect",
            channel: spec.id,
            output: outputId,
            reconnects: event.reconnects,
            error: event.error,
            delay_ms: event.delayMs,
          });
          return;
        }
        emit({
          type: "output_state",
          channel: spec.id,
          output: outputId,
          state: event.state,
          error: event.error,
        });
      };

    const applyOutput = (next: OutputSpec) =>
      Effect.gen(function* () {
        const current = entries.get(next.id);
        if (current !== undefined && current.spec.url === next.url && current.spec.enabled === next.enabled) {
          entries.set(next.id, { ...current, spec: next });
          // A new policy applies live: the output keeps its connection and moves to its new group.
          if (JSON.stringify(current.spec.policy ?? null) !== JSON.stringify(next.policy ?? null))
            rebuildFanOut();
          return;
        }
        if (flv === null && /^rtmps?:/i.test(next.url)) {
          flv = new FlvRemux({ startMs: outputOptions.flvStartMs ?? 0 });
        }
        const options = {
          ...outputOptions,
          sendGate: gate,
          turnBatch,
          // An RTMP output's SCTE-35 policy, read at each cue: a change applies at once.
          cueKept: (section: Uint8Array) => {
            const scte35 = entries.get(next.id)?.spec.policy?.scte35;
            return scte35 === undefined || scte35 === "pass" || cueVerdict(scte35, section).kept;
          },
        };
        const output = yield* makeOutput(
          next.url,
          flv === null ? options : { ...options, flv, id: next.id },
          outputEvents(next.id),
        ).pipe(
          Effect.mapError((error) => new ChannelError({ reason: "invalid_output", message: error.message })),
        );
        yield* removeOutput(next.id);
        entries.set(next.id, { spec: next, output });
        if (!next.enabled) return;
        rebuildFanOut();
        yield* FiberMap.run(writers, next.id, output.run);
      });

    for (const output of spec.outputs) yield* applyOutput(output);

    /** The one projection of the channel: the input path's summary or detail, with its name and outputs. */
    const report = <I extends InputsSummary>(
      inputsReport: I,
    ): I & {
      id: string;
      name: string;
      startedAt: number;
      slate: SlateStatus | null;
      outputs: ReadonlyArray<OutputEntryStatus>;
    } => ({
      id: spec.id,
      name: spec.name,
      startedAt,
      ...inputsReport,
      slate: slate?.status() ?? null,
      outputs: [...entries.values()].map((entry) => ({
        ...entry.output.status(),
        id: entry.spec.id,
        name: entry.spec.name,
        enabled: entry.spec.enabled,
        policy:
          entry.spec.policy == null
            ? null
            : {
                problems: groups.problems(entry.spec.id),
                packetsDropped: groups.counts(entry.spec.id)?.packetsDropped ?? 0,
                cuesWithheld: groups.counts(entry.spec.id)?.cuesWithheld ?? 0,
              },
      })),
    });

    const switchInput = (role: InputRole) =>
      Effect.suspend(() => {
        const mode = inputs.redundancy().mode;
        if (mode !== "failover") {
          const why = spec.backup === null ? "it has no backup input" : `its redundancy mode is ${mode}`;
          return Effect.fail(
            new ChannelError({
              reason: "invalid_switch",
              message: `channel ${spec.id} cannot switch inputs: ${why}`,
            }),
          );
        }
        return inputs.selector.switchTo(role);
      });

    const release = (maxMs: number) =>
      Effect.gen(function* () {
        yield* inputs.close;
        const deadline = Date.now() + maxMs;
        const queued = () =>
          [...entries.values()].some((entry) => {
            const status = entry.output.status();
            return entry.spec.enabled && status.state === "connected" && status.queuedBytes > 0;
          });
        while (queued() && Date.now() < deadline) yield* Effect.sleep("2 millis");
      });

    /**
     * Each PID's last continuity counter as it left the channel's stages for the outputs: the active input's,
     * the slate's while its packets are what goes out, the operator's cue stage's where it keeps the counters.
     */
    function lastCcOut(): Map<number, number> {
      const last = new Map<number, number>();
      const input = inputs.status().inputs.find((candidate) => candidate.active);
      for (const pid of input?.core.pids ?? []) if (pid.lastCc !== null) last.set(pid.pid, pid.lastCc);
      for (const [pid, cc] of slate?.lastCc() ?? []) last.set(pid, cc);
      for (const [pid, cc] of inserter.lastCc()) last.set(pid, cc);
      return last;
    }

    /**
     * An operator's cue: onto the channel's SCTE-35 PID (one added to the PMT when it has none), to every
     * output whose policy keeps it, in the cue log with its origin.
     */
    const insertCue = (section: Uint8Array, program: number | null, by: string) =>
      Effect.suspend(() => {
        if (!inserter.active) {
          // Until now it read nothing (the fast path): the tables the channel knows and the counters it sent.
          inserter.teach(groups.psiPackets());
          for (const [pid, cc] of lastCcOut()) inserter.noteCc(pid, cc);
        }
        const inserted = inserter.insert(section, program);
        if ("refused" in inserted)
          return Effect.fail(
            new ChannelError({ reason: "invalid_cue", message: `channel ${spec.id}: ${inserted.refused}` }),
          );
        asOneTurn(() => send(inserted.packets));
        return Effect.succeed({
          pid: inserted.pid,
          id: onCue(inserted.pid, null, section, { origin: "operator", by }),
        });
      });

    const settle = Effect.sync(() => {
      letGo();
      inputs.takeAnySender();
    });

    return {
      spec: () => spec,
      senders: inputs.senders,
      release,
      settle,
      status: (): ChannelRuntimeStatus => report(inputs.status()),
      summary: (): ChannelRuntimeSummary => report(inputs.summary()),
      traffic: () => ({
        inputs: inputs.traffic(),
        outputs: [...entries.values()].map((entry) => ({ ...entry.output.traffic(), id: entry.spec.id })),
      }),
      watcher,
      activeInput: inputs.selector.active,
      switchInput,
      insertCue,
      events: inputs.selector.events,
      crashed: Deferred.await(crash),
      capture: taps.capture,
      hls: (outputId: string) => entries.get(outputId)?.output.hls ?? null,
      preview: taps.preview,
      previewActive: taps.previewActive,
      reconfigure,
      applyOutput: (next) =>
        Effect.tap(applyOutput(next), () => {
          spec = { ...spec, outputs: [...spec.outputs.filter((o) => o.id !== next.id), next] };
        }),
      removeOutput: (outputId) =>
        Effect.tap(removeOutput(outputId), () => {
          spec = { ...spec, outputs: spec.outputs.filter((o) => o.id !== outputId) };
        }),
    } satisfies RunningChannel;
  });

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
