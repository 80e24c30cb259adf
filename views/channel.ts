/**
 * One channel's page, in sections the WebSocket replaces by id as the channel changes: the head (state, on
 * air, actions), inputs (bitrate, RTP loss, continuity and TR 101 290 counters, the operator's switch, and
 * each input's health by the channel's rules with a lamp per rule: health.ts), outputs (real state in words,
 * last error, uptime, bitrate with a sparkline, reconnects, queue drops, SRT and RIST link figures (rist.ts), and
 * their actions),
 * programs and PIDs, the SCTE-35 cue log (new cues on top) and the event log (new events at the bottom), the
 * add-output form with presets, and the note of what to set in MediaLive.
 * The slate (what the outputs carry when every input is silent, or an operator says so) has its badge on the
 * head and its own section (slate.ts); the cue log is cues.ts, the event log events.ts.
 */

import { html, raw } from "hono/html";
import { type ChannelEvent, dropReasonsText } from "../src/domain/events/events.ts";
import type { ScheduleView } from "../src/domain/schedule/schedule-view.ts";
import type { ChannelStats, ChannelView, OutputView } from "../src/domain/views/views.ts";
import { type CueEntry, cueLog } from "./cues.ts";
import { eventLog, switchReason } from "./events.ts";
import { fleetLine } from "./fleet.ts";
import { healthBadge, healthPanel } from "./health.ts";
import { actionButton, bitrate, can, duration, stateBadge, tagBadges, type Viewer } from "./layout.ts";
import { medialiveSection } from "./medialive.ts";
import { addOutputForm } from "./presets.ts";
import { ristCell, ristPanel } from "./rist.ts";
import { rtmpPanel } from "./rtmp.ts";
import { scheduleSection } from "./schedule.ts";
import { slateBadge, slateSection } from "./slate.ts";

/** A file:// output's recordings, oldest first, as the page lists them. */
export interface RecordingsEntry {
  readonly outputId: string;
  readonly outputName: string;
  readonly files: ReadonlyArray<{
    readonly name: string;
    readonly bytes: number;
    readonly started_at: string;
  }>;
}

const megabytes = (bytes: number) => `${(bytes / 1_000_000).toFixed(1)} MB`;

/** Recordings of the channel's file:// outputs, each a download link (with the page's session). */
const recordingsSection = (channelId: string, entries: ReadonlyArray<RecordingsEntry>) =>
  entries.length === 0
    ? ""
    : html`<section id="ch-recordings" aria-labelledby="recordings-title">
  <h2 id="recordings-title">Recordings</h2>
  ${entries.map(
    (entry) => html`<h3>${entry.outputName}</h3>
    ${
      entry.files.length === 0
        ? html`<p class="muted">No recordings yet.</p>`
        : html`<table>
          <thead><tr><th>Started</th><th>Size</th><th>File</th></tr></thead>
          <tbody>${entry.files.map(
            (file) => html`<tr>
              <td><time datetime="${file.started_at}">${file.started_at.replace("T", " ")}</time></td>
              <td>${megabytes(file.bytes)}</td>
              <td><a href="/channels/${channelId}/outputs/${entry.outputId}/recordings/${file.name}" download>${file.name}</a></td>
            </tr>`,
          )}</tbody>
        </table>`
    }`,
  )}
</section>`;

export const channelHead = (channel: ChannelView, viewer: Viewer) => html`<section id="ch-head" class="head">
  <div class="title">
    <h1>${channel.name}</h1>
    ${tagBadges(channel)}
    ${stateBadge(channel.status)}
    ${channel.status === "running" && channel.input === "lost" ? html`<span class="badge state-lost">input lost</span>` : ""}
    ${slateBadge(channel)}
    ${channel.status === "running" ? html`<span class="muted">up ${duration(channel.uptime)}</span>` : ""}
  </div>
  ${fleetLine(channel.fleet)}
  ${channel.error === null ? "" : html`<p class="error-text" role="alert">${channel.error}</p>`}
  ${
    channel.last_switch === null
      ? ""
      : html`<p class="muted">
          Last switch: ${channel.last_switch.from} → ${channel.last_switch.to} (${switchReason(channel.last_switch)}) at
          <time datetime="${channel.last_switch.at}">${channel.last_switch.at.slice(11, 19)} UTC</time>
        </p>`
  }
  <div class="actions">
    ${
      can(viewer, "operator")
        ? channel.status === "running"
          ? actionButton({
              action: `/channels/${channel.id}/stop`,
              label: "Stop channel",
              kind: "danger",
              confirm: `Stop channel ${channel.name}? Every output goes off air.`,
            })
          : actionButton({ action: `/channels/${channel.id}/start`, label: "Start channel", kind: "primary" })
        : ""
    }
    ${can(viewer, "admin") ? html`<a class="button" href="/channels/${channel.id}/edit">Edit channel</a>` : ""}
  </div>
</section>`;

