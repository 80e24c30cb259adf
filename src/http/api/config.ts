/**
 * `/api/config`: backup and restore of the whole configuration. The export masks every secret, like every
 * other answer; importing it onto the same server keeps the secrets it already holds for those outputs.
 * The import also takes the original project's `channels.json`.
 */
import { Effect, Schema } from "effect";
import { ConfigDocument, ConfigImport, OriginalConfigFile } from "../../domain/channel.ts";
import type { ConfigTransfer } from "../../effects/config-transfer.ts";
import { type Api, body, makeApi, type Run } from "../routes.ts";

export const configApi = (transfer: ConfigTransfer, run: Run): Api => {
  const { app, routes, on } = makeApi();

  on(
    {
      method: "get",
      path: "/",
      access: "admin",
      summary: "Export the whole configuration (secrets masked)",
      response: ConfigDocument,
    },
    (c) => run(c, transfer.exportConfig, (document) => c.json(document)),
  );

  on(
    {
      method: "post",
      path: "/",
      access: "admin",
      summary:
        "Replace the whole configuration: our export format, or the original project's channels.json. " +
        "Channels whose desired state is running are started.",
      body: Schema.Union(ConfigImport, OriginalConfigFile),
      response: Schema.Struct({ channels: Schema.Number }),
    },
    (c) => run(c, Effect.flatMap(body(c, Schema.Unknown), transfer.importConfig), (result) => c.json(result)),
  );

  return { app, routes };
};
