/**
 * One running channel: the fiber tree of ARCHITECTURE.md. Receivers (one per input) push datagrams through their own
 * packet core; the selector picks which input feeds the fan-out; the fan-out offers each datagram's TS bytes,
 * untouched, to every enabled output's queue; each output's writer runs as its own FiberMap entry, so changing
 * one output restarts only that output. Closing the channel's scope interrupts every fiber and reaps every
 * child process.
 *
 * The input side, by redundancy mode (domain/redundancy.ts):
 *   failover, none   socket ─► [FEC ─► reorder] ─► input core ─► fan-out while this input is the active one
 *   merge            socket ─► [FEC] ─► input core ─► merge (first copy, in order) ─► merged core ─► fan-out
 * The input cores count what each path delivered; in merge mode the merged core is what the outputs get, so
 * the SCTE-35 cues come from it. A switch, a loss or a recovery only changes which bytes are offered: the
 * outputs' writers never restart for it.
 *
 * The per-datagram path (socket callback → core.push → offer) is plain synchronous code: it allocates nothing
 * beyond the chunk it forwards (one copy of the datagram's TS, shared by every output) and never waits on an
 * output.
 *
 * Over 400 lines on purpose: one function builds the whole packet path so that its per-datagram closures
 * share state directly, with no indirection per datagram; the shapes it reports live in channel-types.ts.
 */
import type { RemoteInfo, Socket } from "node:dgram";
import { Deferred, Effect, Either, ExecutionStrategy, Exit, FiberMap, Schedule, Scope } from "effect";
import { type CoreEvent, PacketCore } from "../../core/packet-core.ts";
import type { OutputError } from "../../domain/errors.ts";
import {
  describeIssues,
  type InputEndpoint,
  type InputRole,
  type Redundancy,
  resolveRedundancy,
} from "../../domain/redundancy.ts";
import { parseOutputUrl, type SrtTarget } from "../../domain/url.ts";
import type { FailoverPolicy, SwitchReason } from "../ingest/failover.ts";
import { bindFec, type FecInput } from "../ingest/fec.ts";
import { makeSequenceMerger, type SequenceMerger } from "../ingest/merge.ts";
import { makeSelector } from "../ingest/selector.ts";
import { fromThisHost, makeSenderFilter } from "../ingest/sender-filter.ts";
import { bindSrtInput } from "../ingest/srt-receiver.ts";
import { bindInput, InputError } from "../ingest/udp-receiver.ts";
import { makeOutput, type Output, type OutputEvent } from "../outputs/writer.ts";
import { asOneTurn } from "../runtime/end-of-turn.ts";
import { isOwnPort } from "../runtime/own-ports.ts";
import {
  ChannelError,
  ChannelFaults,
  type ChannelOptions,
  type ChannelRuntimeStatus,
  type ChannelRuntimeSummary,
  type ChannelSpec,
  type Handover,
  type MergeStatus,
  type OutputSpec,
  type RunningChannel,
} from "./channel-types.ts";
import { makeScte35Watcher } from "./scte35-watcher.ts";

export * from "./channel-types.ts";

interface InputRuntime {
  readonly role: InputRole;
  endpoint: InputEndpoint;
  readonly core: PacketCore;
  /** Holds the input's socket and FEC: closing it ends this input alone. */
  readonly scope: Scope.CloseableScope;
  /** The sender allow-list as the socket callbacks ask it; null for every sender. Changed live. */
  accepts: ((address: string) => boolean) | null;
  fec: { readonly input: FecInput; readonly scope: Scope.CloseableScope } | null;
  /** Puts recovered packets back in sequence; only with FEC outside merge mode. */
  reorder: SequenceMerger | null;
  /** A UDP input's socket (null for SRT), and the sender it heard last. */
  socket: Socket | null;
  sender: RemoteInfo | null;
}

