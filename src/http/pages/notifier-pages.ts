/**
 * Settings' notifiers for the browser's session: add one (a webhook secret made for it shown once), edit one
 * on its own page (a secret left blank is kept), send a test, delete. Each goes through the same Notifiers
 * service as the API, so it is checked, stored and audited the same; a refusal is the page again with the
 * reason in words.
 */
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import { type Context, Hono } from "hono";
import { html } from "hono/html";
import { notifierForm } from "../../../views/notifiers.ts";
import { decodeBody } from "../../domain/base/validate.ts";
import {
  NOTIFIER_KINDS,
  NOTIFY_EVENTS,
  type NotifierBody,
  NotifierBody as NotifierBodySchema,
  NotifierPatch,
} from "../../domain/events/notifiers.ts";
import type { AuthEnv } from "../auth.ts";
import { needs, type PageServices, pageOn, render } from "./handler.ts";
import { settingsResponse } from "./settings-view.ts";

/** The posted form, every value of each field (the events are checkboxes). */
const formLists = (c: Context) =>
  Effect.map(
    Effect.promise(() => c.req.parseBody({ all: true })),
    (body) => {
      const fields = new Map<string, ReadonlyArray<string>>();
      for (const [key, value] of Object.entries(body)) {
        const values = (Array.isArray(value) ? value : [value]).filter((item) => typeof item === "string");
        fields.set(key, values as ReadonlyArray<string>);
      }
      return fields;
    },
  );

/** The form as the API's body: blank fields are left out (a secret kept, a URL not given). */
const bodyOf = (fields: ReadonlyMap<string, ReadonlyArray<string>>, editing: boolean) => {
  const text = (name: string) => (fields.get(name)?.[0] ?? "").trim();
  const channels = text("channels");
  const body: Record<string, unknown> = {
    name: text("name"),
    events: [...(fields.get("events") ?? [])],
    channels:
      channels === "*" || channels === ""
        ? "*"
        : channels
            .split(",")
            .map((id) => id.trim())
            .filter((id) => id !== ""),
    enabled: text("enabled") === "on",
  };
  if (!editing) body.kind = text("kind");
  for (const name of ["url", "secret", "routing_key"]) if (text(name) !== "") body[name] = text(name);
  return body;
};

export const notifierPages = (services: PageServices) => {
  const { notifiers, notifications } = services;
  const page = pageOn(services.runtime);
  const settings = settingsResponse(services);
  const app = new Hono<AuthEnv>();

  app.post(
    "/settings/notifiers",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const fields = yield* formLists(c);
        const created = yield* Effect.either(
          Effect.flatMap(decodeBody(NotifierBodySchema)(bodyOf(fields, false)), (body: NotifierBody) =>
            notifiers.create(body),
          ),
        );
        if (Either.isLeft(created)) return yield* settings(c, { message: created.left.message }, 400);
        const secret = created.right.secret;
        return yield* settings(
          c,
          { message: `Notifier ${created.right.name} added.` },
          200,
          secret !== null && secret !== "whsec_****" ? { name: created.right.name, secret } : undefined,
        );
      }),
    ),
  );
  const editPage = (c: Context<AuthEnv>, id: string, message?: string, status = 200) =>
    Effect.gen(function* () {
      const current = yield* notifiers.get(id);
      return render(
        c,
        `Notifier ${current.name}`,
        html`<h1>Notifier ${current.name}</h1>
          ${message === undefined ? "" : html`<p class="notice" role="status">${message}</p>`}
          ${notifierForm({ events: NOTIFY_EVENTS, kinds: NOTIFIER_KINDS, current })}
          <p><a href="/settings">Back to Settings</a></p>`,
        undefined,
        status,
      );
    });
  app.get(
    "/settings/notifiers/:nid",
    needs("admin"),
    page((c) =>
      Effect.catchAll(editPage(c, c.req.param("nid") ?? ""), (error) =>
        settings(c, { message: error.message }, 404),
      ),
    ),
  );
  app.post(
    "/settings/notifiers/:nid",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const id = c.req.param("nid") ?? "";
        const fields = yield* formLists(c);
        const updated = yield* Effect.either(
          Effect.flatMap(decodeBody(NotifierPatch)(bodyOf(fields, true)), (patch) =>
            notifiers.update(id, patch),
          ),
        );
        if (Either.isLeft(updated))
          return yield* Effect.catchAll(editPage(c, id, updated.left.message, 400), () =>
            settings(c, { message: updated.left.message }, 404),
          );
        return yield* settings(c, { message: `Notifier ${updated.right.name} saved.` });
      }),
    ),
  );
  app.post(
    "/settings/notifiers/:nid/test",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const tested = yield* Effect.either(
          Effect.flatMap(notifiers.find(c.req.param("nid") ?? ""), notifications.test),
        );
        const message = Either.isLeft(tested)
          ? tested.left.message
          : tested.right.ok
            ? `Test delivered: ${tested.right.message}.`
            : `Test failed: ${tested.right.message}.`;
        return yield* settings(c, { message });
      }),
    ),
  );
  app.post(
    "/settings/notifiers/:nid/delete",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const removed = yield* Effect.either(notifiers.remove(c.req.param("nid") ?? ""));
        return yield* settings(c, {
          message: Either.isLeft(removed) ? removed.left.message : "Notifier deleted.",
        });
      }),
    ),
  );
  return app;
};
