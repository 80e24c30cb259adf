/**
 * The access rules (admin): which claims of a person signed in through the company's identity provider give
 * which role on which channels (src/domain/control/access.ts). One list, replaced whole, kept in the store as
 * `access-rules.json` (one box's JSON store, or a fleet's `access_rules` table, so every node grants the same),
 * read synchronously on every request, audited on each change and read again at once when another node changes
 * it.
 */
import * as Effect from "effect/Effect";
import * as Schema from "effect/Schema";
import { type AccessRule, AccessRules as AccessRulesSchema } from "../../domain/control/access.ts";
import { storeFailed } from "../config/config-state.ts";
import { DocumentStore, loadDocument, saveDocument } from "../config/store.ts";
import { reloadOnChange } from "../config/store-changes.ts";
import { audit, EventBus } from "../events/event-bus.ts";

export const ACCESS_RULES_FILE = "access-rules.json";

/**
 * The document: one row (a fleet's store keeps a document's rows by id) holding the whole list, so that a
 * change is one revision, one audit row and one notice however many rules it touches.
 */
const RulesRow = Schema.Struct({
  id: Schema.Literal("rules"),
  rules: AccessRulesSchema,
  updated_at: Schema.String,
});
export const AccessRulesDocument = Schema.Struct({
  version: Schema.Literal(1),
  access_rules: Schema.Array(RulesRow),
});
export type AccessRulesDocument = typeof AccessRulesDocument.Type;

const rulesOf = (document: AccessRulesDocument): ReadonlyArray<AccessRule> =>
  document.access_rules[0]?.rules ?? [];

export class AccessRules extends Effect.Service<AccessRules>()("distributary/AccessRules", {
  scoped: Effect.gen(function* () {
    const store = yield* DocumentStore;
    const bus = yield* EventBus;
    const load = loadDocument(ACCESS_RULES_FILE, AccessRulesDocument, { version: 1, access_rules: [] }).pipe(
      Effect.provideService(DocumentStore, store),
    );
    let rules = rulesOf(yield* Effect.orDie(load));
    const writeLock = yield* Effect.makeSemaphore(1);
    /** Another node changed them (a fleet): read again, at once. */
    const reload = writeLock.withPermits(1)(
      Effect.flatMap(load, (next) => Effect.sync(() => (rules = rulesOf(next)))),
    );
    yield* reloadOnChange("access_rules", reload);

    /**
     * Replaces the list with what `edit` makes of it, under the write lock, so that an edit of one rule (the
     * Settings page's) applies to the list it read and to no other; `edit` failing changes nothing.
     */
    const change = <E>(
      edit: (current: ReadonlyArray<AccessRule>) => Effect.Effect<ReadonlyArray<AccessRule>, E>,
      audited = true,
    ) =>
      Effect.gen(function* () {
        yield* writeLock.withPermits(1)(
          Effect.gen(function* () {
            const next = yield* edit(rules);
            const before = rules.length;
            const document: AccessRulesDocument = {
              version: 1,
              access_rules: [{ id: "rules", rules: next, updated_at: new Date().toISOString() }],
            };
            yield* saveDocument(ACCESS_RULES_FILE, AccessRulesDocument, document).pipe(
              Effect.provideService(DocumentStore, store),
              Effect.catchAll((error) => Effect.flatMap(storeFailed(error), Effect.fail)),
            );
            rules = next;
            if (audited)
              yield* audit(
                bus,
                "access.rules",
                `access rules replaced: ${before} rule${before === 1 ? "" : "s"} before, ${next.length} now`,
              );
          }),
        );
        return rules;
      }).pipe(Effect.withSpan("AccessRules.change"));

    return {
      /** The rules as they are now: read on every request of a signed-in person, so never waits. */
      current: (): ReadonlyArray<AccessRule> => rules,
      reload,
      /** Replaces the list whole (an empty list removes every rule); audited with the count before and after. */
      replace: (next: ReadonlyArray<AccessRule>) => change(() => Effect.succeed(next)),
      change,
      /** Replaces the list whole as part of a change the caller audits (configuration as code). */
      replaceUnaudited: (next: ReadonlyArray<AccessRule>) => change(() => Effect.succeed(next), false),
    } as const;
  }),
}) {}
