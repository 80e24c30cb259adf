/** The event log in words, on the channel page (its own events) and the settings page (every channel's). */
import { html } from "hono/html";
import { handoverWords } from "../src/domain/channel/handover.ts";
import { type ChannelEvent, dropReasonsText, outputLabel } from "../src/domain/events/events.ts";
import { SLATE_WORDS } from "./slate.ts";

/** Why an input switch happened, in words; a health-rule switch names the rules that held (`rule: black && silent`). */
export const switchReason = (change: { readonly reason: string; readonly rule?: string | undefined }) =>
  change.reason === "rule"
    ? `rule: ${change.rule ?? "the health rules"}`
    : change.reason.replaceAll("_", " ");

const eventWords = (event: ChannelEvent): string => {
  switch (event.type) {
    case "channel_started":
      return "channel started";
    case "channel_stopped":
      return "channel stopped";
    case "channel_failed":
      return `channel failed: ${event.message}`;
    case "channel_backing_off":
      return `failed ${event.failures} times in a row: started again in ${Math.round(event.delay_ms / 1000)} s — ${event.message}`;
    case "input_lost":
      return "input lost: no input is receiving";
    case "input_restored":
      return `input restored on the ${event.input}`;
    case "input_switched":
      return `switched from the ${event.from} to the ${event.to} input (${switchReason(event)})`;
    case "input_switch_held":
      return `stays on the ${event.from} input (${event.reason === "silence" ? "silent" : "unhealthy"}): the ${event.to} flows but is unhealthy (${event.rule})`;
    case "slate_on":
      return `on the slate: ${SLATE_WORDS[event.reason].long}`;
    case "slate_off":
      return `back to live after ${event.seconds.toFixed(1)} s on the slate`;
    case "output_state":
      return `${outputLabel(event)}: ${event.state}${event.error === null ? "" : ` — ${event.error}`}`;
    case "output_reconnect":
      return `${outputLabel(event)}: ${event.error}; reconnecting in ${(event.delay_ms / 1000).toFixed(1)} s`;
    case "output_queue_drops":
      return `${outputLabel(event)} dropped ${event.packets} TS packets`;
    case "remux_frames_dropped":
      return `${outputLabel(event)} left out ${event.frames} frames or NAL units it could not frame (${dropReasonsText(event.reasons)})`;
    case "rist_auth_failed":
    case "rtmp_publish_refused":
    case "srt_caller_refused":
      return event.message;
    case "scte35_cue":
      return `SCTE-35 ${event.summary}`;
    case "upgrade":
      return event.outcome === "done"
        ? `upgraded: pid ${event.from.pid} (${event.from.version}) handed ${event.channels.length} channels to pid ${event.to?.pid ?? "?"} (${event.to?.version ?? "?"}) in ${event.duration_ms} ms`
        : `upgrade failed, every channel kept: ${event.reason ?? "unknown"}`;
    case "handover":
      return handoverWords(event);
    case "worker_restarted":
      return `forwarding worker ${event.worker} ${event.reason}; its channels were started again`;
    case "medialive_action":
      return `MediaLive ${event.message}`;
    case "medialive_state":
      return `MediaLive channel ${event.state}`;
    case "schedule_phase":
      return `schedule ${event.window}: ${event.phase} — ${event.message}`;
    case "schedule_missed":
      return `schedule ${event.window} missed: ${event.message}`;
    case "node_down":
      return `node ${event.node} down: ${event.message}`;
    case "node_up":
      return `node ${event.node} back: ${event.message}`;
    case "api_change":
      return `${event.detail} — by ${event.actor}${actorHow(event)}`;
  }
};

export const eventItem = (
  event: ChannelEvent,
  withChannel = false,
) => html`<li class="event event-${event.type}">
  <time datetime="${event.at}">${event.at.slice(11, 19)}</time>
  ${withChannel && event.channel !== null ? html`<a href="/channels/${event.channel}">${event.channel_name ?? event.channel}</a>` : ""}
  <span>${eventWords(event)}</span>
</li>`;

export const eventLog = (events: ReadonlyArray<ChannelEvent>) => html`<section aria-labelledby="events-title">
  <h2 id="events-title">Events</h2>
  <ol id="event-log" class="log">${events.map((event) => eventItem(event))}</ol>
</section>`;

/** How the actor proved who it is, as the events page says it: " (signed in, sub … of …)", " (token)". */
const actorHow = (event: {
  readonly actor_via?: string | undefined;
  readonly actor_subject?: string | undefined;
  readonly actor_issuer?: string | undefined;
}) =>
  event.actor_via === undefined
    ? ""
    : event.actor_subject === undefined
      ? ` (${event.actor_via})`
      : ` (${event.actor_via}, ${event.actor_subject}${event.actor_issuer === undefined ? "" : ` of ${event.actor_issuer}`})`;
