/**
 * How the stored configuration and a channel's runtime figures become what the API shows: one builder per
 * view, the detail of an input built as its summary plus the PID tables and full counters. The read model
 * calls these with what it keeps between ticks (bitrates, masked URLs, resolved redundancy).
 */

import type { CoreCounters } from "../../core/packet-core-snapshot.ts";
import type { ChannelId } from "../../domain/base/ids.ts";
import type { ChannelConfig, OutputConfig } from "../../domain/channel/channel.ts";
import { slateView } from "../../domain/channel/slate.ts";
import { outputStatusOf } from "../../domain/channel/states.ts";
import type { InputHealthView } from "../../domain/health/health-view.ts";
import type { MediaLiveView } from "../../domain/medialive/medialive.ts";
import { heldWords } from "../../domain/schedule/schedule-outputs.ts";
import type { ChannelView, OutputView, SlateView } from "../../domain/views/views.ts";
import type { InputStatsView, InputSummary, RejectedView } from "../../domain/views/views-input.ts";
import type {
  ChannelRuntimeSummary,
  ChannelsService,
  OutputEntryStatus,
  SlateStatus,
} from "../channel/channel-types.ts";
import type { CueCounts } from "../channel/scte35-watcher.ts";
import { maskKnownSecrets } from "../config/secrets.ts";
import type { InputHealthStatus } from "../ingest/input-health.ts";
import type { InputStatus, InputSummaryStatus } from "../ingest/input-types.ts";
import { ristInputView, ristPeerView } from "./rist-view.ts";

/** What the builders read beside the configuration and the runtime figures. */
export interface ViewContext {
  /** Bits per second over the last tick, by `inputKey` or `outputKey`. */
  readonly bitrate: (key: string) => number;
  readonly maskUrl: (url: string) => string;
  readonly redundancy: (channel: ChannelConfig) => ChannelView["redundancy"];
  readonly channels: Pick<ChannelsService, "summary" | "state" | "lastError" | "placement" | "cueCounts">;
  /** The linked MediaLive channel as last described; undefined when none is linked. */
  readonly medialive?: (channel: ChannelConfig, now: number) => MediaLiveView | undefined;
  /** The time the schedule's runner reads (the service's Effect clock), for its outputs' hold; default `now`. */
  readonly scheduleNow?: () => number;
}

export const inputKey = (channel: string, role: string) => `${channel}/input/${role}`;
export const outputKey = (channel: string, output: string) => `${channel}/output/${output}`;

const seconds = (ms: number) => Math.round(ms / 100) / 10;

const outputState = (
  output: OutputConfig,
  running: boolean,
  runtime: OutputEntryStatus | undefined,
): OutputView["state"] => {
  if (!output.enabled) return "disabled";
  if (!running) return "stopped";
  return runtime?.state ?? "starting";
};

export const viewOutput = (
  context: ViewContext,
  channel: ChannelConfig,
  output: OutputConfig,
  runtime: { readonly outputs: ReadonlyArray<OutputEntryStatus> } | null,
  now = Date.now(),
): OutputView => {
  const channelId = channel.id;
  const held = heldWords(channel, output, context.scheduleNow?.() ?? now);
  const live = runtime?.outputs.find((candidate) => candidate.id === output.id);
  const state = outputState(output, runtime != null, live);
  return {
    id: output.id,
    name: output.name,
    protocol: output.protocol,
    url: context.maskUrl(output.url),
    enabled: output.enabled,
    ...(held === null ? {} : { schedule: held }),
    status: outputStatusOf[state],
    state,
    uptime: live === undefined ? 0 : seconds(live.uptimeMs),
    error_count: live?.errors ?? 0,
    last_error: live?.lastError == null ? null : maskKnownSecrets(live.lastError),
    bytes_sent: live?.bytesSent ?? 0,
    packets_sent: live?.packetsSent ?? 0,
    bitrate_bps: context.bitrate(outputKey(channelId, output.id)),
    reconnects: live?.reconnects ?? 0,
    queue_drops: live?.queueDrops ?? 0,
    policy: output.policy ?? null,
    policy_status:
      live?.policy == null
        ? null
        : {
            problems: live.policy.problems,
            packets_dropped: live.policy.packetsDropped,
            cues_withheld: live.policy.cuesWithheld,
          },
    rtmp:
      live?.rtmp == null
        ? null
        : {
            frames_sent: live.rtmp.framesSent,
            frames_dropped: live.rtmp.framesDropped,
            cues: live.rtmp.cues,
            cues_sent: live.rtmp.cuesSent,
            acknowledged_bytes: live.rtmp.acknowledgedBytes,
            left_out: live.rtmp.leftOut,
            remux_dropped: live.rtmp.remuxDropped,
            remux_last_drop: live.rtmp.remuxLastDrop,
          },
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
    srt_refusals:
      live?.srtRefusals == null
        ? null
        : {
            refusals: live.srtRefusals.refusals,
            last_refusal:
              live.srtRefusals.lastRefusal === null
                ? null
                : {
                    caller: live.srtRefusals.lastRefusal.caller,
                    reason: live.srtRefusals.lastRefusal.reason,
                    code: live.srtRefusals.lastRefusal.code,
                    code_name: live.srtRefusals.lastRefusal.codeName,
                    message: live.srtRefusals.lastRefusal.message,
                    at: new Date(live.srtRefusals.lastRefusal.atEpochMs).toISOString(),
                  },
          },
    rist: live?.rist == null ? null : { peers: live.rist.map((peer) => ristPeerView(peer.peer, peer)) },
  };
};

