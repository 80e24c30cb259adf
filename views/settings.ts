/**
 * Admin pages: tokens (create with a role and a name — the secret shown once — and revoke), access rules
 * (views/access-rules.ts), notifications (views/notifiers.ts), thumbnails on or
 * off, configuration export and import with a preview of what would change before it is applied, and the
 * global event log with filters.
 */
import { html } from "hono/html";
import type { ChannelEvent } from "../src/domain/events/events.ts";
import { type AccessRulesSection, accessRulesSection } from "./access-rules.ts";
import { eventItem } from "./events.ts";
import { actionButton } from "./layout.ts";
import { type NotificationsSection, notificationsSection } from "./notifiers.ts";

interface TokenRow {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  /** The channels it reaches, in words ("every channel", "tags eu"). */
  readonly scope: string;
  readonly created_at: string;
  /** environment: this node's DISTRIBUTARY_ADMIN_TOKEN, not stored, so nothing to revoke here. */
  readonly source: "stored" | "environment";
}

interface ImportPreview {
  readonly create: ReadonlyArray<string>;
  readonly change: ReadonlyArray<string>;
  readonly remove: ReadonlyArray<string>;
  readonly problems: ReadonlyArray<string>;
  /** What the import leaves out (a channel or output of the original file it cannot take) or ignores. */
  readonly notes?: ReadonlyArray<string>;
}

/** What the Settings page shows of the configuration file (configuration as code). */
export interface ConfigFileSection {
  readonly file: string;
  readonly drift: number;
  readonly plan: { readonly text: string } | null;
}

const configFileSection = (section: ConfigFileSection) => html`<section aria-labelledby="config-file-title">
    <h2 id="config-file-title">Configuration file</h2>
    <p>The configuration comes from <code>${section.file}</code>, applied whenever it changes.</p>
    ${
      section.drift === 0
        ? html`<p>No drift: the service matches the file.</p>`
        : html`<p class="notice" role="status">Drift: ${section.drift} ${section.drift === 1 ? "change" : "changes"} since the file was applied (through the API or these pages). The next edit of the file undoes them; this plan would restore it now:</p>
          <pre>${section.plan?.text ?? ""}</pre>`
    }
  </section>`;

