/**
 * The forms: add/edit output (with presets that fill the URL pattern and say what to paste where) and
 * create/edit channel. A failed submit renders the form again with what was typed and each problem beside
 * its field — the same field names and messages the REST API answers with (problem+json `errors`).
 */
import { html } from "hono/html";
import { PROTOCOLS } from "../src/domain/channel/channel.ts";

export interface FormState {
  readonly values: Readonly<Record<string, string>>;
  /** Field name → message. */
  readonly errors: Readonly<Record<string, string>>;
}

export interface Preset {
  readonly id: string;
  readonly label: string;
  readonly protocol: "rtmp" | "rtmps" | "srt" | "rist" | "udp" | "rtp" | "hls";
  readonly url: string;
  readonly hint: string;
}

const PRESETS: ReadonlyArray<Preset> = [
  {
    id: "youtube",
    label: "YouTube",
    protocol: "rtmp",
    url: "rtmp://a.rtmp.youtube.com/live2/STREAM-KEY",
    hint: "YouTube Studio → Go live → Stream: copy the stream key and paste it in place of STREAM-KEY.",
  },
  {
    id: "youtube-backup",
    label: "YouTube (backup)",
    protocol: "rtmp",
    url: "rtmp://b.rtmp.youtube.com/live2?backup=1/STREAM-KEY",
    hint: "The same stream key as the primary YouTube output, in place of STREAM-KEY: YouTube joins both.",
  },
  {
    id: "facebook",
    label: "Facebook",
    protocol: "rtmps",
    url: "rtmps://live-api-s.facebook.com:443/rtmp/STREAM-KEY",
    hint: "Facebook Live Producer → Streaming software: paste the stream key in place of STREAM-KEY.",
  },
  {
    id: "twitch",
    label: "Twitch",
    protocol: "rtmp",
    url: "rtmp://live.twitch.tv/app/STREAM-KEY",
    hint: "Twitch Creator Dashboard → Settings → Stream: copy the primary stream key in place of STREAM-KEY.",
  },
  {
    id: "rtmp",
    label: "RTMP server",
    protocol: "rtmp",
    url: "rtmp://SERVER/APP/STREAM-KEY",
    hint: "Your server's address, its application name (often live) and the stream key it expects.",
  },
  {
    id: "rtmps",
    label: "RTMPS server",
    protocol: "rtmps",
    url: "rtmps://SERVER:443/APP/STREAM-KEY",
    hint: "As RTMP, over TLS: the server's name must match its certificate.",
  },
  {
    id: "srt-caller",
    label: "SRT caller (we connect)",
    protocol: "srt",
    url: "srt://HOST:PORT?mode=caller&latency=200",
    hint: "The receiver's address and port; add &passphrase=… (10–79 characters) and &streamid=… if it asks for them.",
  },
  {
    id: "srt-listener",
    label: "SRT listener (they connect)",
    protocol: "srt",
    url: "srt://0.0.0.0:PORT?mode=listener&latency=200",
    hint: "A free UDP port on this host that the receiver calls; give the receiver this host's address and the port.",
  },
  {
    id: "rist-caller",
    label: "RIST caller (we connect)",
    protocol: "rist",
    url: "rist://HOST:PORT?buffer=1000",
    hint: "The receiver's address and even port; main profile unless you add &profile=simple (MediaConnect); &secret=…&aes-type=256 to encrypt.",
  },
  {
    id: "rist-listener",
    label: "RIST listener (they connect)",
    protocol: "rist",
    url: "rist://@:PORT?buffer=1000",
    hint: "A free UDP port on this host that receivers call (main profile); several peers: comma-separated rist:// URLs with &weight=.",
  },
  {
    id: "udp",
    label: "UDP",
    protocol: "udp",
    url: "udp://HOST:PORT",
    hint: "TS over UDP, 7 packets a datagram; a multicast group works too (add ?ttl=…).",
  },
  {
    id: "rtp",
    label: "RTP",
    protocol: "rtp",
    url: "rtp://HOST:PORT",
    hint: "TS over RTP (payload type 33), for receivers that want sequence numbers.",
  },
  {
    id: "hls",
    label: "HLS",
    protocol: "hls",
    url: "hls://?target=4&window=6",
    hint: "Served at /hls/<channel>/<output id>/index.m3u8 (a viewer token as ?token= for players); add &dir=/path to write files, &push=http://origin/path to PUT them, &cuetags=1 for CUE-OUT/IN.",
  },
];

