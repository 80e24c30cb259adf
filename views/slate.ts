/**
 * The slate on the channel page and its overview tile: the SLATE badge, the section's state in words (since
 * when, why, after how long an alert), the picture, the operator's switch and an admin's picture upload.
 */
import { html } from "hono/html";
import type { ChannelView } from "../src/domain/views/views.ts";
import { actionButton, can, duration, utc, type Viewer } from "./layout.ts";

type Slate = NonNullable<ChannelView["slate"]>;

/** Why the slate is on, short for a badge and long for a sentence (the event log's too). */
export const SLATE_WORDS: Readonly<Record<NonNullable<Slate["reason"]>, { short: string; long: string }>> = {
  input_lost: { short: "input lost", long: "every input is silent" },
  manual: { short: "by hand", long: "put there by an operator" },
  unhealthy: { short: "inputs unhealthy", long: "every input is unhealthy by the channel's health rules" },
  scheduled: { short: "scheduled", long: "the schedule's preroll or postroll" },
};

/**
 * "SLATE · input lost": the outputs carry the slate's picture, not the programme; shown on the channel's
 * head and its overview tile while it lasts (both re-rendered with every snapshot).
 */
export const slateBadge = (channel: ChannelView) => {
  const slate = channel.slate;
  if (slate === null || !slate.on) return "";
  const reason = slate.reason === null ? null : SLATE_WORDS[slate.reason];
  const title = `On the slate${reason === null ? "" : `: ${reason.long}`}${slate.since === null ? "" : ` since ${slate.since.slice(11, 19)} UTC`}; the outputs carry the slate's picture, not the programme`;
  return html`<span class="badge slate-badge" title="${title}">SLATE${reason === null ? "" : html` <small>· ${reason.short}</small>`}</span>`;
};

/** Whether the slate is on air, and why, or what it would do, in words. */
const slateStateWords = (channel: ChannelView, slate: Slate) => {
  if (slate.on)
    return html`${slateBadge(channel)} <span>on air${slate.reason === null ? "" : ` — ${SLATE_WORDS[slate.reason].long}`}${slate.since === null ? "" : html`, since ${utc(slate.since)}`}</span>`;
  if (channel.status !== "running")
    return slate.manual
      ? html`<span class="badge state-slate-pending">by hand</span> <span>off: the channel is not running; it goes on the slate by hand as soon as it runs</span>`
      : html`<span class="muted">off: the channel is not running</span>`;
  if (slate.manual)
    return html`<span class="badge state-slate-pending">by hand</span> <span>put on the slate by hand, not on air yet${slate.problem === null ? (slate.preparing ? ": the picture is being prepared" : "") : ""}</span>`;
  return html`<span>off: the programme is on air</span>`;
};

/** Whether a clip in the input's format is ready, being made, or cannot be: in words. */
const slateClipWords = (channel: ChannelView, slate: Slate) => {
  if (slate.problem !== null) return html`<span class="error-text">${slate.problem}</span>`;
  if (slate.ready) return html`ready: matches ${slate.format ?? "the input"}`;
  if (slate.preparing) return "preparing…";
  return html`<span class="muted">${channel.status === "running" ? "made once the input's format is known" : "made when the channel runs, in its input's format"}</span>`;
};

const seconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`);

/**
 * The slate's state, the part a snapshot changes (a live page may swap it by its id): on air or off and why,
 * since when, seconds on it, whether its clip is ready, its times and picture, and the operator's switch. The
 * picture itself and the upload stay outside it, so a chosen file survives an update.
 */
export const slateState = (channel: ChannelView, viewer: Viewer) => {
  const slate = channel.slate;
  if (slate === null) return html`<div id="ch-slate-state"></div>`;
  return html`<div id="ch-slate-state">
    <dl class="facts slate-facts">
      <dt>State</dt>
      <dd>${slateStateWords(channel, slate)}</dd>
      <dt>On the slate</dt>
      <dd>${channel.status === "running" ? `${duration(slate.seconds)} since the channel started` : "—"}</dd>
      <dt>Clip</dt>
      <dd>${slateClipWords(channel, slate)}</dd>
      <dt>Starts</dt>
      <dd>${slate.after_ms} ms (${seconds(slate.after_ms)}) after every input went silent</dd>
      <dt>Alert</dt>
      <dd>after ${duration(slate.alert_after_s)} on the slate</dd>
      <dt>Picture</dt>
      <dd>${
        slate.image === null
          ? "generated card with the channel's name"
          : html`${slate.image.width}×${slate.image.height} ${slate.image.type === "image/png" ? "PNG" : "JPEG"}, ${Math.ceil(slate.image.bytes / 1024)} KiB`
      }</dd>
    </dl>
    ${
      can(viewer, "operator")
        ? html`<div class="actions">${
            slate.manual
              ? actionButton({
                  action: `/channels/${channel.id}/slate`,
                  label: "Take off slate",
                  kind: "primary",
                  fields: { on: "false" },
                })
              : actionButton({
                  action: `/channels/${channel.id}/slate`,
                  label: "Put on slate",
                  fields: { on: "true" },
                  confirm: `Put channel ${channel.name} on the slate now? Every output shows the slate's picture instead of the programme until someone takes it off.`,
                })
          }</div>`
        : ""
    }
  </div>`;
};

/**
 * The channel's slate: what it shows when every input is silent (or an operator says so), its times, its
 * picture, and for an admin the picture's upload and the generated card. Without a slate: one line, and
 * where to turn it on.
 */
export const slateSection = (channel: ChannelView, viewer: Viewer, problem?: string) => {
  const slate = channel.slate;
  if (slate === null)
    return html`<section id="ch-slate" aria-labelledby="slate-title">
      <h2 id="slate-title">Slate</h2>
      <p class="muted">No slate: when every input is silent, the outputs carry nothing.${
        can(viewer, "admin")
          ? html` To show a picture instead, set “Slate after (ms)” in <a href="/channels/${channel.id}/edit">Edit channel</a>.`
          : ""
      }</p>
    </section>`;
  return html`<section id="ch-slate" aria-labelledby="slate-title">
    <h2 id="slate-title">Slate</h2>
    ${slateState(channel, viewer)}
    ${
      slate.image === null
        ? ""
        : html`<img class="slate-picture" src="/channels/${channel.id}/slate/image?v=${slate.image.sha256.slice(0, 12)}" alt="The slate's picture for ${channel.name}" width="${slate.image.width}" height="${slate.image.height}" />`
    }
    ${
      can(viewer, "admin")
        ? html`<form method="post" action="/channels/${channel.id}/slate/image" enctype="multipart/form-data" class="stacked narrow">
            <label>New picture
              <input type="file" name="image" accept="image/png,image/jpeg" required ${problem === undefined ? "" : html`aria-invalid="true" aria-describedby="slate-image-error"`} />
            </label>
            ${problem === undefined ? "" : html`<p class="field-error" id="slate-image-error" role="alert">${problem}</p>`}
            <p class="hint">PNG or JPEG, at most 2 MiB, scaled to the stream's size.</p>
            <div><button type="submit">Upload picture</button></div>
          </form>
          ${
            slate.image === null
              ? ""
              : html`<div class="actions">${actionButton({
                  action: `/channels/${channel.id}/slate/card`,
                  label: "Use the generated card",
                  confirm: `Drop the uploaded picture? The slate of ${channel.name} then shows a card with its name.`,
                })}</div>`
          }`
        : ""
    }
  </section>`;
};
