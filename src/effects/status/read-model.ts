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
import * as Either from "effect/Either";
import * as Stream from "effect/Stream";
import * as SubscriptionRef from "effect/SubscriptionRef";
import type { ChannelConfig } from "../../domain/channel.ts";
import { channelInputs } from "../../domain/channel-checks.ts";
import type { ControlError } from "../../domain/errors.ts";
import { type ChannelEventType, REMUX_DROPS_EVENT_MS, RIST_AUTH_EVENT_MS } from "../../domain/events.ts";
import { resolveRedundancy } from "../../domain/redundancy.ts";
import { maskUrl } from "../../domain/url.ts";
import type { ChannelStats, ChannelView, OutputView, StatusSnapshot } from "../../domain/views.ts";
import { Channels } from "../channel/channels.ts";
import { ConfigState } from "../config/config-state.ts";
import { Placement } from "../config/placement.ts";
import { EventBus } from "../events/event-bus.ts";
import type { InputTraffic } from "../ingest/input-types.ts";
import { MediaLive } from "../medialive/medialive.ts";
import type { OutputStatus } from "../outputs/writer.ts";
import { quietly } from "../runtime/quiet-timer.ts";
import { CueHistory } from "./cue-history.ts";
import {
  inputKey,
  outputKey,
  type ViewContext,
  viewChannel,
  viewInputDetail,
  viewOutput,
} from "./projections.ts";

const READ_MODEL_TICK_MS = 1000;
/** How many ticks of bitrate a sparkline shows. */
const HISTORY = 30;

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

interface Rate {
  bytes: number;
  at: number;
  bps: number;
}