const fieldError = (state: FormState | undefined, field: string) => {
  const message = state?.errors[field];
  return message === undefined
    ? ""
    : html`<p class="field-error" id="${field}-error" role="alert">${message}</p>`;
};

const invalid = (state: FormState | undefined, field: string) =>
  state?.errors[field] === undefined ? "" : html`aria-invalid="true" aria-describedby="${field}-error"`;

const value = (state: FormState | undefined, field: string, fallback = "") =>
  state?.values[field] ?? fallback;

export const outputFields = (state: FormState | undefined, withPresets: boolean) => html`
  ${
    withPresets
      ? html`<label>Preset
          <select name="preset" data-presets='${JSON.stringify(PRESETS)}'>
            <option value="">Choose a destination…</option>
            ${PRESETS.map((preset) => html`<option value="${preset.id}" ${value(state, "preset") === preset.id ? "selected" : ""}>${preset.label}</option>`)}
          </select>
        </label>
        <p class="hint" data-preset-hint aria-live="polite">${PRESETS.find((preset) => preset.id === value(state, "preset"))?.hint ?? ""}</p>`
      : ""
  }
  <label>Name <input name="name" value="${value(state, "name")}" maxlength="100" ${invalid(state, "name")} /></label>
  ${fieldError(state, "name")}
  <label>Protocol
    <select name="protocol" ${invalid(state, "protocol")}>
      ${PROTOCOLS.map((protocol) => html`<option ${value(state, "protocol", "srt") === protocol ? "selected" : ""}>${protocol}</option>`)}
    </select>
  </label>
  ${fieldError(state, "protocol")}
  <label>URL <input name="url" value="${value(state, "url")}" required size="60" autocomplete="off" spellcheck="false" ${invalid(state, "url")} /></label>
  ${fieldError(state, "url")}
  <label>Policy (optional, JSON)
    <textarea name="policy" rows="2" spellcheck="false" placeholder='{"scte35": "strip"}' ${invalid(state, "policy")}>${value(state, "policy")}</textarea>
  </label>
  ${fieldError(state, "policy")}
  <p class="hint">Blank: the stream untouched. <code>scte35</code>: "pass", "strip" or a filter such as <code>{"segmentation_types": [52, 54]}</code>; <code>pids</code>: <code>{"keep": [256, 257]}</code> or <code>{"drop": [...]}</code>; <code>remap</code>: <code>{"257": 259}</code>; <code>program</code>: one programme of the input.</p>
  ${fieldError(state, "(body)")}`;

export const addOutputForm = (
  channelId: string,
  state?: FormState,
) => html`<section id="add-output" aria-labelledby="add-output-title">
  <h2 id="add-output-title">Add an output</h2>
  <form method="post" action="/channels/${channelId}/outputs" class="stacked">
    ${outputFields(state, true)}
    <button type="submit" class="primary">Add output</button>
  </form>
</section>`;

export const editOutputForm = (
  channelId: string,
  outputId: string,
  state: FormState,
) => html`<section aria-labelledby="edit-output-title">
  <h1 id="edit-output-title">Edit output</h1>
  <p class="muted">A masked stream key or passphrase (****) is kept as it is unless you replace it.</p>
  <form method="post" action="/channels/${channelId}/outputs/${outputId}/edit" class="stacked">
    ${outputFields(state, false)}
    <button type="submit" class="primary">Save</button> <a href="/channels/${channelId}">Cancel</a>
  </form>
</section>`;

const checkbox = (state: FormState, name: string, label: string) =>
  html`<label class="check"><input type="checkbox" name="${name}" value="on" ${value(state, name) === "on" ? "checked" : ""} /> ${label}</label>`;

