/**
 * `/api/config`: backup and restore of the whole configuration. The export masks every secret, like every
 * other answer; importing it onto the same server keeps the secrets it already holds for those outputs.
 * `?secrets=true` (admin, audited) exports them too: a backup that restores anywhere.
 * The import also takes the original project's `channels.json`.
 */
import * as Effect from "effect/Effect";
import * as Schema from "effect/Schema";
import { FieldIssue } from "../../domain/base/errors.ts";
import { invalid } from "../../domain/base/validate.ts";
import { ConfigDocument, ConfigImport, OriginalConfigFile } from "../../domain/channel/channel.ts";
import { declarativeJsonSchema } from "../../domain/control/config-code.ts";
import type { ConfigCode } from "../../effects/config-code/config-code.ts";
import type { ConfigTransfer } from "../../effects/control/config-transfer.ts";
import { type Api, body, makeApi, type Run } from "../routes.ts";

const ImportResult = Schema.Struct({
  mode: Schema.Literal("merge", "replace"),
  dry_run: Schema.Boolean,
  created: Schema.Array(Schema.String),
  changed: Schema.Array(Schema.String),
  unchanged: Schema.Array(Schema.String),
  deleted: Schema.Array(Schema.String),
  channels: Schema.Number,
  warnings: Schema.optional(Schema.Array(FieldIssue)).annotations({
    description: "our format: what was ignored (unknown fields, empty optional fields); absent if nothing",
  }),
  report: Schema.optional(
    Schema.Array(
      Schema.Struct({
        id: Schema.String,
        taken: Schema.Boolean,
        outputs_taken: Schema.Number,
        not_taken: Schema.Array(FieldIssue),
        warnings: Schema.Array(FieldIssue),
      }),
    ),
  ).annotations({
    description:
      "the original project's channels.json: per channel, whether it was taken, how many outputs, what was " +
      "not taken and why, and what was ignored",
  }),
}).annotations({ identifier: "ImportResult" });

const importOptions = (query: Record<string, string>) => {
  const issues: Array<{ field: string; message: string }> = [];
  if (query.mode !== undefined && query.mode !== "merge" && query.mode !== "replace")
    issues.push({ field: "mode", message: `must be merge or replace, got '${query.mode}'` });
  if (query.dry_run !== undefined && query.dry_run !== "true" && query.dry_run !== "false")
    issues.push({ field: "dry_run", message: `must be true or false, got '${query.dry_run}'` });
  if (issues.length > 0) return Effect.fail(invalid(issues));
  return Effect.succeed({
    ...(query.mode === undefined ? {} : { mode: query.mode as "merge" | "replace" }),
    ...(query.dry_run === undefined ? {} : { dryRun: query.dry_run === "true" }),
  });
};

const exportOptions = (query: Record<string, string>) =>
  query.secrets === undefined || query.secrets === "true" || query.secrets === "false"
    ? Effect.succeed({ secrets: query.secrets === "true" })
    : Effect.fail(invalid([{ field: "secrets", message: `must be true or false, got '${query.secrets}'` }]));

const PlanBody = Schema.Struct({
  document: Schema.Union(
    Schema.String,
    Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  ).annotations({
    description:
      "the declarative document: its YAML or JSON text (errors then name line and column), or the JSON object",
  }),
  file: Schema.optional(Schema.String.pipe(Schema.maxLength(200))).annotations({
    description: "the file's name, for the errors",
  }),
  prune: Schema.optional(Schema.Boolean).annotations({
    description: "delete the channels and notifiers the document does not name",
  }),
}).annotations({ identifier: "ConfigPlanBody", parseOptions: { onExcessProperty: "error" } });

const ApplyBody = Schema.Struct({ plan_id: Schema.String }).annotations({
  identifier: "ConfigApplyBody",
  parseOptions: { onExcessProperty: "error" },
});

