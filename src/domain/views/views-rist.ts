/**
 * A RIST link as the API shows it (src/effects/runtime/links/rist-link.ts adds up librist's readings): one peer's
 * figures, an input's link with what is wrong in words, an output's peers. Beside views.ts, which is full.
 */
import * as Schema from "effect/Schema";

/** Figures of one RIST link (an input's flow, or one peer of an output), totals since it started. */
export const RistPeerView = Schema.Struct({
  peer: Schema.String.annotations({ description: "the peer's address:port (librist's cname for it)" }),
  quality: Schema.Number.annotations({
    description: "0–100: what arrived of what was sent, in the last second",
  }),
  received: Schema.Number.annotations({
    description: "data packets received (an input) or sent to a peer that answers (an output)",
  }),
  recovered: Schema.Number.annotations({
    description: "packets lost on the way and recovered by retransmission",
  }),
  lost: Schema.Number.annotations({ description: "packets lost for good" }),
  late_drops: Schema.Number.annotations({ description: "packets that came (or would have gone) too late" }),
  retries: Schema.Number.annotations({
    description: "retransmissions asked for (an input) or sent (an output)",
  }),
  rtt_ms: Schema.Number,
  bitrate_bps: Schema.Number,
  authenticated: Schema.NullOr(Schema.Boolean).annotations({
    description: "whether the peer passed librist's checks (secret, EAP-SRP); null when the link has neither",
  }),
}).annotations({ identifier: "RistPeer" });
export type RistPeerView = typeof RistPeerView.Type;

export const RistInputView = Schema.Struct({
  ...RistPeerView.fields,
  problem: Schema.NullOr(Schema.String).annotations({
    description:
      "what is wrong, in words: librist says nothing when the profile or the secret does not match, so no data from the peer is named here, and why EAP-SRP turned a caller away (srpfile); null while data comes",
  }),
  srp_refusals: Schema.Number.annotations({
    description:
      "callers the input's srpfile turned away since it started (an unknown name or a password refused; each also a rist_auth_failed event, at most one a minute); 0 without an srpfile",
  }),
}).annotations({ identifier: "RistInput" });
export type RistInputView = typeof RistInputView.Type;

export const RistOutputView = Schema.Struct({ peers: Schema.Array(RistPeerView) }).annotations({
  identifier: "RistOutput",
});
