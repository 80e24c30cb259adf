/**
 * The `/metrics` series of each channel and of its inputs: its state and mode, the slate, failovers, the
 * SCTE-35 cues it saw, and each input's traffic, losses, rejections and TR 101 290 errors, read from the read
 * model's snapshot at each scrape. One declaration per metric, in the order the exposition lists them;
 * metrics.ts makes the registry and the service, output-metrics.ts declares the outputs'.
 */

import { ChannelStatus } from "../../domain/channel/states.ts";
import { MEDIALIVE_STATES } from "../../domain/medialive/medialive.ts";
import { InputSummary, RejectedView } from "../../domain/views/views-input.ts";
import type { SnapshotFamilies } from "./metric-families.ts";

/** Why an input drops a datagram, and the TR 101 290 indicators: the keys of an input's counters. */
const REJECT_REASONS = Object.keys(RejectedView.fields) as ReadonlyArray<keyof RejectedView>;
const TR101290 = Object.keys(InputSummary.fields.tr101290.fields) as ReadonlyArray<
  keyof InputSummary["tr101290"]
>;

/** Each channel's families: its state and mode, the slate, failovers and the cues it saw. */
const channelFamilies = ({ perChannel }: SnapshotFamilies): void => {
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
};

/** Each input's families: its traffic, losses, rejections and TR 101 290 errors. */
const inputFamilies = ({ perInput }: SnapshotFamilies): void => {
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
    "TR 101 290 errors, by indicator: first priority (sync_loss … pid_error) and second (transport_error … pts_error)",
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
  perInput(
    "gauge",
    "distributary_input_unhealthy",
    "1 while the channel's health rules find the input unhealthy, 0 while healthy (absent without rules)",
    (input) => (input.health === null ? null : input.health.state === "unhealthy" ? 1 : 0),
  );
  perInput(
    "gauge",
    "distributary_input_rule_state",
    "Each health rule on the input: 1 it holds, 0 it does not, -1 it cannot judge now",
    () => null,
    {
      label: "rule",
      values: (input) =>
        Object.entries(input.health?.rules ?? {}).map(([rule, view]) => [
          rule,
          view.state === null ? -1 : view.state ? 1 : 0,
        ]),
    },
  );
};

/** Declares each channel's and each input's families in `families`. */
export const channelMetrics = (families: SnapshotFamilies): void => {
  channelFamilies(families);
  inputFamilies(families);
};
