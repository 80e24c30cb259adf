/**
 * A channel's input side, from its sockets to its fan-out, by redundancy mode (domain/channel/redundancy.ts):
 *   failover, none   socket ─► sender filter ─► [FEC ─► reorder] ─► input core ─► selector ─► forward
 *   merge            socket ─► sender filter ─► [FEC] ─► input core ─► merge (first copy, in order) ─► merged core ─► forward
 * The channel hands in `forward`, its fan-out, and this path calls it once per datagram that reaches the
 * outputs: in failover and none, only the active input's. The input cores count what each path delivered; in
 * merge mode the merged core is what the outputs get, so the SCTE-35 sections come from it.
 *
 * On Node.js a UDP input's reads land in its core's memory, and while the channel's outputs take whole reads
 * (only plain UDP outputs), one core call checks a whole read and one `forwardRun` hands on what it accepted
 * (`runOf`, and read-run.ts `takeRun`): no JavaScript per datagram. Otherwise each datagram takes the path
 * above. SRT, RIST and RTMP inputs are bound by link-input.ts and hand their datagrams to the same path.
 *
 * The per-datagram path (socket callback → core.push → selector arrival → forward) is plain synchronous code
 * that allocates nothing: every closure on it is made when an input starts listening, never per datagram.
 * Each input has a scope of its own inside the channel's, so that a changed address binds that input again
 * and nothing else (input-binding.ts); FEC sockets come and go beside it; timers and the mode change live.
 * What the channel makes after the path and that follows it (the slate) watches it (`watch`): the path's
 * events, the forwarded input's PMTs and the inputs' health reach it from then on.
 */
import * as Effect from "effect/Effect";
import type * as Scope from "effect/Scope";
import { PacketCore } from "../../core/packet-core.ts";
import type { CoreEvent } from "../../core/packet-core-events.ts";
import { sameValue } from "../../domain/base/same.ts";
import type { InputEndpoint } from "../../domain/channel/redundancy.ts";
import type { NewEvent } from "../../domain/events/events.ts";
import { failoverPolicy, type SwitchReason } from "./failover.ts";
import { loadCoreFor, makeInputBinding, moveActions, type PathState } from "./input-binding.ts";
import { makeInputsHealth } from "./input-health.ts";
import { projectInputs, reportSelectorEvents, trafficOf } from "./input-status.ts";
import type {
  InputPath,
  InputPathError,
  InputPathOptions,
  InputRuntime,
  InputsStatus,
  InputWatcher,
} from "./input-types.ts";
import { LANE, makeSequenceMerger, RECOVERED_LANE } from "./merge.ts";
import type { RunPath } from "./read-run.ts";
import { makeSelector } from "./selector.ts";

