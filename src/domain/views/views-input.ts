/**
 * What the API shows of a channel's inputs: the summary the read model samples each second (counters, the
 * datagrams it rejected and why, its health and its RIST, RTMP or SRT listener's state) and the full statistics
 * with the PID tables. Part of the channel views in views.ts.
 */
import * as Schema from "effect/Schema";
import { InputHealthView } from "../health/health-view.ts";
import { RistInputView } from "./views-rist.ts";
import { RtmpInputView } from "./views-rtmp.ts";

/** A caller an SRT listener refused, and why (an input's sender, an output's receiver). */
export const SrtRefusalView = Schema.Struct({
  caller: Schema.String,
  reason: Schema.Literal("unknown_stream_id", "bad_stream_id", "wrong_mode", "busy", "wrong_passphrase"),
  code: Schema.Number.annotations({
    description: "SRT's reject reason (SRT_REJX_* 1400 and above, or SRT_REJ_*)",
  }),
  code_name: Schema.String,
  message: Schema.String,
  at: Schema.String,
});

/** An SRT listener input on a port shared by stream id, as the API shows it. */
const SrtInputView = Schema.Struct({
  listen: Schema.String.annotations({ description: "the shared listener, address:port" }),
  stream_id: Schema.String.annotations({ description: "the stream id its caller sends (masked)" }),
  sender: Schema.NullOr(Schema.String).annotations({
    description: "the caller sending now; null while none is",
  }),
  refusals: Schema.Number.annotations({
    description: "callers asking for this stream id refused since the input started (wrong passphrase, busy)",
  }),
  last_refusal: Schema.NullOr(SrtRefusalView).annotations({
    description: "the latest caller refused, and why (never its passphrase)",
  }),
}).annotations({ identifier: "SrtInput" });

/** Datagrams an input dropped whole, by reason: nothing of them reached an output. */
export const RejectedView = Schema.Struct({
  not_ts: Schema.Number.annotations({
    description:
      "not whole TS: a packet without its sync byte, a length not a multiple of 188, a broken RTP header",
  }),
  other_kind: Schema.Number.annotations({
    description: "plain TS on an input locked to RTP, or RTP on one locked to plain TS",
  }),
  foreign_ssrc: Schema.Number.annotations({ description: "RTP from another SSRC than the locked one" }),
  payload_type: Schema.Number.annotations({ description: "RTP with a payload type other than 33 (MP2T)" }),
  sender_not_allowed: Schema.Number.annotations({ description: "from a sender outside the allow-list" }),
  own_output: Schema.Number.annotations({
    description:
      "sent by one of this service's own UDP/RTP outputs (an output aimed at an input): a loop, cut",
  }),
}).annotations({ identifier: "Rejected" });
export type RejectedView = typeof RejectedView.Type;

const RtpCounters = Schema.Struct({
  lost: Schema.Number,
  duplicate: Schema.Number,
  reordered: Schema.Number,
  restarts: Schema.Number.annotations({
    description: "times the sender restarted its sequence with the same SSRC (RFC 3550 A.1 probation)",
  }),
});

/** One input of a running channel, as the read model samples it each second: counters, no PID tables. */
export const InputSummary = Schema.Struct({
  role: Schema.Literal("primary", "backup"),
  ip: Schema.String,
  port: Schema.Number,
  active: Schema.Boolean.annotations({ description: "its packets reach the outputs" }),
  receiving: Schema.Boolean.annotations({ description: "a datagram came within the failover time" }),
  last_packet_age_ms: Schema.NullOr(Schema.Number),
  bitrate_bps: Schema.Number,
  input_kind: Schema.String,
  datagrams: Schema.Number,
  bytes: Schema.Number,
  malformed: Schema.Number.annotations({ description: "datagrams that were not whole TS (rejected.not_ts)" }),
  rejected: RejectedView,
  rtp: Schema.NullOr(RtpCounters).annotations({ description: "null unless the input receives RTP" }),
  continuity_errors: Schema.Number,
  tr101290: Schema.Struct({
    sync_loss: Schema.Number,
    pat_error: Schema.Number,
    cc_error: Schema.Number,
    pmt_error: Schema.Number,
    pid_error: Schema.Number,
    transport_error: Schema.Number,
    crc_error: Schema.Number,
    pcr_repetition_error: Schema.Number,
    pcr_discontinuity_indicator_error: Schema.Number,
    pts_error: Schema.Number,
  }).annotations({
    description: "TR 101 290 first-priority (sync_loss … pid_error) and second-priority errors",
  }),
  fec: Schema.NullOr(Schema.Struct({ recovered: Schema.Number, unrecoverable: Schema.Number })),
  failovers: Schema.Number.annotations({ description: "switches away from this input" }),
  health: Schema.NullOr(InputHealthView).annotations({
    description: "by the channel's health rules (redundancy.health); null when it has none",
  }),
  rist: Schema.optional(Schema.NullOr(RistInputView)).annotations({
    description: "a RIST input's link; else null",
  }),
  rtmp: Schema.optional(Schema.NullOr(RtmpInputView)).annotations({
    description: "an RTMP input's publisher and refusals; else null",
  }),
  srt: Schema.optional(Schema.NullOr(SrtInputView)).annotations({
    description: "an SRT listener input on a port shared by stream id: its stream id and refusals; else null",
  }),
}).annotations({ identifier: "InputSummary" });
export type InputSummary = typeof InputSummary.Type;

/** One input in full: its summary, with every TR 101 290 counter, the RTP stream's identity and the PID tables. */
export const InputStatsView = Schema.Struct({
  ...InputSummary.fields,
  packets: Schema.Number,
  rtp: Schema.NullOr(
    Schema.Struct({
      ...RtpCounters.fields,
      payload_type: Schema.NullOr(Schema.Number),
      ssrc: Schema.NullOr(Schema.Number),
      ssrc_changes: Schema.Number.annotations({
        description: "times a new SSRC was taken after the locked one was silent for the failover time",
      }),
    }),
  ).annotations({ description: "null unless the input receives RTP" }),
  tr101290: Schema.Record({ key: Schema.String, value: Schema.Number }),
  programs: Schema.Array(
    Schema.Struct({
      program: Schema.Number,
      pmt_pid: Schema.Number,
      pcr_pid: Schema.NullOr(Schema.Number),
    }),
  ),
  pids: Schema.Array(
    Schema.Struct({
      pid: Schema.Number,
      stream_type: Schema.NullOr(Schema.Number),
      packets: Schema.Number,
      bytes: Schema.Number,
      continuity_errors: Schema.Number,
      scte35: Schema.Boolean,
    }),
  ),
});
export type InputStatsView = typeof InputStatsView.Type;
