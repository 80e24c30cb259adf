/**
 * The whole configuration in and out: `export` (secrets masked, safe to hand out, restorable onto this
 * server) and `import` (our own export format, or the original project's `channels.json`), which replaces the
 * configuration and restarts what should run. One writer at a time, like every command.
 */
import { Effect } from "effect";
import {
  type ChannelConfig,
  type ConfigDocument,
  ConfigImport,
  OriginalConfigFile,
} from "../domain/channel.ts";
import { ControlError } from "../domain/errors.ts";
import { buildChannel, checkChannel, fromOriginal, prefixed } from "../domain/rules.ts";
import { maskUrl } from "../domain/url.ts";
import { decodeBody } from "../domain/validate.ts";
import { Channels } from "./channels.ts";
import { ConfigState } from "./config-state.ts";
import { Control } from "./control.ts";

const decodeImport = (body: unknown) =>
  typeof body === "object" && body !== null && "version" in body
    ? decodeBody(ConfigImport)(body)
    : decodeBody(OriginalConfigFile)(body).pipe(
        Effect.map(fromOriginal),
        // Ids of the original file are its keys; re-check them as ours.
        Effect.flatMap(decodeBody(ConfigImport)),
      );

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
          outputs: channel.outputs.map((output) => ({ ...output, url: maskUrl(output.url) })),
        })),
      }),
    );

    const importConfig = Effect.fn("ConfigTransfer.import")(function* (body: unknown) {
      return yield* configs.locked(
        Effect.gen(function* () {
          const incoming = yield* decodeImport(body);
          const next: ChannelConfig[] = [];
          for (const [index, item] of incoming.channels.entries()) {
            const existing = configs.current().channels.find((channel) => channel.id === item.id);
            const channel = yield* buildChannel(
              item,
              { desired: item.desired ?? "stopped", created_at: item.created_at ?? new Date().toISOString() },
              existing,
            ).pipe(Effect.mapError((error) => prefixed(error, `channels[${index}].`)));
            if (next.some((other) => other.id === channel.id)) {
              return yield* new ControlError({
                reason: "conflict",
                message: `channels[${index}].id: channel id '${channel.id}' is used twice`,
              });
            }
            const problem = checkChannel(channel, next);
            if (problem !== undefined) return yield* Effect.fail(prefixed(problem, `channels[${index}].`));
            next.push(channel);
          }
          const document: ConfigDocument = { version: 1, channels: next };
          for (const id of channels.running()) yield* channels.stop(id);
          yield* configs.commit(document);
          yield* control.resume;
          yield* control.done(
            "config.import",
            `configuration imported: ${document.channels.length} channels`,
          );
          return { channels: document.channels.length };
        }),
      );
    });

    return { exportConfig, importConfig } as const;
  }),
}) {}
