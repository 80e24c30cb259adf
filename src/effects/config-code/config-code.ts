/**
 * Configuration as code: a declarative document (YAML or JSON, domain/control/config-code.ts) planned against
 * the stored configuration and applied by its plan's id. The text is read with each field's place
 * (document-text.ts). Secrets are referred to as `${secret:NAME}` and resolved on the server (secret-refs.ts)
 * from DISTRIBUTARY_SECRET_<NAME> or the file <NAME> in DISTRIBUTARY_SECRETS_DIR; a reference is what plans
 * and exports show, never its value, and an export (export-document.ts) writes it back where the last applied
 * document used one (the store keeps the references, never the values: referring-store.ts). What the
 * document makes of each channel and notifier, checked as the API checks them, is declared-state.ts's; a
 * plan's changes and their cost in words are plan-changes.ts's; a plan remembers a digest of the
 * configuration it was made against: applying it after any other change is a 409. An apply is one commit per
 * document and one audit event with the document's digest; the running channels then take only what changed
 * (apply-running.ts), as the control plane's own commands do (control.ts).
 */
import { createHash, randomUUID } from "node:crypto";
import * as Clock from "effect/Clock";
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Schema from "effect/Schema";
import { ControlError, type FieldIssue } from "../../domain/base/errors.ts";
import { toFieldIssues } from "../../domain/base/validate.ts";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import type { AccessRule } from "../../domain/control/access.ts";
import {
  DeclarativeDocument,
  type PlannedChange,
  resolveAll,
  templatesIn,
} from "../../domain/control/config-code.ts";
import type { NotifierRecord } from "../../domain/events/notifiers.ts";
import { Channels } from "../channel/channels.ts";
import { ConfigState } from "../config/config-state.ts";
import { Placement } from "../config/placement.ts";
import { ScheduleStore } from "../config/schedule-progress.ts";
import { maskKnownSecrets } from "../config/secrets.ts";
import { AccessRules } from "../control/access-rules.ts";
import { Resume } from "../control/resume.ts";
import { controlShared } from "../control/shared.ts";
import { Notifiers } from "../notify/notifiers.ts";
import { applyToRunning } from "./apply-running.ts";
import { declaredChannels, declaredNotifiers } from "./declared-state.ts";
import { parseText, problem } from "./document-text.ts";
import { documentText, exportedDocument } from "./export-document.ts";
import { planChanges, planWords } from "./plan-changes.ts";
import { SecretRefs } from "./referring-store.ts";
import { resolveNames, shown } from "./secret-refs.ts";

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

const digest = (text: string) => createHash("sha256").update(text).digest("hex");

export class ConfigCode extends Effect.Service<ConfigCode>()("distributary/ConfigCode", {
  effect: Effect.gen(function* () {
    const configs = yield* ConfigState;
    const channels = yield* Channels;
    const notifiers = yield* Notifiers;
    const rules = yield* AccessRules;
    const placement = yield* Placement;
    const schedules = yield* ScheduleStore;
    const { resume } = yield* Resume;
    const { locked, done, isRunning, spec, startChannel, applyRuntime } = yield* controlShared;

    /** The references in use, by field path: what the store holds (referring-store.ts). */
    const secretRefs = yield* SecretRefs;
    const plans = new Map<string, Kept>();

    /** What the store holds now, as one digest: a plan made against another state is stale. */
    const stateDigest = () =>
      digest(
        JSON.stringify({
          channels: configs.current().channels,
          notifiers: notifiers.current(),
          rules: rules.current(),
        }),
      );

    /** The whole configuration as a declarative document: references where used, other secrets masked. */
    const exportText = (format: "json" | "yaml") =>
      Effect.gen(function* () {
        const refs = secretRefs.current();
        const { values } = yield* resolveNames(new Map(Object.entries(refs)));
        const show = shown(
          refs,
          values,
          new Map(notifiers.current().map((record) => [record.id, record.kind])),
        );
        const state = {
          channels: configs.current().channels,
          notifiers: notifiers.current(),
          rules: rules.current(),
        };
        return documentText(exportedDocument(state, show), format);
      });

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
      const { staying, next, refused } = yield* declaredChannels({
        document,
        current,
        byId,
        prune,
        now,
        unresolve,
        storedSchedule: (channel) => Effect.orElseSucceed(schedules.load(channel), () => null),
      });
      const storedNotifiers = notifiers.current();
      const declared = declaredNotifiers({ document, stored: storedNotifiers, now, unresolve });
      const nextNotifiers = declared.records;
      refused.push(...declared.refused);
      if (refused.length > 0) return yield* located(refused);
      const keptNotifiers = prune
        ? nextNotifiers
        : [
            ...storedNotifiers.filter((record) => !nextNotifiers.some((n) => n.id === record.id)),
            ...nextNotifiers,
          ];
      const nextRules = document.access_rules ?? (prune ? [] : rules.current());

      // The changes, field by field, each shown with references or masked.
      // The references after the apply: the document's, and those of what it leaves as it is.
      const declaredPaths = [
        ...next.map((channel) => `channels.${channel.id}.`),
        ...nextNotifiers.map((record) => `notifiers.${record.id}.`),
      ];
      const newRefs = {
        ...Object.fromEntries(
          Object.entries(secretRefs.current()).filter(
            ([path]) => !declaredPaths.some((prefix) => path.startsWith(prefix)),
          ),
        ),
        ...Object.fromEntries(templates),
      };
      const kinds = new Map<string, string>([
        ...storedNotifiers.map((record) => [record.id, record.kind] as const),
        ...nextNotifiers.map((record) => [record.id, record.kind] as const),
      ]);
      const { changes, touchesRules } = planChanges({
        current,
        byId,
        next,
        prune,
        storedNotifiers,
        keptNotifiers,
        rules: rules.current(),
        nextRules,
        before: shown(secretRefs.current(), values, kinds),
        after: shown(newRefs, values, kinds),
        isRunning,
        runsHere: placement.runsHere,
      });
      const { no_changes, summary, text: words } = planWords(changes);
      const result: ConfigPlan = {
        plan_id: randomUUID(),
        document_sha256: digest(text),
        no_changes,
        summary,
        changes,
        text: words,
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
        touchesRules,
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
          // What is written refers where the document did (referring-store.ts).
          const refsBefore = secretRefs.current();
          secretRefs.replace(kept.refs);
          yield* configs
            .commit({ version: 1, channels: kept.channels })
            .pipe(Effect.tapError(() => Effect.sync(() => secretRefs.replace(refsBefore))));
          const rollback = <A, E>(effect: Effect.Effect<A, E>) =>
            effect.pipe(
              Effect.tapError(() =>
                Effect.zipRight(
                  Effect.sync(() => secretRefs.replace(refsBefore)),
                  Effect.ignore(configs.commit(before)),
                ),
              ),
            );
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
          // The running channels take what changed, as the control plane's commands do.
          yield* applyToRunning({
            before: configs.byId(before),
            after: configs.byId(configs.current()),
            touched,
            channels,
            shared: { isRunning, spec, startChannel, applyRuntime },
            runsHere: placement.runsHere,
          });
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
