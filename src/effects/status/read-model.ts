/**
 * The read model: the one owner of channel status. Once per tick (a second) it samples every running
 * channel's counters (no PID tables) and computes bitrates and the outputs' sparklines. One immutable
 * `StatusSnapshot`, which the REST API, the WebSocket and the pages read, is built from them when somebody
 * reads it, at most once per tick, change, or event that changes what a person sees (a switch, an output's
 * state); while a WebSocket client is subscribed, each is published as it comes. `/metrics` reads the
 * counters as they are at the scrape. The detail of one channel — PID tables, full TR 101 290, merge and FEC
 * counters, recent redundancy events — is built only when asked for.
 *
 * It also turns growing queue-drop counters into `output_queue_drops` events, at most one per output a tick.
 */
import * as Effect from "effect/Effect";
import * as Stream from "effect/Stream";
import * as SubscriptionRef from "effect/SubscriptionRef";
import type { ControlError } from "../../domain/base/errors.ts";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import type { ChannelEventType } from "../../domain/events/events.ts";
import type { ChannelStats, ChannelView, OutputView, StatusSnapshot } from "../../domain/views/views.ts";
import { Channels } from "../channel/channels.ts";
import { ConfigState } from "../config/config-state.ts";
import { Placement } from "../config/placement.ts";
import { EventBus } from "../events/event-bus.ts";
import { MediaLive } from "../medialive/medialive.ts";
import { quietly } from "../runtime/timers/quiet-timer.ts";
import { CueHistory } from "./cue-history.ts";
import { type ViewContext, viewChannel, viewInputDetail, viewOutput } from "./projections.ts";
import { makeHistories, makeRates, makeSampler, makeViewCaches } from "./read-model-sampling.ts";

const READ_MODEL_TICK_MS = 1000;

/** Events after which the snapshot is re-published at once rather than at the next tick. */
const VISIBLE: ReadonlySet<ChannelEventType> = new Set<ChannelEventType>([
  "channel_started",
  "channel_stopped",
  "channel_failed",
  "channel_backing_off",
  "input_lost",
  "input_restored",
  "input_switched",
  "slate_on",
  "slate_off",
  "output_state",
  "output_reconnect",
]);