/** Binds the channel's inputs in the current scope and returns once each listens. */
export const makeInputPath = (
  options: InputPathOptions,
): Effect.Effect<InputPath, InputPathError, Scope.Scope> =>
  Effect.gen(function* () {
    const { channel, forward, guarded } = options;
    const loadCore = options.seams?.loadCore ?? PacketCore.load;
    const channelScope = yield* Effect.scope;
    const state: PathState = { redundancy: options.redundancy, inputs: [], merger: null, mergedCore: null };
    const ignoreEvent = () => {};

    /** The parts of the channel that follow the path (the slate), each from the moment it is made. */
    const watchers: InputWatcher[] = [];
    const emit = (event: NewEvent) => {
      options.emit(event);
      for (const watcher of watchers) watcher.onEvent(event);
    };
    const onCoreEvent = (event: CoreEvent) => {
      options.onCoreEvent(event);
      if (event.type === "pmt") for (const watcher of watchers) watcher.onPmt();
    };

    const switchesByReason: Record<SwitchReason, number> = {
      silence: 0,
      rule: 0,
      operator: 0,
      primary_restored: 0,
    };
    const selector = yield* makeSelector({
      channel,
      nowMs: () => performance.now(),
      policy: failoverPolicy(options.backup, state.redundancy),
      onTick: guarded("the redundancy timers", (nowMs: number) => {
        state.merger?.flush(nowMs);
        for (const input of state.inputs) input.reorder?.flush(nowMs);
      }),
      nextFlush: () => {
        let next = state.merger?.deadline() ?? null;
        for (const input of state.inputs) {
          const gap = input.reorder?.deadline() ?? null;
          if (gap !== null && (next === null || gap < next)) next = gap;
        }
        return next;
      },
      onEvent: reportSelectorEvents(channel, emit, switchesByReason),
    });
    /** A merge or reorder buffer holds a gap: the selector's fiber flushes it when it expires. */
    const gapWaits = (expiresAtMs: number) => selector.wakeBy(expiresAtMs);
    const useMergeMode = (windowChanged: boolean) =>
      Effect.gen(function* () {
        const { redundancy } = state;
        if (redundancy.mode !== "merge") {
          state.merger = null;
          state.mergedCore = null;
          return;
        }
        const core = state.mergedCore ?? (yield* loadCoreFor("merged stream", loadCore));
        // Its packets come from both inputs, each already locked to its own source.
        core.configure({ silenceMs: redundancy.failover_after_ms, lockSsrc: false });
        state.mergedCore = core;
        if (state.merger !== null && !windowChanged) return;
        state.merger = makeSequenceMerger(
          redundancy.merge_window_ms,
          (datagram) => {
            if (core.push(datagram, performance.now()) > 0) forward(datagram, core);
            core.drainEvents(onCoreEvent);
          },
          gapWaits,
        );
      });
    yield* useMergeMode(true);

    const health = yield* makeInputsHealth({
      initial: state.redundancy.health,
      nowMs: () => performance.now(),
      judged: selector.judged,
      contentSuspended: () => {
        for (const watcher of watchers) if (watcher.suspendsContent()) return true;
        return false;
      },
      onAllUnhealthy: (all) => {
        for (const watcher of watchers) watcher.onHealth(all);
      },
      receiving: (role) => {
        const last = selector.lastArrival(role);
        return last !== null && selector.now() - last < state.redundancy.failover_after_ms;
      },
    });
    const runPath: RunPath = {
      channel,
      onDatagram: options.seams?.onDatagram,
      selector,
      health,
      forwardRun: options.forwardRun,
      onCoreEvent,
    };

    /**
     * An input's datagram, in its sequence, reaching its packet core. Only what the core accepts (whole TS
     * of the kind and source the input is locked to) counts as an arrival and reaches the outputs: foreign
     * datagrams neither feed the outputs nor keep a silent input looking alive.
     */
    const deliver = (input: InputRuntime, datagram: Uint8Array) => {
      const at = performance.now();
      const packets = input.core.push(datagram, at);
      if (packets > 0) {
        selector.arrival(input.role, at);
        const watch = health.feeds[input.role];
        if (watch !== null) {
          const start = input.core.payloadOffset;
          watch(datagram.subarray(start, start + input.core.payloadLength));
        }
      }
      const { merger } = state;
      if (merger !== null) {
        if (packets > 0) merger.insert(datagram, LANE[input.role], selector.now());
        input.core.drainEvents(ignoreEvent);
        return;
      }
      const forwarding = selector.active() === input.role;
      if (packets > 0 && forwarding) forward(datagram, input.core);
      // The standby input's events are drained too, so its ring never overflows, but its cues are not the
      // channel's: they reach the channel only from the input being forwarded.
      input.core.drainEvents(forwarding ? onCoreEvent : ignoreEvent);
    };

    /** Recovered datagrams come from the FEC core and take their place in sequence through the reorder buffer. */
    const accept = (input: InputRuntime, datagram: Uint8Array, recovered: boolean) => {
      const reorder = input.reorder;
      if (reorder === null) deliver(input, datagram);
      else reorder.insert(datagram, recovered ? RECOVERED_LANE : 0, selector.now());
    };

    const { listen, unlisten, keep } = makeInputBinding({
      state,
      options: { ...options, emit },
      channelScope,
      loadCore,
      runPath,
      health,
      deliver,
      accept,
      gapWaits,
    });

    const reconfigure: InputPath["reconfigure"] = (next, nextRedundancy) =>
      Effect.gen(function* () {
        const before = state.redundancy;
        state.redundancy = nextRedundancy;
        const windowChanged = before.merge_window_ms !== nextRedundancy.merge_window_ms;
        yield* useMergeMode(windowChanged);
        if (!sameValue(before.health, nextRedundancy.health)) yield* health.setHealth(nextRedundancy.health);
        for (const role of ["primary", "backup"] as const) {
          const endpoint = role === "primary" ? next.primary : next.backup;
          const current = state.inputs.find((input) => input.role === role);
          if (current !== undefined && (endpoint === null || !sameEndpoint(current.endpoint, endpoint)))
            yield* unlisten(role);
          if (endpoint === null) continue;
          const kept = state.inputs.find((input) => input.role === role);
          if (kept === undefined) yield* listen(role, endpoint, nextRedundancy.fec[role]);
          // Same socket: a new allow-list and lock time apply from the next datagram.
          else yield* keep(kept, endpoint, nextRedundancy.fec[role], windowChanged);
        }
        selector.setPolicy(failoverPolicy(next.backup, nextRedundancy));
      });

    yield* listen("primary", options.primary, state.redundancy.fec.primary);
    if (options.backup !== null) yield* listen("backup", options.backup, state.redundancy.fec.backup);

    const project = (detail: boolean) =>
      projectInputs(
        {
          selector,
          redundancy: state.redundancy,
          switchesByReason,
          inputs: state.inputs,
          merger: state.merger,
          health: health.status,
        },
        detail,
      );

    return {
      selector,
      watch: (watcher) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            watchers.push(watcher);
          }),
          () =>
            Effect.sync(() => {
              const at = watchers.indexOf(watcher);
              if (at >= 0) watchers.splice(at, 1);
            }),
        ),
      redundancy: () => state.redundancy,
      reconfigure,
      close: Effect.suspend(() =>
        Effect.forEach(state.inputs, (input) => unlisten(input.role), { discard: true }),
      ),
      ...moveActions(state),
      traffic: () => trafficOf(state.inputs),
      summary: () => project(false),
      status: () => project(true) as InputsStatus,
    } satisfies InputPath;
  });

const sameEndpoint = (a: InputEndpoint, b: InputEndpoint) =>
  a.ip === b.ip &&
  a.port === b.port &&
  a.source === b.source &&
  a.interface === b.interface &&
  a.srt === b.srt;
