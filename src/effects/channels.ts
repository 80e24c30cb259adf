/**
 * The channel supervisor: one FiberMap entry per running channel, each holding that channel's whole fiber
 * tree in its own scope. Stopping a channel interrupts its entry: every output writer is interrupted and every
 * child process killed and reaped before `stop` returns. Closing the service stops every channel.
 *
 * Failure stays inside the channel: a start that fails — with an error or a defect (a core that cannot
 * load) — fails that start with its reason; a channel whose packet path throws later is stopped with status
 * `error` and the message, and the other channels go on. Both publish `channel_failed` on the event bus.
 */

import { Cause, Context, Deferred, Effect, Exit, FiberMap, Layer } from "effect";
import type { ChannelId, OutputId } from "../domain/ids.ts";
import {
  ChannelError,
  type ChannelError as ChannelErrorType,
  ChannelFaults,
  type ChannelRuntimeStatus,
  type ChannelRuntimeSummary,
  type ChannelSpec,
  type InputRole,
  type OutputSpec,
  PreviewSettings,
  type RedundancyEvent,
  type RunningChannel,
  startChannel,
} from "./channel.ts";
import { EventBus } from "./event-bus.ts";
import type { HlsServed } from "./outputs/hls.ts";
import type { OutputOptions } from "./outputs/writer.ts";
import { recordingsRoot } from "./recordings.ts";
import type { CueRecord } from "./scte35-watcher.ts";

/** Queue sizes and reconnect policy for every output; tests shorten the backoff through it. */
export class OutputDefaults extends Context.Reference<OutputDefaults>()("distributary/OutputDefaults", {
  defaultValue: (): OutputOptions => ({}),
}) {}

export type ChannelState = "running" | "stopped" | "error";

/** A start that died (not failed) is still a start that failed: its reason in words, never a hang. */
const startFailure = (cause: Cause.Cause<ChannelErrorType>): ChannelErrorType => {
  const failure = Cause.failureOption(cause);
  if (failure._tag === "Some") return failure.value;
  const defect = Cause.squash(cause);
  const reason = defect instanceof Error ? defect.message : String(defect);
  return new ChannelError({ reason: "crashed", message: `internal error while starting: ${reason}` });
};

