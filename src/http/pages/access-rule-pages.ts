/**
 * Settings' access rules for the browser's session (node admin): add one, edit one on its own page, delete one.
 * Each change replaces the whole list through the same AccessRules service as `PUT /api/access/rules`, so it
 * is checked, stored and audited the same; a refusal is the page again with the reason in words. A row is its
 * place in the list, and a form carries the rule as it was shown: if someone changed the list meanwhile so that
 * the place holds another rule, nothing is saved and the page says so.
 */
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import { type Context, Hono } from "hono";
import { html } from "hono/html";
import { accessRuleForm } from "../../../views/access-rules.ts";
import { ControlError } from "../../domain/base/errors.ts";
import { decodeBody } from "../../domain/base/validate.ts";
import { type AccessRule, AccessRule as AccessRuleSchema } from "../../domain/control/access.ts";
import type { AuthEnv } from "../auth.ts";
import { scopeOfForm } from "./admin-pages.ts";
import { formFields, needs, type PageServices, pageOn, render } from "./handler.ts";
import { accessRuleRow, settingsResponse } from "./settings-view.ts";

/** The posted form as a rule, checked as the API checks one; a problem in words. */
const ruleOfForm = (fields: Readonly<Record<string, string>>) =>
  Effect.gen(function* () {
    const channels = scopeOfForm(fields.tags, fields.ids, "The rule was not saved");
    if (Either.isLeft(channels))
      return yield* new ControlError({ reason: "invalid", message: channels.left });
    return yield* decodeBody(AccessRuleSchema)({
      claim: (fields.claim ?? "").trim(),
      equals: (fields.equals ?? "").trim(),
      role: fields.role ?? "",
      // A list left empty is left out, as the API's caller writes a scope.
      channels:
        channels.right === "*"
          ? "*"
          : Object.fromEntries(Object.entries(channels.right).filter(([, list]) => list.length > 0)),
    });
  });

const changedMeanwhile = () =>
  new ControlError({
    reason: "conflict",
    message:
      "The access rules changed meanwhile (someone else saved them): nothing was saved; here they are as they are now.",
  });

export const accessRulePages = (services: PageServices) => {
  const { accessRules } = services;
  const page = pageOn(services.runtime);
  const settings = settingsResponse(services);
  const app = new Hono<AuthEnv>();

  /**
   * Changes rule `index` as `edit` says, under the rules' write lock, if the form's `shown` still describes it
   * (a conflict otherwise); the rule as it was.
   */
  const changeShown = (
    index: number,
    shown: string | undefined,
    edit: (rules: ReadonlyArray<AccessRule>) => ReadonlyArray<AccessRule>,
  ) => {
    let was: AccessRule | undefined;
    return accessRules
      .change((rules) => {
        was = rules[index];
        return was !== undefined && JSON.stringify(was) === shown
          ? Effect.succeed(edit(rules))
          : Effect.fail(changedMeanwhile());
      })
      .pipe(Effect.map(() => was as AccessRule));
  };
  const indexOf = (c: Context) => {
    const text = c.req.param("index") ?? "";
    return /^\d{1,4}$/.test(text) ? Number(text) : -1;
  };

  app.post(
    "/settings/access-rules",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const fields = yield* formFields(c);
        const added = yield* Effect.either(
          Effect.flatMap(ruleOfForm(fields), (rule) =>
            Effect.as(
              accessRules.change((rules) => Effect.succeed([...rules, rule])),
              rule,
            ),
          ),
        );
        if (Either.isLeft(added)) return yield* settings(c, { message: added.left.message }, 400);
        return yield* settings(c, { message: `Rule ${added.right.claim} = ${added.right.equals} added.` });
      }),
    ),
  );

  const editPage = (c: Context<AuthEnv>, index: number, message?: string, status = 200) => {
    const rule = accessRules.current()[index];
    if (rule === undefined)
      return settings(c, { message: `There is no access rule ${index + 1}: the list has changed.` }, 404);
    return Effect.succeed(
      render(
        c,
        `Access rule ${index + 1}`,
        html`<h1>Access rule ${index + 1}</h1>
          ${message === undefined ? "" : html`<p class="notice" role="status">${message}</p>`}
          ${accessRuleForm({ index, rule: accessRuleRow(rule) })}
          <p><a href="/settings">Back to Settings</a></p>`,
        undefined,
        status,
      ),
    );
  };
  app.get(
    "/settings/access-rules/:index",
    needs("admin"),
    page((c) => editPage(c, indexOf(c))),
  );
  app.post(
    "/settings/access-rules/:index",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const index = indexOf(c);
        const fields = yield* formFields(c);
        const saved = yield* Effect.either(
          Effect.flatMap(ruleOfForm(fields), (rule) =>
            changeShown(index, fields.shown, (rules) => rules.map((old, at) => (at === index ? rule : old))),
          ),
        );
        if (Either.isLeft(saved))
          return yield* saved.left.reason === "conflict"
            ? settings(c, { message: saved.left.message }, 409)
            : editPage(c, index, saved.left.message, 400);
        return yield* settings(c, { message: `Rule ${index + 1} saved.` });
      }),
    ),
  );
  app.post(
    "/settings/access-rules/:index/delete",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const index = indexOf(c);
        const fields = yield* formFields(c);
        const removed = yield* Effect.either(
          changeShown(index, fields.shown, (rules) => rules.filter((_, at) => at !== index)),
        );
        if (Either.isLeft(removed)) return yield* settings(c, { message: removed.left.message }, 409);
        return yield* settings(c, {
          message: `Rule ${removed.right.claim} = ${removed.right.equals} deleted.`,
        });
      }),
    ),
  );
  return app;
};
