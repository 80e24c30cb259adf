/**
 * Runs channels in this thread: one FiberMap entry per running channel, each holding that channel's whole
 * fiber tree in its own scope. The supervisor (channels.ts) uses it on the main thread when forwarding stays
 * there, and each forwarding worker (workers/worker.ts) uses it for the channels placed on it.
 *
 * A start that fails — with an error or a defect (a core that cannot load) — fails that start with its
 * reason; a channel whose packet path throws later ends, and `onFailed` says so. Stopping a channel
 * interrupts its entry: every output writer is interrupted and every child process killed and reaped before
 * `stop` returns.
 */
import * as Cause from "effect/Cause";
import * as Deferred from "effect/Deferred";
import * as Effect from "effect/Effect";
import * as Exit from "effect/Exit";
import * as FiberMap from "effect/FiberMap";
import type { ChannelId } from "../../domain/base/ids.ts";
import { reportThrough } from "../runtime/timers/end-of-turn.ts";
import { startChannel } from "./channel.ts";
import type {
  ChannelError as ChannelErrorType,
  ChannelOptions,
  ChannelSpec,
  Handover,
  RunningChannel,
} from "./channel-types.ts";
import { ChannelError, notRunning } from "./channel-types.ts";

/** A start that died (not failed) is still a start that failed: its reason in words, never a hang. */
const startFailure = (cause: Cause.Cause<ChannelErrorType>): ChannelErrorType => {
  const failure = Cause.failureOption(cause);
  if (failure._tag === "Some") return failure.value;
  const defect = Cause.squash(cause);
  const reason = defect instanceof Error ? defect.message : String(defect);
  return new ChannelError({ reason: "crashed", message: `internal error while starting: ${reason}` });
};

interface ChannelHost {
  /**
   * `handover`: the channel is the new copy of one moving from another worker (ChannelOptions.handover,
   * `handedOver`).
   */
  readonly start: (
    spec: ChannelSpec,
    handover?: Handover,
    handedOver?: SharedArrayBuffer,
  ) => Effect.Effect<void, ChannelErrorType>;
  readonly stop: (id: ChannelId) => Effect.Effect<boolean>;
  readonly get: (id: ChannelId) => RunningChannel | undefined;
  /** `use` on a running channel; fails with not_running otherwise. */
  readonly with: <A>(
    id: ChannelId,
    use: (channel: RunningChannel) => Effect.Effect<A, ChannelErrorType>,
  ) => Effect.Effect<A, ChannelErrorType>;
  readonly running: () => ReadonlyArray<ChannelId>;
}

export const makeChannelHost = (
  options: ChannelOptions & {
    /** A channel that had started ended with an error (its packet path threw). */
    readonly onFailed: (id: ChannelId, message: string) => void;
  },
) =>
  Effect.gen(function* () {
    // Work at the end of a turn that fails is logged through this thread's runtime, as its channels' lines.
    reportThrough(yield* Effect.runtime<never>());
    const fibers = yield* FiberMap.make<ChannelId, void, never>();
    const running = new Map<ChannelId, RunningChannel>();

    const start = (spec: ChannelSpec, handover?: Handover, handedOver?: SharedArrayBuffer) =>
      Effect.gen(function* () {
        if (running.has(spec.id)) return;
        const ready = yield* Deferred.make<void, ChannelErrorType>();
        const life = Effect.gen(function* () {
          const channel = yield* startChannel(
            spec,
            handover === undefined ? options : { ...options, handover, handedOver },
          );
          running.set(spec.id, channel);
          yield* Effect.addFinalizer(() => Effect.sync(() => running.delete(spec.id)));
          yield* Deferred.succeed(ready, undefined);
          return yield* channel.crashed;
        }).pipe(
          Effect.scoped,
          Effect.onExit((exit) =>
            Effect.gen(function* () {
              if (Exit.isSuccess(exit)) return;
              if (Cause.isInterruptedOnly(exit.cause)) {
                const stopped = "the channel was stopped while it was starting";
                yield* Deferred.fail(ready, new ChannelError({ reason: "not_running", message: stopped }));
                return;
              }
              const error = startFailure(exit.cause);
              // Before `ready`, the caller of start reports the failure; after it, nobody waits: say it here.
              if (!(yield* Deferred.fail(ready, error))) options.onFailed(spec.id, error.message);
            }),
          ),
          Effect.catchAllCause(() => Effect.void),
        );
        yield* FiberMap.run(fibers, spec.id, life, { onlyIfMissing: true });
        yield* Deferred.await(ready);
      });

    /** Whether there was anything to stop. */
    const stop = (id: ChannelId) =>
      Effect.gen(function* () {
        if (!running.has(id) && !(yield* FiberMap.has(fibers, id))) return false;
        yield* FiberMap.remove(fibers, id);
        return true;
      });

    return {
      start,
      stop,
      get: (id) => running.get(id),
      with: (id, use) =>
        Effect.suspend(() => {
          const channel = running.get(id);
          return channel === undefined ? Effect.fail(notRunning(id)) : use(channel);
        }),
      running: () => [...running.keys()],
    } satisfies ChannelHost;
  });