type Rejected = ChannelView["inputs"][number]["rejected"];

const REJECTED_WORDS: ReadonlyArray<[keyof Rejected, string]> = [
  ["not_ts", "not whole TS"],
  ["other_kind", "other input kind"],
  ["foreign_ssrc", "foreign SSRC"],
  ["payload_type", "wrong payload type"],
  ["sender_not_allowed", "sender not allowed"],
  ["own_output", "sent by one of our outputs (a loop)"],
];

/** Datagrams dropped before any output, all reasons together; the title says which. */
const rejectedTotal = (rejected: Rejected) => REJECTED_WORDS.reduce((sum, [key]) => sum + rejected[key], 0);
const rejectedTitle = (rejected: Rejected) =>
  REJECTED_WORDS.map(([key, words]) => `${words}: ${rejected[key]}`).join(", ");

export const inputsSection = (channel: ChannelView, viewer: Viewer) => {
  const mode = channel.redundancy?.mode ?? "none";
  const canSwitch = can(viewer, "operator") && channel.status === "running" && mode === "failover";
  return html`<section id="ch-inputs" aria-labelledby="inputs-title">
    <h2 id="inputs-title">Inputs <span class="muted">· ${mode === "none" ? "no backup" : mode === "merge" ? "2022-7 merge" : `failover, revert ${channel.redundancy?.revert}`}</span></h2>
    ${
      channel.inputs.length === 0
        ? html`<p class="muted">
            Listening on ${channel.rtp_ip}:${channel.rtp_port}${channel.backup_rtp_port === null ? "" : ` and ${channel.backup_rtp_ip}:${channel.backup_rtp_port}`} once started.
          </p>`
        : html`<div class="scroll"><table>
            <thead>
              <tr>
                <th scope="col">Input</th><th scope="col">On air</th><th scope="col">Health</th><th scope="col">Bitrate</th>
                <th scope="col">RTP lost</th><th scope="col">CC errors</th><th scope="col">Sync loss</th><th scope="col">PAT</th>
                <th scope="col">PMT</th><th scope="col">PID</th><th scope="col">Rejected</th>${canSwitch ? html`<th scope="col">Switch</th>` : ""}
              </tr>
            </thead>
            <tbody>
              ${channel.inputs.map(
                (input) => html`<tr>
                  <th scope="row">${input.role} <span class="muted">${input.ip}:${input.port} · ${input.input_kind}</span></th>
                  <td>${input.active ? stateBadge("on-air") : html`<span class="muted">standby</span>`}</td>
                  <td>${stateBadge(input.receiving ? "receiving" : "silent")}${input.health === null ? "" : html` ${healthBadge(input.health, true)}`}</td>
                  <td>${bitrate(input.bitrate_bps)}</td>
                  <td>${input.rtp === null ? html`<span class="muted">—</span>` : input.rtp.lost}</td>
                  <td>${input.continuity_errors}</td>
                  <td>${input.tr101290.sync_loss}</td>
                  <td>${input.tr101290.pat_error}</td>
                  <td>${input.tr101290.pmt_error}</td>
                  <td>${input.tr101290.pid_error}</td>
                  <td title="${rejectedTitle(input.rejected)}">${rejectedTotal(input.rejected)}</td>
                  ${
                    canSwitch
                      ? html`<td>${
                          input.active
                            ? ""
                            : actionButton({
                                action: `/channels/${channel.id}/input`,
                                label: `Put ${input.role} on air`,
                                fields: { active: input.role },
                                confirm: `Switch channel ${channel.name} to its ${input.role} input now?`,
                              })
                        }</td>`
                      : ""
                  }
                </tr>`,
              )}
            </tbody>
          </table></div>
          ${healthPanel(channel)}${ristPanel(channel)}${rtmpPanel(channel)}`
    }
  </section>`;
};

