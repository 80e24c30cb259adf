/**
 * The log, fed from the event bus: one line per event worth knowing — a channel started, stopped or failed,
 * an input lost, restored or switched, an output connected, failed or reconnecting (with the reason), queue
 * drops, an SCTE-35 cue, and every API change with the token that made it. The words name the channel and
 * output ("output CDN (1a1bb558…)"); each line carries their full ids as the `channel` and `output` fields,
 * so a log query can follow one channel. The logger (logging.ts) masks secrets.
 */
import * as Effect from "effect/Effect";
import * as Stream from "effect/Stream";
import { handoverClean, handoverWords } from "../../domain/channel/handover.ts";
import type { SlateReason } from "../../domain/channel/slate.ts";
import { type ChannelEvent, channelLabel, dropReasonsText, outputLabel } from "../../domain/events/events.ts";
import { EventBus } from "./event-bus.ts";

type Level = "debug" | "info" | "warn" | "error";

/** Why the slate went on, in the log's words. */
const SLATE_SAID: Readonly<Record<SlateReason, string>> = {
  input_lost: "every input is silent",
  manual: "put there by an operator",
  unhealthy: "every input is unhealthy",
  scheduled: "the schedule's preroll or postroll",
};

const outputName = (event: ChannelEvent) => `${outputLabel(event)} of ${channelLabel(event)}`;

/** The level and words of an event's line; null for events that a neighbouring line already tells. */
export const describeEvent = (event: ChannelEvent): readonly [Level, string] | null => {
  switch (event.type) {
    case "channel_started":
      return ["info", `${channelLabel(event)} started`];
    case "channel_stopped":
      return ["info", `${channelLabel(event)} stopped`];
    case "channel_failed":
      return ["error", `${channelLabel(event)} failed: ${event.message}`];
    case "channel_backing_off":
      return [
        "error",
        `${channelLabel(event)} failed ${event.failures} times in a row, each within a minute of the last (latest: ${event.message}): it is started again in ${Math.round(event.delay_ms / 1000)} s, not at once`,
      ];
    case "input_lost":
      return ["warn", `${channelLabel(event)}: input lost, no input is receiving`];
    case "input_restored":
      return ["info", `${channelLabel(event)}: input restored on the ${event.input}`];
    case "slate_on":
      return [
        "warn",
        `${channelLabel(event)}: on the slate (${SLATE_SAID[event.reason]}); its outputs stay connected`,
      ];
    case "slate_off":
      return [
        "info",
        `${channelLabel(event)}: back to live after ${event.seconds.toFixed(1)} s on the slate, from a keyframe`,
      ];
    case "input_switched":
      return [
        event.reason === "silence" ? "warn" : "info",
        `${channelLabel(event)}: input switched from the ${event.from} to the ${event.to} (${event.reason})`,
      ];
    case "input_switch_held":
      return [
        "warn",
        `${channelLabel(event)}: stays on the ${event.from} (${event.reason === "silence" ? "silent" : "unhealthy"}): the ${event.to} flows but is unhealthy (${event.rule})`,
      ];
    case "output_state":
      if (event.state === "connected") return ["info", `${outputName(event)} connected`];
      if (event.state === "error")
        return ["error", `${outputName(event)} gave up: ${event.error ?? "unknown error"}`];
      // "reconnecting" comes with its output_reconnect line; the others are steps of a start or a stop.
      return event.state === "reconnecting" ? null : ["debug", `${outputName(event)} ${event.state}`];
    case "output_reconnect":
      return [
        "warn",
        `${outputName(event)}: ${event.error}; reconnecting in ${(event.delay_ms / 1000).toFixed(1)} s (reconnect ${event.reconnects})`,
      ];
    case "output_queue_drops":
      return [
        "warn",
        `${outputName(event)} dropped ${event.packets} TS packets: the destination does not keep up`,
      ];
    case "remux_frames_dropped":
      return [
        "warn",
        `${outputName(event)} left out ${event.frames} frames or NAL units it could not frame (${dropReasonsText(event.reasons)})${event.detail === null ? "" : `, the latest: ${event.detail}`}; the frames around them went on`,
      ];
    case "rist_auth_failed":
    case "rtmp_publish_refused":
      return ["warn", `${channelLabel(event)}: ${event.message}`];
    case "srt_caller_refused":
      return ["warn", event.channel === null ? event.message : `${channelLabel(event)}: ${event.message}`];
    case "scte35_cue":
      return ["info", `${channelLabel(event)}: SCTE-35 ${event.summary} on PID ${event.pid}`];
    case "upgrade":
      return event.outcome === "done"
        ? [
            "info",
            `upgraded: pid ${event.from.pid} (${event.from.version}) handed ${event.channels.length} channels to pid ${event.to?.pid ?? "?"} (${event.to?.version ?? "?"}) in ${event.duration_ms} ms`,
          ]
        : [
            "error",
            `upgrade failed, pid ${event.from.pid} (${event.from.version}) keeps every channel: ${event.reason}`,
          ];
    case "handover":
      return [handoverClean(event) ? "info" : "warn", `${channelLabel(event)}: ${handoverWords(event)}`];
    case "worker_restarted":
      return [
        "error",
        `forwarding worker ${event.worker} ${event.reason}; restarted with ${event.channels.length} channels`,
      ];
    case "medialive_action":
      return [event.ok ? "info" : "warn", `${channelLabel(event)}: MediaLive ${event.message}`];
    case "medialive_state":
      return ["info", `${channelLabel(event)}: MediaLive channel ${event.state}`];
    case "schedule_phase":
      return [
        "info",
        `${channelLabel(event)}: schedule ${event.window} ${event.previous} → ${event.phase}: ${event.message}`,
      ];
    case "schedule_missed":
      return ["warn", `${channelLabel(event)}: schedule ${event.window} missed: ${event.message}`];
    case "node_down":
      return ["error", `node ${event.node} is down: ${event.message}`];
    case "node_up":
      return ["info", `node ${event.node} is back: ${event.message}`];
    case "api_change":
      return ["info", `${event.detail} (by ${event.actor})`];
  }
};

const log = (level: Level, message: string) => {
  switch (level) {
    case "debug":
      return Effect.logDebug(message);
    case "info":
      return Effect.logInfo(message);
    case "warn":
      return Effect.logWarning(message);
    case "error":
      return Effect.logError(message);
  }
};

/** Writes the bus's events to the log for as long as the scope lives. */
export const EventLogLive = Effect.gen(function* () {
  const bus = yield* EventBus;
  yield* Effect.forkScoped(
    bus.stream.pipe(
      Stream.runForEach((event) => {
        const line = describeEvent(event);
        if (line === null) return Effect.void;
        const fields: Record<string, string> = { event: event.type };
        if (event.channel !== null) fields.channel = event.channel;
        if (event.output !== null) fields.output = event.output;
        if (event.type === "api_change") {
          fields.actor = event.actor;
          fields.action = event.action;
          if (event.actor_via !== undefined) fields.actor_via = event.actor_via;
          if (event.actor_subject !== undefined) fields.actor_subject = event.actor_subject;
          if (event.actor_issuer !== undefined) fields.actor_issuer = event.actor_issuer;
        }
        return log(line[0], line[1]).pipe(Effect.annotateLogs(fields));
      }),
    ),
  );
});