export class Channels extends Effect.Service<Channels>()("distributary/Channels", {
  scoped: Effect.gen(function* () {
    // Recordings are refused outside the recordings directory when they run, as when they are saved.
    const outputOptions = { ...(yield* OutputDefaults), recordingsRoot: yield* recordingsRoot };
    const bus = yield* EventBus;
    const faults = yield* ChannelFaults;
    const previewSettings = yield* PreviewSettings;
    const fibers = yield* FiberMap.make<ChannelId, void, never>();
    const running = new Map<ChannelId, RunningChannel>();
    const failures = new Map<ChannelId, string>();

    const notRunning = (id: string) =>
      new ChannelError({ reason: "not_running", message: `channel ${id} is not running` });

    const start = Effect.fn("Channels.start")(function* (spec: ChannelSpec) {
      if (running.has(spec.id)) return;
      const ready = yield* Deferred.make<void, ChannelErrorType>();
      const life = Effect.gen(function* () {
        const channel = yield* startChannel(spec, {
          outputs: outputOptions,
          emit: bus.emit,
          faults,
          previewIdleMs: previewSettings.idleMs,
        });
        running.set(spec.id, channel);
        yield* Effect.addFinalizer(() => Effect.sync(() => running.delete(spec.id)));
        yield* Deferred.succeed(ready, undefined);
        bus.emit({ type: "channel_started", channel: spec.id });
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
            // Before `ready`, the caller of start reports the failure; after it, nobody waits: record it here.
            if (!(yield* Deferred.fail(ready, error))) {
              failures.set(spec.id, error.message);
              bus.emit({ type: "channel_failed", channel: spec.id, message: error.message });
            }
          }),
        ),
        Effect.catchAllCause(() => Effect.void),
      );
      yield* FiberMap.run(fibers, spec.id, life, { onlyIfMissing: true });
      yield* Deferred.await(ready).pipe(
        Effect.tapError((error) =>
          Effect.sync(() => {
            failures.set(spec.id, error.message);
            bus.emit({ type: "channel_failed", channel: spec.id, message: error.message });
          }),
        ),
      );
      failures.delete(spec.id);
    });

    const stop = Effect.fn("Channels.stop")(function* (id: ChannelId) {
      failures.delete(id);
      if (!running.has(id) && !(yield* FiberMap.has(fibers, id))) return;
      yield* FiberMap.remove(fibers, id);
      bus.emit({ type: "channel_stopped", channel: id });
    });

    const withChannel = <A>(
      id: ChannelId,
      use: (channel: RunningChannel) => Effect.Effect<A, ChannelErrorType>,
    ) =>
      Effect.suspend(() => {
        const channel = running.get(id);
        return channel === undefined ? Effect.fail(notRunning(id)) : use(channel);
      });

    return {
      start,
      stop,
      /** Adds or replaces one output of a running channel; only that output restarts. */
      applyOutput: (channelId: ChannelId, output: OutputSpec) =>
        withChannel(channelId, (channel) => channel.applyOutput(output)),
      /** New inputs or redundancy settings for a running channel: its outputs go on (RunningChannel.reconfigure). */
      reconfigure: (spec: ChannelSpec) => withChannel(spec.id, (channel) => channel.reconfigure(spec)),
      removeOutput: (channelId: ChannelId, outputId: OutputId) =>
        withChannel(channelId, (channel) => channel.removeOutput(outputId)),
      /** An operator's input switch, at once; fails unless the channel runs in failover mode with a backup. */
      switchInput: (channelId: ChannelId, role: InputRole) =>
        withChannel(channelId, (channel) => channel.switchInput(role)),
      /** Recent input switches and losses of a running channel, oldest first. */
      events: (id: ChannelId): ReadonlyArray<RedundancyEvent> => running.get(id)?.events() ?? [],
      state: (id: ChannelId): ChannelState =>
        running.has(id) ? "running" : failures.has(id) ? "error" : "stopped",
      lastError: (id: ChannelId): string | null => failures.get(id) ?? null,
      /** Everything, PID tables included: for one channel at a time. */
      status: (id: ChannelId): ChannelRuntimeStatus | null => running.get(id)?.status() ?? null,
      /** Counters only: what the read model samples each tick. */
      summary: (id: ChannelId): ChannelRuntimeSummary | null => running.get(id)?.summary() ?? null,
      watcher: (id: ChannelId) => running.get(id)?.watcher ?? null,
      /** The TS a running channel forwards over the next `ms`; empty when it is not running. */
      capture: (id: ChannelId, ms: number, maxBytes: number): Effect.Effect<Uint8Array> =>
        Effect.suspend(() => running.get(id)?.capture(ms, maxBytes) ?? Effect.succeed(new Uint8Array(0))),
      /** A running channel's HLS output, as served at /hls/<channel>/<output>/; null when there is none. */
      hls: (id: ChannelId, outputId: string) => running.get(id)?.hls(outputId) ?? null,
      /** A running channel's preview rendition for the pages (started on demand); null when not running. */
      preview: (id: ChannelId): Effect.Effect<HlsServed | null> =>
        Effect.suspend(() => running.get(id)?.preview ?? Effect.succeed(null)),
      /** Whether a running channel is making its preview rendition now. */
      previewActive: (id: ChannelId): boolean => running.get(id)?.previewActive() ?? false,
      cues: (id: ChannelId): ReadonlyArray<CueRecord> => running.get(id)?.watcher.recent() ?? [],
      running: (): ReadonlyArray<ChannelId> => [...running.keys()],
    } as const;
  }),
}) {
  /** The supervisor with an event bus of its own: for tests and tools that run channels without the service. */
  static readonly Test = Channels.Default.pipe(Layer.provideMerge(EventBus.Default));
}
