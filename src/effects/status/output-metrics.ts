/**
 * The `/metrics` series of each output: its name, protocol and state, what it sent, dropped and reconnected,
 * and what its protocol adds (RTMP frames and cues, with the channel's remux that RTMP outputs share; SRT's
 * round trip, retransmissions, buffers and peers), read from the read model's snapshot at each scrape. One
 * declaration per metric, in the order the exposition lists them; metrics.ts makes the registry and the service,
 * channel-metrics.ts declares the channels' and inputs'.
 */
import { OutputState } from "../../domain/channel/states.ts";
import type { SnapshotFamilies } from "./metric-families.ts";

/** Declares each output's families in `families`. */
export const outputMetrics = ({ family, perChannel, perOutput }: SnapshotFamilies): void => {
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
    "What the channel's TS → FLV remux (shared by its RTMP outputs) could not frame and left out (frames, or NAL units for bad_video), by reason; the frames around it go on and the outputs stay connected",
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
};
