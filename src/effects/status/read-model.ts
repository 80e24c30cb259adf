/**
 * The read model: the one owner of channel status. Once per tick (a second) it samples every channel's
 * counters (no PID tables), computes bitrates, and publishes one immutable `StatusSnapshot` that the REST
 * API, the WebSocket, the pages and `/metrics` all read; it also re-publishes right after a change and after
 * events that change what a person sees (a switch, an output's state). The detail of one channel — PID
 * tables, full TR 101 290, merge and FEC counters, recent redundancy events — is built only when asked for.
 *
 * It also turns growing queue-drop counters into `output_queue_drops` events, at most one per output a tick.
 */
import { Effect, Either, Schedule, Stream, SubscriptionRef } from "effect";
import type { CoreCounters } from "../../core/packet-core.ts";
import type { ChannelConfig, OutputConfig } from "../../domain/channel.ts";
import type { ControlError } from "../../domain/errors.ts";
import type { ChannelEventType } from "../../domain/events.ts";
import type { ChannelId } from "../../domain/ids.ts";
import { resolveRedundancy } from "../../domain/redundancy.ts";
import { outputStatusOf } from "../../domain/states.ts";
import { channelInputs } from "../../domain/rules.ts";
import { maskUrl } from "../../domain/url.ts";
import type {
  ChannelStats,
  ChannelView,
  InputSummary,
  OutputView,
  RejectedView,
  StatusSnapshot,
} from "../../domain/views.ts";
import type { ChannelRuntimeSummary, OutputEntryStatus } from "../channel/channel.ts";
import { Channels } from "../channel/channels.ts";
import type { CueCounts } from "../channel/scte35-watcher.ts";
import { ConfigState } from "../config/config-state.ts";
import { maskKnownSecrets } from "../config/secrets.ts";
import { EventBus } from "../events/event-bus.ts";
import { CueHistory } from "./cue-history.ts";

export const READ_MODEL_TICK = "1 second";

/** Events after which the snapshot is re-published at once rather than at the next tick. */
const VISIBLE: ReadonlySet<ChannelEventType> = new Set<ChannelEventType>([
  "channel_started",
  "channel_stopped",
  "channel_failed",
  "input_lost",
  "input_restored",
  "input_switched",
  "output_state",
  "output_reconnect",
]);

interface Rate {
  bytes: number;
  at: number;
  bps: number;
}

const outputState = (
  output: OutputConfig,
  running: boolean,
  runtime: OutputEntryStatus | undefined,
): OutputView["state"] => {
  if (!output.enabled) return "disabled";
  if (!running) return "stopped";
  return runtime?.state ?? "starting";
};

const rejectedView = (core: CoreCounters): RejectedView => ({
  not_ts: core.rejected.notTs,
  other_kind: core.rejected.otherKind,
  foreign_ssrc: core.rejected.foreignSsrc,
  payload_type: core.rejected.payloadType,
  sender_not_allowed: core.rejected.senderNotAllowed,
  own_output: core.rejected.ownOutput,
});

const seconds = (ms: number) => Math.round(ms / 100) / 10;

const noCues: ChannelView["cues"] = {
  total: 0,
  last_at: null,
  last: null,
  by_command: {},
  by_segmentation_type: {},
};

const cueSummary = (counts: CueCounts | null): ChannelView["cues"] => {
  if (counts === null) return noCues;
  return {
    total: counts.total,
    last_at: counts.last === null ? null : new Date(counts.last.at).toISOString(),
    last: counts.last === null ? null : { command: counts.last.command, summary: counts.last.summary },
    by_command: Object.fromEntries(counts.byCommand),
    by_segmentation_type: Object.fromEntries(
      [...counts.bySegmentationType].map(([type, count]) => [String(type), count]),
    ),
  };
};

