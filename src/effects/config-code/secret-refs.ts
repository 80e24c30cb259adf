/**
 * Secrets by reference for config-code.ts: a `${secret:NAME}` resolved on the server (from
 * DISTRIBUTARY_SECRET_<NAME> or the file <NAME> in DISTRIBUTARY_SECRETS_DIR) and held by the masker, and a
 * field's value as a plan or export shows it — its reference where one was used, else masked.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import type { FieldIssue } from "../../domain/base/errors.ts";
import { referencesIn, resolveText, secretNameProblem } from "../../domain/control/config-code.ts";
import { MASK } from "../../domain/events/notifiers.ts";
import { maskUrl } from "../../domain/url/url.ts";
import { holdSecrets } from "../config/secrets.ts";

/** The secret's value, or why there is none (in words, never the value). */
const secretValue = (name: string) =>
  Effect.promise(async (): Promise<Either.Either<string, string>> => {
    const wrong = secretNameProblem(name);
    if (wrong !== null) return Either.left(wrong);
    const fromEnv = process.env[`DISTRIBUTARY_SECRET_${name}`];
    if (fromEnv !== undefined && fromEnv !== "") return Either.right(fromEnv);
    const dir = process.env.DISTRIBUTARY_SECRETS_DIR;
    if (dir !== undefined && dir !== "") {
      const text = await readFile(join(dir, name), "utf8").catch(() => null);
      if (text !== null) return Either.right(text.replace(/\r?\n$/, ""));
    }
    return Either.left(
      `secret '${name}' is not known to the server: set DISTRIBUTARY_SECRET_${name}, or put a file named ${name} in DISTRIBUTARY_SECRETS_DIR`,
    );
  });

/**
 * Every name the templates refer to, resolved; an unknown one is an issue at its field. The values are held by
 * the masker as `owner`'s (a plan's, or the stored configuration's: referring-store.ts).
 */
export const resolveNames = (templates: ReadonlyMap<string, string>, owner = "config-code:references") =>
  Effect.gen(function* () {
    const values = new Map<string, string>();
    const issues: FieldIssue[] = [];
    for (const [field, template] of templates)
      for (const name of referencesIn(template)) {
        if (values.has(name)) continue;
        const value = yield* secretValue(name);
        if (Either.isLeft(value)) issues.push({ field, message: value.left });
        else values.set(name, value.right);
      }
    // The masker learns them before any text could repeat one.
    holdSecrets(owner, values.values());
    return { values, issues };
  });

/**
 * A field's value as a plan or export shows it: its reference where one was used, else masked (`kinds` are the
 * notifiers' kinds by id).
 */
export const shown =
  (
    templates: Readonly<Record<string, string>>,
    values: ReadonlyMap<string, string>,
    kinds: ReadonlyMap<string, string>,
  ) =>
  (field: string, value: unknown): unknown => {
    if (typeof value !== "string") return value;
    const template = templates[field];
    if (template !== undefined && resolveText(template, values) === value) return template;
    const steps = field.split(".");
    const last = steps.at(-1) ?? "";
    if (steps[0] === "notifiers") {
      // A Slack or Teams URL lets anyone post: a secret whole.
      const kind = kinds.get(steps[1] ?? "");
      if (last === "secret" || last === "routing_key") return MASK;
      if (last === "url" && kind !== "webhook" && kind !== "pagerduty") return MASK;
      return value;
    }
    if (last === "url" || last === "input_url" || last === "backup_input_url") return maskUrl(value);
    return value;
  };
