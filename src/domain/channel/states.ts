/**
 * The words for what a channel and an output are doing, written once: the writer, the events, the API's views
 * and the metrics' `state` labels all take them from here, so a new state is added in one place.
 */
import * as Schema from "effect/Schema";

/** What an output is doing, in words. */
export const OutputState = Schema.Literal(
  "starting",
  "connecting",
  "connected",
  "reconnecting",
  "disabled",
  "stopped",
  "error",
).annotations({
  description:
    "starting: added, its first attempt not begun; connecting: first attempt; connected: the destination accepts data; reconnecting: after a failure, waiting or trying again; disabled: enabled is false; stopped: the channel is stopped; error: gave up (see last_error)",
});
export type OutputState = typeof OutputState.Type;

/**
 * The writer's states (`disabled` is the read model's word for an output that never runs): `starting` until
 * its first attempt begins; `connecting` during it (and a listener while no receiver is connected);
 * `connected` once the destination accepts data; `reconnecting` after a failure, while waiting and while
 * trying again; `error` when it gave up; `stopped` once its run was interrupted.
 */
export const WriterState = OutputState.pipe(
  Schema.pickLiteral("starting", "connecting", "connected", "reconnecting", "stopped", "error"),
);
export type WriterState = typeof WriterState.Type;

/** The original API's output status: `running` while it works or is getting there, `error` while it fails. */
export const OutputStatus = Schema.Literal("running", "stopped", "error");
export type OutputStatus = typeof OutputStatus.Type;

/** The original API's three words for each state. */
export const outputStatusOf: { readonly [S in OutputState]: OutputStatus } = {
  starting: "running",
  connecting: "running",
  connected: "running",
  reconnecting: "error",
  error: "error",
  disabled: "stopped",
  stopped: "stopped",
};

/** Whether a channel runs: `error` when it ended with one or cannot start. */
export const ChannelStatus = Schema.Literal("running", "stopped", "error");
export type ChannelStatus = typeof ChannelStatus.Type;