export class ReadModel extends Effect.Service<ReadModel>()("distributary/ReadModel", {
  scoped: Effect.gen(function* () {
    const channels = yield* Channels;
    const configs = yield* ConfigState;
    const bus = yield* EventBus;
    const cueHistory = yield* CueHistory;
    const medialive = yield* MediaLive;
    const placement = yield* Placement;

    const rates = makeRates();
    const { maskOnce, redundancyOf } = makeViewCaches();
    const sample = makeSampler(channels, bus, rates);
    const { record, history } = makeHistories(configs, placement, channels, rates.bitrate);

    const clock = yield* Effect.clock;
    const context: ViewContext = {
      bitrate: rates.bitrate,
      maskUrl: maskOnce,
      redundancy: redundancyOf,
      channels,
      medialive: medialive.view,
      scheduleNow: () => clock.unsafeCurrentTimeMillis(),
    };
    const local = (channel: ChannelConfig, now: number) => viewChannel(context, channel, now);
    /**
     * What people see of a channel: in a fleet, the live figures of a channel another node holds come from
     * that holder (fetched by the fleet's coordinator, a second old at most), and every channel says where it
     * runs. This node's own metrics (`fresh`) stay local, so that a fleet's scrapes never count a figure twice.
     */
    const view = (channel: ChannelConfig, now: number): ChannelView => {
      const fleet = placement.fleet(channel.id);
      if (fleet === undefined) return local(channel, now);
      return { ...(placement.remote(channel.id) ?? local(channel, now)), fleet };
    };

    // A snapshot is built when somebody reads it, once per tick or change at most: a node with hundreds of
    // channels and nobody looking builds none. While a page or a WebSocket client is subscribed, each is
    // published as it comes.
    let seq = 0;
    let latest: StatusSnapshot = { seq, at: Date.now(), channels: [] };
    let stale = true;
    const snapshot = (): StatusSnapshot => {
      if (stale) {
        stale = false;
        const at = Date.now();
        seq += 1;
        latest = { seq, at, channels: configs.current().channels.map((channel) => view(channel, at)) };
      }
      return latest;
    };
    const ref = yield* SubscriptionRef.make<StatusSnapshot>(snapshot());
    let subscribers = 0;
    const publish = Effect.suspend(() => {
      stale = true;
      return subscribers === 0 ? Effect.void : SubscriptionRef.set(ref, snapshot());
    });
    // The workers' counters first (one message each), so the snapshot shows them as they are now.
    const refresh = Effect.zipRight(channels.sync, publish).pipe(Effect.withSpan("ReadModel.refresh"));

    yield* quietly(
      READ_MODEL_TICK_MS,
      () => true,
      Effect.zipRight(channels.sync, Effect.zipRight(Effect.zipRight(sample, Effect.sync(record)), publish)),
    );
    // Events a person should see at once; a burst of them costs one snapshot.
    yield* Effect.forkScoped(
      bus.stream.pipe(
        Stream.filter((event) => VISIBLE.has(event.type)),
        Stream.debounce("20 millis"),
        Stream.runForEach(() => refresh),
      ),
    );

    let json: { readonly seq: number; readonly text: string; readonly message: Uint8Array<ArrayBuffer> } = {
      seq: -1,
      text: "",
      message: new Uint8Array(0),
    };
    const encoder = new TextEncoder();
    const serialised = () => {
      const { seq, channels } = snapshot();
      if (json.seq !== seq) {
        const text = JSON.stringify(channels);
        json = { seq, text, message: encoder.encode(`{"channels":${text}}`) };
      }
      return json;
    };

    const find = (id: string): Effect.Effect<ChannelView, ControlError> =>
      Effect.flatMap(configs.find(id), (channel) => Effect.succeed(view(channel, Date.now())));

    const detail = Effect.fn("ReadModel.detail")(function* (id: string) {
      const channel = yield* configs.find(id);
      const runtime = yield* channels.status(channel.id);
      const summary = view(channel, Date.now());
      const stats: ChannelStats = {
        id: channel.id,
        status: channels.state(channel.id),
        uptime: summary.uptime,
        inputs: (runtime?.inputs ?? []).map((input) =>
          viewInputDetail(context, channel.id, input, runtime?.redundancy.failover_after_ms ?? 0),
        ),
        outputs: channel.outputs.map((output) => viewOutput(context, channel, output, runtime)),
        redundancy_events: runtime?.redundancy.events ?? [],
      };
      return stats;
    });

    return {
      /** The snapshot of the last tick or change (built now if nobody asked for it since). */
      current: snapshot,
      /** The workers' counters brought up to now, for `fresh` to read (one message per worker). */
      sync: channels.sync,
      /**
       * The counters as they are now, bitrates as of the last tick, without publishing: for a Prometheus
       * scrape, whose rates need values read at scrape time rather than up to a tick old.
       */
      fresh: (): StatusSnapshot => {
        const at = Date.now();
        return {
          seq: latest.seq,
          at,
          channels: configs.current().channels.map((channel) => local(channel, at)),
        };
      },
      /** The views of the channels named, as they are now (in the configuration's order). */
      channelsOf: (ids: ReadonlySet<string>): ReadonlyArray<ChannelView> => {
        const at = Date.now();
        return configs
          .current()
          .channels.flatMap((channel) => (ids.has(channel.id) ? [view(channel, at)] : []));
      },
      /** The latest snapshot's channel list as JSON, serialised once per snapshot for every reader. */
      channelsJson: (): string => serialised().text,
      /**
       * `{"channels":[...]}` of the latest snapshot as UTF-8, encoded once per snapshot: the answer to
       * `GET /api/channels` and the WebSocket's snapshot message, however many clients ask.
       */
      channelsMessage: (): Uint8Array<ArrayBuffer> => serialised().message,
      /** The current snapshot, then every new one; a slow reader skips to the latest. */
      changes: Stream.unwrapScoped(
        Effect.gen(function* () {
          yield* Effect.acquireRelease(
            Effect.sync(() => (subscribers += 1)),
            () => Effect.sync(() => (subscribers -= 1)),
          );
          const now = snapshot();
          if ((yield* SubscriptionRef.get(ref)) !== now) yield* SubscriptionRef.set(ref, now);
          return ref.changes;
        }),
      ),
      /** The sparkline of an output: its bitrate at each of the last ticks, oldest first. */
      history,
      /** Takes a new snapshot now: the commands call it so that their answer and readers see the change. */
      refresh,
      channel: find,
      output: (id: string, outputId: string): Effect.Effect<OutputView, ControlError> =>
        Effect.flatMap(configs.find(id), (channel) =>
          Effect.map(configs.findOutput(channel, outputId), (output) =>
            viewOutput(context, channel, output, channels.summary(channel.id)),
          ),
        ),
      detail,
      cues: (id: string) =>
        Effect.map(configs.find(id), (channel) =>
          cueHistory.recent(channel.id).map((cue) => ({
            ...cue,
            at: new Date(cue.at).toISOString(),
            rtmp: cue.rtmp ?? [],
            origin: cue.origin ?? "input",
            withheld: cue.withheld ?? [],
          })),
        ),
    } as const;
  }),
}) {}
