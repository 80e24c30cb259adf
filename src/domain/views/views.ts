/**
 * What the API returns. The channel and output objects keep the original API's fields (`status`, `uptime` in
 * seconds, `error_count`, `last_error`) and add the runtime figures automation asked for. URLs are always
 * masked here: these objects go to API responses, WebSocket messages and pages. A channel's inputs are shown
 * as views-input.ts has them.
 */
import * as Schema from "effect/Schema";
import { Protocol } from "../channel/channel.ts";
import { OutputPolicy } from "../channel/output-policy-schema.ts";
import { SLATE_REASONS } from "../channel/slate.ts";
import { ChannelStatus, OutputState, OutputStatus } from "../channel/states.ts";
import { HealthConfigSchema } from "../health/health-schema.ts";
import { MediaLiveView } from "../medialive/medialive.ts";
import { Schedule } from "../schedule/schedule-window.ts";
import { InputStatsView, InputSummary, SrtRefusalView } from "./views-input.ts";
import { RistOutputView } from "./views-rist.ts";

/** The redundancy settings a channel runs with: what was given, defaults filled. */
const RedundancyView = Schema.Struct({
  mode: Schema.Literal("failover", "merge", "none"),
  failover_after_ms: Schema.Number,
  revert: Schema.Literal("auto", "sticky"),
  revert_after_ms: Schema.Number,
  merge_window_ms: Schema.Number,
  fec: Schema.Struct({ primary: Schema.Boolean, backup: Schema.Boolean }),
  health: Schema.NullOr(HealthConfigSchema).annotations({
    description:
      "the inputs' health rules as given, clear_after_ms and decode filled; null: silence alone fails over",
  }),
});

/** One SRT peer of an output: the listener our caller reached, or one receiver of our listener. */
const SrtPeerView = Schema.Struct({
  peer: Schema.String.annotations({ description: "the peer's address:port" }),
  stream_id: Schema.NullOr(Schema.String).annotations({ description: "as the peer asked; masked like URLs" }),
  connected_at: Schema.String.annotations({ description: "ISO 8601" }),
  rtt_ms: Schema.Number,
  send_rate_mbps: Schema.Number,
  bandwidth_mbps: Schema.Number.annotations({ description: "libsrt's estimate of the link's capacity" }),
  retransmits: Schema.Number,
  loss_packets: Schema.Number.annotations({ description: "packets the peer reported lost" }),
  dropped_packets: Schema.Number.annotations({
    description: "too late to send, or refused by a full buffer",
  }),
  flight_size: Schema.Number.annotations({ description: "packets sent and not yet acknowledged" }),
  send_buffer_packets: Schema.Number,
  send_buffer_ms: Schema.Number,
});

const SrtStatsView = Schema.Struct({
  rtt_ms: Schema.Number.annotations({ description: "the highest among the peers" }),
  retransmits: Schema.Number,
  loss_packets: Schema.Number,
  dropped_packets: Schema.Number,
  send_rate_mbps: Schema.Number.annotations({ description: "the sum over the peers" }),
  flight_size: Schema.Number,
  send_buffer_ms: Schema.Number.annotations({ description: "the fullest send buffer among the peers" }),
  receivers: Schema.Number.annotations({ description: "peers connected now" }),
  peers: Schema.Array(SrtPeerView),
});

const RtmpStatsView = Schema.Struct({
  frames_sent: Schema.Number.annotations({ description: "FLV video and audio frames written to the server" }),
  frames_dropped: Schema.Number.annotations({
    description: "whole frames dropped because the server did not keep up (non-key video first)",
  }),
  cues: Schema.Literal("off", "oncuepoint", "onadcue", "youtube").annotations({
    description: "how SCTE-35 cues are sent: the URL's cues= option",
  }),
  cues_sent: Schema.Number.annotations({ description: "SCTE-35 cues sent as AMF0 data messages" }),
  acknowledged_bytes: Schema.Number.annotations({ description: "bytes the server acknowledged receiving" }),
  left_out: Schema.NullOr(Schema.String).annotations({
    description:
      "what of the channel the output leaves out, in words: its audio when RTMP cannot carry it (AC-3, MPEG audio layer II…) beside video it can, which goes alone; null when nothing is",
  }),
  remux_dropped: Schema.Record({ key: Schema.String, value: Schema.Number }).annotations({
    description:
      "what the channel's TS → FLV remux could not frame and left out, by reason (bad_pes: PES with nothing to frame, bad_parameter_sets: keyframes whose parameter sets could not be used, bad_video: NAL units with their forbidden bit set and frames with nothing else, bad_audio, no_keyframe_yet: frames after a dropped keyframe until the next one, internal_error); damaged frames that can be framed go as a decoder of the TS reads them, and the output stays connected. The remux is shared by the channel's RTMP outputs",
  }),
  remux_last_drop: Schema.NullOr(Schema.String).annotations({
    description: "what was wrong with the latest frame the remux dropped, in words; null before one was",
  }),
});

