/**
 * `distributary migrate --to postgres://… [--config-dir DIR] [--replace]`: brings a fleet database's schema up
 * to date and imports a one-box configuration directory into it (channels.json, and tokens.json with its
 * hashes, so every token keeps working). Without `--to`, DISTRIBUTARY_DATABASE_URL; with no channels.json in
 * the default directory (and none named), only the schema is brought up to date. A database that already holds channels is left alone unless
 * `--replace` says to replace them: two configurations are never mixed silently. The URL's password is never
 * printed.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as Effect from "effect/Effect";
import * as Logger from "effect/Logger";
import * as LogLevel from "effect/LogLevel";
import * as Redacted from "effect/Redacted";
import { type ConfigDocument as Channels, ConfigDocument, emptyConfig } from "../domain/channel/channel.ts";
import { CurrentActor } from "../effects/config/actor.ts";
import { CHANNELS_FILE } from "../effects/config/config-state.ts";
import { Database, displayUrl } from "../effects/config/postgres/database.ts";
import { layerPostgres } from "../effects/config/postgres/layer.ts";
import { schemaVersion } from "../effects/config/postgres/migrations.ts";
import { configDir as configDirSetting, settingNow } from "../effects/config/settings.ts";
import { layerFile, loadDocument, saveDocument } from "../effects/config/store.ts";
import { TOKENS_FILE, TokensDocument } from "../effects/control/auth.ts";

const fail = (message: string): void => {
  process.stderr.write(`distributary migrate: ${message}\n`);
  process.exitCode = 1;
};

/** Every failure here (a refusal, the store's, the database's, a setting's) carries its words in `message`. */
const messageOf = (error: unknown): string =>
  typeof error === "string"
    ? error
    : typeof error === "object" && error !== null && "message" in error
      ? String(error.message)
      : String(error);

const names = (items: ReadonlyArray<{ readonly name: string }>) =>
  items.length === 0 ? "" : ` (${items.map((item) => item.name).join(", ")})`;

const noTokens: TokensDocument = { version: 1, tokens: [] };

const importInto = (directory: string, replace: boolean, display: string) =>
  Effect.gen(function* () {
    const fromFiles = yield* Effect.all([
      loadDocument(CHANNELS_FILE, ConfigDocument, emptyConfig),
      loadDocument(TOKENS_FILE, TokensDocument, noTokens),
    ]).pipe(Effect.provide(layerFile(directory)));
    const [channels, tokens]: readonly [Channels, TokensDocument] = fromFiles;
    // Reading first gives the store its baseline: the writes below change rows relative to what is there.
    const [inDatabase, tokensInDatabase] = yield* Effect.all([
      loadDocument(CHANNELS_FILE, ConfigDocument, emptyConfig),
      loadDocument(TOKENS_FILE, TokensDocument, noTokens),
    ]);
    if (inDatabase.channels.length > 0 && !replace) {
      return yield* Effect.fail(
        `the database already holds ${inDatabase.channels.length} channel(s)${names(inDatabase.channels)}; ` +
          "nothing was imported. Pass --replace to replace them with the directory's",
      );
    }
    yield* saveDocument(CHANNELS_FILE, ConfigDocument, channels);
    // Tokens the database has and the directory has not stay, unless the directory replaces everything.
    const kept = replace
      ? []
      : tokensInDatabase.tokens.filter((t) => !tokens.tokens.some((f) => f.id === t.id));
    const hasTokens = existsSync(join(directory, TOKENS_FILE));
    if (hasTokens)
      yield* saveDocument(TOKENS_FILE, TokensDocument, { version: 1, tokens: [...kept, ...tokens.tokens] });
    const version = yield* Effect.flatMap(Database, schemaVersion);
    return [
      `${replace && inDatabase.channels.length > 0 ? `replaced ${inDatabase.channels.length} channel(s); ` : ""}` +
        `imported ${channels.channels.length} channel(s)${names(channels.channels)}` +
        (hasTokens ? ` and ${tokens.tokens.length} token(s)${names(tokens.tokens)}` : " (no tokens.json)"),
      `from ${directory} into ${display} (schema version ${version})`,
    ];
  });

/** No configuration directory to import: the schema brought up to date (the layer does it), and said so. */
const schemaOnly = (display: string) =>
  Effect.map(Effect.flatMap(Database, schemaVersion), (version) => [
    `the schema of ${display} is at version ${version}; nothing imported (no ${CHANNELS_FILE} to import)`,
  ]);

export const migrateCommand = async (args: ReadonlyArray<string>): Promise<void> => {
  const { values } = parseArgs({
    args: [...args],
    options: { to: { type: "string" }, "config-dir": { type: "string" }, replace: { type: "boolean" } },
  });
  // From the environment, the URL stays out of the process's arguments (a Kubernetes Job takes it so).
  const to = values.to ?? process.env.DISTRIBUTARY_DATABASE_URL ?? "";
  if (!/^postgres(ql)?:\/\//.test(to))
    return fail(
      "--to (or DISTRIBUTARY_DATABASE_URL) needs the database's URL: postgres://user:password@host/db",
    );
  const named = values["config-dir"];
  const directory = named ?? settingNow(configDirSetting, "./config");
  const importing = existsSync(join(directory, CHANNELS_FILE));
  if (!importing && named !== undefined)
    return fail(
      `there is no ${CHANNELS_FILE} in ${directory} to import (--config-dir DIR names the directory)`,
    );
  const display = displayUrl(to);
  const outcome = await Effect.runPromise(
    (importing ? importInto(directory, values.replace === true, display) : schemaOnly(display)).pipe(
      Effect.provideService(CurrentActor, { name: "distributary migrate" }),
      Effect.provide(layerPostgres(Redacted.make(to), { node: null })),
      Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)),
      Effect.either,
    ),
  ).catch((cause: unknown) => ({ _tag: "Left" as const, left: cause }));
  if (outcome._tag === "Left") return fail(messageOf(outcome.left));
  process.stdout.write(`${outcome.right.join("\n")}\n`);
};
