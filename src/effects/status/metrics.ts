/**
 * `/metrics` for Prometheus. Every channel, input and output figure is read from the read model at scrape
 * time (its counters as they are at that moment), so the packet path never touches prom-client; the few
 * counts the snapshot does not keep (events by type) come from the event bus. Names follow Prometheus
 * practice: prefix `distributary_`, base units (seconds, bytes), `_total` on counters, `_info` for names.
 * Labels are bounded: `channel` and `output` ids, `input` (primary|backup), and fixed sets (`state`,
 * `reason`, `indicator`, `command`, `segmentation_type`, event `type`) — never a URL, an address or a name
 * other than in the `_info` metrics.
 */
import { Effect, Stream } from "effect";
import { Counter, collectDefaultMetrics, Registry } from "prom-client";
import { MEDIALIVE_STATES } from "../../domain/medialive.ts";
import { ChannelStatus, OutputState } from "../../domain/states.ts";
import { InputSummary, RejectedView, type StatusSnapshot } from "../../domain/views.ts";
import { version } from "../../version.ts";
import { Channels, type WorkerStatus } from "../channel/channels.ts";
import { EventBus } from "../events/event-bus.ts";
import { runtimeName, runtimeVersion } from "../runtime/runtime.ts";
import { loopDelayGauges, snapshotFamilies } from "./metric-families.ts";
import { ReadModel } from "./read-model.ts";
import { Readiness } from "./readiness.ts";

/** Why an input drops a datagram, and the TR 101 290 indicators: the keys of an input's counters. */
const REJECT_REASONS = Object.keys(RejectedView.fields) as ReadonlyArray<keyof RejectedView>;
const TR101290 = Object.keys(InputSummary.fields.tr101290.fields) as ReadonlyArray<
  keyof InputSummary["tr101290"]
>;

