/**
 * The Settings page's access rules (node admin): which claim of a person signed in through the company's
 * identity provider gives which role on which channels, one row each with its Edit and Delete, and the form that
 * adds one; the same form edits one on its own page. Rules have no ids: a row is its place in the list, and
 * each form carries the rule as it was shown, so a rule changed meanwhile by someone else is not overwritten.
 */
import { html } from "hono/html";
import { actionButton } from "./layout.ts";

export interface AccessRuleRow {
  readonly claim: string;
  readonly equals: string;
  readonly role: string;
  /** The channels it reaches, in words ("every channel", "tags eu"). */
  readonly scope: string;
  readonly tags: ReadonlyArray<string>;
  readonly ids: ReadonlyArray<string>;
  /** The rule as shown, sent back by its forms: the save or delete applies only while the rule is still so. */
  readonly shown: string;
}

export interface AccessRulesSection {
  readonly rules: ReadonlyArray<AccessRuleRow>;
  /** Whether people sign in through an identity provider here; the rules grant nothing otherwise. */
  readonly signOn: boolean;
}

const ROLES = [
  ["viewer", "viewer — sees, changes nothing"],
  ["operator", "operator — starts, stops, manages outputs"],
  ["admin", "admin — everything"],
] as const;

/** The add form, or the edit form of rule `index` (`current`). */
export const accessRuleForm = (current?: { readonly index: number; readonly rule: AccessRuleRow }) => {
  const rule = current?.rule;
  const action = current === undefined ? "/settings/access-rules" : `/settings/access-rules/${current.index}`;
  return html`<form method="post" action="${action}" class="stacked narrow" id="access-rule-form">
    ${rule === undefined ? "" : html`<input type="hidden" name="shown" value="${rule.shown}" />`}
    <label>Claim <input name="claim" required maxlength="200" placeholder="groups" value="${rule?.claim ?? ""}" /></label>
    <label>Equals <input name="equals" required maxlength="500" placeholder="tv-ops-eu" value="${rule?.equals ?? ""}" /></label>
    <label>Grants
      <select name="role">
        ${ROLES.map(
          ([role, words]) =>
            html`<option value="${role}" ${rule?.role === role ? "selected" : ""}>${words}</option>`,
        )}
      </select>
    </label>
    <label>Channels by tag <input name="tags" placeholder="eu, sports-uk" maxlength="2000" value="${rule?.tags.join(", ") ?? ""}" /></label>
    <label>Channels by id <input name="ids" placeholder="news-1" maxlength="2000" value="${rule?.ids.join(", ") ?? ""}" /></label>
    <p class="hint">Both empty: every channel, and the role on the node too. A claim that holds a list (groups)
      matches when the list contains the value; a dotted name reads a nested claim (realm_access.roles).</p>
    <button type="submit" class="primary">${current === undefined ? "Add rule" : "Save rule"}</button>
  </form>`;
};

export const accessRulesSection = (
  section: AccessRulesSection,
) => html`<section aria-labelledby="access-title">
  <h2 id="access-title">Access rules</h2>
  <p class="hint">A person signed in through the identity provider gets the role of every rule their claims match,
    on that rule's channels; a person no rule matches may not sign in.${
      section.signOn ? "" : " Sign-on is not configured on this node: the rules grant nothing until it is."
    }</p>
  ${
    section.rules.length === 0
      ? html`<p id="access-rules-empty">No rules yet.</p>`
      : html`<div class="scroll"><table id="access-rules">
      <thead><tr><th scope="col">Claim</th><th scope="col">Equals</th><th scope="col">Role</th><th scope="col">Channels</th><th scope="col">Actions</th></tr></thead>
      <tbody>
        ${section.rules.map(
          (rule, index) => html`<tr id="access-rule-${index}">
            <td>${rule.claim}</td><td>${rule.equals}</td><td>${rule.role}</td><td>${rule.scope}</td>
            <td><div class="row-actions">
              <a class="button" href="/settings/access-rules/${index}" aria-label="Edit the rule ${rule.claim} = ${rule.equals}">Edit</a>
              ${actionButton({
                action: `/settings/access-rules/${index}/delete`,
                label: "Delete",
                kind: "danger",
                fields: { shown: rule.shown },
                confirm: `Delete the rule ${rule.claim} = ${rule.equals}? The people it matched lose its role at their next request.`,
              })}
            </div></td>
          </tr>`,
        )}
      </tbody>
    </table></div>`
  }
  <h3>Add a rule</h3>
  ${accessRuleForm()}
</section>`;
