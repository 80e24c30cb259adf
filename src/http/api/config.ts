/**
 * `/api/config`: backup and restore of the whole configuration. The export masks every secret, like every
 * other answer; importing it onto the same server keeps the secrets it already holds for those outputs.
 * `?secrets=true` (admin, audited) exports them too: a backup that restores anywhere.
 * The import also takes the original project's `channels.json`.
 */
import * as Effect from "effect/Effect";
import * as Schema from "effect/Schema";
import { ConfigDocument, ConfigImport, OriginalConfigFile } from "../../domain/channel.ts";
import { FieldIssue } from "../../domain/errors.ts";
import { invalid } from "../../domain/validate.ts";
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

export const configApi = (transfer: ConfigTransfer, run: Run): Api => {
  const { app, routes, on } = makeApi();

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
