/**
 * Each input's health by the channel's rules (`redundancy.health`), on the channel page: the verdict as a badge
 * ("unhealthy since 12:34:56 UTC"), one lamp per rule with its name, a word and a mark (holds, ok, cannot judge:
 * never colour alone) and the figure it read, and the picture-and-sound watcher's cost. The inputs section
 * holds it, so every snapshot re-renders it with the rest of the inputs.
 */
import { html } from "hono/html";
import type { InputHealthView } from "../src/domain/health/health-view.ts";
import type { ChannelView } from "../src/domain/views/views.ts";
import { utc } from "./layout.ts";

type Input = ChannelView["inputs"][number];
type RuleView = InputHealthView["rules"][string];

/** The verdict in words and colour; unhealthy says since when (`short`: in its title only, for the table). */
export const healthBadge = (health: InputHealthView, short = false) => {
  const title = `${health.state} by the channel's rules since ${health.since.slice(11, 19)} UTC`;
  return health.state === "unhealthy" && !short
    ? html`<span class="badge state-unhealthy">unhealthy since ${utc(health.since)}</span>`
    : html`<span class="badge state-${health.state}" title="${title}">${health.state}</span>`;
};

/** On the channel's overview tile: the input on air is unhealthy by the channel's rules, and by which. */
export const tileHealthBadge = (channel: ChannelView) => {
  const onAir = channel.inputs.find((input) => input.active);
  const health = onAir?.health;
  if (onAir === undefined || health == null || health.state !== "unhealthy") return "";
  const holding = Object.entries(health.rules)
    .filter(([, rule]) => rule.state === true)
    .map(([name]) => name);
  const title = `The ${onAir.role} input on air is unhealthy by the channel's rules since ${health.since.slice(11, 19)} UTC${holding.length === 0 ? "" : `: ${holding.join(", ")} hold`}`;
  return html`<span class="badge state-unhealthy" title="${title}">UNHEALTHY <small>· ${onAir.role}</small></span>`;
};

/** A rule's state as a lamp shows it: a class for the colour, a mark and a word for everyone else. */
const LAMPS = {
  holds: { mark: "!", word: "holds" },
  ok: { mark: "✓", word: "ok" },
  unknown: { mark: "?", word: "cannot judge" },
} as const;

const lampOf = (rule: RuleView) => (rule.state === null ? "unknown" : rule.state ? "holds" : "ok");

const lamp = (name: string, rule: RuleView) => {
  const kind = lampOf(rule);
  const { mark, word } = LAMPS[kind];
  return html`<li class="lamp lamp-${kind}" title="${name} ${word}: ${rule.figure}">
    <span class="lamp-mark" aria-hidden="true">${mark}</span>
    <strong>${name}</strong> <span class="lamp-word">${word}</span>
    <small class="muted">${rule.figure}</small>
  </li>`;
};

const percent = (value: number | null) =>
  value === null ? "CPU not measured yet" : `CPU ${value.toFixed(1)} %`;

/** The watcher's ffmpeg: whether it runs, and what it costs (CPU of one core, chunks it could not take, restarts). */
const watcherLine = (watcher: NonNullable<InputHealthView["watcher"]>) => {
  const parts = [
    `Picture-and-sound watcher: ${watcher.running ? "running" : "not running"}`,
    percent(watcher.cpu_percent),
    `${watcher.dropped_chunks} ${watcher.dropped_chunks === 1 ? "chunk" : "chunks"} dropped`,
    `${watcher.restarts} ${watcher.restarts === 1 ? "restart" : "restarts"}`,
  ];
  return html`<p class="watcher ${watcher.running ? "muted" : "warning-text"}">${parts.map(
    (part, index) => html`${index === 0 ? "" : " · "}<span>${part}</span>`,
  )}</p>`;
};

/** One input's rules: the verdict, the lamps and the watcher. */
const inputHealth = (
  input: Input,
  health: InputHealthView,
) => html`<div class="input-health" id="health-${input.role}">
  <h3>${input.role} <span class="muted">·</span> ${healthBadge(health)}</h3>
  <ul class="lamps" aria-label="Health rules of the ${input.role} input">
    ${Object.entries(health.rules).map(([name, rule]) => lamp(name, rule))}
  </ul>
  ${health.watcher === null ? "" : watcherLine(health.watcher)}
</div>`;

/**
 * The inputs' health under the inputs table, with the expression that decides; nothing for a channel without
 * rules, or before it runs.
 */
export const healthPanel = (channel: ChannelView) => {
  const judged = channel.inputs.flatMap((input) =>
    input.health === null ? [] : [{ input, health: input.health }],
  );
  if (judged.length === 0) return "";
  const when = channel.redundancy?.health?.unhealthy_when;
  return html`<div class="health-panel">
    ${when === undefined ? "" : html`<p class="muted">Unhealthy when <code>${when}</code></p>`}
    <div class="health-inputs">${judged.map(({ input, health }) => inputHealth(input, health))}</div>
  </div>`;
};
