/**
 * The whole configuration in and out: `export` (secrets masked, safe to hand out, restorable onto this
 * server) and `import` (our own export format, or the original project's `channels.json`), which merges into
 * the configuration (or replaces it, when asked), with a dry run that tells what would change. One writer at
 * a time, like every command.
 */
import { Effect, Schema } from "effect";
import {
  type ChannelConfig,
  type ConfigDocument,
  ConfigImport,
  OriginalConfigFile,
} from "../domain/channel.ts";
import { ControlError } from "../domain/errors.ts";
import { ChannelId } from "../domain/ids.ts";
import { buildChannel, checkChannel, fromOriginal, prefixed } from "../domain/rules.ts";
import { maskUrl } from "../domain/url.ts";
import { decodeBody, invalid } from "../domain/validate.ts";
import { Channels } from "./channels.ts";
import { ConfigState } from "./config-state.ts";
import { Control } from "./control.ts";

export type ImportMode = "merge" | "replace";

/** What an import did, or would do in a dry run: channel ids by fate. */
export interface ImportPlan {
  readonly mode: ImportMode;
  readonly dry_run: boolean;
  readonly created: ReadonlyArray<string>;
  readonly changed: ReadonlyArray<string>;
  readonly unchanged: ReadonlyArray<string>;
  readonly deleted: ReadonlyArray<string>;
  /** Channels in the configuration afterwards. */
  readonly channels: number;
}

const expected =
  'send our export ({"version": 1, "channels": [...]}) or the original project\'s channels.json ({"<id>": {"config": {...}}})';

const decodeImport = (body: unknown) => {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return Effect.fail(
      invalid([{ field: "(body)", message: `is not a configuration document; ${expected}` }]),
    );
  }
  if ("version" in body) return decodeBody(ConfigImport)(body);
  const keys = Object.keys(body);
  if (keys.length === 0) {
    return Effect.fail(invalid([{ field: "(body)", message: `is empty: nothing to import; ${expected}` }]));
  }
  // The original file's keys are channel ids: a key that cannot be one (such as "__proto__") is named, not
  // dropped on the way through.
  const badKeys = keys.filter((key) => !Schema.is(ChannelId)(key));
  if (badKeys.length > 0) {
    return Effect.fail(
      invalid(
        badKeys.map((key) => ({
          field: JSON.stringify(key),
          message: "is not a channel id (1–64 letters, digits, '-' or '_', starting with a letter or digit)",
        })),
      ),
    );
  }
  return decodeBody(OriginalConfigFile)(body).pipe(
    Effect.map(fromOriginal),
    // Ids of the original file are its keys; re-check them as ours.
    Effect.flatMap(decodeBody(ConfigImport)),
  );
};

export class ConfigTransfer extends Effect.Service<ConfigTransfer>()("distributary/ConfigTransfer", {
  effect: Effect.gen(function* () {
    const configs = yield* ConfigState;
    const channels = yield* Channels;
    const control = yield* Control;

    /** The whole configuration with every secret masked. */
    const exportConfig = Effect.sync(
      (): ConfigDocument => ({
        ...configs.current(),
        channels: configs.current().channels.map((channel) => ({
          ...channel,
          ...(channel.input_url == null ? {} : { input_url: maskUrl(channel.input_url) }),
          ...(channel.backup_input_url == null
            ? {}
            : { backup_input_url: maskUrl(channel.backup_input_url) }),
          outputs: channel.outputs.map((output) => ({ ...output, url: maskUrl(output.url) })),
        })),
      }),
    );

    /**
     * Imports `body`. `merge` (the default) adds or replaces the channels the document names and keeps the
     * others; `replace` also deletes every channel it does not name. A dry run answers what would happen and
     * touches nothing. The new configuration is persisted first; only then do channels stop and start, so a
     * failed write changes nothing at runtime.
     */
    const importConfig = Effect.fn("ConfigTransfer.import")(function* (
      body: unknown,
      options: { readonly mode?: ImportMode; readonly dryRun?: boolean } = {},
    ) {
      return yield* configs.locked(
        Effect.gen(function* () {
          const incoming = yield* decodeImport(body);
          const mode = options.mode ?? incoming.mode ?? "merge";
          const dryRun = options.dryRun ?? incoming.dry_run ?? false;
          const current = configs.current().channels;
          const imported: ChannelConfig[] = [];
          for (const [index, item] of incoming.channels.entries()) {
            const existing = current.find((channel) => channel.id === item.id);
            const channel = yield* buildChannel(
              item,
              {
                desired: item.desired ?? existing?.desired ?? "stopped",
                created_at: item.created_at ?? existing?.created_at ?? new Date().toISOString(),
              },
              existing,
            ).pipe(Effect.mapError((error) => prefixed(error, `channels[${index}].`)));
            if (imported.some((other) => other.id === channel.id)) {
              return yield* new ControlError({
                reason: "conflict",
                message: `channels[${index}].id: channel id '${channel.id}' is used twice`,
              });
            }
            imported.push(channel);
          }
          const importedIds = new Set<string>(imported.map((channel) => channel.id));
          const kept = mode === "merge" ? current.filter((channel) => !importedIds.has(channel.id)) : [];
          const next = [...kept, ...imported];
          for (const [index, channel] of imported.entries()) {
            const problem = checkChannel(channel, next);
            if (problem !== undefined) return yield* Effect.fail(prefixed(problem, `channels[${index}].`));
          }
          const plan: ImportPlan = {
            mode,
            dry_run: dryRun,
            created: imported.filter((channel) => !current.some((c) => c.id === channel.id)).map((c) => c.id),
            changed: imported
              .filter((channel) => {
                const before = current.find((c) => c.id === channel.id);
                return before !== undefined && JSON.stringify(before) !== JSON.stringify(channel);
              })
              .map((c) => c.id),
            unchanged: imported
              .filter((channel) => {
                const before = current.find((c) => c.id === channel.id);
                return before !== undefined && JSON.stringify(before) === JSON.stringify(channel);
              })
              .map((c) => c.id),
            deleted: current.filter((channel) => !next.some((c) => c.id === channel.id)).map((c) => c.id),
            channels: next.length,
          };
          if (dryRun) return plan;
          yield* configs.commit({ version: 1, channels: next });
          // Persisted: now the running state follows. Deleted and changed channels stop; what should run starts.
          const touched = new Set<string>([...plan.deleted, ...plan.changed]);
          for (const id of channels.running()) if (touched.has(id)) yield* channels.stop(id);
          yield* control.resume;
          yield* control.done(
            "config.import",
            `configuration imported (${mode}): ${plan.created.length} created, ${plan.changed.length} changed, ` +
              `${plan.deleted.length} deleted`,
          );
          return plan;
        }),
      );
    });

    return { exportConfig, importConfig } as const;
  }),
}) {}