/** Bitrate history of one output as a small inline SVG line. */
export const sparkline = (values: ReadonlyArray<number>) => {
  if (values.length < 2) return html`<svg class="spark" viewBox="0 0 60 16" aria-hidden="true"></svg>`;
  const max = Math.max(...values, 1);
  const points = values
    .map(
      (value, i) => `${((i / (values.length - 1)) * 60).toFixed(1)},${(15 - (value / max) * 14).toFixed(1)}`,
    )
    .join(" ");
  return html`<svg class="spark" viewBox="0 0 60 16" aria-hidden="true"><polyline points="${points}" /></svg>`;
};

/** What an RTMP output's remux could not frame, when there was any: how much, by reason, the latest in its title. */
const remuxDrops = (output: OutputView) => {
  const dropped = output.rtmp?.remux_dropped;
  const frames = dropped === undefined ? 0 : Object.values(dropped).reduce((sum, count) => sum + count, 0);
  if (frames === 0) return "";
  return html`<br /><small class="muted remux-drops" title="${output.rtmp?.remux_last_drop ?? ""}">${frames} left out (${dropReasonsText(
    Object.fromEntries(Object.entries(dropped ?? {}).filter(([, count]) => count > 0)),
  )})</small>`;
};

const withheldWords = (cues: number) =>
  cues === 0 ? "" : ` · ${cues} ${cues === 1 ? "cue" : "cues"} withheld`;

/** What the output's policy takes, in words, and what of it cannot apply to the input as it is. */
const policyWords = (output: OutputView) => {
  const policy = output.policy;
  if (policy == null) return "";
  const scte35 = policy.scte35;
  const parts = [
    scte35 === undefined || scte35 === "pass"
      ? null
      : scte35 === "strip"
        ? "SCTE-35 stripped"
        : "SCTE-35 filtered",
    policy.program === undefined ? null : `programme ${policy.program}`,
    policy.pids === undefined
      ? null
      : policy.pids.keep !== undefined
        ? `PIDs ${policy.pids.keep.join(", ")} only`
        : `without PIDs ${(policy.pids.drop ?? []).join(", ")}`,
    policy.remap === undefined
      ? null
      : `PIDs ${Object.entries(policy.remap)
          .map(([from, to]) => `${from}→${to}`)
          .join(", ")}`,
  ].filter((part) => part !== null);
  const problems = output.policy_status?.problems ?? [];
  return html`<br /><small class="muted policy" title="${JSON.stringify(policy)}">policy: ${parts.join(" · ") || "untouched"}${withheldWords(
    output.policy_status?.cues_withheld ?? 0,
  )}</small>${problems.map((problem) => html`<br /><span class="error-text policy-problem">${problem}</span>`)}`;
};