/** The slate's time: blank, no slate; its picture is set on the channel's page. */
const slateFieldset = (state: FormState) => {
  // A problem with the slate's time (below the failover time, not a number) or with the slate as a whole.
  const field = state.errors["slate.after_ms"] === undefined ? "slate" : "slate.after_ms";
  return html`<fieldset>
    <legend>Slate (optional): a still picture with silent audio while every input is silent</legend>
    <label>Slate after (ms)
      <input name="slate_after_ms" inputmode="numeric" value="${value(state, "slate_after_ms")}" placeholder="2000" ${invalid(state, field)} />
    </label>
    ${fieldError(state, field)}
    <p class="hint">At least the failover time; blank: no slate. The picture is chosen on the channel's page.</p>
    ${checkbox(state, "slate_on_unhealthy", "Also while every input is unhealthy by the health rules")}
    ${fieldError(state, "slate.on_unhealthy")}
  </fieldset>`;
};

const HEALTH_EXAMPLE =
  '{"no_video": {"pid_missing": "video", "for_ms": 1000}, "no_pcr": {"pcr_missing_ms": 500}}';

/**
 * The inputs' health rules (`redundancy.health`): the rules as JSON, the expression of their names that makes
 * an input unhealthy, and how long it must be healthy again; blank rules and expression: silence alone.
 */
const healthFieldset = (state: FormState) => html`<fieldset>
  <legend>Health rules (optional): fail over on what the stream and the picture say, not only on silence</legend>
  <label>Rules (JSON)
    <textarea name="health_rules" rows="5" spellcheck="false" placeholder="${HEALTH_EXAMPLE}" ${invalid(state, "redundancy.health.rules")}>${value(state, "health_rules")}</textarea>
  </label>
  ${fieldError(state, "redundancy.health.rules")}
  <p class="hint">Each rule by name: <code>{"pid_missing": "video" | "audio" | PID, "for_ms"}</code>, <code>{"pcr_missing_ms"}</code>, <code>{"pts_missing_ms"}</code>, <code>{"cc_errors", "window_ms"}</code>, <code>{"bitrate_below_bps", "for_ms"}</code>, <code>{"tr101290": ["PCR_repetition_error", …], "count", "window_ms"}</code>, <code>{"black": {"pixel_threshold", "picture_ratio"}, "for_ms"}</code>, <code>{"frozen": {"noise_db"}, "for_ms"}</code>, <code>{"silent": {"noise_db"}, "for_ms"}</code>.</p>
  <label>Unhealthy when
    <input name="health_unhealthy_when" value="${value(state, "health_unhealthy_when")}" placeholder="no_video || no_pcr || (black &amp;&amp; silent)" spellcheck="false" autocomplete="off" ${invalid(state, "redundancy.health.unhealthy_when")} />
  </label>
  ${fieldError(state, "redundancy.health.unhealthy_when")}
  <p class="hint">Rule names with <code>&amp;&amp;</code>, <code>||</code>, <code>!</code> and parentheses. The channel leaves an unhealthy input only for a healthy one.</p>
  <label>Healthy again after (ms)
    <input name="health_clear_after_ms" inputmode="numeric" value="${value(state, "health_clear_after_ms")}" placeholder="3000" ${invalid(state, "redundancy.health.clear_after_ms")} />
  </label>
  ${fieldError(state, "redundancy.health.clear_after_ms")}
  <label>Black, frozen and silent judged on
    <select name="health_decode">
      <option value="key_frames" ${value(state, "health_decode", "key_frames") === "key_frames" ? "selected" : ""}>key frames only (a frozen rule needs at least 1.5 GOPs)</option>
      <option value="all_frames" ${value(state, "health_decode", "key_frames") === "all_frames" ? "selected" : ""}>every picture (costs more)</option>
    </select>
  </label>
  ${fieldError(state, "redundancy.health.decode")}
  ${fieldError(state, "redundancy.health")}
</fieldset>`;