export const configApi = (transfer: ConfigTransfer, code: ConfigCode, run: Run): Api => {
  const { app, routes, on } = makeApi();

  on(
    {
      method: "get",
      path: "/schema",
      access: "viewer",
      summary: "The declarative document's JSON Schema (configuration as code: docs/config-as-code.md)",
      response: Schema.Unknown,
    },
    (c) => c.json(declarativeJsonSchema()),
  );

  on(
    {
      method: "get",
      path: "/document",
      access: "admin",
      summary:
        "Export the whole configuration as a declarative document (?format=yaml or json): channels, outputs " +
        "and notifiers keyed by id, access rules; a secret given by reference ($" +
        "{secret:NAME}) is written back so, others masked",
      response: Schema.Unknown,
    },
    (c) => {
      const format = c.req.query("format") ?? "json";
      if (format !== "json" && format !== "yaml")
        return run(
          c,
          Effect.fail(invalid([{ field: "format", message: `must be json or yaml, got '${format}'` }])),
          () => c.text(""),
        );
      return run(c, code.exportText(format), (text) =>
        c.body(text, 200, {
          "content-type": format === "yaml" ? "application/yaml; charset=utf-8" : "application/json",
          "cache-control": "no-store",
        }),
      );
    },
  );

  on(
    {
      method: "get",
      path: "/drift",
      access: "admin",
      summary:
        "With DISTRIBUTARY_CONFIG_FILE: how many objects differ from the file (changed through the API or the " +
        "pages since) and the plan that would restore it; file null when no file is the source of truth",
      response: Schema.Unknown,
    },
    (c) =>
      c.json(code.drift() ?? { file: null, document_sha256: null, drift: 0, plan: null }, 200, {
        "cache-control": "no-store",
      }),
  );

  on(
    {
      method: "post",
      path: "/plan",
      access: "admin",
      summary:
        "What applying the declarative document would change, field by field, and what each change costs on " +
        "air; changes nothing. Deletions only with prune. Apply it by its plan_id",
      body: PlanBody,
      response: Schema.Unknown,
    },
    (c) =>
      run(
        c,
        Effect.flatMap(body(c, PlanBody), (given) =>
          code.plan(typeof given.document === "string" ? given.document : JSON.stringify(given.document), {
            ...(given.file === undefined ? {} : { file: given.file }),
            ...(given.prune === undefined ? {} : { prune: given.prune }),
          }),
        ),
        (plan) => c.json(plan),
      ),
  );

  on(
    {
      method: "post",
      path: "/apply",
      access: "admin",
      summary:
        "Carry out a plan by its id: all of it or nothing, one audit event with the document's digest; a 409 " +
        "if the configuration changed since the plan was made",
      body: ApplyBody,
      response: Schema.Unknown,
    },
    (c) =>
      run(
        c,
        Effect.flatMap(body(c, ApplyBody), (given) => code.apply(given.plan_id)),
        (result) => c.json(result),
      ),
  );

  on(
    {
      method: "get",
      path: "/",
      access: "admin",
      summary:
        "Export the whole configuration. By default secrets are masked (****): safe to share, and it restores " +
        "onto this server, which keeps them. ?secrets=true exports them too, for a backup that restores onto " +
        "any server; each such export is an audit event (api_change, action config.export)",
      response: ConfigDocument,
    },
    (c) =>
      run(c, Effect.flatMap(exportOptions(c.req.query()), transfer.exportConfig), (document) =>
        c.json(document, 200, { "cache-control": "no-store" }),
      ),
  );

  on(
    {
      method: "post",
      path: "/",
      access: "admin",
      summary:
        "Import our export format or the original project's channels.json. ?mode=merge (default) adds or " +
        "replaces the channels it names and keeps the others; ?mode=replace also deletes the others; " +
        "?dry_run=true answers what would be created, changed and deleted, and changes nothing. " +
        "Unknown fields are ignored and listed in warnings. Our format is taken whole or refused; the original " +
        "file is taken channel by channel and output by output, and the report says what was not taken and why. " +
        "Channels whose desired state is running are started.",
      body: Schema.Union(ConfigImport, OriginalConfigFile),
      response: ImportResult,
    },
    (c) =>
      run(
        c,
        Effect.flatMap(importOptions(c.req.query()), (options) =>
          Effect.flatMap(body(c, Schema.Unknown), (document) => transfer.importConfig(document, options)),
        ),
        (result) => c.json(result),
      ),
  );

  return { app, routes };
};
