/**
 * One input of a channel's input path (input-path.ts) bound and unbound: its packet core, its socket (or its
 * SRT, RIST or RTMP link), its FEC sockets and reorder buffer, each input in a scope of its own inside the
 * channel's, so that a changed address binds that input again and nothing else. What it binds hands each
 * datagram to the path's `accept`; the path's state (the inputs listening, the merge) is the one record both
 * read. And what a move asks of those sockets (`moveActions`).
 */
import type { RemoteInfo } from "node:dgram";
import * as Effect from "effect/Effect";
import * as ExecutionStrategy from "effect/ExecutionStrategy";
import * as Exit from "effect/Exit";
import * as Scope from "effect/Scope";
import type { PacketCore } from "../../core/packet-core.ts";
import type { InputEndpoint, InputRole, Redundancy } from "../../domain/channel/redundancy.ts";
import type { ReadInto } from "../runtime/sockets/batch-reader.ts";
import { isOwnPort } from "../runtime/sockets/own-ports.ts";
import { bindFec } from "./fec.ts";
import type { InputsHealth } from "./input-health.ts";
import {
  type InputPath,
  InputPathError,
  type InputPathOptions,
  type InputRuntime,
  newInput,
  type Senders,
} from "./input-types.ts";
import { bindLinkInput } from "./link-input.ts";
import { makeSequenceMerger, type SequenceMerger } from "./merge.ts";
import { type RunPath, takeRun } from "./read-run.ts";
import { fromThisHost, makeSenderFilter } from "./sender-filter.ts";
import { bindInput, type InputError, lastRead } from "./udp-receiver.ts";

/** What the input path and its inputs' binding share, changed live (never per datagram). */
export interface PathState {
  redundancy: Redundancy;
  /** Primary first, then the backup: the order every status lists them in. */
  inputs: InputRuntime[];
  /**
   * In merge mode: the 2022-7 merge of both inputs and the core that reads what it lets through. Both are
   * replaced, never mutated, when the mode or the window changes, so the datagram path reads them as is.
   */
  merger: SequenceMerger | null;
  mergedCore: PacketCore | null;
}

