/**
 * The channel supervisor: starts, changes and stops channels, and answers for them — state, counters,
 * status, cues, captures, HLS. Where the channels run is its own business:
 *
 * - on forwarding workers (the default: `DISTRIBUTARY_WORKERS`, one per core, each started once the others are
 *   busy): each channel's whole fiber tree runs on one (workers/pool.ts), and the main thread keeps the API,
 *   pages, WebSocket and metrics; the workers ask for a higher priority (nice −10, or real-time when told:
 *   `DISTRIBUTARY_FORWARDING_PRIORITY`, runtime/threads/priority.ts), so a turn that is due runs soon;
 * - in this thread (`DISTRIBUTARY_WORKERS=0`, and whenever a test sets a ChannelFaults seam, whose functions
 *   cannot cross threads): channel-host.ts, beside the API.
 *
 * Failure stays inside the channel either way: a start that fails fails with its reason; a channel whose
 * packet path throws later is stopped with status `error` and the message, and the others go on. Both publish
 * `channel_failed` on the event bus.
 */
import * as Context from "effect/Context";
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import * as Option from "effect/Option";
import type { ChannelId } from "../../domain/base/ids.ts";
import {
  batchMs,
  batchMsRemuxed,
  forwardingPriority,
  hlsPushAllowPrivate,
  ristSrpDir,
  workerBusyPercent,
  workerCount,
  workerMovePercent,
} from "../config/settings.ts";
import { EventBus } from "../events/event-bus.ts";
import { adoptionFor, letGo, splitForHandOver } from "../handover/peer.ts";
import type { HlsServed } from "../outputs/hls.ts";
import { recordingsRoot } from "../outputs/recordings.ts";
import { continueRtp, rtpStates } from "../outputs/rtp.ts";
import type { OutputOptions } from "../outputs/writer.ts";
import { closeLibSrt } from "../runtime/ffi/libsrt.ts";
import { makeMoveWord, oldCopyDone } from "../runtime/threads/move-word.ts";

import { makeChannelHost } from "./channel-host.ts";
import type { ChannelOptions, ChannelSpec, ChannelsService, HlsSource } from "./channel-types.ts";
import { ChannelError, ChannelFaults, PreviewSettings } from "./channel-types.ts";
import { makeWorkerChannels } from "./workers/pool.ts";

/** Queue sizes and reconnect policy for every output; tests shorten the backoff through it. */
export class OutputDefaults extends Context.Reference<OutputDefaults>()("distributary/OutputDefaults", {
  defaultValue: (): OutputOptions => ({}),
}) {}

const servedAsync = (served: HlsServed): HlsSource => ({
  playlist: () => Promise.resolve(served.playlist()),
  segment: (name) => Promise.resolve(served.segment(name)),
});