export const settingsPage = (options: {
  readonly tokens: ReadonlyArray<TokenRow>;
  readonly created?: { readonly name: string; readonly secret: string };
  readonly thumbnails: boolean;
  readonly preview?: {
    readonly document: string;
    readonly mode: "merge" | "replace";
    readonly result: ImportPreview;
    /** Names the document and mode this preview is of: Apply applies exactly these or nothing. */
    readonly fingerprint?: string;
  };
  readonly message?: string;
  readonly notifications?: NotificationsSection;
  readonly accessRules?: AccessRulesSection;
  /** DISTRIBUTARY_CONFIG_FILE's drift, when a file is the source of truth. */
  readonly configFile?: ConfigFileSection | null;
}) => html`<h1>Settings</h1>
  ${options.message === undefined ? "" : html`<p class="notice" role="status">${options.message}</p>`}
  <section aria-labelledby="tokens-title">
    <h2 id="tokens-title">Tokens</h2>
    ${
      options.created === undefined
        ? ""
        : html`<div class="notice" role="status">
            <p>Token <strong>${options.created.name}</strong> created. Copy it now: it is not shown again.</p>
            <pre id="new-token">${options.created.secret}</pre>
            <button type="button" data-copy="#new-token">Copy</button>
          </div>`
    }
    <div class="scroll"><table>
      <thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Channels</th><th scope="col">Created</th><th scope="col">Actions</th></tr></thead>
      <tbody>
        ${options.tokens.map(
          (token) => html`<tr>
            <td>${token.name}</td><td>${token.role}</td><td>${token.scope}</td><td>${token.created_at.slice(0, 16).replace("T", " ")}</td>
            <td>${
              token.source === "environment"
                ? "this node's DISTRIBUTARY_ADMIN_TOKEN, not stored"
                : actionButton({
                    action: `/settings/tokens/${token.id}/revoke`,
                    label: "Revoke",
                    kind: "danger",
                    confirm: `Revoke the token ${token.name}? Everything using it stops working.`,
                  })
            }</td>
          </tr>`,
        )}
      </tbody>
    </table></div>
    <form method="post" action="/settings/tokens" class="stacked narrow">
      <label>Name <input name="name" required maxlength="100" /></label>
      <label>Role
        <select name="role">
          <option value="viewer">viewer — sees everything, changes nothing</option>
          <option value="operator">operator — starts, stops, manages outputs</option>
          <option value="admin">admin — everything</option>
        </select>
      </label>
      <label>Channel tags <input name="tags" placeholder="eu, sports-uk" maxlength="2000" /></label>
      <label>Channel ids <input name="ids" placeholder="news-1" maxlength="2000" /></label>
      <p class="hint">Both empty: every channel, and the role on the node too. With tags or ids the token reaches only
        the channels with one of them, and is nobody on the node's own settings.</p>
      <button type="submit" class="primary">Create token</button>
    </form>
  </section>
  ${options.configFile == null ? "" : configFileSection(options.configFile)}
  ${options.accessRules === undefined ? "" : accessRulesSection(options.accessRules)}
  ${options.notifications === undefined ? "" : notificationsSection(options.notifications)}
  <section aria-labelledby="thumbs-title">
    <h2 id="thumbs-title">Thumbnails</h2>
    <p>Stills of each running channel's input, made every 10 s from the channel's own bytes while a page shows them.
      Now: <strong>${options.thumbnails ? "on" : "off"}</strong>.</p>
    ${actionButton({
      action: "/settings/thumbnails",
      label: options.thumbnails ? "Turn thumbnails off" : "Turn thumbnails on",
      fields: { enabled: options.thumbnails ? "false" : "true" },
    })}
  </section>
  <section aria-labelledby="config-title">
    <h2 id="config-title">Configuration</h2>
    <p>
      <a class="button" href="/settings/export" download="distributary-config.json">Export (secrets masked)</a>
      <a class="button" href="/settings/export?secrets=true" download="distributary-backup.json">Backup (with secrets)</a>
    </p>
    <p class="hint">The export is safe to share and restores onto this server. The backup carries stream keys and
      passphrases: keep it like a password; importing it restores everything on any server.</p>
    <form method="post" action="/settings/import" class="stacked">
      <label>Import: paste an export or the original project's channels.json
        <textarea name="document" rows="8" required spellcheck="false">${options.preview?.document ?? ""}</textarea>
      </label>
      <label>Channels the document does not name
        <select name="mode">
          <option value="merge" ${options.preview?.mode === "replace" ? "" : "selected"}>keep them (merge)</option>
          <option value="replace" ${options.preview?.mode === "replace" ? "selected" : ""}>delete them (replace)</option>
        </select>
      </label>
      <button type="submit" name="step" value="preview">Preview the changes</button>
      ${
        options.preview?.fingerprint === undefined || options.preview.result.problems.length > 0
          ? ""
          : html`<input type="hidden" name="previewed" value="${options.preview.fingerprint}" />
            <button type="submit" name="step" value="apply" class="danger" data-confirm-click="Apply the import as previewed?">Apply</button>`
      }
    </form>
    ${options.preview === undefined ? "" : importPreview(options.preview.result)}
  </section>`;

const importPreview = (result: ImportPreview) => html`<div class="preview" id="import-preview">
  ${
    result.problems.length > 0
      ? html`<p class="error-text" role="alert">The document cannot be imported:</p>
          <ul>${result.problems.map((problem) => html`<li class="error-text">${problem}</li>`)}</ul>`
      : html`<p>Applying it would:</p>
          <ul>
            <li>create ${result.create.length}: ${result.create.join(", ") || "none"}</li>
            <li>change ${result.change.length}: ${result.change.join(", ") || "none"}</li>
            <li>delete ${result.remove.length}: ${result.remove.join(", ") || "none"}</li>
          </ul>
          ${
            (result.notes ?? []).length === 0
              ? ""
              : html`<p>Left out or ignored:</p>
                <ul>${(result.notes ?? []).map((note) => html`<li>${note}</li>`)}</ul>`
          }`
  }
</div>`;

export const eventsPage = (options: {
  readonly events: ReadonlyArray<ChannelEvent>;
  readonly channel: string;
  readonly type: string;
  readonly types: ReadonlyArray<string>;
}) => html`<h1>Events</h1>
  <form method="get" action="/events" class="toolbar">
    <label>Channel <input name="channel" value="${options.channel}" placeholder="any" /></label>
    <label>Type
      <select name="type">
        <option value="">any</option>
        ${options.types.map((type) => html`<option ${options.type === type ? "selected" : ""}>${type}</option>`)}
      </select>
    </label>
    <button type="submit">Filter</button>
  </form>
  <ol id="event-log" class="log">${options.events.map((event) => eventItem(event, true))}</ol>`;
