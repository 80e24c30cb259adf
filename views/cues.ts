/**
 * The channel page's SCTE-35 cue log: each cue's summary, where it went (RTMP data messages, the outputs that
 * withheld it), the fields an operator reads first and the whole decoded cue; and the operator's "Insert a
 * break now" form above it.
 */
import { html } from "hono/html";
import type { ChannelView } from "../src/domain/views/views.ts";
import { can, type Viewer } from "./layout.ts";

export interface CueEntry {
  readonly at: string;
  readonly pid: number;
  readonly command: string;
  readonly summary: string;
  readonly cue: unknown;
  readonly error: string | null;
  /** The RTMP outputs that sent it as a data message (a cue pushed live has none yet). */
  readonly rtmp?: ReadonlyArray<{ readonly output: string; readonly name: string; readonly format: string }>;
  /** An operator's cue, and who inserted it. */
  readonly origin?: "input" | "operator";
  readonly by?: string;
  /** The outputs whose policy kept it from them, and the rule. */
  readonly withheld?: ReadonlyArray<{
    readonly output: string;
    readonly name: string;
    readonly rule: string;
  }>;
}

/** "inserted by ops · withheld from Partner (strip)": where the cue came from and who did not get it. */
const cueRoute = (cue: CueEntry) =>
  html`${
    cue.origin === "operator"
      ? html`<span class="badge cue-operator">inserted by ${cue.by ?? "an operator"}</span> `
      : ""
  }${
    cue.withheld === undefined || cue.withheld.length === 0
      ? ""
      : html`<small class="muted cue-withheld">withheld from ${cue.withheld
          .map((withheld) => `${withheld.name} (${withheld.rule})`)
          .join(", ")}</small>`
  }`;

const CUE_MESSAGES: Readonly<Record<string, string>> = {
  oncuepoint: "onCuePoint",
  onadcue: "onAdCue",
  youtube: "YouTube cue point",
};

/** "sent to YouTube (onCuePoint), Twitch (onAdCue)": where the cue went over RTMP, in small print. */
const cueSent = (cue: CueEntry) =>
  cue.rtmp === undefined || cue.rtmp.length === 0
    ? ""
    : html`<small class="muted cue-rtmp">sent to ${cue.rtmp
        .map((sent) => `${sent.name} (${CUE_MESSAGES[sent.format] ?? sent.format})`)
        .join(", ")}</small>`;

/** The fields an operator reads first in a decoded cue. */
const cueFields = (cue: unknown): ReadonlyArray<[string, string]> => {
  const fields: Array<[string, string]> = [];
  if (typeof cue !== "object" || cue === null) return fields;
  const section = cue as Record<string, unknown>;
  const command = section.splice_command as Record<string, unknown> | undefined;
  if (command?.splice_event_id !== undefined) fields.push(["event id", String(command.splice_event_id)]);
  if (command?.out_of_network_indicator !== undefined)
    fields.push([
      "out/in",
      command.out_of_network_indicator ? "out (break starts)" : "in (back to programme)",
    ]);
  const breakDuration = command?.break_duration as Record<string, unknown> | undefined;
  if (typeof breakDuration?.duration === "number")
    fields.push(["duration", `${(breakDuration.duration / 90_000).toFixed(1)} s`]);
  for (const descriptor of (section.descriptors as Array<Record<string, unknown>> | undefined) ?? []) {
    if (descriptor.segmentation_type_id === undefined) continue;
    fields.push([
      "segmentation",
      `type 0x${Number(descriptor.segmentation_type_id).toString(16).padStart(2, "0")}, event ${descriptor.segmentation_event_id}`,
    ]);
    if (typeof descriptor.segmentation_duration === "number")
      fields.push(["duration", `${(descriptor.segmentation_duration / 90_000).toFixed(1)} s`]);
    const upid = descriptor.segmentation_upid;
    if (upid !== undefined && upid !== null && JSON.stringify(upid) !== "{}")
      fields.push(["UPID", JSON.stringify(upid)]);
  }
  return fields;
};

export const cueItem = (cue: CueEntry) => html`<li>
  <details>
    <summary>
      <time datetime="${cue.at}">${cue.at.slice(11, 19)}</time> <strong>${cue.command}</strong> ${cue.summary}
      <span class="muted">PID ${cue.pid}</span> ${cueSent(cue)} ${cueRoute(cue)}
    </summary>
    <dl class="facts">${cueFields(cue.cue).map(([name, value]) => html`<dt>${name}</dt><dd>${value}</dd>`)}</dl>
    <pre>${JSON.stringify(cue.cue ?? { error: cue.error }, null, 2)}</pre>
  </details>
</li>`;

/** "Insert a break now": for an operator, while the channel runs; the browser asks before it goes. */
const insertBreak = (channel: ChannelView, viewer: Viewer) =>
  channel.status !== "running" || !can(viewer, "operator")
    ? ""
    : html`<form method="post" action="/channels/${channel.id}/cues" class="insert-break stacked" data-confirm="${`Insert a break into ${channel.name} now? Every output whose policy keeps cues gets it.`}">
        <label>Break
          <select name="command">
            <option value="splice_insert">splice_insert (avail)</option>
            <option value="time_signal">time_signal (placement)</option>
          </select>
        </label>
        <label>Duration (s) <input name="duration_s" inputmode="decimal" value="30" size="6" /></label>
        <button type="submit" class="primary">Insert break</button>
      </form>`;

export const cueLog = (
  cues: ReadonlyArray<CueEntry>,
  channel: ChannelView,
  viewer: Viewer,
) => html`<section aria-labelledby="cues-title">
  <h2 id="cues-title">SCTE-35 cues</h2>
  ${insertBreak(channel, viewer)}
  <ol id="cue-log" class="log" reversed>${[...cues].reverse().map(cueItem)}</ol>
  ${cues.length === 0 ? html`<p class="muted" id="no-cues">No cue yet.</p>` : ""}
</section>`;