const rejectedView = (core: CoreCounters): RejectedView => ({
  not_ts: core.rejected.notTs,
  other_kind: core.rejected.otherKind,
  foreign_ssrc: core.rejected.foreignSsrc,
  payload_type: core.rejected.payloadType,
  sender_not_allowed: core.rejected.senderNotAllowed,
  own_output: core.rejected.ownOutput,
});

/** An input's counters, as every channel's view carries them each tick. */
const viewInput = (
  context: ViewContext,
  channelId: ChannelId,
  input: InputSummaryStatus,
  silentAfterMs: number,
): InputSummary => ({
  role: input.role,
  ip: input.endpoint.ip,
  port: input.endpoint.port,
  active: input.active,
  receiving: input.lastPacketAgeMs !== null && input.lastPacketAgeMs < silentAfterMs,
  last_packet_age_ms: input.lastPacketAgeMs,
  bitrate_bps: context.bitrate(inputKey(channelId, input.role)),
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
    transport_error: input.core.tr101290.transportErrors,
    crc_error: input.core.tr101290.crcErrors,
    pcr_repetition_error: input.core.tr101290.pcrRepetitionErrors,
    pcr_discontinuity_indicator_error: input.core.tr101290.pcrDiscontinuityErrors,
    pts_error: input.core.tr101290.ptsErrors,
  },
  fec: input.fec === null ? null : { recovered: input.fec.recovered, unrecoverable: input.fec.unrecoverable },
  failovers: input.failovers,
  health: input.health === null ? null : viewHealth(input.health),
  rist:
    input.rist === null
      ? null
      : ristInputView(`${input.endpoint.ip}:${input.endpoint.port}`, input.rist, input.lastPacketAgeMs),
  rtmp:
    input.rtmp === null
      ? null
      : {
          listen: input.rtmp.listen,
          app: input.rtmp.app,
          publisher: input.rtmp.publisher,
          publishes: input.rtmp.publishes,
          refusals: input.rtmp.refusals,
          last_refusal:
            input.rtmp.lastRefusal === null
              ? null
              : {
                  reason: input.rtmp.lastRefusal.reason,
                  publisher: input.rtmp.lastRefusal.publisher,
                  message: input.rtmp.lastRefusal.message,
                  at: new Date(input.rtmp.lastRefusal.atEpochMs).toISOString(),
                },
          dropped_tags: input.rtmp.mux.dropped,
          drop_reason: input.rtmp.mux.dropReason,
          cues: input.rtmp.mux.cues,
        },
  srt:
    input.srt == null
      ? null
      : {
          listen: input.srt.listen,
          stream_id: input.srt.streamId,
          sender: input.srt.sender,
          refusals: input.srt.refusals,
          last_refusal:
            input.srt.lastRefusal === null
              ? null
              : {
                  caller: input.srt.lastRefusal.caller,
                  reason: input.srt.lastRefusal.reason,
                  code: input.srt.lastRefusal.code,
                  code_name: input.srt.lastRefusal.codeName,
                  message: input.srt.lastRefusal.message,
                  at: new Date(input.srt.lastRefusal.atEpochMs).toISOString(),
                },
        },
});

/** An input's health as the API shows it. */
const viewHealth = (health: InputHealthStatus): InputHealthView => ({
  state: health.state,
  since: new Date(health.sinceEpochMs).toISOString(),
  rules: health.rules,
  watcher:
    health.watcher === null
      ? null
      : {
          running: health.watcher.running,
          cpu_percent:
            health.watcher.cpuPercent === null ? null : Math.round(health.watcher.cpuPercent * 10) / 10,
          dropped_chunks: health.watcher.droppedChunks,
          restarts: health.watcher.restarts,
          gop_ms: health.watcher.gopMs === null ? null : Math.round(health.watcher.gopMs),
        },
});