interface OutputEntry {
  readonly spec: OutputSpec;
  /** Made (URL validated) even while disabled; only enabled outputs are fed and run. */
  readonly output: Output;
}

// Merge lanes name the inputs in the merge core's counters; an input's own reorder buffer uses lane 1 for
// what FEC rebuilt.
const LANE: Record<InputRole, number> = { primary: 0, backup: 1 };
const RECOVERED_LANE = 1;
/** What a moved copy holds at most until the old copy is done: ~5 s of a 7 Mbit/s stream. */
const MAX_HELD = 4096;

const describeThrow = (thrown: unknown) => (thrown instanceof Error ? thrown.message : String(thrown));

/**
 * Builds and runs a channel in the current scope; returns once every input listens and every enabled output
 * has started. The outputs and their child processes live until the scope closes.
 */
/** The pages' preview: one-second segments, a short window; ended `previewIdleMs` after the last request. */
const PREVIEW_URL = "hls://?target=1&window=4";

export const startChannel = (
  initial: ChannelSpec,
  options: ChannelOptions = {},
): Effect.Effect<RunningChannel, ChannelError, Scope.Scope> =>
  Effect.gen(function* () {
    let spec = initial;
    const outputOptions = options.outputs ?? {};
    const previewIdleMs = options.previewIdleMs ?? 20_000;
    const emit = options.emit ?? (() => {});
    const faults = options.faults ?? (yield* ChannelFaults);
    const loadCore = faults.loadCore ?? PacketCore.load;
    let redundancy = yield* resolvedRedundancy(spec);
    const channelScope = yield* Effect.scope;
    const startedAt = Date.now();
    const crash = yield* Deferred.make<never, ChannelError>();
    let crashed = false;
    /** The packet path threw: stop forwarding at once and let the supervisor end the channel. */
    const fail = (where: string, thrown: unknown) => {
      if (crashed) return;
      crashed = true;
      const message = `the channel stopped after an internal error in ${where}: ${describeThrow(thrown)}`;
      Deferred.unsafeDone(crash, Exit.fail(new ChannelError({ reason: "crashed", message })));
    };
    /** Wraps a per-datagram callback so a throw ends this channel only. */
    const guarded =
      <A extends ReadonlyArray<unknown>>(where: string, callback: (...args: A) => void) =>
      (...args: A) => {
        if (crashed) return;
        try {
          callback(...args);
        } catch (thrown) {
          fail(where, thrown);
        }
      };

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
      }),
    );
    const writers = yield* FiberMap.make<string, never, OutputError>();
    const entries = new Map<string, OutputEntry>();
    // The fan-out reads a plain array: cheaper per datagram than iterating a Map.
    let offers: ReadonlyArray<(chunk: Uint8Array) => void> = [];
    const rebuildFanOut = () => {
      offers = [...entries.values()].flatMap((entry) => (entry.spec.enabled ? [entry.output.offer] : []));
    };

    const onEvent = (event: CoreEvent) => {
      if (event.type === "scte35") watcher.onSection(event.pid, event.pcr, event.section);
    };
    const ignoreEvent = () => {};

    /** While a still is being made: the chunks forwarded meanwhile, up to a byte budget. */
    let tap: { chunks: Uint8Array[]; bytes: number; readonly max: number } | null = null;

    /**
     * A copy started by a move holds what it forwards until the old copy has sent its last datagrams (`settle`):
     * the old copy's inputs still hold datagrams older than the new copy's first, and two threads sending at
     * once would reorder them at the destination.
     */
    let held: Uint8Array[] | null = options.handover === undefined ? null : [];

    /** Offers the TS packets `core` just found in `datagram` to every output. */
    const forward = (datagram: Uint8Array, core: PacketCore) => {
      const start = core.payloadOffset;
      const end = start + core.payloadLength;
      // The queues keep chunks by reference, and a datagram is a view into memory that is reused (the
      // socket's batch, a WebAssembly buffer): it is copied once, into Node's buffer pool, for all outputs.
      const chunk = Buffer.allocUnsafe(end - start);
      chunk.set(start === 0 && end === datagram.length ? datagram : datagram.subarray(start, end));
      if (held !== null) {
        held.push(chunk);
        // Bounded: a settle that never comes lets go after a few seconds of stream rather than holding it.
        if (held.length >= MAX_HELD) letGo();
        return;
      }
      offerAll(chunk);
    };
    /** Sends what a moved copy held, in order, and forwards as usual from then on. */
    const letGo = () => {
      const waiting = held;
      held = null;
      if (waiting !== null) asOneTurn(() => waiting.forEach(offerAll));
    };
    const offerAll = (chunk: Uint8Array) => {
      for (let i = 0; i < offers.length; i++) offers[i]?.(chunk);
      preview?.output.offer(chunk);
      if (tap !== null && tap.bytes < tap.max) {
        tap.chunks.push(chunk);
        tap.bytes += chunk.length;
      }
    };

    /**
     * The channel's own preview rendition for the pages: an HLS output of short segments fed beside the
     * outputs, started by the first request for it and ended when nobody asked for `previewIdleMs`.
     */
    let preview: { readonly output: Output; lastAsked: number } | null = null;
    const previewHls = Effect.suspend(() => {
      if (preview !== null) {
        preview.lastAsked = Date.now();
        return Effect.succeed(preview.output.hls);
      }
      return Effect.gen(function* () {
        const output = yield* Effect.orDie(makeOutput(PREVIEW_URL, { queueBytes: 2 * 1024 * 1024 }));
        const running = { output, lastAsked: Date.now() };
        preview = running;
        const idle = Effect.repeat(Effect.void, {
          schedule: Schedule.spaced(Math.min(1000, previewIdleMs / 4)),
          until: () => Date.now() - running.lastAsked > previewIdleMs,
        });
        yield* Effect.raceFirst(Effect.ignore(output.run), idle).pipe(
          Effect.ensuring(
            Effect.sync(() => {
              if (preview === running) preview = null;
            }),
          ),
          Effect.forkIn(channelScope),
        );
        return output.hls;
      });
    });

    /** The TS the outputs got over the next `ms` (at most `maxBytes`): the thumbnailer's only input. */
    const capture = (ms: number, maxBytes: number) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          const taken = { chunks: [] as Uint8Array[], bytes: 0, max: maxBytes };
          tap = taken;
          return taken;
        }),
        (taken) => Effect.as(Effect.sleep(ms), taken),
        () =>
          Effect.sync(() => {
            tap = null;
          }),
      ).pipe(Effect.map((taken) => Buffer.concat(taken.chunks)));

    /** Primary first, then the backup: the order every status lists them in. */
    let inputs: InputRuntime[] = [];
    // In merge mode: the 2022-7 merge of both inputs and the core that reads what it lets through. Both are
    // replaced, never mutated, when the mode or the window changes, so the datagram path reads them as is.
    let mergedCore: PacketCore | null = null;
    let merger: SequenceMerger | null = null;
    /** A merge or reorder buffer holds a gap: the selector's fiber flushes it when it expires. */
    const gapWaits = (expiresAtMs: number) => selector.wakeBy(expiresAtMs);
    const useMergeMode = (windowChanged: boolean) =>
      Effect.gen(function* () {
        if (redundancy.mode !== "merge") {
          merger = null;
          mergedCore = null;
          return;
        }
        const core = mergedCore ?? (yield* loadCoreFor("merged stream", loadCore));
        // Its packets come from both inputs, each already locked to its own source.
        core.configure({ silenceMs: redundancy.failover_after_ms, lockSsrc: false });
        mergedCore = core;
        if (merger !== null && !windowChanged) return;
        merger = makeSequenceMerger(
          redundancy.merge_window_ms,
          (datagram) => {
            if (core.push(datagram, performance.now()) > 0) forward(datagram, core);
            core.drainEvents(onEvent);
          },
          gapWaits,
        );
      });
    yield* useMergeMode(true);

    const switchesByReason: Record<SwitchReason, number> = { silence: 0, operator: 0, primary_restored: 0 };
    const selector = yield* makeSelector({
      channel: spec.id,
      policy: failoverPolicy(spec, redundancy),
      onTick: guarded("the redundancy timers", (nowMs: number) => {
        merger?.flush(nowMs);
        for (const input of inputs) input.reorder?.flush(nowMs);
      }),
      nextFlush: () => {
        let next = merger?.deadline() ?? null;
        for (const input of inputs) {
          const gap = input.reorder?.deadline() ?? null;
          if (gap !== null && (next === null || gap < next)) next = gap;
        }
        return next;
      },
      onEvent: (event) => {
        switch (event.type) {
          case "switch":
            switchesByReason[event.reason] += 1;
            return emit({
              type: "input_switched",
              channel: spec.id,
              from: event.from,
              to: event.to,
              reason: event.reason,
              at: new Date(event.at).toISOString(),
            });
          case "input_lost":
            return emit({ type: "input_lost", channel: spec.id, at: new Date(event.at).toISOString() });
          case "input_restored":
            return emit({
              type: "input_restored",
              channel: spec.id,
              input: event.role,
              at: new Date(event.at).toISOString(),
            });
        }
      },
    });

    /**
     * An input's datagram, in its sequence, reaching its packet core. Only what the core accepts (whole TS
     * of the kind and source the input is locked to) counts as an arrival and reaches the outputs: foreign
     * datagrams neither feed the outputs nor keep a silent input looking alive.
     */
    const deliver = (input: InputRuntime, datagram: Uint8Array) => {
      const packets = input.core.push(datagram, performance.now());
      if (packets > 0) selector.arrival(input.role);
      if (merger !== null) {
        if (packets > 0) merger.insert(datagram, LANE[input.role], selector.now());
        input.core.drainEvents(ignoreEvent);
        return;
      }
      const forwarding = selector.active() === input.role;
      if (packets > 0 && forwarding) forward(datagram, input.core);
      // The standby input's events are drained too, so its ring never overflows, but its cues are not the
      // channel's: they reach the watcher only from the input being forwarded.
      input.core.drainEvents(forwarding ? onEvent : ignoreEvent);
    };

    /** Recovered datagrams come from the FEC core and take their place in sequence through the reorder buffer. */
    const accept = (input: InputRuntime, datagram: Uint8Array, recovered: boolean) => {
      const reorder = input.reorder;
      if (reorder === null) deliver(input, datagram);
      else reorder.insert(datagram, recovered ? RECOVERED_LANE : 0, selector.now());
    };
    const where = (role: InputRole) => `the ${role} input's packet path`;
    const allowed = (input: InputRuntime) => (address: string) =>
      input.accepts === null || input.accepts(address);
    const refuse = (input: InputRuntime) => () => input.core.rejectSender();

    /**
     * FEC on or off for one input, and its reorder buffer as the mode and window want it: the input's own
     * socket stays as it is. `windowChanged` rebuilds the reorder buffer for a new window.
     */
    const useFec = (input: InputRuntime, on: boolean, windowChanged: boolean) =>
      Effect.gen(function* () {
        if (on && input.fec === null) {
          const scope = yield* Scope.fork(input.scope, ExecutionStrategy.sequential);
          const fec = yield* bindFec(
            input.endpoint,
            guarded(where(input.role), (datagram: Uint8Array) => accept(input, datagram, true)),
            allowed(input),
            refuse(input),
          ).pipe(
            Scope.extend(scope),
            Effect.tapError(() => Scope.close(scope, Exit.void)),
          );
          input.fec = { input: fec, scope };
        } else if (!on && input.fec !== null) {
          const { scope } = input.fec;
          input.fec = null;
          yield* Scope.close(scope, Exit.void);
        }
        const reordering = input.fec !== null && merger === null;
        if (!reordering) input.reorder = null;
        else if (input.reorder === null || windowChanged)
          input.reorder = makeSequenceMerger(
            redundancy.merge_window_ms,
            (datagram) => deliver(input, datagram),
            gapWaits,
          );
      });

    /** The input's lock time follows the failover time; its allow-list follows its endpoint. */
    const configureInput = (input: InputRuntime) => {
      // The input keeps the kind and RTP source it locked to until they were silent for the failover time.
      input.core.configure({ silenceMs: redundancy.failover_after_ms, lockSsrc: true });
      input.accepts = makeSenderFilter(input.endpoint.allowedSources);
    };

    /** Binds one input in a scope of its own, so that it can be re-pointed or removed alone. */
    const listen = (role: InputRole, endpoint: InputEndpoint, fec: boolean) =>
      Effect.gen(function* () {
        const core = yield* loadCoreFor(`${role} input`, loadCore);
        const scope = yield* Scope.fork(channelScope, ExecutionStrategy.sequential);
        const input: InputRuntime = {
          role,
          endpoint,
          core,
          scope,
          accepts: null,
          fec: null,
          reorder: null,
          socket: null,
          sender: null,
        };
        configureInput(input);
        const injected = faults.onDatagram;
        const refused = refuse(input);
        const receive = guarded(where(role), (datagram: Buffer, sender: RemoteInfo) => {
          // What one of the service's own outputs sent (an output aimed at this input, by whatever path) is
          // dropped: forwarded again, it would loop and multiply the stream until the channel stops.
          if (isOwnPort(sender.port) && fromThisHost(sender.address)) return input.core.rejectOwnOutput();
          // Another sender's datagram never reaches the packet path.
          if (input.accepts !== null && !input.accepts(sender.address)) return refused();
          input.sender = sender;
          injected?.(spec.id);
          input.fec?.input.media(datagram);
          accept(input, datagram, false);
        });
        yield* Effect.gen(function* () {
          if (endpoint.srt !== undefined) {
            // SRT recovers its own losses (no FEC beside it), and libsrt checked the peer (passphrase, stream id).
            const fromSrt = guarded(where(role), (datagram: Buffer) => {
              injected?.(spec.id);
              accept(input, datagram, false);
            });
            yield* bindSrtInput(yield* srtInputTarget(endpoint.srt), fromSrt).pipe(Scope.extend(scope));
          } else {
            yield* useFec(input, fec, true);
            const takeOver = options.handover?.[role];
            input.socket = yield* bindInput(endpoint, receive, takeOver).pipe(Scope.extend(scope));
          }
        }).pipe(Effect.tapError(() => Scope.close(scope, Exit.void)));
        inputs = [...inputs.filter((other) => other.role !== role), input].sort((a, b) =>
          a.role === b.role ? 0 : a.role === "primary" ? -1 : 1,
        );
        faults.onListen?.(spec.id, role, receive);
      }).pipe(Effect.mapError(inputFailure(role)));

    const unlisten = (role: InputRole) =>
      Effect.suspend(() => {
        const input = inputs.find((candidate) => candidate.role === role);
        if (input === undefined) return Effect.void;
        inputs = inputs.filter((candidate) => candidate !== input);
        return Scope.close(input.scope, Exit.void);
      });

    /**
     * New inputs or redundancy settings, live: timers and mode apply from the next datagram, FEC sockets come
     * and go beside their input, and only an input whose address changed is bound again. The outputs go on.
     */
    const reconfigure = (next: ChannelSpec) =>
      Effect.gen(function* () {
        const before = redundancy;
        redundancy = yield* resolvedRedundancy(next);
        const windowChanged = before.merge_window_ms !== redundancy.merge_window_ms;
        yield* useMergeMode(windowChanged);
        for (const role of ["primary", "backup"] as const) {
          const endpoint = role === "primary" ? next.primary : next.backup;
          const current = inputs.find((input) => input.role === role);
          if (current !== undefined && (endpoint === null || !sameEndpoint(current.endpoint, endpoint)))
            yield* unlisten(role);
          if (endpoint === null) continue;
          const kept = inputs.find((input) => input.role === role);
          if (kept === undefined) {
            yield* listen(role, endpoint, redundancy.fec[role]);
            continue;
          }
          // Same socket: a new allow-list and lock time apply from the next datagram.
          kept.endpoint = endpoint;
          configureInput(kept);
          yield* useFec(kept, redundancy.fec[role], windowChanged).pipe(Effect.mapError(inputFailure(role)));
        }
        selector.setPolicy(failoverPolicy(next, redundancy));
        spec = {
          ...spec,
          name: next.name,
          primary: next.primary,
          backup: next.backup,
          redundancy: next.redundancy,
        };
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
          return;
        }
        const output = yield* makeOutput(next.url, outputOptions, outputEvents(next.id)).pipe(
          Effect.mapError((error) => new ChannelError({ reason: "invalid_output", message: error.message })),
        );
        yield* removeOutput(next.id);
        entries.set(next.id, { spec: next, output });
        if (!next.enabled) return;
        rebuildFanOut();
        yield* FiberMap.run(writers, next.id, output.run);
      });

    yield* listen("primary", spec.primary, redundancy.fec.primary);
    if (spec.backup !== null) yield* listen("backup", spec.backup, redundancy.fec.backup);
    for (const output of spec.outputs) yield* applyOutput(output);

    const mergeStatus = (): MergeStatus | null => {
      const current = merger;
      if (current === null) return null;
      const { received: _received, firstCopies, ...counts } = current.snapshot();
      return {
        ...counts,
        firstCopies: { primary: firstCopies[LANE.primary] ?? 0, backup: firstCopies[LANE.backup] ?? 0 },
      };
    };

    const redundancyFigures = () => ({
      mode: redundancy.mode,
      failover_after_ms: redundancy.failover_after_ms,
      revert: redundancy.revert,
      revert_after_ms: redundancy.revert_after_ms,
      merge_window_ms: redundancy.merge_window_ms,
      active: selector.active(),
      failovers: selector.failovers("primary") + selector.failovers("backup"),
      failoversByReason: { ...switchesByReason },
    });

    const outputStatuses = () =>
      [...entries.values()].map((entry) => ({
        ...entry.output.status(),
        id: entry.spec.id,
        name: entry.spec.name,
        enabled: entry.spec.enabled,
      }));

    const inputFigures = (input: InputRuntime, now: number, active: InputRole) => {
      const last = selector.lastArrival(input.role);
      return {
        role: input.role,
        endpoint: input.endpoint,
        active: merger !== null || input.role === active,
        lastPacketAgeMs: last === null ? null : Math.max(0, Math.round(now - last)),
        failovers: selector.failovers(input.role),
      };
    };

    const summary = (): ChannelRuntimeSummary => {
      const now = selector.now();
      const active = selector.active();
      return {
        id: spec.id,
        name: spec.name,
        startedAt,
        input: selector.health(),
        redundancy: redundancyFigures(),
        lastSwitch: selector.lastSwitch(),
        inputs: inputs.map((input) => {
          const fec = input.fec?.input.snapshot();
          return {
            ...inputFigures(input, now, active),
            fec: fec === undefined ? null : { recovered: fec.recovered, unrecoverable: fec.unrecoverable },
            core: input.core.counters(),
          };
        }),
        outputs: outputStatuses(),
      };
    };

    const status = (): ChannelRuntimeStatus => {
      const now = selector.now();
      const active = selector.active();
      return {
        id: spec.id,
        name: spec.name,
        startedAt,
        input: selector.health(),
        redundancy: { ...redundancyFigures(), events: selector.events(), merge: mergeStatus() },
        inputs: inputs.map((input) => ({
          ...inputFigures(input, now, active),
          fec: input.fec?.input.snapshot() ?? null,
          core: input.core.snapshot(),
        })),
        outputs: outputStatuses(),
      };
    };

    const switchInput = (role: InputRole) =>
      Effect.suspend(() => {
        if (redundancy.mode !== "failover") {
          const why =
            spec.backup === null ? "it has no backup input" : `its redundancy mode is ${redundancy.mode}`;
          return Effect.fail(
            new ChannelError({
              reason: "invalid_switch",
              message: `channel ${spec.id} cannot switch inputs: ${why}`,
            }),
          );
        }
        return selector.switchTo(role);
      });

    const release = (maxMs: number) =>
      Effect.gen(function* () {
        for (const input of inputs) yield* unlisten(input.role);
        const deadline = Date.now() + maxMs;
        const queued = () =>
          [...entries.values()].some((entry) => {
            const status = entry.output.status();
            return entry.spec.enabled && status.state === "connected" && status.queuedBytes > 0;
          });
        while (queued() && Date.now() < deadline) yield* Effect.sleep("2 millis");
      });

    const settle = Effect.sync(() => {
      letGo();
      for (const input of inputs) {
        try {
          input.socket?.disconnect();
        } catch {
          // Not connected: it took any sender already.
        }
      }
    });

    return {
      spec: () => spec,
      senders: () => {
        const senders: Handover = {};
        for (const input of inputs)
          if (input.sender !== null)
            senders[input.role] = { address: input.sender.address, port: input.sender.port };
        return senders;
      },
      release,
      settle,
      status,
      summary,
      watcher,
      activeInput: selector.active,
      switchInput,
      events: selector.events,
      crashed: Deferred.await(crash),
      capture,
      hls: (outputId: string) => entries.get(outputId)?.output.hls ?? null,
      preview: previewHls,
      previewActive: () => preview !== null,
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

const failoverPolicy = (spec: ChannelSpec, redundancy: Redundancy): FailoverPolicy => ({
  roles: spec.backup === null ? ["primary"] : ["primary", "backup"],
  switching: redundancy.mode === "failover",
  failoverAfterMs: redundancy.failover_after_ms,
  revert: redundancy.revert,
  revertAfterMs: redundancy.revert_after_ms,
});

const inputFailure =
  (role: InputRole) =>
  (error: InputError | ChannelError): ChannelError =>
    new ChannelError({
      reason: error._tag === "ChannelError" ? error.reason : "input_failed",
      message: `${role} input: ${error.message}`,
    });

const sameEndpoint = (a: InputEndpoint, b: InputEndpoint) =>
  a.ip === b.ip &&
  a.port === b.port &&
  a.source === b.source &&
  a.interface === b.interface &&
  a.srt === b.srt;

/** An SRT input's URL as a target (the same syntax and checks as an SRT output's). */
const srtInputTarget = (url: string): Effect.Effect<SrtTarget, InputError> =>
  Effect.flatMap(
    Effect.mapError(
      parseOutputUrl(url),
      (error) => new InputError({ reason: "bind_failed", message: `SRT input URL: ${error.message}` }),
    ),
    (target) =>
      target.protocol === "srt"
        ? Effect.succeed(target)
        : Effect.fail(
            new InputError({ reason: "bind_failed", message: "an SRT input URL starts with srt://" }),
          ),
  );

/** A packet core for one of the channel's paths; a core that cannot load fails the start with its reason. */
const loadCoreFor = (what: string, load: () => PacketCore) =>
  Effect.try({
    try: load,
    catch: (thrown) =>
      new ChannelError({
        reason: "crashed",
        message: `the packet core for the ${what} could not be loaded: ${describeThrow(thrown)}`,
      }),
  });