export class ReadModel extends Effect.Service<ReadModel>()("distributary/ReadModel", {
  scoped: Effect.gen(function* () {
    const channels = yield* Channels;
    const configs = yield* ConfigState;
    const bus = yield* EventBus;
    const cueHistory = yield* CueHistory;

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
        resolved = Either.getOrElse(
          resolveRedundancy(channel.redundancy, channelInputs(channel)),
          () => null,
        );
        redundancies.set(channel, resolved);
      }
      return resolved;
    };

    const viewOutput = (
      channelId: ChannelId,
      output: OutputConfig,
      runtime: { readonly outputs: ReadonlyArray<OutputEntryStatus> } | null,
    ): OutputView => {
      const live = runtime?.outputs.find((candidate) => candidate.id === output.id);
      const state = outputState(output, runtime != null, live);
      return {
        id: output.id,
        name: output.name,
        protocol: output.protocol,
        url: maskOnce(output.url),
        enabled: output.enabled,
        status: outputStatusOf[state],
        state,
        uptime: live === undefined ? 0 : seconds(live.uptimeMs),
        error_count: live?.errors ?? 0,
        last_error: live?.lastError == null ? null : maskKnownSecrets(live.lastError),
        bytes_sent: live?.bytesSent ?? 0,
        packets_sent: live?.packetsSent ?? 0,
        bitrate_bps: bitrate(`${channelId}/output/${output.id}`),
        reconnects: live?.reconnects ?? 0,
        queue_drops: live?.queueDrops ?? 0,
        srt:
          live?.srt == null
            ? null
            : {
                rtt_ms: live.srt.rttMs,
                retransmits: live.srt.retransmits,
                loss_packets: live.srt.lossPackets,
                dropped_packets: live.srt.droppedPackets,
                send_rate_mbps: live.srt.sendRateMbps,
                flight_size: live.srt.flightSize,
                send_buffer_ms: live.srt.sendBufferMs,
                receivers: live.srt.peers.length,
                peers: live.srt.peers.map((peer) => ({
                  peer: peer.peer,
                  stream_id: peer.streamId === null ? null : maskKnownSecrets(peer.streamId),
                  connected_at: new Date(peer.connectedAt).toISOString(),
                  rtt_ms: peer.rttMs,
                  send_rate_mbps: peer.sendRateMbps,
                  bandwidth_mbps: peer.bandwidthMbps,
                  retransmits: peer.retransmits,
                  loss_packets: peer.lossPackets,
                  dropped_packets: peer.droppedPackets,
                  flight_size: peer.flightSize,
                  send_buffer_packets: peer.sendBufferPackets,
                  send_buffer_ms: peer.sendBufferMs,
                })),
              },
      };
    };

    const viewInputs = (
      id: ChannelId,
      runtime: ChannelRuntimeSummary | null,
    ): ReadonlyArray<InputSummary> => {
      if (runtime === null) return [];
      const silentAfter = runtime.redundancy.failover_after_ms;
      return runtime.inputs.map((input) => ({
        role: input.role,
        ip: input.endpoint.ip,
        port: input.endpoint.port,
        active: input.active,
        receiving: input.lastPacketAgeMs !== null && input.lastPacketAgeMs < silentAfter,
        last_packet_age_ms: input.lastPacketAgeMs,
        bitrate_bps: bitrate(`${id}/input/${input.role}`),
        input_kind: input.core.inputKind,
        datagrams: input.core.datagrams,
        bytes: input.core.bytes,
        malformed: input.core.malformed,
        rejected: rejectedView(input.core),
        rtp:
          input.core.inputKind === "rtp"
            ? {
                lost: input.core.rtp.lost,
                duplicate: input.core.rtp.duplicate,
                reordered: input.core.rtp.reordered,
                restarts: input.core.rtp.restarts,
              }
            : null,
        continuity_errors: input.core.tr101290.ccErrors,
        tr101290: {
          sync_loss: input.core.tr101290.syncLoss,
          pat_error: input.core.tr101290.patErrors,
          cc_error: input.core.tr101290.ccErrors,
          pmt_error: input.core.tr101290.pmtErrors,
          pid_error: input.core.tr101290.pidErrors,
        },
        fec: input.fec,
        failovers: input.failovers,
      }));
    };

    const view = (channel: ChannelConfig, now: number): ChannelView => {
      const runtime = channels.summary(channel.id);
      const lastSwitch = runtime?.lastSwitch;
      return {
        id: channel.id,
        name: channel.name,
        rtp_ip: channel.rtp_ip,
        rtp_port: channel.rtp_port,
        backup_rtp_ip: channel.backup_rtp_ip,
        backup_rtp_port: channel.backup_rtp_port,
        rtp_allowed_sources: channel.rtp_allowed_sources ?? null,
        backup_rtp_allowed_sources: channel.backup_rtp_allowed_sources ?? null,
        input_url: channel.input_url == null ? null : maskOnce(channel.input_url),
        backup_input_url: channel.backup_input_url == null ? null : maskOnce(channel.backup_input_url),
        redundancy: redundancyOf(channel),
        status: channels.state(channel.id),
        desired: channel.desired,
        uptime: runtime === null ? 0 : seconds(now - runtime.startedAt),
        error: channels.lastError(channel.id),
        worker: channels.placement(channel.id),
        active_input: runtime?.inputs.find((input) => input.active)?.role ?? null,
        input: runtime?.input ?? null,
        input_bitrate_bps: bitrate(
          `${channel.id}/input/${runtime?.inputs.find((input) => input.active)?.role}`,
        ),
        failovers: runtime?.redundancy.failovers ?? 0,
        last_switch:
          lastSwitch != null
            ? {
                at: new Date(lastSwitch.at).toISOString(),
                from: lastSwitch.from,
                to: lastSwitch.to,
                reason: lastSwitch.reason,
              }
            : null,
        failovers_by_reason: runtime?.redundancy.failoversByReason ?? {
          silence: 0,
          operator: 0,
          primary_restored: 0,
        },
        inputs: viewInputs(channel.id, runtime),
        cues: cueSummary(channels.cueCounts(channel.id)),
        expect_cues_within_s: channel.expect_cues_within_s ?? null,
        created_at: channel.created_at,
        outputs: channel.outputs.map((output) => viewOutput(channel.id, output, runtime)),
      };
    };

    /** Bitrates over the last tick, and queue drops turned into events. */
    const sample = Effect.sync(() => {
      const now = Date.now();
      const live = new Set<string>();
      for (const id of channels.running()) {
        const summary = channels.summary(id);
        if (summary === null) continue;
        for (const input of summary.inputs) {
          const key = `${id}/input/${input.role}`;
          live.add(key);
          sampleRate(key, input.core.bytes, now);
        }
        for (const output of summary.outputs) {
          const key = `${id}/output/${output.id}`;
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
        }
      }
      for (const key of rates.keys()) if (!live.has(key)) rates.delete(key);
      for (const key of drops.keys()) if (!live.has(key)) drops.delete(key);
    });

    let seq = 0;
    const build = (): StatusSnapshot => {
      const at = Date.now();
      seq += 1;
      return { seq, at, channels: configs.current().channels.map((channel) => view(channel, at)) };
    };
    const ref = yield* SubscriptionRef.make<StatusSnapshot>(build());
    let latest = yield* SubscriptionRef.get(ref);
    const publish = Effect.suspend(() => {
      latest = build();
      return SubscriptionRef.set(ref, latest);
    });
    // The workers' counters first (one message each), so the snapshot shows them as they are now.
    const refresh = Effect.zipRight(channels.sync, publish);

    yield* Effect.forkScoped(
      Effect.repeat(
        Effect.zipRight(channels.sync, Effect.zipRight(sample, publish)),
        Schedule.spaced(READ_MODEL_TICK),
      ),
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
      if (json.seq !== latest.seq) {
        const text = JSON.stringify(latest.channels);
        json = { seq: latest.seq, text, message: encoder.encode(`{"channels":${text}}`) };
      }
      return json;
    };

    const find = (id: string): Effect.Effect<ChannelView, ControlError> =>
      Effect.flatMap(configs.find(id), (channel) =>
        Effect.succeed(latest.channels.find((c) => c.id === channel.id) ?? view(channel, Date.now())),
      );

    const detail = (id: string): Effect.Effect<ChannelStats, ControlError> =>
      Effect.gen(function* () {
        const channel = yield* configs.find(id);
        const runtime = yield* channels.status(channel.id);
        const summary = latest.channels.find((c) => c.id === channel.id) ?? view(channel, Date.now());
        return {
          id: channel.id,
          status: channels.state(channel.id),
          uptime: summary.uptime,
          inputs: (runtime?.inputs ?? []).map((input) => ({
            role: input.role,
            ip: input.endpoint.ip,
            port: input.endpoint.port,
            active: input.active,
            last_packet_age_ms: input.lastPacketAgeMs,
            bitrate_bps: bitrate(`${channel.id}/input/${input.role}`),
            input_kind: input.core.inputKind,
            datagrams: input.core.datagrams,
            packets: input.core.packets,
            bytes: input.core.bytes,
            malformed: input.core.malformed,
            rejected: rejectedView(input.core),
            rtp:
              input.core.inputKind === "rtp"
                ? {
                    payload_type: input.core.rtp.payloadType,
                    ssrc: input.core.rtp.ssrc,
                    lost: input.core.rtp.lost,
                    duplicate: input.core.rtp.duplicate,
                    reordered: input.core.rtp.reordered,
                    ssrc_changes: input.core.rtp.ssrcChanges,
                    restarts: input.core.rtp.restarts,
                  }
                : null,
            continuity_errors: input.core.tr101290.ccErrors,
            tr101290: { ...input.core.tr101290 },
            programs: input.core.programs.map((program) => ({
              program: program.program,
              pmt_pid: program.pmtPid,
              pcr_pid: program.pcrPid,
            })),
            pids: input.core.pids.map((pid) => ({
              pid: pid.pid,
              stream_type: pid.streamType,
              packets: pid.packets,
              bytes: pid.bytes,
              continuity_errors: pid.ccErrors,
              scte35: pid.scte35,
            })),
          })),
          outputs: channel.outputs.map((output) => viewOutput(channel.id, output, runtime)),
          redundancy_events: runtime?.redundancy.events ?? [],
        };
      });

    return {
      /** The latest snapshot; never built on the caller's behalf. */
      current: (): StatusSnapshot => latest,
      /**
       * The counters as they are now, bitrates as of the last tick, without publishing: for a Prometheus
       * scrape, whose rates need values read at scrape time rather than up to a tick old.
       */
      /** The workers' counters brought up to now, for `fresh` to read (one message per worker). */
      sync: channels.sync,
      fresh: (): StatusSnapshot => {
        const at = Date.now();
        return {
          seq: latest.seq,
          at,
          channels: configs.current().channels.map((channel) => view(channel, at)),
        };
      },
      /** The latest snapshot's channel list as JSON, serialised once per snapshot for every reader. */
      channelsJson: (): string => serialised().text,
      /**
       * `{"channels":[...]}` of the latest snapshot as UTF-8, encoded once per snapshot: the answer to
       * `GET /api/channels` and the WebSocket's snapshot message, however many clients ask.
       */
      channelsMessage: (): Uint8Array<ArrayBuffer> => serialised().message,
      /** The current snapshot, then every new one; a slow reader skips to the latest. */
      changes: ref.changes,
      /** Takes a new snapshot now: the commands call it so that their answer and readers see the change. */
      refresh,
      channel: find,
      output: (id: string, outputId: string): Effect.Effect<OutputView, ControlError> =>
        Effect.flatMap(configs.find(id), (channel) =>
          Effect.map(configs.findOutput(channel, outputId), (output) =>
            viewOutput(channel.id, output, channels.summary(channel.id)),
          ),
        ),
      detail,
      cues: (id: string) =>
        Effect.map(configs.find(id), (channel) =>
          cueHistory.recent(channel.id).map((cue) => ({ ...cue, at: new Date(cue.at).toISOString() })),
        ),
    } as const;
  }),
}) {}