export const OutputView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  protocol: Protocol,
  url: Schema.String.annotations({ description: "masked: stream keys and passphrases are ****" }),
  enabled: Schema.Boolean,
  schedule: Schema.optional(Schema.String).annotations({
    description:
      'an output the channel\'s schedule owns and that is off (outside its windows) says until when: "off until the window sat at 2026-12-05 19:55 Europe/Paris (schedule)"; absent otherwise',
  }),
  status: OutputStatus.annotations({
    description:
      "the original API's field: running (starting, connecting or connected), error (reconnecting or given up), stopped (disabled, or the channel is stopped); `state` says which",
  }),
  state: OutputState,
  uptime: Schema.Number.annotations({ description: "seconds connected" }),
  error_count: Schema.Number.annotations({ description: "failed attempts to connect or stay connected" }),
  last_error: Schema.NullOr(Schema.String),
  bytes_sent: Schema.Number.annotations({
    description:
      "TS bytes the destination accepted (for RTMP: FLV tag bytes written once the server accepted the publish)",
  }),
  packets_sent: Schema.Number.annotations({
    description: "TS packets (188 bytes) handed to the destination",
  }),
  bitrate_bps: Schema.Number,
  reconnects: Schema.Number,
  queue_drops: Schema.Number.annotations({
    description:
      "TS packets dropped because the destination did not keep up or was lost; not counted before the first connection",
  }),
  srt: Schema.NullOr(SrtStatsView),
  srt_refusals: Schema.optional(
    Schema.NullOr(
      Schema.Struct({
        refusals: Schema.Number.annotations({
          description:
            "receivers refused since the output started: a stream id it does not serve (allowstreamid, or none on a port shared by stream id), a wrong passphrase, no room (maxreceivers)",
        }),
        last_refusal: Schema.NullOr(SrtRefusalView).annotations({
          description: "the latest receiver refused, and why (never its passphrase)",
        }),
      }),
    ),
  ).annotations({ description: "an SRT listener output's refused receivers; null for any other output" }),
  rist: Schema.optional(Schema.NullOr(RistOutputView)),
  rtmp: Schema.optional(Schema.NullOr(RtmpStatsView)),
  policy: Schema.optional(Schema.NullOr(OutputPolicy)).annotations({
    description: "what the output takes of the stream; null: every packet untouched",
  }),
  policy_status: Schema.optional(
    Schema.NullOr(
      Schema.Struct({
        problems: Schema.Array(Schema.String).annotations({
          description:
            "what the policy cannot apply to the input as it is now, in words (a programme or PID it does not carry); empty when all applies",
        }),
        packets_dropped: Schema.Number.annotations({
          description: "TS packets the policy kept from the output",
        }),
        cues_withheld: Schema.Number.annotations({
          description:
            "SCTE-35 cues the policy kept from the output (the cue log says which, and by which rule)",
        }),
      }),
    ),
  ),
}).annotations({ identifier: "Output" });
export type OutputView = typeof OutputView.Type;

/** The SCTE-35 cues a running channel has seen: counts, and the last one. */
const CueSummary = Schema.Struct({
  total: Schema.Number,
  last_at: Schema.NullOr(Schema.String),
  last: Schema.NullOr(Schema.Struct({ command: Schema.String, summary: Schema.String })),
  by_command: Schema.Record({ key: Schema.String, value: Schema.Number }),
  by_segmentation_type: Schema.Record({ key: Schema.String, value: Schema.Number }).annotations({
    description: "segmentation_type_id (decimal) of each segmentation descriptor seen",
  }),
}).annotations({ identifier: "CueSummary" });

