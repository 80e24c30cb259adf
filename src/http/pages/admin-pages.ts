/**
 * The events page and Settings: tokens (a secret shown once, revoke), thumbnails on or off, the export for the
 * browser's session and the import, previewed by its own dry run and applied only as previewed.
 */
import { createHash } from "node:crypto";
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Schema from "effect/Schema";
import { Hono } from "hono";
import { eventsPage } from "../../../views/settings.ts";
import { ChannelScope } from "../../domain/control/access.ts";
import { type ChannelEventType, EVENT_TYPES } from "../../domain/events/events.ts";
import { audit } from "../../effects/events/event-bus.ts";
import { eventsFor } from "../access.ts";
import type { AuthEnv } from "../auth.ts";
import { formFields, needs, type PageServices, pageOn, render } from "./handler.ts";
import { settingsResponse } from "./settings-view.ts";

/** A channel's name as an import document gives it (our format or the original channels.json). */
const nameInDocument = (document: unknown, id: string): string | undefined => {
  if (typeof document !== "object" || document === null) return undefined;
  const record = document as Record<string, unknown>;
  if (Array.isArray(record.channels)) {
    const found = (record.channels as Array<Record<string, unknown>>).find((channel) => channel?.id === id);
    return typeof found?.name === "string" ? found.name : undefined;
  }
  const entry = record[id] as { config?: { name?: unknown } } | undefined;
  return typeof entry?.config?.name === "string" ? entry.config.name : undefined;
};