/** One input in full: its summary, with every TR 101 290 counter, the RTP stream's identity and the PID tables. */
export const viewInputDetail = (
  context: ViewContext,
  channelId: ChannelId,
  input: InputStatus,
  silentAfterMs: number,
): InputStatsView => {
  const summary = viewInput(context, channelId, input, silentAfterMs);
  const { core } = input;
  return {
    ...summary,
    packets: core.packets,
    rtp:
      summary.rtp === null
        ? null
        : {
            ...summary.rtp,
            payload_type: core.rtp.payloadType,
            ssrc: core.rtp.ssrc,
            ssrc_changes: core.rtp.ssrcChanges,
          },
    tr101290: { ...core.tr101290 },
    programs: core.programs.map((program) => ({
      program: program.program,
      pmt_pid: program.pmtPid,
      pcr_pid: program.pcrPid,
    })),
    pids: core.pids.map((pid) => ({
      pid: pid.pid,
      stream_type: pid.streamType,
      packets: pid.packets,
      bytes: pid.bytes,
      continuity_errors: pid.ccErrors,
      scte35: pid.scte35,
    })),
  };
};

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

/** A channel as the snapshot shows it: the stored fields, masked, and the runtime's counters (no PID tables). */
export const viewChannel = (context: ViewContext, channel: ChannelConfig, now: number): ChannelView => {
  const { channels } = context;
  const runtime: ChannelRuntimeSummary | null = channels.summary(channel.id);
  const lastSwitch = runtime?.lastSwitch;
  const active = runtime?.inputs.find((input) => input.active)?.role;
  return {
    id: channel.id,
    name: channel.name,
    ...(channel.tags === undefined || channel.tags.length === 0 ? {} : { tags: channel.tags }),
    rtp_ip: channel.rtp_ip,
    rtp_port: channel.rtp_port,
    backup_rtp_ip: channel.backup_rtp_ip,
    backup_rtp_port: channel.backup_rtp_port,
    rtp_allowed_sources: channel.rtp_allowed_sources ?? null,
    backup_rtp_allowed_sources: channel.backup_rtp_allowed_sources ?? null,
    input_url: channel.input_url == null ? null : context.maskUrl(channel.input_url),
    backup_input_url: channel.backup_input_url == null ? null : context.maskUrl(channel.backup_input_url),
    redundancy: context.redundancy(channel),
    status: channels.state(channel.id),
    desired: channel.desired,
    uptime: runtime === null ? 0 : seconds(now - runtime.startedAt),
    error: channels.lastError(channel.id),
    worker: channels.placement(channel.id),
    active_input: active ?? null,
    input: runtime?.input ?? null,
    input_bitrate_bps: context.bitrate(inputKey(channel.id, `${active}`)),
    failovers: runtime?.redundancy.failovers ?? 0,
    last_switch:
      lastSwitch != null
        ? {
            at: new Date(lastSwitch.at).toISOString(),
            from: lastSwitch.from,
            to: lastSwitch.to,
            reason: lastSwitch.reason,
            ...(lastSwitch.rule === undefined ? {} : { rule: lastSwitch.rule }),
          }
        : null,
    failovers_by_reason: runtime?.redundancy.failoversByReason ?? {
      silence: 0,
      rule: 0,
      operator: 0,
      primary_restored: 0,
    },
    inputs:
      runtime === null
        ? []
        : runtime.inputs.map((input) =>
            viewInput(context, channel.id, input, runtime.redundancy.failover_after_ms),
          ),
    cues: cueSummary(channels.cueCounts(channel.id)),
    expect_cues_within_s: channel.expect_cues_within_s ?? null,
    slate: viewSlate(channel, runtime?.slate ?? null),
    ...(channel.schedule == null ? {} : { schedule: channel.schedule }),
    created_at: channel.created_at,
    outputs: channel.outputs.map((output) => viewOutput(context, channel, output, runtime, now)),
    ...medialiveOf(context, channel, now),
  };
};

const medialiveOf = (context: ViewContext, channel: ChannelConfig, now: number) => {
  const medialive = context.medialive?.(channel, now);
  return medialive === undefined ? {} : { medialive };
};

/** The stored slate with what the running channel says of it (off, not ready, while it is stopped). */
const viewSlate = (channel: ChannelConfig, now: SlateStatus | null): SlateView | null => {
  const stored = slateView(channel.slate, channel.id);
  if (stored === null) return null;
  return {
    ...stored,
    on: now?.on ?? false,
    reason: now?.reason ?? null,
    since: now?.since == null ? null : new Date(now.since).toISOString(),
    seconds: now?.seconds ?? 0,
    ready: now?.ready ?? false,
    preparing: now?.preparing ?? false,
    format: now?.format ?? null,
    problem: now?.problem ?? null,
  };
};
