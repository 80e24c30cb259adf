/**
 * The link to AWS MediaLive: for every channel whose configuration names a MediaLive channel (`medialive`),
 * a loop that describes it (watch.ts), the view the read model shows, start and stop for operators (audited,
 * each with its outcome as a `medialive_action` event), the start that follows an operator's start of our
 * channel (`start_with_channel`), the cost guard's stop (which stands down while a scheduled window is open),
 * the schedule's start and stop, and the egress addresses the inputs may trust. A MediaLive channel that no configuration names is never called, let alone started or stopped.
 */
import * as Clock from "effect/Clock";
import * as Effect from "effect/Effect";
import * as FiberMap from "effect/FiberMap";
import * as Queue from "effect/Queue";
import * as Stream from "effect/Stream";
import { ControlError } from "../../domain/base/errors.ts";
import type { ChannelId } from "../../domain/base/ids.ts";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import { holdGuard } from "../../domain/medialive/cost-guard.ts";
import {
  actionForbidden,
  checkDestinations,
  consoleUrl,
  IDLE_MINUTES_DEFAULT,
  type MediaLiveLink,
  type MediaLiveView,
} from "../../domain/medialive/medialive.ts";
import { Channels } from "../channel/channels.ts";
import { ConfigState } from "../config/config-state.ts";
import { Placement } from "../config/placement.ts";
import { audit, EventBus } from "../events/event-bus.ts";
import { quietly } from "../runtime/timers/quiet-timer.ts";
import { type MediaLiveFailure, makeMediaLiveCalls } from "./client.ts";
import { newWatched, record, type Watched, watch } from "./watch.ts";

type By = "operator" | "channel_start" | "cost_guard" | "schedule";

const linkKey = (link: MediaLiveLink) => JSON.stringify(link);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A failed call as the API answers it: the state's refusal is a conflict, everything else AWS's (502). */
const toControlError = (failure: MediaLiveFailure) =>
  new ControlError({
    reason: failure.kind === "conflict" ? "conflict" : "upstream",
    message: failure.message,
  });

/**
 * Whether the channel's outputs sent since the cost guard last looked: bytes grew on an enabled, connected one.
 */
const outputsSending = (channels: Channels) => (id: ChannelId) => (previous: ReadonlyMap<string, number>) => {
  const outputs = channels.state(id) === "running" ? (channels.summary(id)?.outputs ?? []) : [];
  const bytes = new Map(outputs.map((output) => [output.id, output.bytesSent]));
  // An output seen for the first time counts as sending while connected: the guard errs towards running.
  const active = outputs.some(
    (output) =>
      output.enabled && output.state === "connected" && output.bytesSent > (previous.get(output.id) ?? -1),
  );
  return { sending: active, bytes };
};

/** What the API and the pages show of a channel's link, from its loop's last reading (`entry`). */
const linkView = (
  entry: Watched | undefined,
  channel: ChannelConfig,
  now: number,
): MediaLiveView | undefined => {
  const link = channel.medialive;
  if (link == null) return undefined;
  const current = entry !== undefined && linkKey(entry.link) === linkKey(link) ? entry : undefined;
  const checked = current?.described == null ? null : checkDestinations(current.described, channel);
  const verdict = current?.verdict;
  return {
    channel_id: link.channel_id,
    region: link.region,
    console_url: consoleUrl(link),
    start_with_channel: link.start_with_channel ?? false,
    stop_when_idle: link.stop_when_idle ?? false,
    idle_minutes: link.idle_minutes ?? IDLE_MINUTES_DEFAULT,
    egress_allowlist: link.egress_allowlist ?? false,
    state: current?.state ?? null,
    pipelines_running: current?.pipelines ?? null,
    running_since: iso(current?.runningSince ?? null),
    running_s:
      current?.runningSince == null ? null : Math.max(0, Math.floor((now - current.runningSince) / 1000)),
    destinations: checked?.destinations ?? [],
    scte35_passthrough: checked?.scte35Passthrough ?? null,
    warnings: checked?.warnings ?? [],
    egress_endpoints: current?.egress ?? [],
    checked_at: iso(current?.checkedAt ?? null),
    error: current?.error ?? null,
    pending_stop:
      verdict?.kind === "pending" ? { at: new Date(verdict.stopAt).toISOString(), held: verdict.held } : null,
  };
};