const outputRow = (
  channel: ChannelView,
  output: OutputView,
  viewer: Viewer,
  history: ReadonlyArray<number>,
) => {
  const state = output.state;
  return html`<tr id="out-${output.id}">
    <th scope="row">${output.name}<br /><span class="muted url">${output.url}</span>${
      output.protocol === "hls"
        ? html`<br /><a href="/hls/${channel.id}/${output.id}/index.m3u8">playlist</a>`
        : ""
    }</th>
    <td>${stateBadge(state)}${output.last_error === null || state === "connected" ? "" : html`<br /><span class="error-text">${output.last_error}</span>`}${
      output.rtmp?.left_out == null
        ? ""
        : html`<br /><small class="muted left-out">${output.rtmp.left_out}</small>`
    }${remuxDrops(output)}${policyWords(output)}${
      output.schedule === undefined
        ? ""
        : html`<br /><small class="muted schedule-hold">${output.schedule}</small>`
    }</td>
    <td>${state === "connected" ? duration(output.uptime) : "—"}</td>
    <td class="nowrap">${bitrate(output.bitrate_bps)} ${sparkline(history)}</td>
    <td>${output.reconnects}</td>
    <td>${output.queue_drops}</td>
    <td>${ristCell(output) ?? (output.srt === null ? "—" : html`RTT ${output.srt.rtt_ms.toFixed(1)} ms<br />retransmits ${output.srt.retransmits}<br />lost ${output.srt.loss_packets}`)}</td>
    ${
      can(viewer, "operator")
        ? html`<td class="row-actions">
            ${
              output.enabled
                ? actionButton({
                    action: `/channels/${channel.id}/outputs/${output.id}/disable`,
                    label: "Disable",
                    confirm: `Disable output ${output.name}? It stops sending and stays configured.`,
                  })
                : // The schedule runs it: on at its window, refused before.
                  output.schedule !== undefined
                  ? ""
                  : actionButton({
                      action: `/channels/${channel.id}/outputs/${output.id}/enable`,
                      label: "Enable",
                    })
            }
            <a class="button" href="/channels/${channel.id}/outputs/${output.id}/edit">Edit</a>
            ${actionButton({ action: `/channels/${channel.id}/outputs/${output.id}/clone`, label: "Clone" })}
            ${actionButton({
              action: `/channels/${channel.id}/outputs/${output.id}/remove`,
              label: "Remove",
              kind: "danger",
              confirm: `Remove output ${output.name} for good?`,
            })}
          </td>`
        : ""
    }
  </tr>`;
};

export const outputsSection = (
  channel: ChannelView,
  viewer: Viewer,
  history: (outputId: string) => ReadonlyArray<number>,
) => html`<section id="ch-outputs" aria-labelledby="outputs-title">
  <h2 id="outputs-title">Outputs</h2>
  ${
    channel.outputs.length === 0
      ? html`<p class="muted">No outputs yet.</p>`
      : html`<div class="scroll"><table>
          <thead>
            <tr>
              <th scope="col">Output</th><th scope="col">State</th><th scope="col">Up</th><th scope="col">Bitrate</th>
              <th scope="col">Reconnects</th><th scope="col">Queue drops</th><th scope="col">SRT link</th>
              ${can(viewer, "operator") ? html`<th scope="col">Actions</th>` : ""}
            </tr>
          </thead>
          <tbody>${channel.outputs.map((output) => outputRow(channel, output, viewer, history(output.id)))}</tbody>
        </table></div>`
  }
</section>`;

export const pidsSection = (stats: ChannelStats | null) => {
  const input = stats?.inputs.find((candidate) => candidate.active);
  return html`<section id="ch-pids" aria-labelledby="pids-title">
    <h2 id="pids-title">Programs and PIDs</h2>
    ${
      input === undefined
        ? html`<p class="muted">Shown while the channel runs.</p>`
        : html`<p>${input.programs.map((program) => html`Program ${program.program} (PMT PID ${program.pmt_pid}, PCR PID ${program.pcr_pid ?? "—"}) `)}</p>
          <div class="scroll"><table class="compact">
            <thead><tr><th scope="col">PID</th><th scope="col">Stream type</th><th scope="col">Packets</th><th scope="col">CC errors</th></tr></thead>
            <tbody>${input.pids.map(
              (pid) => html`<tr>
                <td>${pid.pid} <span class="muted">0x${pid.pid.toString(16).padStart(4, "0")}</span></td>
                <td>${streamTypeName(pid.stream_type, pid.scte35)}</td>
                <td>${pid.packets}</td>
                <td>${pid.continuity_errors}</td>
              </tr>`,
            )}</tbody>
          </table></div>`
    }
  </section>`;
};

const STREAM_TYPES: Readonly<Record<number, string>> = {
  2: "MPEG-2 video",
  3: "MPEG-1 audio",
  4: "MPEG-2 audio",
  6: "private data (PES)",
  15: "AAC audio",
  17: "AAC LATM audio",
  27: "H.264 video",
  36: "H.265 video",
  129: "AC-3 audio",
  134: "SCTE-35 cues",
  135: "E-AC-3 audio",
};
const streamTypeName = (type: number | null, scte35: boolean) =>
  type === null
    ? scte35
      ? "SCTE-35 cues"
      : "PSI / not in a PMT"
    : `${STREAM_TYPES[type] ?? "other"} (0x${type.toString(16).padStart(2, "0")})`;

