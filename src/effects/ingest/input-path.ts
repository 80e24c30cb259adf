/**
 * A channel's input side, from its sockets to its fan-out, by redundancy mode (domain/redundancy.ts):
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
 * and nothing else; FEC sockets come and go beside it; timers and the mode change live.
 */
import type { RemoteInfo } from "node:dgram";
import * as Effect from "effect/Effect";
import * as ExecutionStrategy from "effect/ExecutionStrategy";
import * as Exit from "effect/Exit";
import * as Scope from "effect/Scope";
import { PacketCore } from "../../core/packet-core.ts";
import type { InputEndpoint, InputRole } from "../../domain/redundancy.ts";
import { sameValue } from "../../domain/same.ts";
import type { ReadInto } from "../runtime/batch-reader.ts";
import { isOwnPort } from "../runtime/own-ports.ts";
import { failoverPolicy, type SwitchReason } from "./failover.ts";
import { bindFec } from "./fec.ts";
import { makeInputsHealth } from "./input-health.ts";
import { projectInputs, reportSelectorEvents } from "./input-status.ts";
import {
  type InputPath,
  InputPathError,
  type InputPathOptions,
  type InputRuntime,
  type InputsStatus,
  type Senders,
  srpRefusalsOf,
} from "./input-types.ts";
import { bindLinkInput } from "./link-input.ts";
import { LANE, makeSequenceMerger, RECOVERED_LANE, type SequenceMerger } from "./merge.ts";
import { type RunPath, takeRun } from "./read-run.ts";
import { makeSelector } from "./selector.ts";
import { fromThisHost, makeSenderFilter } from "./sender-filter.ts";
import { bindInput, type InputError, lastRead } from "./udp-receiver.ts";

