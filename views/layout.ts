/**
 * The page shell every operator page shares: head with the stylesheet and the scripts (htmx and its
 * WebSocket extension, served from the installed npm packages — never a CDN), the top bar with navigation,
 * the theme switch and the connection state, and the body that one WebSocket keeps live. Templates here take
 * data and return HTML; they never call services. htmx's indicator styles are off: the pages use none, and
 * their Content-Security-Policy allows no inline style.
 */
import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;
export type Role = "viewer" | "operator" | "admin";

export interface Viewer {
  readonly name: string;
  readonly role: Role;
  /** Whether the service is a node of a fleet: the menu then shows Nodes. */
  readonly inFleet?: boolean;
  /** For a viewer whose grants differ by channel: the role on one (a tile shows that role's buttons). */
  readonly roleOn?: (channel: { readonly id: string; readonly tags?: ReadonlyArray<string> }) => Role | null;
}

const rank: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
/** Whether the signed-in token may do what needs `needed`: the pages show no button that would be refused. */
export const can = (viewer: Viewer, needed: Role) => rank[viewer.role] >= rank[needed];

export const page = (options: {
  readonly title: string;
  readonly viewer: Viewer | null;
  /** `/ui/ws?...`: the page's one WebSocket; none on the login page. */
  readonly live?: string;
  readonly body: Html;
}) => html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="color-scheme" content="light dark" />
    <meta name="htmx-config" content='{"includeIndicatorStyles":false}' />
    <title>${options.title} · distributary</title>
    <link rel="stylesheet" href="/assets/app.css" />
    <link rel="stylesheet" href="/assets/parts.css" />
    <script src="/assets/htmx.min.js" defer></script>
    <script src="/assets/ws.js" defer></script>
    <script src="/assets/app.js" defer></script>
  </head>
  <body ${options.live === undefined ? "" : raw(`hx-ext="ws" ws-connect="${options.live}"`)}>
    <header class="topbar">
      <a class="brand" href="/">distributary</a>
      ${
        options.viewer === null
          ? ""
          : html`<nav aria-label="Main">
              <a href="/">Channels</a>
              ${can(options.viewer, "admin") ? html`<a href="/channels/new">New channel</a>` : ""}
              <a href="/events">Events</a>
              ${options.viewer.inFleet === true ? html`<a href="/nodes">Nodes</a>` : ""}
              ${can(options.viewer, "admin") ? html`<a href="/settings">Settings</a>` : ""}
            </nav>`
      }
      <span class="spacer"></span>
      ${
        options.live === undefined
          ? ""
          : html`<span id="connection" class="badge state-connecting" role="status" aria-live="polite"
              >connecting…</span
            >`
      }
      <button type="button" class="theme-switch" data-theme-switch aria-label="Switch between light and dark theme">
        ◐ Theme
      </button>
      ${
        options.viewer === null
          ? ""
          : html`<form method="post" action="/logout" class="inline">
              <span class="who" title="role ${options.viewer.role}">${options.viewer.name} · ${options.viewer.role}</span>
              <button type="submit">Log out</button>
            </form>`
      }
    </header>
    <main>${options.body}</main>
  </body>
</html>`;

/** A state in words with its colour: colour is never the only signal. */
export const stateBadge = (state: string, id?: string) =>
  html`<span ${id === undefined ? "" : raw(`id="${id}"`)} class="badge state-${state}">${state}</span>`;

/** A channel's tags, each a badge (who may see and run it goes by them); nothing when it has none. */
export const tagBadges = (channel: { readonly tags?: ReadonlyArray<string> | undefined }) =>
  (channel.tags ?? []).map((tag) => html`<span class="badge tag" title="tag">${tag}</span> `);

/** A moment as the pages show it: hh:mm:ss UTC, the whole ISO time in its datetime. */
export const utc = (iso: string) => html`<time datetime="${iso}">${iso.slice(11, 19)} UTC</time>`;

export const bitrate = (bps: number) =>
  bps >= 1_000_000
    ? `${(bps / 1_000_000).toFixed(2)} Mbit/s`
    : bps >= 1000
      ? `${(bps / 1000).toFixed(0)} kbit/s`
      : `${bps} bit/s`;

export const duration = (seconds: number) => {
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
};

/** A form that posts one action; `confirm` asks first (app.js), so a wrong click costs nothing. */
export const actionButton = (options: {
  readonly action: string;
  readonly label: string;
  readonly confirm?: string;
  readonly kind?: "primary" | "danger" | "plain";
  readonly fields?: Readonly<Record<string, string>>;
}) => html`<form method="post" action="${options.action}" class="inline" ${
  options.confirm === undefined ? "" : raw(`data-confirm="${escapeAttribute(options.confirm)}"`)
}>
  ${Object.entries(options.fields ?? {}).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}" />`)}
  <button type="submit" class="${options.kind ?? "plain"}">${options.label}</button>
</form>`;

const escapeAttribute = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll('"', "&quot;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
