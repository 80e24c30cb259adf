/**
 * The `/metrics` series of RIST links: one set per RIST input and per peer of a RIST output, labelled with the
 * channel, the direction (`input`, `output`), the link (the input's role or the output's id) and the peer (its
 * place in the list, 1 up: labels never carry an address, and stay bounded),
 * read from the read model's snapshot at each scrape (librist's readings, added up). docs/operations.md lists
 * them; prometheus/alerts.yml warns on sustained loss.
 */
import type { StatusSnapshot } from "../../domain/views/views.ts";
import type { RistPeerView } from "../../domain/views/views-rist.ts";
import type { Labels, SnapshotFamilies } from "./metric-families.ts";

const LABELS = ["channel", "direction", "link", "peer"];

/** Every RIST link of the snapshot, with its labels. */
const eachLink = (snapshot: StatusSnapshot, set: (labels: Labels, peer: RistPeerView) => void) => {
  for (const channel of snapshot.channels) {
    for (const input of channel.inputs) {
      if (input.rist == null) continue;
      set({ channel: channel.id, direction: "input", link: input.role, peer: "1" }, input.rist);
    }
    for (const output of channel.outputs) {
      for (const [index, peer] of (output.rist?.peers ?? []).entries()) {
        set({ channel: channel.id, direction: "output", link: output.id, peer: String(index + 1) }, peer);
      }
    }
  }
};

const SERIES: ReadonlyArray<
  readonly [
    kind: "counter" | "gauge",
    name: string,
    help: string,
    value: (peer: RistPeerView) => number | null,
  ]
> = [
  [
    "gauge",
    "distributary_rist_quality_percent",
    "RIST link quality (0–100) in librist's last reading",
    (p) => p.quality,
  ],
  [
    "counter",
    "distributary_rist_received_packets_total",
    "RIST data packets received (inputs) or sent to a peer that answers (outputs)",
    (p) => p.received,
  ],
  [
    "counter",
    "distributary_rist_recovered_packets_total",
    "RIST packets lost on the way and recovered by retransmission",
    (p) => p.recovered,
  ],
  ["counter", "distributary_rist_lost_packets_total", "RIST packets lost for good", (p) => p.lost],
  [
    "counter",
    "distributary_rist_late_dropped_packets_total",
    "RIST packets dropped as too late",
    (p) => p.late_drops,
  ],
  [
    "counter",
    "distributary_rist_retries_total",
    "RIST retransmissions asked for (inputs) or sent (outputs)",
    (p) => p.retries,
  ],
  ["gauge", "distributary_rist_rtt_seconds", "RIST round-trip time", (p) => p.rtt_ms / 1000],
  [
    "gauge",
    "distributary_rist_bitrate_bits_per_second",
    "RIST link bitrate in librist's last reading",
    (p) => p.bitrate_bps,
  ],
  [
    "gauge",
    "distributary_rist_authenticated",
    "1 once the peer passed librist's checks (secret, EAP-SRP), 0 before; absent without them",
    (p) => (p.authenticated === null ? null : p.authenticated ? 1 : 0),
  ],
];

/** Declares the RIST families in `families`. */
export const ristMetrics = ({ family }: SnapshotFamilies): void => {
  for (const [kind, name, help, value] of SERIES) {
    family(kind, name, help, LABELS, (snapshot, set) =>
      eachLink(snapshot, (labels, peer) => {
        const v = value(peer);
        if (v !== null) set(labels, v);
      }),
    );
  }
};
