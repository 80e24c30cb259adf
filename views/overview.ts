/**
 * The overview: one tile per channel — its state in words (a SLATE badge while its outputs carry the slate, an
 * UNHEALTHY one while the input on air is unhealthy by the channel's health rules),
 * which input is on air and whether it receives, the input bitrate, its outputs by state, the time since the
 * last SCTE-35 cue, a still of the input — with start/stop, a filter box, and start/stop of the selected
 * channels with one confirmation. Each tile has a stable id, so the WebSocket replaces it whole when the
 * channel changes.
 */

import { html } from "hono/html";
import type { SchedulePhase } from "../src/domain/schedule/schedule-phases.ts";
import type { ChannelView } from "../src/domain/views/views.ts";
import { fleetLine } from "./fleet.ts";
import { tileHealthBadge } from "./health.ts";
import { actionButton, bitrate, can, duration, stateBadge, tagBadges, type Viewer } from "./layout.ts";
import { medialiveFact } from "./medialive.ts";
import { schedulePhaseBadge } from "./schedule.ts";
import { slateBadge } from "./slate.ts";

const outputStates = (channel: ChannelView) => {
  const counts = new Map<string, number>();
  for (const output of channel.outputs) {
    const state = output.state;
    counts.set(state, (counts.get(state) ?? 0) + 1);
  }
  return [...counts].map(
    ([state, count]) => html`<span class="badge state-${state}">${count} ${state}</span>`,
  );
};

const sinceLastCue = (channel: ChannelView, now: number) =>
  channel.cues.last_at === null
    ? "none yet"
    : `${duration((now - Date.parse(channel.cues.last_at)) / 1000)} ago`;

const onAir = (channel: ChannelView) => {
  if (channel.status !== "running") return html`<span class="muted">—</span>`;
  const active = channel.inputs.find((input) => input.active);
  const health = channel.input === "lost" ? "lost" : active?.receiving ? "receiving" : "silent";
  return html`${stateBadge(channel.active_input === "backup" ? "backup" : "primary")} ${stateBadge(health)}`;
};

/** Stills as a tile needs them: null when thumbnails are off. */
interface TileStills {
  readonly version: number;
  readonly has: (channelId: string) => boolean;
}

export const channelTile = (
  channel: ChannelView,
  signedIn: Viewer,
  thumbnails: TileStills | null,
  /** The phase of the channel's scheduled window now (idle: none open). */
  phase: SchedulePhase = "idle",
) => {
  // The buttons of the role on this channel, where the viewer's grants differ by channel.
  const viewer =
    signedIn.roleOn === undefined
      ? signedIn
      : { ...signedIn, role: signedIn.roleOn(channel) ?? signedIn.role };
  const now = Date.now();
  const inputBitrate = channel.inputs.find((input) => input.active)?.bitrate_bps ?? 0;
  return html`<article class="tile" id="tile-${channel.id}" data-name="${channel.name.toLowerCase()} ${channel.id}">
    <header>
      ${
        can(viewer, "operator")
          ? html`<input type="checkbox" name="ids" value="${channel.id}" form="bulk" aria-label="Select ${channel.name}" />`
          : ""
      }
      <h2><a href="/channels/${channel.id}">${channel.name}</a></h2>
      ${tagBadges(channel)}
      ${stateBadge(channel.status)}
      ${slateBadge(channel)}
      ${schedulePhaseBadge(phase)}
      ${tileHealthBadge(channel)}
    </header>
    ${
      thumbnails !== null && channel.status === "running" && thumbnails.has(channel.id)
        ? html`<img class="thumb" src="/ui/thumbs/${channel.id}.jpg?v=${thumbnails.version}" alt="Still of the input of ${channel.name}" width="320" height="180" />`
        : html`<div class="thumb placeholder" aria-hidden="true">
            ${channel.status !== "running" ? channel.status : thumbnails === null ? "thumbnails off" : "no picture yet"}
          </div>`
    }
    <dl class="facts">
      <dt>On air</dt>
      <dd>${onAir(channel)}</dd>
      <dt>Input</dt>
      <dd>${channel.status === "running" ? bitrate(inputBitrate) : "—"}</dd>
      <dt>Outputs</dt>
      <dd>${channel.outputs.length === 0 ? html`<span class="muted">none</span>` : outputStates(channel)}</dd>
      <dt>Last cue</dt>
      <dd>${channel.status === "running" ? sinceLastCue(channel, now) : "—"}</dd>
      ${medialiveFact(channel)}
    </dl>
    ${fleetLine(channel.fleet)}
    ${channel.error === null ? "" : html`<p class="error-text" role="alert">${channel.error}</p>`}
    ${
      can(viewer, "operator")
        ? html`<footer>
            ${
              channel.status === "running"
                ? actionButton({
                    action: `/channels/${channel.id}/stop`,
                    label: "Stop",
                    kind: "danger",
                    confirm: `Stop channel ${channel.name}? Every output goes off air.`,
                  })
                : actionButton({ action: `/channels/${channel.id}/start`, label: "Start", kind: "primary" })
            }
          </footer>`
        : ""
    }
  </article>`;
};

export const overview = (
  channels: ReadonlyArray<ChannelView>,
  viewer: Viewer,
  thumbnails: TileStills | null,
  phase: (channelId: string) => SchedulePhase = () => "idle",
) => html`<section aria-labelledby="channels-title">
  <div class="toolbar">
    <h1 id="channels-title">Channels</h1>
    <label class="filter">Filter <input type="search" data-filter="#tiles .tile" placeholder="name or id" /></label>
    ${
      can(viewer, "operator")
        ? html`<form id="bulk" method="post" action="/channels/bulk" class="inline" data-confirm="Apply to every selected channel?">
            <button type="submit" name="action" value="start" class="primary">Start selected</button>
            <button type="submit" name="action" value="stop" class="danger">Stop selected</button>
          </form>`
        : ""
    }
  </div>
  ${
    channels.length === 0
      ? html`<p class="empty">No channels yet.${can(viewer, "admin") ? html` <a href="/channels/new">Create one</a>.` : ""}</p>`
      : ""
  }
  <div id="tiles" class="tiles">${channels.map((channel) => channelTile(channel, viewer, thumbnails, phase(channel.id)))}</div>
</section>`;
