/**
 * Configuration as code: a declarative document (YAML or JSON, domain/config-code.ts) planned against the
 * stored configuration and applied by its plan's id. Secrets are referred to as `${secret:NAME}` and resolved
 * here, on the server, from DISTRIBUTARY_SECRET_<NAME> or the file <NAME> in DISTRIBUTARY_SECRETS_DIR; a
 * reference is what plans and exports show, never its value, and an export writes it back where the last
 * applied document used one (the references are kept in `config-refs.json`). A plan remembers a digest of
 * the configuration it was made against: applying it after any other change is a 409. An apply is one
 * commit per document and one audit event with the document's digest; the running channels then take only
 * what changed, as the control plane's own commands do (control.ts).
 */
import { createHash, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as Clock from "effect/Clock";
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Schema from "effect/Schema";
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, stringify } from "yaml";
import type { AccessRule } from "../../domain/access.ts";
import { type ChannelConfig, ChannelConfig as ChannelConfigSchema } from "../../domain/channel.ts";
import { checkChannel } from "../../domain/channel-checks.ts";
import {
  type Action,
  channelCost,
  channelImportOf,
  DeclarativeDocument,
  declaredChannel,
  declaredNotifier,
  type FieldChange,
  leafChanges,
  NO_INTERRUPTION,
  outputCost,
  type PlannedChange,
  planLine,
  referencesIn,
  resolveAll,
  resolveText,
  secretNameProblem,
  templatesIn,
} from "../../domain/config-code.ts";
import { ControlError, type FieldIssue } from "../../domain/errors.ts";
import { MASK, type NotifierRecord, notifierProblems } from "../../domain/notifiers.ts";
import { buildChannel, checkChannelSchedule, inputChanged } from "../../domain/rules.ts";
import { holdOutputs, ownerOf, windowsOnAir } from "../../domain/schedule.ts";
import { maskUrl } from "../../domain/url.ts";
import { toFieldIssues } from "../../domain/validate.ts";
import { Channels } from "../channel/channels.ts";
import { ConfigState } from "../config/config-state.ts";
import { Placement } from "../config/placement.ts";
import { ScheduleStore } from "../config/schedule-progress.ts";
import { holdSecrets, maskKnownSecrets } from "../config/secrets.ts";
import { DocumentStore } from "../config/store.ts";
import { AccessRules } from "../control/access-rules.ts";
import { Resume } from "../control/resume.ts";
import { controlShared } from "../control/shared.ts";
import { Notifiers } from "../notify/notifiers.ts";
import { localAddresses } from "../runtime/own-ports.ts";

export const REFS_FILE = "config-refs.json";
/** Plans kept for an apply; an older one is planned again. */
const MAX_PLANS = 50;

export interface ConfigPlan {
  readonly plan_id: string;
  readonly document_sha256: string;
  readonly no_changes: boolean;
  readonly summary: { readonly create: number; readonly change: number; readonly delete: number };
  readonly changes: ReadonlyArray<PlannedChange>;
  /** The plan in words, a line a change. */
  readonly text: string;
}

interface Kept {
  readonly plan: ConfigPlan;
  readonly against: string;
  readonly channels: ReadonlyArray<ChannelConfig>;
  readonly notifiers: ReadonlyArray<NotifierRecord>;
  readonly rules: ReadonlyArray<AccessRule>;
  readonly refs: Record<string, string>;
  readonly touchesNotifiers: boolean;
  readonly touchesRules: boolean;
}

/**
 * A document refused: each issue's field is its path in the document and its message starts with where it is
 * (`channels.yaml:37:19`), as compilers write it so that editors jump there.
 */
const problem = (issues: ReadonlyArray<FieldIssue & { readonly at: string }>) =>
  new ControlError({
    reason: "invalid",
    message: issues.map((issue) => `${issue.at}: ${issue.field}: ${issue.message}`).join("; "),
    errors: issues.map((issue) => ({ field: issue.field, message: `${issue.at}: ${issue.message}` })),
  });