export const makeInputBinding = (path: {
  readonly state: PathState;
  readonly options: InputPathOptions;
  readonly channelScope: Scope.Scope;
  readonly loadCore: () => PacketCore;
  readonly runPath: RunPath;
  readonly health: InputsHealth;
  /** An input's datagram, in its sequence, reaching its packet core. */
  readonly deliver: (input: InputRuntime, datagram: Uint8Array) => void;
  /** An input's datagram before its sequence: through the reorder buffer when the input has one. */
  readonly accept: (input: InputRuntime, datagram: Uint8Array, recovered: boolean) => void;
  /** A merge or reorder buffer holds a gap until this time: the selector's fiber flushes it then. */
  readonly gapWaits: (expiresAtMs: number) => void;
}) => {
  const { state, options, channelScope, runPath, health, accept } = path;
  const { channel, guarded } = options;
  const seams = options.seams ?? {};
  const where = (role: InputRole) => `the ${role} input's packet path`;
  const allowed = (input: InputRuntime) => (address: string) =>
    input.accepts === null || input.accepts(address);
  const refuse = (input: InputRuntime) => () => input.core.rejectSender();

  const runOf = (input: InputRuntime): ReadInto["run"] => {
    const { forwardRun, takesRuns } = options;
    if (forwardRun === undefined || takesRuns === undefined) return () => false;
    const take = guarded(where(input.role), (count: number, senderAt: (slot: number) => RemoteInfo | null) =>
      takeRun(runPath, input, count, senderAt),
    );
    return (count, senderAt) => {
      if (state.merger !== null || input.fec !== null || input.reorder !== null || !takesRuns()) return false;
      take(count, senderAt);
      return true;
    };
  };

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
      const reordering = input.fec !== null && state.merger === null;
      if (!reordering) input.reorder = null;
      else if (input.reorder === null || windowChanged)
        input.reorder = makeSequenceMerger(
          state.redundancy.merge_window_ms,
          (datagram) => path.deliver(input, datagram),
          path.gapWaits,
        );
    });

  /** The input's lock time follows the failover time; its allow-list follows its endpoint. */
  const configureInput = (input: InputRuntime) => {
    // The input keeps the kind and RTP source it locked to until they were silent for the failover time.
    input.core.configure({ silenceMs: state.redundancy.failover_after_ms, lockSsrc: true });
    input.accepts = makeSenderFilter(input.endpoint.allowedSources);
    // Whoever the core let through without asking is asked about again.
    input.trusted = null;
    input.core.distrustSender();
  };

  /** Binds one input in a scope of its own, so that it can be re-pointed or removed alone. */
  const listen = (role: InputRole, endpoint: InputEndpoint, fec: boolean) =>
    Effect.gen(function* () {
      const core = yield* loadCoreFor(`${role} input`, path.loadCore);
      const scope = yield* Scope.fork(channelScope, ExecutionStrategy.sequential);
      const input = newInput(role, endpoint, core, scope);
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
      state.inputs = [...state.inputs.filter((other) => other.role !== role), input].sort((a, b) =>
        a.role === b.role ? 0 : a.role === "primary" ? -1 : 1,
      );
      yield* health.attach(role, core);
      seams.onListen?.(channel, role, receive);
    }).pipe(Effect.mapError(inputFailure(role)));

  const unlisten = (role: InputRole) =>
    Effect.suspend(() => {
      const input = state.inputs.find((candidate) => candidate.role === role);
      if (input === undefined) return Effect.void;
      state.inputs = state.inputs.filter((candidate) => candidate !== input);
      return Effect.zipRight(health.detach(role), Scope.close(input.scope, Exit.void));
    });

  /** New settings for an input that stays bound: a new allow-list and lock time apply from the next datagram. */
  const keep = (input: InputRuntime, endpoint: InputEndpoint, fec: boolean, windowChanged: boolean) => {
    input.endpoint = endpoint;
    configureInput(input);
    return useFec(input, fec, windowChanged).pipe(Effect.mapError(inputFailure(input.role)));
  };

  return { listen, unlisten, keep };
};

/** What a move asks of the inputs' sockets: the old copy's last read, the new copy's senders and let-go. */
export const moveActions = (state: PathState): Pick<InputPath, "readLast" | "takeAnySender" | "senders"> => ({
  readLast: () => {
    if (state.merger !== null) return false;
    const reads = state.inputs.map((input) =>
      input.socket === null || input.fec !== null || input.reorder !== null ? null : lastRead(input.socket),
    );
    if (reads.length === 0 || reads.some((read) => read === null)) return false;
    for (const read of reads) read?.();
    return true;
  },
  takeAnySender: () => {
    for (const input of state.inputs) {
      try {
        input.socket?.disconnect();
      } catch {
        // Not connected: it took any sender already.
      }
    }
  },
  senders: () => {
    const senders: Senders = {};
    for (const input of state.inputs)
      if (input.sender !== null)
        senders[input.role] = { address: input.sender.address, port: input.sender.port };
    return senders;
  },
});

/** An input's failure names the input; a core that cannot load stays a core failure. */
const inputFailure =
  (role: InputRole) =>
  (error: InputError | InputPathError): InputPathError =>
    new InputPathError({
      reason: error._tag === "InputPathError" ? error.reason : "input_failed",
      message: `${role} input: ${error.message}`,
    });

/** A packet core for one of the channel's paths; a core that cannot load fails the start with its reason. */
export const loadCoreFor = (what: string, load: () => PacketCore) =>
  Effect.try({
    try: load,
    catch: (thrown) =>
      new InputPathError({
        reason: "core_failed",
        message: `the packet core for the ${what} could not be loaded: ${thrown instanceof Error ? thrown.message : String(thrown)}`,
      }),
  });