/** Binds the channel's inputs in the current scope and returns once each listens. */
export const makeInputPath = (
  options: InputPathOptions,
): Effect.Effect<InputPath, InputPathError, Scope.Scope> =>
  Effect.gen(function* () {
    const { channel, forward, onCoreEvent, emit, guarded } = options;
    const seams = options.seams ?? {};
    const loadCore = seams.loadCore ?? PacketCore.load;
    const channelScope = yield* Effect.scope;
    let redundancy = options.redundancy;
    const ignoreEvent = () => {};

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
            core.drainEvents(onCoreEvent);
          },
          gapWaits,
        );
      });
    yield* useMergeMode(true);

    const switchesByReason: Record<SwitchReason, number> = {
      silence: 0,
      rule: 0,
      operator: 0,
      primary_restored: 0,
    };
    const selector = yield* makeSelector({
      channel,
      nowMs: () => performance.now(),
      policy: failoverPolicy(options.backup, redundancy),
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
      onEvent: reportSelectorEvents(channel, emit, switchesByReason),
    });
    const health = yield* makeInputsHealth({
      initial: redundancy.health,
      nowMs: () => performance.now(),
      judged: selector.judged,
      contentSuspended: options.contentSuspended ?? (() => false),
      onAllUnhealthy: options.onAllUnhealthy,
      receiving: (role) => {
        const last = selector.lastArrival(role);
        return last !== null && selector.now() - last < redundancy.failover_after_ms;
      },
    });
    const runPath: RunPath = {
      channel,
      onDatagram: seams.onDatagram,
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

    const runOf = (input: InputRuntime): ReadInto["run"] => {
      const { forwardRun, takesRuns } = options;
      if (forwardRun === undefined || takesRuns === undefined) return () => false;
      const take = guarded(
        where(input.role),
        (count: number, senderAt: (slot: number) => RemoteInfo | null) =>
          takeRun(runPath, input, count, senderAt),
      );
      return (count, senderAt) => {
        if (merger !== null || input.fec !== null || input.reorder !== null || !takesRuns()) return false;
        take(count, senderAt);
        return true;
      };
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
            options.pace,
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
      // Whoever the core let through without asking is asked about again.
      input.trusted = null;
      input.core.distrustSender();
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
          trusted: null,
          rist: null,
          rtmp: null,
          srt: null,
        };
        configureInput(input);
        const injected = seams.onDatagram;
        const refused = refuse(input);
        const receive = guarded(where(role), (datagram: Buffer, sender: RemoteInfo) => {
          // What one of the service's own outputs sent (an output aimed at this input, by whatever path) is
          // dropped: forwarded again, it would loop and multiply the stream until the channel stops.
          if (isOwnPort(sender.port) && fromThisHost(sender.address)) return input.core.rejectOwnOutput();
          // Another sender's datagram never reaches the packet path.
          if (input.accepts !== null && !input.accepts(sender.address)) return refused();
          input.sender = sender;
          injected?.(channel);
          input.fec?.input.media(datagram);
          accept(input, datagram, false);
        });
        yield* Effect.gen(function* () {
          if (endpoint.srt !== undefined) {
            // SRT and RIST recover their own losses (no FEC beside them), and libsrt or librist checked the
            // peer (passphrase, stream id; secret, EAP-SRP).
            const fromLink = guarded(where(role), (datagram: Buffer) => {
              injected?.(channel);
              accept(input, datagram, false);
            });
            yield* bindLinkInput(input, endpoint.srt, fromLink, options);
          } else {
            yield* useFec(input, fec, true);
            const takeOver = options.handover?.[role];
            const into = { slots: core.readSlots, run: runOf(input) };
            input.socket = yield* bindInput(endpoint, receive, takeOver, options.pace, into).pipe(
              Scope.extend(scope),
            );
          }
        }).pipe(Effect.tapError(() => Scope.close(scope, Exit.void)));
        inputs = [...inputs.filter((other) => other.role !== role), input].sort((a, b) =>
          a.role === b.role ? 0 : a.role === "primary" ? -1 : 1,
        );
        yield* health.attach(role, core);
        seams.onListen?.(channel, role, receive);
      }).pipe(Effect.mapError(inputFailure(role)));

    const unlisten = (role: InputRole) =>
      Effect.suspend(() => {
        const input = inputs.find((candidate) => candidate.role === role);
        if (input === undefined) return Effect.void;
        inputs = inputs.filter((candidate) => candidate !== input);
        return Effect.zipRight(health.detach(role), Scope.close(input.scope, Exit.void));
      });

    const reconfigure: InputPath["reconfigure"] = (next, nextRedundancy) =>
      Effect.gen(function* () {
        const before = redundancy;
        redundancy = nextRedundancy;
        const windowChanged = before.merge_window_ms !== redundancy.merge_window_ms;
        yield* useMergeMode(windowChanged);
        if (!sameValue(before.health, redundancy.health)) yield* health.setHealth(redundancy.health);
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
        selector.setPolicy(failoverPolicy(next.backup, redundancy));
      });

    yield* listen("primary", options.primary, redundancy.fec.primary);
    if (options.backup !== null) yield* listen("backup", options.backup, redundancy.fec.backup);

    const project = (detail: boolean) =>
      projectInputs(
        { selector, redundancy, switchesByReason, inputs, merger, health: health.status },
        detail,
      );

    return {
      selector,
      redundancy: () => redundancy,
      reconfigure,
      close: Effect.suspend(() => Effect.forEach(inputs, (input) => unlisten(input.role), { discard: true })),
      readLast: () => {
        if (merger !== null) return false;
        const reads = inputs.map((input) =>
          input.socket === null || input.fec !== null || input.reorder !== null
            ? null
            : lastRead(input.socket),
        );
        if (reads.length === 0 || reads.some((read) => read === null)) return false;
        for (const read of reads) read?.();
        return true;
      },
      takeAnySender: () => {
        for (const input of inputs) {
          try {
            input.socket?.disconnect();
          } catch {
            // Not connected: it took any sender already.
          }
        }
      },
      senders: () => {
        const senders: Senders = {};
        for (const input of inputs)
          if (input.sender !== null)
            senders[input.role] = { address: input.sender.address, port: input.sender.port };
        return senders;
      },
      traffic: () =>
        inputs.map((input) => {
          const srp = input.rist === null ? null : srpRefusalsOf(input.rist());
          return { role: input.role, bytes: input.core.bytes(), ...(srp === null ? {} : { srp }) };
        }),
      summary: () => project(false),
      status: () => project(true) as InputsStatus,
    } satisfies InputPath;
  });

/** An input's failure names the input; a core that cannot load stays a core failure. */
const inputFailure =
  (role: InputRole) =>
  (error: InputError | InputPathError): InputPathError =>
    new InputPathError({
      reason: error._tag === "InputPathError" ? error.reason : "input_failed",
      message: `${role} input: ${error.message}`,
    });

const sameEndpoint = (a: InputEndpoint, b: InputEndpoint) =>
  a.ip === b.ip &&
  a.port === b.port &&
  a.source === b.source &&
  a.interface === b.interface &&
  a.srt === b.srt;

/** A packet core for one of the channel's paths; a core that cannot load fails the start with its reason. */
const loadCoreFor = (what: string, load: () => PacketCore) =>
  Effect.try({
    try: load,
    catch: (thrown) =>
      new InputPathError({
        reason: "core_failed",
        message: `the packet core for the ${what} could not be loaded: ${thrown instanceof Error ? thrown.message : String(thrown)}`,
      }),
  });