/** The AWS MediaLive channel that feeds this one: blank id, no link. Credentials are never asked here. */
const medialiveFieldset = (state: FormState) => html`<fieldset>
  <legend>AWS MediaLive channel that feeds this one (optional)</legend>
  <label>Channel id <input name="medialive_channel_id" value="${value(state, "medialive_channel_id")}" placeholder="1234567" ${invalid(state, "medialive.channel_id")} /></label>
  ${fieldError(state, "medialive.channel_id")}
  <label>Region <input name="medialive_region" value="${value(state, "medialive_region")}" placeholder="eu-west-1" ${invalid(state, "medialive.region")} /></label>
  ${fieldError(state, "medialive.region")}
  ${checkbox(state, "medialive_start_with_channel", "Start it when this channel is started")}
  ${checkbox(state, "medialive_stop_when_idle", "Stop it when no output has sent for a while (cost guard)")}
  <label>Minutes without a sending output before the stop
    <input name="medialive_idle_minutes" inputmode="numeric" value="${value(state, "medialive_idle_minutes")}" placeholder="15" ${invalid(state, "medialive.idle_minutes")} />
  </label>
  ${fieldError(state, "medialive.idle_minutes")}
  ${checkbox(state, "medialive_egress_allowlist", "Accept the inputs only from its egress endpoints")}
  ${fieldError(state, "medialive")}
</fieldset>`;

export const channelForm = (options: {
  readonly action: string;
  readonly title: string;
  readonly state: FormState;
}) => html`<section aria-labelledby="channel-form-title">
  <h1 id="channel-form-title">${options.title}</h1>
  <form method="post" action="${options.action}" class="stacked">
    <label>Name <input name="name" value="${value(options.state, "name")}" required maxlength="100" ${invalid(options.state, "name")} /></label>
    ${fieldError(options.state, "name")}
    <label>Tags (comma-separated, optional: who may see and run the channel goes by them)
      <input name="tags" value="${value(options.state, "tags")}" placeholder="eu, news" maxlength="1000" ${invalid(options.state, "tags")} />
    </label>
    ${fieldError(options.state, "tags")}
    <fieldset>
      <legend>Primary input (where the encoder sends RTP or UDP)</legend>
      <label>Address <input name="rtp_ip" value="${value(options.state, "rtp_ip", "0.0.0.0")}" required ${invalid(options.state, "rtp_ip")} /></label>
      ${fieldError(options.state, "rtp_ip")}
      <label>Port <input name="rtp_port" inputmode="numeric" value="${value(options.state, "rtp_port")}" required ${invalid(options.state, "rtp_port")} /></label>
      ${fieldError(options.state, "rtp_port")}
    </fieldset>
    <fieldset>
      <legend>Backup input (optional)</legend>
      <label>Address <input name="backup_rtp_ip" value="${value(options.state, "backup_rtp_ip")}" ${invalid(options.state, "backup_rtp_ip")} /></label>
      ${fieldError(options.state, "backup_rtp_ip")}
      <label>Port <input name="backup_rtp_port" inputmode="numeric" value="${value(options.state, "backup_rtp_port")}" ${invalid(options.state, "backup_rtp_port")} /></label>
      ${fieldError(options.state, "backup_rtp_port")}
      <label>Failover after (ms) <input name="failover_after_ms" inputmode="numeric" value="${value(options.state, "failover_after_ms")}" placeholder="500" ${invalid(options.state, "redundancy.failover_after_ms")} /></label>
      ${fieldError(options.state, "redundancy.failover_after_ms")}
      <label>Return to the primary
        <select name="revert">
          <option value="auto" ${value(options.state, "revert", "auto") === "auto" ? "selected" : ""}>automatically, once it is healthy</option>
          <option value="sticky" ${value(options.state, "revert") === "sticky" ? "selected" : ""}>never (sticky; operator switches back)</option>
        </select>
      </label>
    </fieldset>
    <label>Expect an SCTE-35 cue at least every (seconds, optional)
      <input name="expect_cues_within_s" inputmode="numeric" value="${value(options.state, "expect_cues_within_s")}" ${invalid(options.state, "expect_cues_within_s")} />
    </label>
    ${fieldError(options.state, "expect_cues_within_s")}
    ${healthFieldset(options.state)}
    ${slateFieldset(options.state)}
    ${medialiveFieldset(options.state)}
    ${fieldError(options.state, "(body)")}
    <button type="submit" class="primary">Save</button> <a href="/">Cancel</a>
  </form>
</section>`;