export class MediaLive extends Effect.Service<MediaLive>()("distributary/MediaLive", {
  scoped: Effect.gen(function* () {
    const configs = yield* ConfigState;
    const channels = yield* Channels;
    const bus = yield* EventBus;
    const placement = yield* Placement;
    const calls = yield* makeMediaLiveCalls;
    const watchers = yield* FiberMap.make<ChannelId>();
    const watched = new Map<ChannelId, Watched>();
    /** Channels whose scheduled window is open (warming … ending): the cost guard stands down for them. */
    const windowOpen = new Set<ChannelId>();
    let sendersChanged: (id: ChannelId) => Effect.Effect<void> = () => Effect.void;

    const sending = outputsSending(channels);

    const emitAction = (id: ChannelId, action: "start" | "stop", by: By, ok: boolean, message: string) =>
      bus.emit({ type: "medialive_action", channel: id, action, by, ok, message });

    /**
     * Start or stop, checked against the state MediaLive says now; the outcome is an event either way. A state
     * in `already` (the schedule's start of a channel RUNNING) asks nothing and says nothing.
     */
    const act = (
      id: ChannelId,
      entry: Watched,
      action: "start" | "stop",
      by: By,
      reason = "",
      already: ReadonlyArray<string> = [],
    ) =>
      Effect.gen(function* () {
        const link = entry.link;
        const described = yield* Effect.mapError(calls.describe(link), toControlError);
        const now = yield* Clock.currentTimeMillis;
        const egressMoved = record(entry, now, described, {
          stateChanged: (state, previous) => stateEvent(id, state, previous),
        });
        if (egressMoved && link.egress_allowlist === true) yield* sendersChanged(id);
        if (entry.state !== null && already.includes(entry.state)) return;
        const forbidden = actionForbidden(action, entry.state);
        if (forbidden !== null)
          return yield* Effect.fail(new ControlError({ reason: "conflict", message: forbidden }));
        const state = yield* (action === "start" ? calls.start(link) : calls.stop(link)).pipe(
          Effect.mapError(toControlError),
        );
        if (state !== null && state !== entry.state) {
          stateEvent(id, state, entry.state);
          entry.state = state;
        }
        if (action === "start") entry.runningSince = now;
        emitAction(
          id,
          action,
          by,
          true,
          `channel ${link.channel_id}: ${action} asked${reason}; it is ${state ?? "changing"}`,
        );
        yield* Queue.offer(entry.wake, undefined);
      }).pipe(
        Effect.tapError((error) =>
          Effect.sync(() =>
            emitAction(
              id,
              action,
              by,
              false,
              `channel ${entry.link.channel_id}: ${action} failed: ${error.message}`,
            ),
          ),
        ),
      );

    const stateEvent = (id: ChannelId, state: string, previous: string | null) =>
      bus.emit({ type: "medialive_state", channel: id, state, previous });

    const watchChannel = (channel: ChannelConfig, entry: Watched) =>
      watch(entry, calls, {
        sending: sending(channel.id),
        guards: () => placement.holds(channel.id) && !windowOpen.has(channel.id),
        stateChanged: (state, previous) => stateEvent(channel.id, state, previous),
        egressChanged: () =>
          entry.link.egress_allowlist === true ? sendersChanged(channel.id) : Effect.void,
        guardStop: (minutes) =>
          Effect.ignore(
            act(
              channel.id,
              entry,
              "stop",
              "cost_guard",
              ` by the cost guard: no output sent for ${minutes} min`,
            ),
          ),
      });

    /** Loops for the channels that name a MediaLive channel now, and none for the others. */
    const reconcile = Effect.gen(function* () {
      const linked = new Map<ChannelId, ChannelConfig>();
      for (const channel of configs.current().channels)
        if (channel.medialive != null) linked.set(channel.id, channel);
      for (const [id, entry] of watched) {
        const link = linked.get(id)?.medialive;
        if (link != null && linkKey(link) === linkKey(entry.link)) continue;
        watched.delete(id);
        yield* FiberMap.remove(watchers, id);
        if (entry.link.egress_allowlist === true && entry.egress.length > 0) yield* sendersChanged(id);
      }
      for (const [id, channel] of linked) {
        if (watched.has(id) || channel.medialive == null) continue;
        const entry = yield* newWatched(channel.medialive);
        watched.set(id, entry);
        yield* FiberMap.run(watchers, id, watchChannel(channel, entry));
      }
    });
    // Only a changed configuration changes what is watched: a second after it changed, as a timer that costs
    // next to nothing while it has not.
    let reconciled: ReadonlyArray<ChannelConfig> | null = null;
    yield* quietly(
      1000,
      () => configs.current().channels !== reconciled,
      Effect.suspend(() => {
        const channels = configs.current().channels;
        return Effect.tap(reconcile, () => {
          reconciled = channels;
        });
      }),
    );

    /**
     * The linked channel's loop, after making sure it runs for the stored link. Without a link, a command is
     * a conflict (link it first) and a read finds nothing (404).
     */
    const entryOf = (id: ChannelId, unlinked: "conflict" | "not_found" = "conflict") =>
      Effect.gen(function* () {
        const channel = yield* configs.find(id);
        yield* reconcile;
        const entry = watched.get(channel.id);
        if (entry === undefined)
          return yield* new ControlError({
            reason: unlinked,
            message: `channel '${channel.name}' is not linked to a MediaLive channel: set its medialive field (channel_id and region) first`,
          });
        return [channel, entry] as const;
      });

    // An operator's start of our channel starts the MediaLive channel that feeds it, when the link says so.
    yield* Effect.forkScoped(
      bus.stream.pipe(
        Stream.filter((event) => event.type === "api_change" && event.action === "channel.start"),
        Stream.runForEach((event) =>
          Effect.gen(function* () {
            if (event.channel === null) return;
            const id = event.channel as ChannelId;
            const channel = configs.channel(id);
            if (channel?.medialive?.start_with_channel !== true) return;
            const [, entry] = yield* entryOf(id);
            if (entry.state === "RUNNING" || entry.state === "STARTING") return;
            yield* act(id, entry, "start", "channel_start", " with the channel");
          }).pipe(Effect.ignore),
        ),
      ),
    );

    const view = (channel: ChannelConfig, now: number) => linkView(watched.get(channel.id), channel, now);

    const command = (action: "start" | "stop") =>
      Effect.fn(`MediaLive.${action}`)(function* (id: ChannelId) {
        const [channel, entry] = yield* entryOf(id);
        yield* act(channel.id, entry, action, "operator", "");
        yield* audit(
          bus,
          `medialive.${action}`,
          `channel ${channel.id} (${channel.name}): MediaLive channel ${entry.link.channel_id} ${action} asked`,
          { channel: channel.id },
        );
        return view(channel, Date.now()) as MediaLiveView;
      });

    return {
      /** The link as the API and pages show it; undefined for a channel without one. */
      view,
      /** The view of one channel, for `GET /api/channels/{id}/medialive`. */
      find: (id: ChannelId) =>
        Effect.flatMap(entryOf(id, "not_found"), ([channel]) =>
          Effect.succeed(view(channel, Date.now()) as MediaLiveView),
        ),
      start: command("start"),
      stop: command("stop"),
      /**
       * The schedule's start or stop (its warming, its ending), checked against the state MediaLive says now
       * as an operator's is, but a start of a channel already RUNNING or STARTING (a stop of one IDLE or
       * STOPPING) is not asked again. A `medialive_action` event by `schedule` when it asked.
       */
      scheduled: Effect.fn("MediaLive.scheduled")(function* (id: ChannelId, action: "start" | "stop") {
        const [channel, entry] = yield* entryOf(id);
        const already = action === "start" ? ["RUNNING", "STARTING", "RECOVERING"] : ["IDLE", "STOPPING"];
        yield* act(channel.id, entry, action, "schedule", " by the schedule", already);
      }),
      /** The schedule's window for the channel is open (or closed): the cost guard stands down while it is. */
      setWindowOpen: (id: ChannelId, open: boolean): void => {
        if (open) windowOpen.add(id);
        else windowOpen.delete(id);
      },
      /** An operator keeps the channel running: the cost guard's pending stop is off until an output sends again. */
      keep: Effect.fn("MediaLive.keep")(function* (id: ChannelId) {
        const [channel, entry] = yield* entryOf(id);
        if (entry.verdict.kind !== "pending")
          return yield* new ControlError({
            reason: "conflict",
            message: `no stop of the MediaLive channel of '${channel.name}' is pending`,
          });
        entry.guard = holdGuard(entry.guard);
        entry.verdict = { ...entry.verdict, held: true };
        yield* audit(
          bus,
          "medialive.keep",
          `channel ${channel.id} (${channel.name}): the cost guard's stop of MediaLive channel ${entry.link.channel_id} called off`,
          { channel: channel.id },
        );
        return view(channel, Date.now()) as MediaLiveView;
      }),
      /** The senders a channel's inputs trust beside their own lists: MediaLive's egress, when the link says so. */
      trustedSenders: (id: ChannelId): ReadonlyArray<string> => {
        const entry = watched.get(id);
        return entry?.link.egress_allowlist === true ? entry.egress : [];
      },
      /** Who applies a channel's new trusted senders to its running inputs (wired in services.ts). */
      onSendersChanged: (apply: (id: ChannelId) => Effect.Effect<void>): void => {
        sendersChanged = apply;
      },
    } as const;
  }),
}) {}
