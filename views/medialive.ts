/**
 * The AWS MediaLive channel linked to one of ours, as the channel page shows it (a section the WebSocket
 * replaces by id): its state in words, pipelines, how long it has run, its UDP/RTP destinations checked
 * against our inputs, warnings in words, its egress endpoints, the cost guard's pending stop (with the button
 * that calls it off) and start and stop for operators. The overview tile gets one line of it.
 */
import { html } from "hono/html";
import type { MediaLiveView } from "../src/domain/medialive/medialive.ts";
import type { ChannelView } from "../src/domain/views/views.ts";
import { actionButton, can, duration, type Viewer } from "./layout.ts";

/** MediaLive's state words, coloured as our own: running green, changing amber, failed red, idle plain. */
const tone = (state: string | null): string => {
  if (state === "RUNNING") return "running";
  if (state === null || state === "IDLE") return "stopped";
  if (state.endsWith("_FAILED") || state === "RECOVERING") return "error";
  return "starting";
};

const medialiveBadge = (view: MediaLiveView) =>
  html`<span class="badge state-${tone(view.state)}">${view.state ?? "not known yet"}</span>`;

const pendingStop = (view: MediaLiveView) =>
  view.pending_stop === null
    ? ""
    : view.pending_stop.held
      ? html`<p class="muted" role="status">Cost guard: stop called off until an output sends again.</p>`
      : html`<p class="warning-text" role="status">
          Cost guard: no output is sending; MediaLive will be stopped at
          <time datetime="${view.pending_stop.at}">${view.pending_stop.at.slice(11, 16)} UTC</time>.
        </p>`;

const actions = (channel: ChannelView, view: MediaLiveView, viewer: Viewer) => {
  if (!can(viewer, "operator")) return "";
  const base = `/channels/${channel.id}/medialive`;
  const running = view.state === "RUNNING" || view.state === "RECOVERING";
  return html`<div class="actions">
    ${
      view.state === "IDLE" || view.state === null
        ? actionButton({ action: `${base}/start`, label: "Start MediaLive", kind: "primary" })
        : ""
    }
    ${
      running
        ? actionButton({
            action: `${base}/stop`,
            label: "Stop MediaLive",
            kind: "danger",
            confirm: `Stop MediaLive channel ${view.channel_id}? Nothing reaches ${channel.name} until it runs again.`,
          })
        : ""
    }
    ${
      view.pending_stop !== null && !view.pending_stop.held
        ? actionButton({ action: `${base}/keep`, label: "Keep running" })
        : ""
    }
  </div>`;
};

export const medialiveSection = (channel: ChannelView, viewer: Viewer) => {
  const view = channel.medialive;
  if (view === undefined) return html`<section id="ch-medialive" hidden></section>`;
  return html`<section id="ch-medialive" aria-labelledby="medialive-link-title">
    <h2 id="medialive-link-title">
      MediaLive <a href="${view.console_url}" rel="noreferrer" target="_blank">${view.channel_id}</a>
      <span class="muted">· ${view.region}</span>
    </h2>
    <dl class="facts">
      <dt>State</dt>
      <dd>${medialiveBadge(view)}${view.running_s === null ? "" : html` <span class="muted">running ${duration(view.running_s)}</span>`}</dd>
      <dt>Pipelines running</dt>
      <dd>${view.pipelines_running ?? "—"}</dd>
      <dt>SCTE-35</dt>
      <dd>${view.scte35_passthrough === null ? "—" : view.scte35_passthrough ? "passed through" : html`<strong>removed</strong>`}</dd>
      <dt>Egress endpoints</dt>
      <dd>${view.egress_endpoints.length === 0 ? html`<span class="muted">none given</span>` : view.egress_endpoints.join(", ")}${view.egress_allowlist ? html` <span class="muted">(the inputs' allowed senders)</span>` : ""}</dd>
      <dt>Cost guard</dt>
      <dd>${view.stop_when_idle ? `stops it after ${view.idle_minutes} min without a sending output` : "off"}</dd>
    </dl>
    ${view.error === null ? "" : html`<p class="error-text" role="alert">${view.error}</p>`}
    ${view.warnings.length === 0 ? "" : html`<ul class="warnings">${view.warnings.map((warning) => html`<li class="warning-text">${warning}</li>`)}</ul>`}
    ${
      view.destinations.length === 0
        ? ""
        : html`<div class="scroll"><table class="compact">
            <thead><tr><th scope="col">Output</th><th scope="col">Pipeline</th><th scope="col">Destination</th><th scope="col">Our input</th></tr></thead>
            <tbody>${view.destinations.map(
              (destination) => html`<tr>
                <td>${destination.output}</td>
                <td>${destination.pipeline}</td>
                <td class="url">${destination.url}</td>
                <td>${destination.matches ? html`<span class="badge state-running">matches</span>` : html`<span class="badge state-error">does not match</span>`}</td>
              </tr>`,
            )}</tbody>
          </table></div>`
    }
    ${pendingStop(view)}
    ${actions(channel, view, viewer)}
  </section>`;
};

/** The overview tile's line: state, and a pending stop. */
export const medialiveFact = (channel: ChannelView) =>
  channel.medialive === undefined
    ? ""
    : html`<dt>MediaLive</dt>
      <dd>${medialiveBadge(channel.medialive)}${channel.medialive.pending_stop !== null && !channel.medialive.pending_stop.held ? html` <span class="warning-text">stop pending</span>` : ""}${channel.medialive.warnings.length > 0 ? html` <span class="warning-text">${channel.medialive.warnings.length} warning${channel.medialive.warnings.length === 1 ? "" : "s"}</span>` : ""}</dd>`;