/** The registry over a snapshot source; `countEvent` counts bus events by type. */
export const makeMetrics = (
  current: () => StatusSnapshot,
  ready: () => boolean,
  workers: () => ReadonlyArray<WorkerStatus> = () => [],
) => {
  const registry = new Registry();
  const { family, perChannel, perInput, perOutput, perWorker, fill } = snapshotFamilies(registry, workers);

  // --- service ------------------------------------------------------------------------------------------------
  // prom-client's own delay monitor is left to sample once a minute: its series are replaced just after.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 60_000 });
  loopDelayGauges(registry);
  family(
    "gauge",
    "distributary_build_info",
    "Version of the running service and the runtime that runs it (always 1)",
    ["version", "node", "runtime", "runtime_version"],
    (_s, set) =>
      set({ version, node: process.versions.node, runtime: runtimeName, runtime_version: runtimeVersion }, 1),
  );
  family(
    "gauge",
    "distributary_ready",
    "1 once the stored channels were resumed after start",
    [],
    (_s, set) => set({}, ready() ? 1 : 0),
  );

  // --- forwarding workers (none when forwarding runs in the main thread) ---------------------------------------
  perWorker(
    "gauge",
    "distributary_worker_channels",
    "Channels a forwarding worker thread carries",
    [],
    (worker, set) => set({}, worker.channels),
  );
  perWorker(
    "gauge",
    "distributary_worker_cpu_ratio",
    "A forwarding worker thread's CPU time over the last 5 s as a share of one core (the next worker starts when one passes DISTRIBUTARY_WORKER_BUSY_PERCENT)",
    [],
    (worker, set) => {
      if (worker.cpuShare !== null) set({}, worker.cpuShare);
    },
  );
  perWorker(
    "counter",
    "distributary_worker_restarts_total",
    "Times a forwarding worker thread died and was started again with its channels",
    [],
    (worker, set) => set({}, worker.restarts),
  );
  perWorker(
    "gauge",
    "distributary_worker_scheduling_info",
    "The scheduling a forwarding worker thread runs at: realtime (SCHED_RR), high (nice −10) or normal (always 1)",
    ["priority"],
    (worker, set) => {
      if (worker.priority !== null) set({ priority: worker.priority }, 1);
    },
  );
  perWorker(
    "gauge",
    "distributary_worker_event_loop_delay_seconds",
    "A forwarding worker's event-loop delay over the last 15 s: quantile 0.99 (the worst second's), and 1 for the longest",
    ["quantile"],
    (worker, set) => {
      set({ quantile: "0.99" }, worker.loopDelayP99Ms / 1000);
      set({ quantile: "1" }, worker.loopDelayMaxMs / 1000);
    },
  );

  // --- channels -----------------------------------------------------------------------------------------------
  perChannel(
    "gauge",
    "distributary_channel_info",
    "A channel's name and redundancy mode: failover, merge (SMPTE 2022-7) or none (always 1)",
    ["name", "mode"],
    (channel, set) => set({ name: channel.name, mode: channel.redundancy?.mode ?? "none" }, 1),
  );
  perChannel(
    "gauge",
    "distributary_channel_state",
    "1 for the channel's state, 0 for the others",
    ["state"],
    (channel, set) => {
      for (const state of ChannelStatus.literals) set({ state }, channel.status === state ? 1 : 0);
    },
  );
  perChannel(
    "gauge",
    "distributary_medialive_channel_state",
    "1 for the state of the AWS MediaLive channel linked to the channel, 0 for the others (none until MediaLive answered)",
    ["state"],
    (channel, set) => {
      const state = channel.medialive?.state;
      if (state == null) return;
      for (const known of MEDIALIVE_STATES) set({ state: known }, state === known ? 1 : 0);
    },
  );
  perChannel(
    "gauge",
    "distributary_channel_desired_running",
    "1 when the channel should be running",
    [],
    (channel, set) => set({}, channel.desired === "running" ? 1 : 0),
  );
  perChannel(
    "gauge",
    "distributary_channel_uptime_seconds",
    "Seconds since the channel started (running channels)",
    [],
    (channel, set) => {
      if (channel.status === "running") set({}, channel.uptime);
    },
  );
  perChannel(
    "gauge",
    "distributary_channel_input_lost",
    "1 while no input of a running channel receives anything",
    [],
    (channel, set) => {
      if (channel.status === "running") set({}, channel.input === "lost" ? 1 : 0);
    },
  );
  perChannel(
    "gauge",
    "distributary_channel_slate",
    "1 while a running channel's outputs carry its slate (reason: input_lost or manual), 0 while live; channels with a slate",
    ["reason"],
    (channel, set) => {
      const slate = channel.slate;
      if (slate === null || channel.status !== "running") return;
      set({ reason: slate.reason ?? "none" }, slate.on ? 1 : 0);
    },
  );
  perChannel(
    "counter",
    "distributary_channel_slate_seconds_total",
    "Seconds a running channel's outputs carried its slate since it started",
    [],
    (channel, set) => {
      if (channel.slate !== null && channel.status === "running") set({}, channel.slate.seconds);
    },
  );
  perChannel(
    "gauge",
    "distributary_channel_slate_spell_seconds",
    "Seconds since the channel went on its slate this time; 0 while live",
    [],
    (channel, set) => {
      const slate = channel.slate;
      if (slate === null || channel.status !== "running") return;
      set({}, slate.since === null ? 0 : Math.max(0, (Date.now() - Date.parse(slate.since)) / 1000));
    },
  );
  perChannel(
    "gauge",
    "distributary_channel_slate_alert_after_seconds",
    "How long a channel may stay on its slate before the SlateTooLong alert (channels with a slate)",
    [],
    (channel, set) => {
      if (channel.slate !== null) set({}, channel.slate.alert_after_s);
    },
  );
  perChannel(
    "gauge",
    "distributary_channel_slate_ready",
    "1 when a clip in the input's format is prepared, so the slate can go on (channels with a slate)",
    [],
    (channel, set) => {
      if (channel.slate !== null && channel.status === "running") set({}, channel.slate.ready ? 1 : 0);
    },
  );
  perChannel(
    "gauge",
    "distributary_channel_on_backup",
    "1 while a running channel forwards its backup input",
    [],
    (channel, set) => {
      if (channel.status === "running" && channel.backup_rtp_port !== null)
        set({}, channel.active_input === "backup" && channel.redundancy?.mode === "failover" ? 1 : 0);
    },
  );
  perChannel(
    "counter",
    "distributary_channel_failovers_total",
    "Switches between inputs since the channel started, by reason",
    ["reason"],
    (channel, set) => {
      if (channel.status !== "running") return;
      for (const [reason, count] of Object.entries(channel.failovers_by_reason)) set({ reason }, count);
    },
  );
  perChannel(
    "counter",
    "distributary_channel_scte35_cues_total",
    "SCTE-35 cues seen since the channel started, by splice command",
    ["command"],
    (channel, set) => {
      for (const [command, count] of Object.entries(channel.cues.by_command)) set({ command }, count);
    },
  );
  perChannel(
    "counter",
    "distributary_channel_scte35_segmentation_descriptors_total",
    "Segmentation descriptors in the cues seen, by segmentation_type_id (decimal)",
    ["segmentation_type"],
    (channel, set) => {
      for (const [type, count] of Object.entries(channel.cues.by_segmentation_type))
        set({ segmentation_type: type }, count);
    },
  );
  perChannel(
    "gauge",
    "distributary_channel_seconds_since_last_cue",
    "Seconds since the last SCTE-35 cue; since the channel started while none came (running channels)",
    [],
    (channel, set) => {
      if (channel.status !== "running") return;
      const last = channel.cues.last_at === null ? null : Date.parse(channel.cues.last_at);
      set({}, last === null ? channel.uptime : Math.max(0, (Date.now() - last) / 1000));
    },
  );
  perChannel(
    "gauge",
    "distributary_channel_expected_cue_interval_seconds",
    "The longest expected time between SCTE-35 cues, on channels that expect them",
    [],
    (channel, set) => {
      if (channel.expect_cues_within_s !== null) set({}, channel.expect_cues_within_s);
    },
  );

  // --- inputs -------------------------------------------------------------------------------------------------
  perInput("counter", "distributary_input_received_bytes_total", "TS bytes received", (input) => input.bytes);
  perInput("counter", "distributary_input_datagrams_total", "Datagrams received", (input) => input.datagrams);
  perInput(
    "counter",
    "distributary_input_malformed_datagrams_total",
    "Datagrams that were not RTP or whole TS",
    (input) => input.malformed,
  );
  perInput(
    "counter",
    "distributary_input_rtp_lost_packets_total",
    "RTP packets missing from the sequence",
    (input) => input.rtp?.lost ?? null,
  );
  perInput(
    "counter",
    "distributary_input_rtp_duplicate_packets_total",
    "RTP packets received twice (the copy is dropped)",
    (input) => input.rtp?.duplicate ?? null,
  );
  perInput(
    "counter",
    "distributary_input_rtp_reordered_packets_total",
    "RTP packets received out of order",
    (input) => input.rtp?.reordered ?? null,
  );
  perInput(
    "counter",
    "distributary_input_rtp_restarts_total",
    "Times the RTP sender restarted its sequence with the same SSRC (resynchronised, not counted as loss)",
    (input) => input.rtp?.restarts ?? null,
  );
  perInput(
    "counter",
    "distributary_input_rejected_datagrams_total",
    "Datagrams dropped whole before any output, by reason",
    () => null,
    {
      label: "reason",
      values: (input) => REJECT_REASONS.map((reason) => [reason, input.rejected[reason]]),
    },
  );
  perInput(
    "counter",
    "distributary_input_continuity_errors_total",
    "TS continuity counter errors",
    (input) => input.continuity_errors,
  );
  perInput(
    "counter",
    "distributary_input_tr101290_errors_total",
    "TR 101 290 first-priority errors, by indicator",
    () => null,
    {
      label: "indicator",
      values: (input) => TR101290.map((indicator) => [indicator, input.tr101290[indicator]]),
    },
  );
  perInput(
    "gauge",
    "distributary_input_last_datagram_age_seconds",
    "Seconds since the input's last datagram",
    (input) => (input.last_packet_age_ms === null ? null : input.last_packet_age_ms / 1000),
  );
  perInput("gauge", "distributary_input_active", "1 while this input's packets reach the outputs", (input) =>
    input.active ? 1 : 0,
  );
  perInput(
    "gauge",
    "distributary_input_receiving",
    "1 while a datagram came within the failover time",
    (input) => (input.receiving ? 1 : 0),
  );
  perInput(
    "counter",
    "distributary_input_fec_recovered_packets_total",
    "Packets rebuilt by SMPTE 2022-1 FEC",
    (input) => input.fec?.recovered ?? null,
  );
  perInput(
    "counter",
    "distributary_input_fec_unrecoverable_packets_total",
    "Packets FEC could not rebuild",
    (input) => input.fec?.unrecoverable ?? null,
  );

  // --- outputs ------------------------------------------------------------------------------------------------
  family(
    "gauge",
    "distributary_output_info",
    "An output's name and protocol (always 1)",
    ["channel", "output", "name", "protocol"],
    (snapshot, set) => {
      for (const channel of snapshot.channels)
        for (const output of channel.outputs)
          set({ channel: channel.id, output: output.id, name: output.name, protocol: output.protocol }, 1);
    },
  );
  family(
    "gauge",
    "distributary_output_state",
    "1 for the output's state, 0 for the others",
    ["channel", "output", "state"],
    (snapshot, set) => {
      for (const channel of snapshot.channels) {
        if (channel.status !== "running") continue;
        for (const output of channel.outputs) {
          const now = output.state;
          for (const state of OutputState.literals)
            set({ channel: channel.id, output: output.id, state }, now === state ? 1 : 0);
        }
      }
    },
  );
  perOutput(
    "gauge",
    "distributary_output_up",
    "1 while the output is connected (enabled outputs of running channels)",
    (output) =>
      output.state === "disabled" || output.state === "stopped" ? null : output.state === "connected" ? 1 : 0,
  );
  perOutput(
    "counter",
    "distributary_output_sent_bytes_total",
    "TS bytes handed to the destination",
    (output) => output.bytes_sent,
  );
  perOutput(
    "counter",
    "distributary_output_sent_packets_total",
    "TS packets (188 bytes) handed to the destination",
    (output) => output.packets_sent,
  );
  perOutput(
    "counter",
    "distributary_output_reconnects_total",
    "Reconnects after a failure",
    (output) => output.reconnects,
  );
  perOutput(
    "counter",
    "distributary_output_queue_dropped_packets_total",
    "TS packets dropped because the destination did not keep up or was not connected",
    (output) => output.queue_drops,
  );
  perOutput(
    "gauge",
    "distributary_output_connected_seconds",
    "Seconds the current connection has lasted",
    (output) => (output.state === "connected" ? output.uptime : null),
  );
  perOutput(
    "counter",
    "distributary_output_rtmp_frames_sent_total",
    "FLV video and audio frames an RTMP output wrote to its server",
    (output) => output.rtmp?.frames_sent ?? null,
  );
  perOutput(
    "counter",
    "distributary_output_rtmp_frames_dropped_total",
    "Whole frames an RTMP output dropped because its server did not keep up",
    (output) => output.rtmp?.frames_dropped ?? null,
  );
  perOutput(
    "counter",
    "distributary_output_rtmp_cues_sent_total",
    "SCTE-35 cues an RTMP output sent as AMF0 data messages",
    (output) => output.rtmp?.cues_sent ?? null,
  );
  perChannel(
    "counter",
    "distributary_remux_frames_dropped_total",
    "Frames the channel's TS → FLV remux (shared by its RTMP outputs) could not read and dropped, by reason; the outputs stay connected and go on from the next keyframe",
    ["reason"],
    (channel, set) => {
      const dropped = channel.outputs.find((output) => output.rtmp != null)?.rtmp?.remux_dropped;
      for (const [reason, frames] of Object.entries(dropped ?? {})) set({ reason }, frames);
    },
  );
  perOutput("gauge", "distributary_output_srt_rtt_seconds", "SRT round-trip time", (output) =>
    output.srt === null ? null : output.srt.rtt_ms / 1000,
  );
  perOutput(
    "counter",
    "distributary_output_srt_retransmitted_packets_total",
    "SRT packets sent again",
    (output) => output.srt?.retransmits ?? null,
  );
  perOutput(
    "counter",
    "distributary_output_srt_lost_packets_total",
    "SRT packets the receiver reported lost",
    (output) => output.srt?.loss_packets ?? null,
  );
  perOutput("gauge", "distributary_output_srt_send_rate_bytes_per_second", "SRT sending rate", (output) =>
    output.srt === null ? null : (output.srt.send_rate_mbps * 1_000_000) / 8,
  );
  perOutput(
    "counter",
    "distributary_output_srt_dropped_packets_total",
    "SRT packets dropped as too late to send or refused by a full send buffer",
    (output) => output.srt?.dropped_packets ?? null,
  );
  perOutput(
    "gauge",
    "distributary_output_srt_flight_packets",
    "SRT packets sent and not yet acknowledged",
    (output) => output.srt?.flight_size ?? null,
  );
  perOutput(
    "gauge",
    "distributary_output_srt_send_buffer_seconds",
    "The fullest SRT send buffer among the output's peers",
    (output) => (output.srt === null ? null : output.srt.send_buffer_ms / 1000),
  );
  perOutput(
    "gauge",
    "distributary_output_srt_receivers",
    "SRT peers connected to the output (several for a listener)",
    (output) => output.srt?.receivers ?? null,
  );

  const events = new Counter({
    name: "distributary_events_total",
    help: "Events on the event bus, by type",
    labelNames: ["type"],
    registers: [registry],
  });

  return {
    registry,
    countEvent: (type: string) => events.inc({ type }),
    /** The exposition text; fills every family from the current snapshot first. */
    render: async (): Promise<string> => {
      fill(current());
      return registry.metrics();
    },
    contentType: registry.contentType,
  };
};

export class Metrics extends Effect.Service<Metrics>()("distributary/Metrics", {
  scoped: Effect.gen(function* () {
    const readModel = yield* ReadModel;
    const bus = yield* EventBus;
    const readiness = yield* Readiness;
    const channels = yield* Channels;
    const metrics = makeMetrics(readModel.fresh, readiness.ready, channels.workers);
    yield* Effect.forkScoped(
      bus.stream.pipe(Stream.runForEach((event) => Effect.sync(() => metrics.countEvent(event.type)))),
    );
    return {
      render: Effect.zipRight(readModel.sync, Effect.promise(metrics.render)).pipe(
        Effect.withSpan("Metrics.render"),
      ),
      contentType: metrics.contentType,
      /** For the rooms above (the fleet's figures) to add their own families to the same exposition. */
      registry: metrics.registry,
    } as const;
  }),
}) {}
