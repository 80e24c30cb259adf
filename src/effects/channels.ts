/**
 * The channel supervisor: one FiberMap entry per running channel, each holding that channel's whole fiber
 * tree in its own scope. Stopping a channel interrupts its entry: every output writer is interrupted and every
 * child process killed and reaped before `stop` returns. Closing the service stops every channel.
 */
import { Context, Deferred, Effect, FiberMap } from "effect";
import {
  ChannelError,
  type ChannelError as ChannelErrorType,
  type ChannelRuntimeStatus,
  type ChannelSpec,
  type InputRole,
  type OutputSpec,
  type RedundancyEvent,
  type RunningChannel,
  startChannel,
} from "./channel.ts";
import type { OutputOptions } from "./outputs/writer.ts";
import type { CueRecord } from "./scte35-watcher.ts";

/** Queue sizes and reconnect policy for every output; tests shorten the backoff through it. */
export class OutputDefaults extends Context.Reference<OutputDefaults>()("distributary/OutputDefaults", {
  defaultValue: (): OutputOptions => ({}),
}) {}

export type ChannelState = "running" | "stopped" | "error";

export class Channels extends Effect.Service<Channels>()("distributary/Channels", {
  scoped: Effect.gen(function* () {
    const outputOptions = yield* OutputDefaults;
    const fibers = yield* FiberMap.make<string, never, ChannelErrorType>();
    const running = new Map<string, RunningChannel>();
    const failures = new Map<string, string>();
    const listeners = new Set<(channelId: string, event: RedundancyEvent) => void>();

    const notRunning = (id: string) =>
      new ChannelError({ reason: "not_running", message: `channel ${id} is not running` });

    const start = Effect.fn("Channels.start")(function* (spec: ChannelSpec) {
      if (running.has(spec.id)) return;
      const ready = yield* Deferred.make<void, ChannelErrorType>();
      const life = Effect.gen(function* () {
        const channel = yield* startChannel(spec, outputOptions);
        running.set(spec.id, channel);
        const unsubscribe = channel.subscribe((event) => {
          for (const listener of listeners) listener(spec.id, event);
        });
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            unsubscribe();
            running.delete(spec.id);
          }),
        );
        yield* Deferred.succeed(ready, undefined);
        return yield* Effect.never;
      }).pipe(
        Effect.scoped,
        Effect.tapError((error) => Deferred.fail(ready, error)),
      );
      yield* FiberMap.run(fibers, spec.id, life, { onlyIfMissing: true });
      yield* Deferred.await(ready).pipe(
        Effect.tapError((error) => Effect.sync(() => failures.set(spec.id, error.message))),
      );
      failures.delete(spec.id);
      yield* Effect.logInfo(`channel ${spec.id} (${spec.name}) started`);
    });

    const stop = Effect.fn("Channels.stop")(function* (id: string) {
      failures.delete(id);
      if (!(yield* FiberMap.has(fibers, id))) return;
      yield* FiberMap.remove(fibers, id);
      yield* Effect.logInfo(`channel ${id} stopped`);
    });

    const withChannel = <A>(
      id: string,
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
      applyOutput: (channelId: string, output: OutputSpec) =>
        withChannel(channelId, (channel) => channel.applyOutput(output)),
      removeOutput: (channelId: string, outputId: string) =>
        withChannel(channelId, (channel) => channel.removeOutput(outputId)),
      /** An operator's input switch, at once; fails unless the channel runs in failover mode with a backup. */
      switchInput: (channelId: string, role: InputRole) =>
        withChannel(channelId, (channel) => channel.switchInput(role)),
      /** Recent input switches and losses of a running channel, oldest first. */
      events: (id: string): ReadonlyArray<RedundancyEvent> => running.get(id)?.events() ?? [],
      /** Calls `listener` with every channel's redundancy events; returns the unsubscribe function. */
      subscribe: (listener: (channelId: string, event: RedundancyEvent) => void): (() => void) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      state: (id: string): ChannelState =>
        running.has(id) ? "running" : failures.has(id) ? "error" : "stopped",
      lastError: (id: string): string | null => failures.get(id) ?? null,
      status: (id: string): ChannelRuntimeStatus | null => running.get(id)?.status() ?? null,
      cues: (id: string): ReadonlyArray<CueRecord> => running.get(id)?.watcher.recent() ?? [],
      running: (): ReadonlyArray<string> => [...running.keys()],
    } as const;
  }),
}) {}