/** A field's path as a document names it (`channels.news.outputs[0]`, with dots and brackets) in steps. */
const stepsOf = (field: string): ReadonlyArray<string | number> =>
  field
    .split(/\.|(?=\[)/)
    .filter((step) => step !== "")
    .map((step) => (/^\[\d+\]$/.test(step) ? Number(step.slice(1, -1)) : step));

/** The text parsed as YAML (JSON is YAML), and where each field of it is: `file:line:column`. */
const parseText = (file: string, text: string) => {
  const counter = new LineCounter();
  const document = parseDocument(text, { lineCounter: counter, uniqueKeys: true, prettyErrors: false });
  const at = (offset: number) => {
    const { line, col } = counter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  if (document.errors.length > 0)
    return Either.left(
      problem(
        document.errors.slice(0, 5).map((error) => ({
          at: at(error.pos[0]),
          field: "(document)",
          message: error.message.split("\n")[0] ?? error.message,
        })),
      ),
    );
  /** The place of the deepest node the field's path reaches. */
  const place = (field: string): string => {
    let node: unknown = document.contents;
    let offset = 0;
    for (const step of stepsOf(field)) {
      if (isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(step));
        if (pair === undefined) break;
        const key = pair.key as Node;
        offset = key.range?.[0] ?? offset;
        node = pair.value;
        if ((node as Node | null)?.range !== undefined) offset = (node as Node).range?.[0] ?? offset;
      } else if (isSeq(node) && typeof step === "number") {
        node = node.items[step];
        if (node === undefined) break;
        offset = (node as Node).range?.[0] ?? offset;
      } else break;
    }
    return at(offset);
  };
  return Either.right({ value: document.toJS({ maxAliasCount: 100 }) as unknown, place });
};

const digest = (text: string) => createHash("sha256").update(text).digest("hex");

export class ConfigCode extends Effect.Service<ConfigCode>()("distributary/ConfigCode", {
  effect: Effect.gen(function* () {
    const configs = yield* ConfigState;
    const channels = yield* Channels;
    const notifiers = yield* Notifiers;
    const rules = yield* AccessRules;
    const store = yield* DocumentStore;
    const placement = yield* Placement;
    const schedules = yield* ScheduleStore;
    const { resume } = yield* Resume;
    const { locked, done, isRunning, spec, startChannel, applyRuntime } = yield* controlShared;

    /** The references of the last applied document, by field path. */
    let refs: Record<string, string> = yield* store.read(REFS_FILE).pipe(
      Effect.map((text) => {
        if (text._tag === "None") return {};
        try {
          const parsed = JSON.parse(text.value) as { refs?: Record<string, string> };
          return parsed.refs ?? {};
        } catch {
          return {};
        }
      }),
      Effect.orElseSucceed(() => ({})),
    );
    const plans = new Map<string, Kept>();

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

    /** Every name the templates refer to, resolved; an unknown one is an issue at its field. */
    const resolveNames = (templates: ReadonlyMap<string, string>) =>
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
        holdSecrets("config-code:references", values.values());
        return { values, issues };
      });

    /** What the store holds now, as one digest: a plan made against another state is stale. */
    const stateDigest = () =>
      digest(
        JSON.stringify({
          channels: configs.current().channels,
          notifiers: notifiers.current(),
          rules: rules.current(),
        }),
      );

    /** A field's value as a plan or export shows it: its reference where one was used, else masked. */
    const shown =
      (
        templates: Readonly<Record<string, string>>,
        values: ReadonlyMap<string, string>,
        kinds: ReadonlyMap<string, string> = new Map(
          notifiers.current().map((record) => [record.id, record.kind]),
        ),
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

    /** The whole configuration as a declarative document: references where used, other secrets masked. */
    const exportDocument = Effect.gen(function* () {
      const { values } = yield* resolveNames(new Map(Object.entries(refs)));
      const show = shown(refs, values);
      const walk = (value: unknown, at: string): unknown => {
        if (Array.isArray(value)) return value.map((item, index) => walk(item, `${at}[${index}]`));
        if (value !== null && typeof value === "object")
          return Object.fromEntries(
            Object.entries(value).map(([key, item]) => [key, walk(item, at === "" ? key : `${at}.${key}`)]),
          );
        return show(at, value);
      };
      const document = {
        version: 1,
        channels: Object.fromEntries(
          configs.current().channels.map((channel) => [channel.id, declaredChannel(channel)]),
        ),
        notifiers: Object.fromEntries(
          notifiers.current().map((record) => [record.id, declaredNotifier(record)]),
        ),
        access_rules: rules.current(),
      };
      return walk(document, "") as Record<string, unknown>;
    });

    const exportText = (format: "json" | "yaml") =>
      Effect.map(exportDocument, (document) =>
        format === "yaml" ? stringify(document, { lineWidth: 0 }) : `${JSON.stringify(document, null, 2)}\n`,
      );

    /** The plan of `text` (YAML or JSON) against the configuration now. */
    const plan = Effect.fn("ConfigCode.plan")(function* (
      text: string,
      options: { readonly file?: string; readonly prune?: boolean },
    ) {
      const file = options.file ?? "document";
      const parsed = parseText(file, text);
      if (Either.isLeft(parsed)) return yield* parsed.left;
      const { value, place } = parsed.right;
      const located = (issues: ReadonlyArray<FieldIssue>) =>
        problem(issues.map((issue) => ({ ...issue, at: place(issue.field) })));
      const templates = templatesIn(value);
      const { values, issues } = yield* resolveNames(templates);
      if (issues.length > 0) return yield* located(issues);
      // A message that repeats a value shows its reference instead.
      const unresolve = (message: string) => {
        let out = message;
        for (const [name, secret] of values) out = out.split(secret).join(`\${secret:${name}}`);
        return maskKnownSecrets(out);
      };
      const decoded = Schema.decodeUnknownEither(DeclarativeDocument, {
        errors: "all",
        onExcessProperty: "error",
      })(resolveAll(value, values));
      if (Either.isLeft(decoded))
        return yield* located(
          toFieldIssues(decoded.left).map((issue) => ({ ...issue, message: unresolve(issue.message) })),
        );
      const document = decoded.right;
      const prune = options.prune === true;
      const current = configs.current().channels;
      const byId = configs.byId(configs.current());
      const now = yield* Clock.currentTimeMillis;
      const built: ChannelConfig[] = [];
      const refused: FieldIssue[] = [];
      for (const [id, declared] of Object.entries(document.channels ?? {})) {
        const existing = byId.get(id);
        const made = buildChannel(
          channelImportOf(id, declared),
          {
            desired: declared.desired ?? existing?.desired ?? "stopped",
            created_at: existing?.created_at ?? new Date(now).toISOString(),
          },
          existing,
        );
        if (Either.isLeft(made)) {
          for (const issue of made.left.errors ?? [{ field: "(channel)", message: made.left.message }])
            refused.push({
              field: `channels.${id}.${issue.field.replace(/^outputs\[(\d+)\]/, (_, i) => `outputs.${Object.keys(declared.outputs ?? {})[Number(i)]}`)}`,
              message: unresolve(issue.message),
            });
          continue;
        }
        const whole = Schema.decodeUnknownEither(ChannelConfigSchema, { errors: "all" })(made.right);
        if (Either.isLeft(whole)) {
          const keys = Object.keys(declared.outputs ?? {});
          for (const issue of toFieldIssues(whole.left))
            refused.push({
              field: `channels.${id}.${issue.field.replace(/^outputs\[(\d+)\]/, (_, i) => `outputs.${keys[Number(i)]}`)}`,
              message: unresolve(issue.message),
            });
          continue;
        }
        built.push(made.right);
      }
      const declaredIds = new Set(built.map((channel) => channel.id));
      const staying = prune ? [] : current.filter((channel) => !declaredIds.has(channel.id));
      const next: ChannelConfig[] = [];
      for (const channel of built) {
        const others = [...staying, ...built.filter((other) => other.id !== channel.id)];
        const wrong = checkChannel(channel, others, localAddresses()) ?? checkChannelSchedule(channel, now);
        if (wrong !== undefined) {
          for (const issue of wrong.errors ?? [{ field: "(channel)", message: wrong.message }])
            refused.push({
              field: `channels.${channel.id}.${issue.field}`,
              message: unresolve(issue.message),
            });
          continue;
        }
        const existing = byId.get(channel.id);
        // The outputs a new schedule names are off outside its windows, as a saved schedule leaves them.
        if (
          channel.schedule != null &&
          JSON.stringify(existing?.schedule) !== JSON.stringify(channel.schedule)
        ) {
          const stored = yield* Effect.orElseSucceed(schedules.load(channel.id), () => null);
          next.push(
            holdOutputs(
              channel,
              stored === null ? new Set() : windowsOnAir(channel, stored.occurrences.values(), now),
            ),
          );
        } else next.push(channel);
      }
      const nextNotifiers: NotifierRecord[] = [];
      const storedNotifiers = notifiers.current();
      for (const [id, declared] of Object.entries(document.notifiers ?? {})) {
        const before = storedNotifiers.find((record) => record.id === id);
        const keep = (given: string | undefined, stored: string | null | undefined) =>
          given === undefined || given.includes(MASK) ? (stored ?? null) : given;
        const record: NotifierRecord = {
          id,
          name: declared.name,
          kind: declared.kind,
          url: keep(declared.url, before?.url),
          secret: keep(declared.secret, before?.secret),
          routing_key: keep(declared.routing_key, before?.routing_key),
          events: declared.events,
          channels: declared.channels ?? "*",
          enabled: declared.enabled ?? true,
          disabled_reason: declared.enabled === true ? null : (before?.disabled_reason ?? null),
          created_at: before?.created_at ?? new Date(now).toISOString(),
        };
        for (const issue of notifierProblems(record))
          refused.push({ field: `notifiers.${id}.${issue.field}`, message: unresolve(issue.message) });
        nextNotifiers.push(record);
      }
      if (refused.length > 0) return yield* located(refused);
      const keptNotifiers = prune
        ? nextNotifiers
        : [
            ...storedNotifiers.filter((record) => !nextNotifiers.some((n) => n.id === record.id)),
            ...nextNotifiers,
          ];
      const nextRules = document.access_rules ?? (prune ? [] : rules.current());

      // The changes, field by field, each shown with references or masked.
      const newRefs = Object.fromEntries(templates);
      const kinds = new Map<string, string>([
        ...storedNotifiers.map((record) => [record.id, record.kind] as const),
        ...nextNotifiers.map((record) => [record.id, record.kind] as const),
      ]);
      const before = shown(refs, values, kinds);
      const after = shown(newRefs, values, kinds);
      const fieldsOf = (from: unknown, to: unknown, prefix: string): FieldChange[] =>
        leafChanges(from, to, "").map((change) => ({
          field: change.field,
          before: before(`${prefix}.${change.field}`, change.before),
          after: after(`${prefix}.${change.field}`, change.after),
        }));
      // References changed with the same value are a change of the document alone.
      const changes: PlannedChange[] = [];
      const push = (change: Omit<PlannedChange, "words">) =>
        changes.push({ ...change, words: planLine({ ...change, words: "" }) });
      const nextIds = new Set(next.map((channel) => channel.id));
      for (const channel of next) {
        const old = byId.get(channel.id);
        const { outputs: outs, ...own } = declaredChannel(channel);
        const prefix = `channels.${channel.id}`;
        const running = isRunning(channel.id);
        if (old === undefined) {
          push({
            kind: "channel",
            action: "create",
            id: channel.id,
            fields: fieldsOf({}, own, prefix),
            cost: channel.desired === "running" ? `channel ${channel.name} starts` : NO_INTERRUPTION,
          });
          for (const output of channel.outputs)
            push({
              kind: "output",
              action: "create",
              id: `${channel.id}/${output.id}`,
              fields: fieldsOf({}, outs?.[output.id], `${prefix}.outputs.${output.id}`),
              cost: NO_INTERRUPTION,
            });
          continue;
        }
        const { outputs: oldOuts, ...oldOwn } = declaredChannel(old);
        const ownFields = fieldsOf(oldOwn, own, prefix);
        const moves = placement.runsHere(old) !== placement.runsHere(channel);
        if (ownFields.length > 0)
          push({
            kind: "channel",
            action: "change",
            id: channel.id,
            fields: ownFields,
            cost: channelCost(channel.name, ownFields, running, moves),
          });
        const stopping = ownFields.some((field) => field.field === "desired") || moves;
        for (const output of channel.outputs) {
          const was = oldOuts?.[output.id];
          const fields = fieldsOf(was ?? {}, outs?.[output.id], `${prefix}.outputs.${output.id}`).filter(
            // A schedule's windows switch the outputs they name: their switch is theirs.
            (field) =>
              !(was !== undefined && field.field === "enabled" && ownerOf(channel, output.id) !== undefined),
          );
          const action: Action = was === undefined ? "create" : "change";
          if (fields.length === 0) continue;
          push({
            kind: "output",
            action,
            id: `${channel.id}/${output.id}`,
            fields,
            cost: outputCost(output.name, action, fields, running && !stopping, output.enabled),
          });
        }
        for (const output of old.outputs)
          if (!channel.outputs.some((kept) => kept.id === output.id))
            push({
              kind: "output",
              action: "delete",
              id: `${channel.id}/${output.id}`,
              fields: [],
              cost: outputCost(output.name, "delete", [], running, output.enabled),
            });
      }
      if (prune)
        for (const channel of current)
          if (!nextIds.has(channel.id))
            push({
              kind: "channel",
              action: "delete",
              id: channel.id,
              fields: [],
              cost: isRunning(channel.id)
                ? `channel ${channel.name} stops: every output goes dark`
                : NO_INTERRUPTION,
            });
      for (const record of keptNotifiers) {
        const old = storedNotifiers.find((candidate) => candidate.id === record.id);
        const fields = fieldsOf(
          old === undefined ? {} : declaredNotifier(old),
          declaredNotifier(record),
          `notifiers.${record.id}`,
        );
        if (fields.length > 0)
          push({
            kind: "notifier",
            action: old === undefined ? "create" : "change",
            id: record.id,
            fields,
            cost: NO_INTERRUPTION,
          });
      }
      for (const old of storedNotifiers)
        if (!keptNotifiers.some((record) => record.id === old.id))
          push({ kind: "notifier", action: "delete", id: old.id, fields: [], cost: NO_INTERRUPTION });
      const ruleFields = leafChanges(rules.current(), nextRules, "access_rules");
      if (ruleFields.length > 0)
        push({
          kind: "access_rules",
          action: "change",
          id: "access_rules",
          fields: ruleFields,
          cost: NO_INTERRUPTION,
        });

      const count = (action: Action) => changes.filter((change) => change.action === action).length;
      const result: ConfigPlan = {
        plan_id: randomUUID(),
        document_sha256: digest(text),
        no_changes: changes.length === 0,
        summary: { create: count("create"), change: count("change"), delete: count("delete") },
        changes,
        text:
          changes.length === 0
            ? "no changes: the configuration matches the document"
            : `${changes.map((change) => change.words).join("\n")}\nplan: ${count("create")} to create, ${count("change")} to change, ${count("delete")} to delete`,
      };
      // A plan never shows a secret, whatever path it took.
      const safe = JSON.parse(maskKnownSecrets(JSON.stringify(result))) as ConfigPlan;
      plans.set(safe.plan_id, {
        plan: safe,
        against: stateDigest(),
        channels: [...staying, ...next],
        notifiers: keptNotifiers,
        rules: nextRules,
        refs: newRefs,
        touchesNotifiers: changes.some((change) => change.kind === "notifier"),
        touchesRules: ruleFields.length > 0,
      });
      while (plans.size > MAX_PLANS) plans.delete(plans.keys().next().value as string);
      return safe;
    });

    /** Carries out a plan made here, if nothing changed since; all of it or nothing. */
    const apply = Effect.fn("ConfigCode.apply")(function* (planId: string) {
      return yield* locked(
        Effect.gen(function* () {
          const kept = plans.get(planId);
          if (kept === undefined)
            return yield* new ControlError({
              reason: "not_found",
              message: `plan '${planId}' is not known here (plans are kept by the node that made them, the latest ${MAX_PLANS}, until the service restarts): plan again`,
            });
          if (kept.against !== stateDigest())
            return yield* new ControlError({
              reason: "conflict",
              message: `the configuration changed since plan ${planId} was made (through the API, the pages or another apply), so it was not applied and nothing changed: plan again and review the new plan`,
            });
          const before = configs.current();
          const touched = new Set(kept.plan.changes.map((change) => change.id.split("/")[0]));
          yield* configs.commit({ version: 1, channels: kept.channels });
          const rollback = <A, E>(effect: Effect.Effect<A, E>) =>
            effect.pipe(Effect.tapError(() => Effect.ignore(configs.commit(before))));
          const notifiersBefore = notifiers.current();
          if (kept.touchesNotifiers) yield* rollback(notifiers.replaceAll(kept.notifiers));
          if (kept.touchesRules)
            yield* rollback(
              rules
                .replaceUnaudited(kept.rules)
                .pipe(
                  Effect.tapError(() =>
                    kept.touchesNotifiers
                      ? Effect.ignore(notifiers.replaceAll(notifiersBefore))
                      : Effect.void,
                  ),
                ),
            );
          refs = kept.refs;
          yield* Effect.ignore(store.write(REFS_FILE, JSON.stringify({ version: 1, refs }, null, 2)));
          // The running channels take what changed, as the control plane's commands do.
          const stored = configs.byId(before);
          const nextById = configs.byId(configs.current());
          for (const id of touched) {
            if (id === undefined) continue;
            const old = stored.get(id);
            const channel = nextById.get(id);
            if (old === undefined || !isRunning(id as ChannelConfig["id"])) continue;
            if (
              channel === undefined ||
              channel.desired === "stopped" ||
              placement.runsHere(old) !== placement.runsHere(channel)
            ) {
              yield* channels.stop(channel?.id ?? old.id);
              continue;
            }
            if (inputChanged(old, channel) || old.name !== channel.name)
              yield* channels
                .reconfigure(spec(channel))
                .pipe(
                  Effect.catchAll(() =>
                    Effect.zipRight(channels.stop(channel.id), Effect.ignore(startChannel(channel))),
                  ),
                );
            for (const output of old.outputs)
              if (!channel.outputs.some((kept) => kept.id === output.id))
                yield* applyRuntime(channels.removeOutput(channel.id, output.id));
            const specs = spec(channel).outputs;
            for (const [index, output] of channel.outputs.entries())
              if (output !== old.outputs.find((candidate) => candidate.id === output.id)) {
                const outputSpec = specs[index];
                if (outputSpec !== undefined)
                  yield* applyRuntime(channels.applyOutput(channel.id, outputSpec));
              }
          }
          yield* resume;
          plans.delete(planId);
          const { summary } = kept.plan;
          yield* done(
            "config.apply",
            `configuration applied (plan ${planId}, document sha256 ${kept.plan.document_sha256}): ${summary.create} created, ${summary.change} changed, ${summary.delete} deleted`,
          );
          return { applied: true, plan_id: planId, document_sha256: kept.plan.document_sha256, summary };
        }),
      );
    });

    /** What the file mode (config-file.ts) says of drift; null when no file is the source of truth. */
    let driftOf: () => {
      file: string;
      document_sha256: string | null;
      drift: number;
      plan: ConfigPlan | null;
    } | null = () => null;
    return {
      plan,
      apply,
      exportText,
      drift: () => driftOf(),
      setDrift: (source: typeof driftOf) => {
        driftOf = source;
      },
    } as const;
  }),
}) {}