export class ReadModel extends Effect.Service<ReadModel>()("distributary/ReadModel", {
  scoped: Effect.gen(function* () {
    const channels = yield* Channels;
    const configs = yield* ConfigState;
    const bus = yield* EventBus;
    const cueHistory = yield* CueHistory;
    const medialive = yield* MediaLive;
    const placement = yield* Placement;

    const rates = new Map<string, Rate>();
    const sampleRate = (key: string, bytes: number, now: number) => {
      const previous = rates.get(key);
      const bps =
        previous === undefined || now <= previous.at
          ? 0
          : Math.max(0, Math.round(((bytes - previous.bytes) * 8 * 1000) / (now - previous.at)));
      rates.set(key, { bytes, at: now, bps });
    };
    const bitrate = (key: string) => rates.get(key)?.bps ?? 0;
    const drops = new Map<string, number>();
    // Parsing a URL to mask it and resolving redundancy defaults cost more than the rest of a channel's view:
    // both depend only on the stored configuration, so they are worked out once per stored object.
    const masked = new Map<string, string>();
    const maskOnce = (url: string) => {
      let text = masked.get(url);
      if (text === undefined) {
        if (masked.size > 10_000) masked.clear();
        text = maskUrl(url);
        masked.set(url, text);
      }
      return text;
    };
    const redundancies = new WeakMap<ChannelConfig, ChannelView["redundancy"]>();
    const redundancyOf = (channel: ChannelConfig) => {
      let resolved = redundancies.get(channel);
      if (resolved === undefined) {
        resolved = Either.match(resolveRedundancy(channel.redundancy, channelInputs(channel)), {
          onLeft: () => null,
          // The rules as given, not as parsed: what a GET shows can be sent back as it is.
          onRight: (running) => ({
            ...running,
            health:
              running.health === null || channel.redundancy.health == null
                ? null
                : {
                    ...channel.redundancy.health,
                    clear_after_ms: running.health.clearAfterMs,
                    decode: running.health.decode === "all" ? "all_frames" : "key_frames",
                  },
          }),
        });
        redundancies.set(channel, resolved);
      }
      return resolved;
    };

    const clock = yield* Effect.clock;
    const context: ViewContext = {
      bitrate,
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

    /**
     * An RTMP output's remux drops since the last event told, as a `remux_frames_dropped` event: at most one
     * per output every REMUX_DROPS_EVENT_MS, so a stream corrupt for an hour makes a line every 10 s.
     */
    const remuxTold = new Map<
      string,
      { readonly at: number; readonly dropped: Readonly<Record<string, number>> }
    >();
    const remuxDrops = (
      key: string,
      channel: string,
      output: string,
      rtmp: NonNullable<OutputStatus["rtmp"]>,
      now: number,
    ) => {
      const told = remuxTold.get(key);
      if (told === undefined) {
        // Drops before this node first saw the output (a moved channel's) were told where they happened.
        remuxTold.set(key, { at: 0, dropped: rtmp.remuxDropped });
        return;
      }
      if (now - told.at < REMUX_DROPS_EVENT_MS) return;
      const reasons: Record<string, number> = {};
      let frames = 0;
      for (const [reason, count] of Object.entries(rtmp.remuxDropped)) {
        // Counts that went down belong to a new remux (the channel restarted): all of them are new.
        const before = told.dropped[reason] ?? 0;
        const more = count >= before ? count - before : count;
        if (more > 0) {
          reasons[reason] = more;
          frames += more;
        }
      }
      if (frames === 0) return;
      remuxTold.set(key, { at: now, dropped: rtmp.remuxDropped });
      bus.emit({
        type: "remux_frames_dropped",
        channel,
        output,
        frames,
        reasons,
        detail: rtmp.remuxLastDrop,
      });
    };

    /**
     * A RIST input's EAP-SRP refusals since the last event told, as a `rist_auth_failed` event: at most one per
     * input every RIST_AUTH_EVENT_MS, so a caller retrying with a wrong password makes a line a minute.
     */
    const srpTold = new Map<string, { readonly at: number; readonly refusals: number }>();
    const srpRefusals = (
      key: string,
      channel: string,
      input: InputTraffic & { readonly srp: NonNullable<InputTraffic["srp"]> },
      now: number,
    ) => {
      const told = srpTold.get(key) ?? { at: 0, refusals: 0 };
      // Counts that went down belong to a new link (the input restarted): all of them are new.
      const more =
        input.srp.refusals >= told.refusals ? input.srp.refusals - told.refusals : input.srp.refusals;
      if (more === 0 || now - told.at < RIST_AUTH_EVENT_MS) return;
      srpTold.set(key, { at: now, refusals: input.srp.refusals });
      const { user, unknown } = input.srp;
      const who = user === null ? "a caller" : `the caller '${user}'`;
      bus.emit({
        type: "rist_auth_failed",
        channel,
        input: input.role,
        refusals: more,
        user,
        reason: unknown ? "unknown_user" : "wrong_password",
        message: `RIST ${input.role} input: EAP-SRP turned ${who} away (${more} refusal${more === 1 ? "" : "s"} since the last such event): ${unknown ? "the name is not in the input's srpfile" : "its password was refused"}`,
      });
    };

    /** Bitrates over the last tick, and queue drops turned into events. */
    const sample = Effect.sync(() => {
      const now = Date.now();
      const live = new Set<string>();
      for (const id of channels.running()) {
        const traffic = channels.traffic(id);
        if (traffic === null) continue;
        for (const input of traffic.inputs) {
          const key = inputKey(id, input.role);
          live.add(key);
          sampleRate(key, input.bytes, now);
          if (input.srp !== undefined) srpRefusals(key, id, { ...input, srp: input.srp }, now);
        }
        for (const output of traffic.outputs) {
          const key = outputKey(id, output.id);
          live.add(key);
          sampleRate(key, output.bytesSent, now);
          const before = drops.get(key) ?? 0;
          drops.set(key, output.queueDrops);
          if (output.queueDrops > before) {
            bus.emit({
              type: "output_queue_drops",
              channel: id,
              output: output.id,
              packets: output.queueDrops - before,
            });
          }
          if (output.rtmp != null) remuxDrops(key, id, output.id, output.rtmp, now);
        }
      }
      for (const key of rates.keys()) if (!live.has(key)) rates.delete(key);
      for (const key of drops.keys()) if (!live.has(key)) drops.delete(key);
      for (const key of remuxTold.keys()) if (!live.has(key)) remuxTold.delete(key);
      for (const key of srpTold.keys()) if (!live.has(key)) srpTold.delete(key);
    });

    /**
     * The last HISTORY bitrates of every output shown as on air (here, or by its holder in a fleet), one a
     * tick: the pages' sparklines.
     */
    const histories = new Map<string, number[]>();
    const record = () => {
      const seen = new Set<string>();
      for (const channel of configs.current().channels) {
        const remote = placement.peekRemote(channel.id);
        if (remote === undefined && channels.state(channel.id) !== "running") continue;
        for (const output of channel.outputs) {
          const key = outputKey(channel.id, output.id);
          const bps =
            remote === undefined
              ? bitrate(key)
              : (remote.outputs.find((o) => o.id === output.id)?.bitrate_bps ?? 0);
          seen.add(key);
          const values = histories.get(key) ?? [];
          values.push(bps);
          if (values.length > HISTORY) values.shift();
          histories.set(key, values);
        }
      }
      for (const key of histories.keys()) if (!seen.has(key)) histories.delete(key);
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
      history: (channel: string, output: string): ReadonlyArray<number> =>
        histories.get(outputKey(channel, output)) ?? [],
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
