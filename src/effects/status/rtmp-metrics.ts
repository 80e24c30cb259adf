/**
 * The `/metrics` series of RTMP inputs, labelled with the channel and the input's role, read from the read
 * model's snapshot at each scrape: whether a publisher is sending, publishes accepted, and publishers refused by
 * reason (a wrong key, a second publisher). docs/operations.md lists them.
 */
import type { StatusSnapshot } from "../../domain/views/views.ts";
import type { RtmpInputView } from "../../domain/views/views-rtmp.ts";
import type { Labels, SnapshotFamilies } from "./metric-families.ts";

const eachInput = (snapshot: StatusSnapshot, set: (labels: Labels, rtmp: RtmpInputView) => void) => {
  for (const channel of snapshot.channels) {
    for (const input of channel.inputs) {
      if (input.rtmp != null) set({ channel: channel.id, input: input.role }, input.rtmp);
    }
  }
};

/** Declares the RTMP input families in `families`. */
export const rtmpMetrics = ({ family }: SnapshotFamilies): void => {
  family(
    "gauge",
    "distributary_rtmp_publisher_connected",
    "1 while a publisher sends to the RTMP input, else 0",
    ["channel", "input"],
    (snapshot, set) => eachInput(snapshot, (labels, rtmp) => set(labels, rtmp.publisher === null ? 0 : 1)),
  );
  family(
    "counter",
    "distributary_rtmp_publishes_total",
    "Publishers the RTMP input accepted",
    ["channel", "input"],
    (snapshot, set) => eachInput(snapshot, (labels, rtmp) => set(labels, rtmp.publishes)),
  );
  family(
    "counter",
    "distributary_rtmp_publish_refusals_total",
    "Publishers the RTMP input refused at publish, by reason (wrong_key, busy)",
    ["channel", "input", "reason"],
    (snapshot, set) =>
      eachInput(snapshot, (labels, rtmp) => {
        set({ ...labels, reason: "wrong_key" }, rtmp.refusals.wrong_key);
        set({ ...labels, reason: "busy" }, rtmp.refusals.busy);
      }),
  );
};