const mediaLiveNote = (channel: ChannelView, host: string) => {
  const note = [
    `MediaLive output group for "${channel.name}": UDP (or RTP) output group`,
    `  Destination A: ${channel.backup_rtp_port === null ? "" : "(pipeline 0) "}rtp://${host}:${channel.rtp_port}`,
    ...(channel.backup_rtp_port === null
      ? []
      : [`  Destination B: (pipeline 1) rtp://${host}:${channel.backup_rtp_port}`]),
    "  Container: MPEG-TS, RTP on; buffer 1000 ms",
    "  SCTE-35 behaviour: PASSTHROUGH; SCTE-35 PID 500 (any PID works)",
    "  PCR period: 40 ms (PCR control CONFIGURED_PCR_PERIOD)",
    "  Video: H.264, audio: AAC; the stream is forwarded untouched",
  ].join("\n");
  const linked = channel.medialive;
  return html`<section aria-labelledby="medialive-title">
    <h2 id="medialive-title">What to set in MediaLive</h2>
    ${
      linked === undefined
        ? ""
        : html`<p>Linked channel: <a href="${linked.console_url}" rel="noreferrer" target="_blank">MediaLive channel ${linked.channel_id} in ${linked.region}</a> (AWS console).</p>`
    }
    <pre id="medialive-note">${note}</pre>
    <button type="button" data-copy="#medialive-note">Copy</button>
  </section>`;
};

/**
 * A player for the channel's own preview rendition (short HLS segments the service makes only while a page
 * asks for them). Nothing loads until it is opened: then hls.js comes from /assets and the playlist from
 * /ui/preview; closing it stops the player, and the service ends the rendition once nobody asks.
 */
const previewSection = (
  channel: ChannelView,
) => html`<section id="preview-section" aria-labelledby="preview-title">
  <details data-preview="/ui/preview/${channel.id}/index.m3u8">
    <summary id="preview-title">Preview</summary>
    <video muted playsinline controls width="640" height="360" aria-label="Preview of ${channel.name}"></video>
    <p class="muted" data-preview-status role="status">${channel.status === "running" ? "" : "The channel is not running."}</p>
  </details>
</section>`;

export const channelPage = (options: {
  readonly channel: ChannelView;
  readonly stats: ChannelStats | null;
  readonly viewer: Viewer;
  readonly cues: ReadonlyArray<CueEntry>;
  readonly events: ReadonlyArray<ChannelEvent>;
  readonly history: (outputId: string) => ReadonlyArray<number>;
  readonly host: string;
  readonly recordings?: ReadonlyArray<RecordingsEntry>;
  /** Why the last picture upload was refused, in words. */
  readonly slateProblem?: string;
  /** The channel's schedule as the API shows it; null without one. */
  readonly schedule?: ScheduleView | null;
  readonly form?: {
    readonly values: Readonly<Record<string, string>>;
    readonly errors: Readonly<Record<string, string>>;
  };
}) => html`${channelHead(options.channel, options.viewer)}
  ${medialiveSection(options.channel, options.viewer)}
  ${scheduleSection(options.channel, options.schedule ?? null, options.viewer)}
  ${inputsSection(options.channel, options.viewer)}
  ${slateSection(options.channel, options.viewer, options.slateProblem)}
  ${previewSection(options.channel)}
  ${outputsSection(options.channel, options.viewer, options.history)}
  ${recordingsSection(options.channel.id, options.recordings ?? [])}
  ${can(options.viewer, "operator") ? addOutputForm(options.channel.id, options.form) : ""}
  <div class="columns">${cueLog(options.cues, options.channel, options.viewer)} ${eventLog(options.events)}</div>
  ${pidsSection(options.stats)}
  ${mediaLiveNote(options.channel, options.host)}
  ${raw("")}`;
