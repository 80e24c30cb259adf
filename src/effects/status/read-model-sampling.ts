/**
 * What the read model samples at each tick (read-model.ts): the bitrates, growing counters turned into events
 * (`output_queue_drops`, `remux_frames_dropped`, `rist_auth_failed`), the outputs' sparklines; and the caches
 * of what a channel's view works out once per stored object.
 */
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import { channelInputs } from "../../domain/channel/channel-checks.ts";
import { resolveRedundancy } from "../../domain/channel/redundancy.ts";
import { REMUX_DROPS_EVENT_MS, RIST_AUTH_EVENT_MS } from "../../domain/events/events.ts";
import { maskUrl } from "../../domain/url/url.ts";
import type { ChannelView } from "../../domain/views/views.ts";
import type { Channels } from "../channel/channels.ts";
import type { ConfigState } from "../config/config-state.ts";
import type { Placement } from "../config/placement.ts";
import type { EventBus } from "../events/event-bus.ts";
import type { InputTraffic } from "../ingest/input-types.ts";
import type { OutputStatus } from "../outputs/writer.ts";
import { inputKey, outputKey } from "./projections.ts";

/** How many ticks of bitrate a sparkline shows. */
const HISTORY = 30;

interface Rate {
  bytes: number;
  at: number;
  bps: number;
}

/** Each input's and output's bitrate over the last tick, by key. */
export const makeRates = () => {
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
  return { sampleRate, bitrate, keys: () => rates.keys(), forget: (key: string) => rates.delete(key) };
};
export type Rates = ReturnType<typeof makeRates>;

/** A URL masked and a channel's redundancy resolved, once per stored object. */
export const makeViewCaches = () => {
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
  return { maskOnce, redundancyOf };
};

/** The counters of the running channels read, and what grew turned into events (at most one a tick each). */
export const makeSampler = (channels: Channels, bus: EventBus, rates: Rates) => {
  const { sampleRate } = rates;
  const drops = new Map<string, number>();
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
    for (const key of [...rates.keys()]) if (!live.has(key)) rates.forget(key);
    for (const key of drops.keys()) if (!live.has(key)) drops.delete(key);
    for (const key of remuxTold.keys()) if (!live.has(key)) remuxTold.delete(key);
    for (const key of srpTold.keys()) if (!live.has(key)) srpTold.delete(key);
  });
  return sample;
};

/**
 * The last HISTORY bitrates of every output shown as on air (here, or by its holder in a fleet), one a tick:
 * the pages' sparklines.
 */
export const makeHistories = (
  configs: ConfigState,
  placement: Placement,
  channels: Channels,
  bitrate: (key: string) => number,
) => {
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
  const history = (channel: string, output: string): ReadonlyArray<number> =>
    histories.get(outputKey(channel, output)) ?? [];
  return { record, history };
};