/** Where a channel runs in a fleet: absent on one box. */
export const ChannelFleetView = Schema.Struct({
  nodes: Schema.Array(Schema.String).annotations({
    description: "the nodes that receive the input, in order of preference; empty: every node",
  }),
  holder: Schema.NullOr(Schema.String).annotations({
    description: "the node whose lease runs the outputs; null while no node holds it",
  }),
  term: Schema.Number.annotations({ description: "grows at every change of holder (a fencing token)" }),
  standbys: Schema.Array(Schema.String).annotations({
    description: "live nodes that receive the input and would take over, in order",
  }),
  holder_reachable: Schema.Boolean.annotations({
    description: "whether the holder answered within the last two heartbeats (live figures come from it)",
  }),
}).annotations({ identifier: "ChannelFleet" });
export type ChannelFleetView = typeof ChannelFleetView.Type;

/** A channel's slate: as stored (its picture without its bytes) and, while it runs, what it does now. */
export const SlateView = Schema.Struct({
  after_ms: Schema.Number,
  alert_after_s: Schema.Number,
  manual: Schema.Boolean.annotations({ description: "put on the slate by an operator, until taken off" }),
  scheduled: Schema.Boolean.annotations({
    description: "put on the slate by the channel's schedule (its preroll or postroll), until it lifts it",
  }),
  on_unhealthy: Schema.Boolean.annotations({
    description: "the slate goes on while every input is unhealthy by the channel's health rules",
  }),
  image: Schema.NullOr(
    Schema.Struct({
      type: Schema.String,
      width: Schema.Number,
      height: Schema.Number,
      bytes: Schema.Number,
      sha256: Schema.String,
      url: Schema.String,
    }),
  ).annotations({ description: "the uploaded picture; null: a generated card with the channel's name" }),
  on: Schema.Boolean.annotations({ description: "the outputs carry the slate now" }),
  reason: Schema.NullOr(Schema.Literal(...SLATE_REASONS)),
  since: Schema.NullOr(Schema.String).annotations({ description: "when this spell on the slate began" }),
  seconds: Schema.Number.annotations({ description: "seconds on the slate since the channel started" }),
  ready: Schema.Boolean.annotations({ description: "a clip in the input's format is prepared" }),
  preparing: Schema.Boolean,
  format: Schema.NullOr(Schema.String).annotations({ description: "the input's format the clip matches" }),
  problem: Schema.NullOr(Schema.String).annotations({
    description: "why no slate can be shown now, in words (the channel then goes silent without input)",
  }),
}).annotations({ identifier: "Slate" });
export type SlateView = typeof SlateView.Type;

export const ChannelView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  tags: Schema.optional(Schema.Array(Schema.String)).annotations({
    description: "the channel's tags, which scoped tokens and access rules reach it by; absent when none",
  }),
  rtp_ip: Schema.String,
  rtp_port: Schema.Number,
  backup_rtp_ip: Schema.NullOr(Schema.String),
  backup_rtp_port: Schema.NullOr(Schema.Number),
  rtp_allowed_sources: Schema.NullOr(Schema.Array(Schema.String)).annotations({
    description: "the primary input's sender allow-list; null: every sender",
  }),
  backup_rtp_allowed_sources: Schema.NullOr(Schema.Array(Schema.String)).annotations({
    description: "the backup input's sender allow-list; null: every sender",
  }),
  input_url: Schema.NullOr(Schema.String).annotations({ description: "SRT input, masked; null for RTP/UDP" }),
  backup_input_url: Schema.NullOr(Schema.String).annotations({ description: "SRT backup input, masked" }),
  redundancy: Schema.NullOr(RedundancyView),
  status: ChannelStatus,
  desired: Schema.Literal("running", "stopped"),
  uptime: Schema.Number.annotations({ description: "seconds since the channel started" }),
  error: Schema.NullOr(Schema.String),
  worker: Schema.NullOr(Schema.Number).annotations({
    description:
      "the forwarding worker thread that runs the channel; null when stopped or forwarding in the main thread",
  }),
  active_input: Schema.NullOr(Schema.Literal("primary", "backup")),
  input: Schema.NullOr(Schema.Literal("ok", "lost")).annotations({
    description: "lost while no input receives anything (the outputs stay connected); null when stopped",
  }),
  input_bitrate_bps: Schema.Number.annotations({
    description: "bits per second arriving at the active input over the last second; 0 when stopped",
  }),
  failovers: Schema.Number.annotations({ description: "switches between inputs since the channel started" }),
  last_switch: Schema.NullOr(
    Schema.Struct({
      at: Schema.String,
      from: Schema.Literal("primary", "backup"),
      to: Schema.Literal("primary", "backup"),
      reason: Schema.Literal("silence", "rule", "operator", "primary_restored"),
      rule: Schema.optional(Schema.String).annotations({
        description: "for reason rule: the health rules that held on the input left (e.g. black && silent)",
      }),
    }),
  ),
  failovers_by_reason: Schema.Struct({
    silence: Schema.Number,
    rule: Schema.Number,
    operator: Schema.Number,
    primary_restored: Schema.Number,
  }),
  inputs: Schema.Array(InputSummary).annotations({ description: "empty while the channel is stopped" }),
  cues: CueSummary,
  expect_cues_within_s: Schema.NullOr(Schema.Number),
  slate: Schema.NullOr(SlateView).annotations({
    description: "the channel's slate; null: none (the default)",
  }),
  schedule: Schema.optional(Schedule).annotations({
    description: "the channel's event windows as stored; absent when it has none",
  }),
  created_at: Schema.String,
  outputs: Schema.Array(OutputView),
  fleet: Schema.optional(ChannelFleetView),
  medialive: Schema.optional(MediaLiveView).annotations({
    description:
      "the AWS MediaLive channel that feeds this one, as last described; absent when none is linked",
  }),
}).annotations({ identifier: "Channel" });
export type ChannelView = typeof ChannelView.Type;

