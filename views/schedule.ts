/**
 * A channel's schedule on its page: the phase now (a badge), the occurrence in progress and the next ones with
 * their times in the window's own zone, and for an operator the commands (go-live, extend, end, skip) as
 * buttons. On the overview, the badge of a channel whose scheduled window is open. The data comes in: the
 * schedule's view as the API gives it (domain/schedule/schedule-view.ts).
 */

import { html } from "hono/html";
import type { SchedulePhase } from "../src/domain/schedule/schedule-phases.ts";
import type { OccurrenceView, ScheduleView } from "../src/domain/schedule/schedule-view.ts";
import { actionButton, can, type Viewer } from "./layout.ts";

const PHASE_WORDS: Readonly<Record<SchedulePhase, string>> = {
  idle: "idle",
  warming: "warming up",
  preroll: "preroll",
  live: "live",
  postroll: "postroll",
  ending: "ending",
};

/** "SCHEDULE · preroll": shown on the channel's page and its tile while a window is open. */
export const schedulePhaseBadge = (phase: SchedulePhase) =>
  phase === "idle"
    ? ""
    : html`<span class="badge schedule-badge phase-${phase}" title="The channel's schedule: ${PHASE_WORDS[phase]}">SCHEDULE <small>· ${PHASE_WORDS[phase]}</small></span>`;

/** An instant in the window's zone: "Sat 5 Dec 20:00". */
const local = (iso: string, zone: string) =>
  new Intl.DateTimeFormat("en-GB", {
    timeZone: zone,
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).format(new Date(iso));

const timesRow = (
  occurrence: OccurrenceView,
) => html`<tr class="${occurrence.phase === "idle" ? "" : "current"}">
  <td>${occurrence.window}</td>
  <td><time datetime="${occurrence.warm_at}">${local(occurrence.warm_at, occurrence.time_zone)}</time></td>
  <td><time datetime="${occurrence.preroll_at}">${local(occurrence.preroll_at, occurrence.time_zone)}</time></td>
  <td><strong><time datetime="${occurrence.live_at}">${local(occurrence.live_at, occurrence.time_zone)}</time></strong></td>
  <td><time datetime="${occurrence.postroll_at}">${local(occurrence.postroll_at, occurrence.time_zone)}</time></td>
  <td><time datetime="${occurrence.end_at}">${local(occurrence.end_at, occurrence.time_zone)}</time></td>
  <td>${occurrence.time_zone}</td>
  <td>${occurrence.skipped ? "skipped" : occurrence.phase === "idle" ? "—" : PHASE_WORDS[occurrence.phase]}${occurrence.extended_s > 0 ? ` (+${occurrence.extended_s} s)` : ""}</td>
</tr>`;

/** What the occurrence in progress waits for, or has done, in words. */
const currentWords = (current: OccurrenceView) =>
  current.waiting === "go_live"
    ? html`<p class="warning-text" role="status">Waiting for an operator's go-live: the outputs show the slate.</p>`
    : current.waiting === "end"
      ? html`<p class="warning-text" role="status">The programme's time is over: waiting for an operator's end.</p>`
      : html`<p class="muted">Done: ${current.done.length === 0 ? "nothing yet" : current.done.map((action) => action.replaceAll("_", " ")).join(", ")}.</p>`;

const commandButtons = (channelId: string, channelName: string, current: OccurrenceView | null) => {
  const path = (kind: string) => `/channels/${channelId}/schedule/${kind}`;
  const phase = current?.phase ?? "idle";
  return html`<div class="actions">
    ${
      phase === "warming" || phase === "preroll"
        ? actionButton({ action: path("go-live"), label: "Go live", kind: "primary" })
        : ""
    }
    ${phase === "preroll" || phase === "live" ? actionButton({ action: path("end"), label: "End now", kind: "danger", confirm: `End the programme of ${channelName} now? The postroll starts at once.` }) : ""}
    ${current !== null ? actionButton({ action: path("extend"), label: "Extend 5 min", fields: { seconds: "300" } }) : ""}
    ${actionButton({
      action: path("skip"),
      label: current === null ? "Skip the next" : "Skip",
      confirm:
        current === null
          ? `Skip the next occurrence of ${channelName}'s schedule?`
          : `Skip the occurrence in progress of ${channelName}? What it did is undone at once.`,
    })}
  </div>`;
};

/** Which outputs the schedule runs (its windows' `outputs`): they are off outside its windows. */
const ownedWords = (windows: ReadonlyArray<unknown>) => {
  const lists = windows.map((window) => (window as { readonly outputs?: unknown }).outputs ?? "all");
  const ids = [...new Set(lists.flatMap((outputs) => (Array.isArray(outputs) ? outputs.map(String) : [])))];
  const which = lists.includes("all") ? "every output" : `the outputs ${ids.join(", ")}`;
  return html`<p class="muted schedule-owns">The schedule runs ${which}: off outside its windows, on from each window's preroll to its end.</p>`;
};

/** The channel's schedule: nothing when it has none (set in the API or by import). */
export const scheduleSection = (
  channel: { readonly id: string; readonly name: string },
  schedule: ScheduleView | null,
  viewer: Viewer,
) => {
  if (schedule === null) return "";
  return html`<section id="ch-schedule" aria-labelledby="schedule-title">
    <h2 id="schedule-title">Schedule ${schedulePhaseBadge(schedule.phase)}</h2>
    ${schedule.current === null ? html`<p class="muted">No window is open.</p>` : currentWords(schedule.current)}
    ${ownedWords(schedule.windows)}
    <div class="scroll"><table class="schedule-table">
      <thead><tr><th>Window</th><th>Warm-up</th><th>Preroll</th><th>Live</th><th>Postroll</th><th>End</th><th>Zone</th><th>Phase</th></tr></thead>
      <tbody>${schedule.next.map(timesRow)}</tbody>
    </table></div>
    <p class="muted"><a href="/channels/${channel.id}/schedule.ics">Calendar (.ics)</a></p>
    ${can(viewer, "operator") ? commandButtons(channel.id, channel.name, schedule.current) : ""}
  </section>`;
};