/** Every channel in this thread. */
const makeLocalChannels = (options: Omit<ChannelOptions, "emit" | "handover">) =>
  Effect.gen(function* () {
    const bus = yield* EventBus;
    const failures = new Map<ChannelId, string>();
    // Runs after the host's channels have stopped (finalizers run last first): libsrt let go in order.
    yield* Effect.addFinalizer(() => Effect.promise(closeLibSrt));
    const host = yield* makeChannelHost({
      ...options,
      emit: bus.emit,
      onFailed: (id, message) => {
        failures.set(id, message);
        bus.emit({ type: "channel_failed", channel: id, message });
      },
    });

    return {
      start: Effect.fn("Channels.start")(function* (spec: ChannelSpec) {
        if (host.get(spec.id) !== undefined) return;
        // An upgrade's new process takes the channel from the old one (handover/peer.ts).
        const adoption = yield* Effect.promise(() => adoptionFor(spec.id));
        const handedOver = adoption === null ? undefined : makeMoveWord();
        const split = splitForHandOver(spec);
        yield* host.start(adoption === null ? spec : split.now, adoption?.senders, handedOver).pipe(
          Effect.tapError((error) =>
            Effect.sync(() => {
              adoption?.abandon();
              failures.set(spec.id, error.message);
              bus.emit({ type: "channel_failed", channel: spec.id, message: error.message });
            }),
          ),
        );
        failures.delete(spec.id);
        bus.emit({ type: "channel_started", channel: spec.id });
        if (adoption === null || handedOver === undefined) return;
        const rtp = yield* letGo(adoption, spec.id).pipe(Effect.tapError(() => host.stop(spec.id)));
        continueRtp(spec.id, rtp);
        oldCopyDone(handedOver);
        for (const output of split.after) yield* host.with(spec.id, (channel) => channel.applyOutput(output));
        yield* host.with(spec.id, (channel) => channel.settle);
      }),
      stop: Effect.fn("Channels.stop")(function* (id: ChannelId) {
        failures.delete(id);
        if (yield* host.stop(id)) bus.emit({ type: "channel_stopped", channel: id });
      }),
      applyOutput: (channelId, output) => host.with(channelId, (channel) => channel.applyOutput(output)),
      reconfigure: (spec) => host.with(spec.id, (channel) => channel.reconfigure(spec)),
      removeOutput: (channelId, outputId) =>
        host.with(channelId, (channel) => channel.removeOutput(outputId)),
      switchInput: (channelId, role) => host.with(channelId, (channel) => channel.switchInput(role)),
      insertCue: (channelId, section, program, by) =>
        host.with(channelId, (channel) => channel.insertCue(section, program, by)),
      state: (id) => (host.get(id) !== undefined ? "running" : failures.has(id) ? "error" : "stopped"),
      lastError: (id) => failures.get(id) ?? null,
      sync: Effect.void,
      summary: (id) => host.get(id)?.summary() ?? null,
      traffic: (id) => host.get(id)?.traffic() ?? null,
      status: (id) => Effect.sync(() => host.get(id)?.status() ?? null),
      cueCounts: (id) => host.get(id)?.watcher.counts() ?? null,
      cues: (id) => host.get(id)?.watcher.recent() ?? [],
      capture: (id, ms, maxBytes) =>
        Effect.suspend(() => host.get(id)?.capture(ms, maxBytes) ?? Effect.succeed(new Uint8Array(0))),
      hls: (id, outputId) => {
        const served = host.get(id)?.hls(outputId) ?? null;
        return served === null ? null : servedAsync(served);
      },
      preview: (id) =>
        Effect.suspend(() => {
          const channel = host.get(id);
          if (channel === undefined) return Effect.succeed(null);
          return Effect.map(channel.preview, (served) => (served === null ? null : servedAsync(served)));
        }),
      previewActive: (id) => host.get(id)?.previewActive() ?? false,
      running: host.running,
      workers: () => [],
      placement: () => null,
      killWorker: () => Effect.void,
      handOff: (id) =>
        host.with(id, (channel) =>
          Effect.succeed({
            spec: channel.spec(),
            senders: channel.senders(),
            letGo: channel.release(500).pipe(
              Effect.zipRight(host.stop(id)),
              Effect.map(() =>
                rtpStates(
                  id,
                  channel.spec().outputs.map((output) => output.id),
                ),
              ),
            ),
          }),
        ),
      fleetCut: (id) => host.with(id, (channel) => Effect.promise(() => channel.fleetCut())),
      fleetResume: (id, how) => host.with(id, (channel) => Effect.sync(() => channel.fleetResume(how))),
      fleetResumed: (id, withinMs) =>
        host.with(id, (channel) => Effect.promise(() => channel.fleetResumed(withinMs))),
      move: () =>
        Effect.fail(
          new ChannelError({
            reason: "not_running",
            message: "forwarding runs in the main thread (DISTRIBUTARY_WORKERS=0)",
          }),
        ),
    } satisfies ChannelsService;
  });

export class Channels extends Effect.Service<Channels>()("distributary/Channels", {
  scoped: Effect.gen(function* () {
    // Checked here, where a wrong value stops the start with its reason; every forwarding thread reads it.
    yield* Effect.orDie(batchMs);
    yield* Effect.orDie(batchMsRemuxed);
    // Recordings are refused outside the recordings directory when they run, as when they are saved.
    const outputs: OutputOptions = {
      pushAddresses: { allowPrivate: yield* Effect.orDie(hlsPushAllowPrivate) },
      ...(yield* OutputDefaults),
      recordingsRoot: yield* recordingsRoot,
      ristSrpDir: Option.getOrNull(yield* Effect.orDie(ristSrpDir)),
    };
    const faults = yield* ChannelFaults;
    const previewIdleMs = (yield* PreviewSettings).idleMs;
    const workers = yield* Effect.orDie(workerCount);
    const priority = yield* Effect.orDie(forwardingPriority);
    const busyPercent = yield* Effect.orDie(workerBusyPercent);
    const movePercent = Option.getOrElse(yield* Effect.orDie(workerMovePercent), () => busyPercent);
    const seams = Object.keys(faults).length > 0;
    const service: ChannelsService =
      workers === 0 || seams
        ? yield* makeLocalChannels({ outputs, faults, previewIdleMs })
        : yield* makeWorkerChannels(workers, { outputs, previewIdleMs, priority, busyPercent, movePercent });
    return service;
  }),
}) {
  /** The supervisor with an event bus of its own: for tests and tools that run channels without the service. */
  static readonly Test = Channels.Default.pipe(Layer.provideMerge(EventBus.Default));
}