export const ChannelList = Schema.Struct({ channels: Schema.Array(ChannelView) }).annotations({
  identifier: "ChannelList",
});

export const ChannelStats = Schema.Struct({
  id: Schema.String,
  status: ChannelStatus,
  uptime: Schema.Number,
  inputs: Schema.Array(InputStatsView),
  outputs: Schema.Array(OutputView),
  redundancy_events: Schema.Array(Schema.Unknown).annotations({
    description: "recent input switches and losses",
  }),
}).annotations({ identifier: "ChannelStats" });
export type ChannelStats = typeof ChannelStats.Type;

export const CueList = Schema.Struct({
  cues: Schema.Array(
    Schema.Struct({
      id: Schema.optional(
        Schema.String.annotations({ description: "the cue's id (absent for cues kept by older versions)" }),
      ),
      at: Schema.String,
      pid: Schema.Number,
      pcr: Schema.NullOr(Schema.Number),
      command: Schema.String,
      summary: Schema.String,
      section_base64: Schema.String,
      cue: Schema.Unknown,
      error: Schema.NullOr(Schema.String),
      rtmp: Schema.Array(
        Schema.Struct({
          output: Schema.String.annotations({ description: "the output's id" }),
          name: Schema.String.annotations({ description: "the output's name when it sent the cue" }),
          format: Schema.Literal("oncuepoint", "onadcue", "youtube").annotations({
            description: "the data message's shape: the output URL's cues= option",
          }),
        }),
      ).annotations({
        description:
          "the RTMP outputs that sent the cue as an AMF0 data message, in the order they sent it (a cue waiting for its splice time is listed once sent); empty when none did",
      }),
      origin: Schema.Literal("input", "operator").annotations({
        description: "input: it came in the channel's stream; operator: inserted through POST .../cues",
      }),
      by: Schema.optional(Schema.String.annotations({ description: "the operator's token name" })),
      withheld: Schema.Array(
        Schema.Struct({
          output: Schema.String.annotations({ description: "the output's id" }),
          name: Schema.String,
          rule: Schema.String.annotations({ description: "the policy rule that withheld it, in words" }),
        }),
      ).annotations({ description: "the outputs whose policy kept this cue from them" }),
    }),
  ),
}).annotations({ identifier: "CueList" });

export const InsertedCueView = Schema.Struct({
  id: Schema.NullOr(Schema.String).annotations({ description: "the cue's id in the channel's cue log" }),
  pid: Schema.Number.annotations({ description: "the SCTE-35 PID it went out on" }),
  event_id: Schema.Number.annotations({ description: "its splice_event_id or segmentation_event_id" }),
  section_base64: Schema.String.annotations({ description: "the splice_info_section as encoded and sent" }),
}).annotations({ identifier: "InsertedCue" });

/**
 * One sample of every configured channel, made once per tick by the read model and shared by every reader:
 * REST, WebSocket, pages and `/metrics`. `seq` grows by one per snapshot.
 */
export interface StatusSnapshot {
  readonly seq: number;
  /** Epoch ms when it was taken. */
  readonly at: number;
  readonly channels: ReadonlyArray<ChannelView>;
}
