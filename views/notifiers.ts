/**
 * The Settings page's notifications: each notifier (secrets masked, as the API shows them) with its last
 * deliveries — when, which event, how it went, the HTTP status, the attempt and the next try — and the buttons
 * to test, edit and delete it; the form that adds one, and the same form to edit one, where a secret left
 * blank is kept. A webhook secret made by the service is shown once, like a token's.
 */
import { html } from "hono/html";
import { actionButton } from "./layout.ts";

interface NotifierRow {
  readonly id: string;
  readonly name: string;
  readonly kind: string;
  readonly url: string | null;
  readonly secret: string | null;
  readonly routing_key: string | null;
  readonly events: ReadonlyArray<string>;
  readonly channels: "*" | ReadonlyArray<string>;
  readonly enabled: boolean;
  readonly disabled_reason: string | null;
}

interface DeliveryRow {
  readonly id: string;
  readonly created_at: string;
  readonly type: string;
  readonly state: string;
  readonly status: number | null;
  readonly attempts: number;
  readonly message: string | null;
  readonly next_attempt_at: string | null;
}

export interface NotificationsSection {
  readonly notifiers: ReadonlyArray<{
    readonly notifier: NotifierRow;
    readonly deliveries: ReadonlyArray<DeliveryRow>;
  }>;
  readonly events: ReadonlyArray<string>;
  readonly kinds: ReadonlyArray<string>;
  /** A webhook secret made for a new notifier: shown this once. */
  readonly createdSecret?: { readonly name: string; readonly secret: string };
}

const when = (iso: string | null) => (iso === null ? "—" : iso.slice(0, 19).replace("T", " "));

const deliveriesTable = (id: string, deliveries: ReadonlyArray<DeliveryRow>) =>
  deliveries.length === 0
    ? html`<p class="hint" id="deliveries-${id}">No deliveries yet.</p>`
    : html`<div class="scroll"><table id="deliveries-${id}">
        <caption>Last deliveries</caption>
        <thead><tr><th scope="col">Time (UTC)</th><th scope="col">Event</th><th scope="col">Outcome</th><th scope="col">HTTP</th><th scope="col">Attempts</th><th scope="col">Next try</th></tr></thead>
        <tbody>${deliveries.map(
          (delivery) => html`<tr>
            <td>${when(delivery.created_at)}</td><td>${delivery.type}</td>
            <td title="${delivery.message ?? ""}"><span class="badge state-${delivery.state}">${delivery.state}</span> ${delivery.message ?? ""}</td>
            <td>${delivery.status ?? "—"}</td><td>${delivery.attempts}</td><td>${when(delivery.next_attempt_at)}</td>
          </tr>`,
        )}</tbody>
      </table></div>`;

/** The add form, or the edit form of `current`. */
export const notifierForm = (options: {
  readonly events: ReadonlyArray<string>;
  readonly kinds: ReadonlyArray<string>;
  readonly current?: NotifierRow;
}) => {
  const current = options.current;
  const action = current === undefined ? "/settings/notifiers" : `/settings/notifiers/${current.id}`;
  const keep = current === undefined ? "" : " (leave blank to keep the current one)";
  return html`<form method="post" action="${action}" class="stacked narrow" id="notifier-form">
    <label>Notifier name <input name="name" required maxlength="100" value="${current?.name ?? ""}" /></label>
    ${
      current === undefined
        ? html`<label>Kind
            <select name="kind">${options.kinds.map((kind) => html`<option value="${kind}">${kind}</option>`)}</select>
          </label>`
        : html`<p>Kind: <strong>${current.kind}</strong></p>`
    }
    <label>Address (webhook URL; Slack or Teams webhook URL; PagerDuty: leave blank for events.pagerduty.com)${
      current?.kind === "slack" || current?.kind === "teams" ? keep : ""
    }
      <input name="url" type="url" value="${current?.kind === "slack" || current?.kind === "teams" ? "" : (current?.url ?? "")}" autocomplete="off" />
    </label>
    <label>Webhook secret (whsec_…; blank makes one)${keep}
      <input name="secret" type="password" autocomplete="off" />
    </label>
    <label>PagerDuty routing key${keep} <input name="routing_key" type="password" autocomplete="off" /></label>
    <fieldset><legend>Events</legend>
      ${options.events.map(
        (event) =>
          html`<label class="check"><input type="checkbox" name="events" value="${event}" ${
            current?.events.includes(event) === true ? "checked" : ""
          } /> ${event}</label>`,
      )}
    </fieldset>
    <label>Channels (ids separated by commas; * for every channel)
      <input name="channels" value="${current === undefined || current.channels === "*" ? "*" : current.channels.join(", ")}" />
    </label>
    <label class="check"><input type="checkbox" name="enabled" value="on" ${current === undefined || current.enabled ? "checked" : ""} /> Enabled</label>
    <button type="submit" class="primary">${current === undefined ? "Add notifier" : "Save notifier"}</button>
  </form>`;
};

export const notificationsSection = (
  section: NotificationsSection,
) => html`<section aria-labelledby="notifications-title">
  <h2 id="notifications-title">Notifications</h2>
  ${
    section.createdSecret === undefined
      ? ""
      : html`<div class="notice" role="status">
          <p>Notifier <strong>${section.createdSecret.name}</strong> added. Its signing secret, to verify its deliveries — copy it now: it is not shown again.</p>
          <pre id="new-secret">${section.createdSecret.secret}</pre>
          <button type="button" data-copy="#new-secret">Copy</button>
        </div>`
  }
  ${section.notifiers.map(
    ({
      notifier,
      deliveries,
    }) => html`<article class="notifier" id="notifier-${notifier.id}" aria-label="Notifier ${notifier.name}">
      <h3>${notifier.name} <span class="badge">${notifier.kind}</span>
        <span class="badge state-${notifier.enabled ? "connected" : "disabled"}">${notifier.enabled ? "enabled" : "off"}</span></h3>
      ${notifier.disabled_reason === null ? "" : html`<p class="error-text">Turned off: ${notifier.disabled_reason}</p>`}
      <p>To ${notifier.url ?? "PagerDuty"}${notifier.secret === null ? "" : html`, signed (secret ${notifier.secret})`}${
        notifier.routing_key === null ? "" : html`, routing key ${notifier.routing_key}`
      }. Events: ${notifier.events.join(", ")}; channels: ${notifier.channels === "*" ? "all" : notifier.channels.join(", ")}.</p>
      <p>
        ${actionButton({ action: `/settings/notifiers/${notifier.id}/test`, label: "Send a test" })}
        <a class="button" href="/settings/notifiers/${notifier.id}">Edit</a>
        ${actionButton({
          action: `/settings/notifiers/${notifier.id}/delete`,
          label: "Delete",
          kind: "danger",
          confirm: `Delete the notifier ${notifier.name}? Its pending deliveries are dropped.`,
        })}
      </p>
      ${deliveriesTable(notifier.id, deliveries)}
    </article>`,
  )}
  <h3>Add a notifier</h3>
  ${notifierForm({ events: section.events, kinds: section.kinds })}
</section>`;