/** A comma-separated list as the form gives it: its non-empty items. */
const listOf = (text: string | undefined) =>
  (text ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");

/**
 * A form's tags and ids as a scope (a token's, an access rule's): both empty is every channel; a bad tag is said
 * in words after `refused` ("The token was not created").
 */
export const scopeOfForm = (
  tags: string | undefined,
  ids: string | undefined,
  refused = "The token was not created",
): Either.Either<ChannelScope, string> => {
  const scope = { tags: listOf(tags), ids: listOf(ids) };
  if (scope.tags.length === 0 && scope.ids.length === 0) return Either.right("*");
  return Either.mapLeft(
    Schema.decodeUnknownEither(ChannelScope)(scope),
    (error) => `${refused}: ${error.message}`,
  );
};

export const adminPages = (services: PageServices) => {
  const { readModel, bus, auth, transfer, thumbnails } = services;
  const settings = settingsResponse(services);
  const page = pageOn(services.runtime);
  const app = new Hono<AuthEnv>();

  app.get("/events", (c) => {
    const channel = c.req.query("channel") ?? "";
    const type = c.req.query("type") ?? "";
    const types = (EVENT_TYPES as ReadonlyArray<string>).includes(type)
      ? [type as ChannelEventType]
      : undefined;
    const events = bus.recent({
      ...(channel === "" ? {} : { channel }),
      types,
      limit: 500,
      visible: eventsFor(c.get("principal"), c.get("access")),
    });
    return render(
      c,
      "Events",
      eventsPage({ events, channel, type, types: EVENT_TYPES }),
      `/ui/ws?${new URLSearchParams({ page: "events", channel, type })}`,
    );
  });

  app.get(
    "/settings",
    needs("admin"),
    page((c) => settings(c)),
  );
  app.post(
    "/settings/tokens",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const fields = yield* formFields(c);
        const role = fields.role === "admin" || fields.role === "operator" ? fields.role : "viewer";
        const scope = scopeOfForm(fields.tags, fields.ids);
        if (Either.isLeft(scope)) return yield* settings(c, { message: scope.left }, 400);
        const created = yield* Effect.either(
          auth.create({ name: fields.name ?? "", role, channels: scope.right }),
        );
        if (Either.isLeft(created)) return yield* settings(c, { message: created.left.message }, 400);
        return yield* settings(c, { created: { name: created.right.name, secret: created.right.token } });
      }),
    ),
  );
  app.post(
    "/settings/tokens/:tid/revoke",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const result = yield* Effect.either(auth.revoke(c.req.param("tid") ?? ""));
        return yield* settings(c, {
          message: Either.isRight(result) ? "Token revoked." : result.left.message,
        });
      }),
    ),
  );
  app.post(
    "/settings/thumbnails",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const fields = yield* formFields(c);
        thumbnails.setEnabled(fields.enabled === "true");
        yield* Effect.either(
          audit(bus, "settings.thumbnails", `thumbnails turned ${thumbnails.enabled() ? "on" : "off"}`),
        );
        return c.redirect("/settings", 303);
      }),
    ),
  );
  // The export for the browser's session (the API's /api/config wants a bearer token): masked for sharing, or
  // with secrets for a backup (an audit event in the admin's name, never cached).
  app.get(
    "/settings/export",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const secrets = c.req.query("secrets") === "true";
        const exported = yield* transfer.exportConfig({ secrets });
        const name = secrets ? "distributary-backup.json" : "distributary-config.json";
        return c.body(JSON.stringify(exported, null, 2), 200, {
          "content-type": "application/json",
          "content-disposition": `attachment; filename="${name}"`,
          "cache-control": "no-store",
        });
      }),
    ),
  );
  app.post(
    "/settings/import",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const fields = yield* formFields(c);
        const document = fields.document ?? "";
        const mode = fields.mode === "replace" ? "replace" : "merge";
        const fingerprint = createHash("sha256").update(`${mode}\n${document}`).digest("hex");
        // Apply only what was previewed: a document or mode edited since gets a fresh preview, not applied.
        const stale = fields.step === "apply" && fields.previewed !== fingerprint;
        const apply = fields.step === "apply" && !stale;
        const refused = (problems: ReadonlyArray<string>) =>
          settings(
            c,
            { preview: { document, mode, result: { create: [], change: [], remove: [], problems } } },
            400,
          );
        const parsed = Either.try(() => JSON.parse(document) as unknown);
        if (Either.isLeft(parsed))
          return yield* refused([`not valid JSON: ${(parsed.left as Error).message}`]);
        // The preview is the import's own dry run: what it shows is what applying does.
        const outcome = yield* Effect.either(transfer.importConfig(parsed.right, { mode, dryRun: !apply }));
        if (Either.isLeft(outcome)) {
          return yield* refused(
            outcome.left.errors?.map((issue) => `${issue.field}: ${issue.message}`) ?? [outcome.left.message],
          );
        }
        const plan = outcome.right;
        const name = (id: string) => {
          const channel = readModel.current().channels.find((candidate) => candidate.id === id);
          const named = channel?.name ?? nameInDocument(parsed.right, id);
          return named === undefined ? id : `${named} (${id})`;
        };
        const issue = (prefix: string) => (found: { readonly field: string; readonly message: string }) =>
          `${prefix}${found.field}: ${found.message}`;
        const result = {
          create: plan.created.map(name),
          change: plan.changed.map(name),
          remove: plan.deleted.map(name),
          problems: [],
          notes: [
            ...(plan.report ?? []).flatMap((channel) => [
              ...channel.not_taken.map(issue(`${channel.id}, not taken: `)),
              ...channel.warnings.map(issue(`${channel.id}, ignored: `)),
            ]),
            ...(plan.warnings ?? []).map(issue("ignored: ")),
          ],
        };
        if (apply) {
          const message = `Configuration imported (${mode}): ${plan.created.length} created, ${plan.changed.length} changed, ${plan.deleted.length} deleted.`;
          return yield* settings(c, { message });
        }
        const message = stale
          ? "Nothing was imported: the document or the mode changed after its preview. Here is what it would do now; apply again to confirm."
          : undefined;
        return yield* settings(c, {
          preview: { document, mode, result, fingerprint },
          ...(message === undefined ? {} : { message }),
        });
      }),
    ),
  );

  return app;
};
