/**
 * The notifiers as configured (admin only): kept in the store as `notifiers.json` (one box's JSON store, or a
 * fleet's `notifiers` table, so every node delivers to the same ones), changed one writer at a time, each
 * change audited without its secrets. Their secrets (a webhook's signing secret, a routing key, a Slack or
 * Teams URL) are held by the masker from the moment they are known, and shown again nowhere: a webhook's
 * secret made here is in the answer to its creation, once.
 */
import { randomBytes, randomUUID } from "node:crypto";
import * as Effect from "effect/Effect";
import { ControlError, notFound } from "../../domain/base/errors.ts";
import { invalid } from "../../domain/base/validate.ts";
import {
  MAX_NOTIFIERS,
  type NotifierBody,
  type NotifierPatch,
  type NotifierRecord,
  NotifiersDocument,
  type NotifierView,
  notifierProblems,
  notifierSecrets,
  notifierView,
} from "../../domain/events/notifiers.ts";
import { CurrentActor } from "../config/actor.ts";
import { storeFailed } from "../config/config-state.ts";
import { holdSecretsOf } from "../config/secrets.ts";
import { DocumentStore, loadDocument, saveDocument } from "../config/store.ts";
import { reloadOnChange } from "../config/store-changes.ts";
import { audit, EventBus } from "../events/event-bus.ts";

export const NOTIFIERS_FILE = "notifiers.json";

/** A webhook secret as Standard Webhooks has them: `whsec_` and 24 random bytes in base64. */
const newSecret = () => `whsec_${randomBytes(24).toString("base64")}`;

const describe = (record: NotifierRecord) => `notifier ${record.name} (${record.id}, ${record.kind})`;

export class Notifiers extends Effect.Service<Notifiers>()("distributary/Notifiers", {
  scoped: Effect.gen(function* () {
    const store = yield* DocumentStore;
    const bus = yield* EventBus;
    const load = loadDocument(NOTIFIERS_FILE, NotifiersDocument, { version: 1, notifiers: [] }).pipe(
      Effect.provideService(DocumentStore, store),
    );
    let document: NotifiersDocument = yield* Effect.orDie(load);
    const listeners = new Set<() => void>();
    const take = (next: NotifiersDocument) => {
      document = next;
      holdSecretsOf(
        "notifier:",
        new Map(next.notifiers.map((record) => [`notifier:${record.id}`, notifierSecrets(record)])),
      );
      for (const listener of listeners) listener();
    };
    take(document);
    const writeLock = yield* Effect.makeSemaphore(1);
    const commit = (next: NotifiersDocument) =>
      saveDocument(NOTIFIERS_FILE, NotifiersDocument, next).pipe(
        Effect.provideService(DocumentStore, store),
        Effect.catchAll((error) => Effect.flatMap(storeFailed(error), Effect.fail)),
        Effect.tap(() => take(next)),
      );
    const find = (id: string): Effect.Effect<NotifierRecord, ControlError> => {
      const found = document.notifiers.find((record) => record.id === id);
      return found === undefined ? Effect.fail(notFound("notifier", id)) : Effect.succeed(found);
    };
    const checked = (record: NotifierRecord) => {
      const problems = notifierProblems(record);
      return problems.length > 0 ? Effect.fail(invalid(problems)) : Effect.succeed(record);
    };
    const replace = (record: NotifierRecord) => ({
      ...document,
      notifiers: document.notifiers.map((candidate) => (candidate.id === record.id ? record : candidate)),
    });
    /** Another node changed them (a fleet): read again, at once. */
    const reload = writeLock.withPermits(1)(Effect.flatMap(load, (next) => Effect.sync(() => take(next))));
    yield* reloadOnChange("notifiers", reload);

    return {
      /** Every notifier as stored (for the deliveries). */
      current: (): ReadonlyArray<NotifierRecord> => document.notifiers,
      /** Calls `listener` after every change, here or read from another node. */
      onChange: (listener: () => void): void => {
        listeners.add(listener);
      },
      list: Effect.sync(() => document.notifiers.map(notifierView)),
      get: (id: string) => Effect.map(find(id), notifierView),
      find,
      reload,
      create: Effect.fn("Notifiers.create")(function* (body: NotifierBody) {
        return yield* writeLock.withPermits(1)(
          Effect.gen(function* () {
            if (document.notifiers.length >= MAX_NOTIFIERS)
              return yield* new ControlError({
                reason: "conflict",
                message: `there are ${document.notifiers.length} notifiers, the most this service keeps (${MAX_NOTIFIERS}): delete one you no longer need, or send several kinds of events to one notifier, before adding another`,
              });
            const made = body.kind === "webhook" && body.secret === undefined ? newSecret() : null;
            const record = yield* checked({
              id: randomUUID(),
              name: body.name,
              kind: body.kind,
              url: body.url ?? null,
              secret: body.kind === "webhook" ? (body.secret ?? made) : (body.secret ?? null),
              routing_key: body.routing_key ?? null,
              events: body.events,
              channels: body.channels ?? "*",
              enabled: body.enabled ?? true,
              disabled_reason: null,
              created_at: new Date().toISOString(),
            });
            yield* commit({ ...document, notifiers: [...document.notifiers, record] });
            yield* audit(bus, "notifier.create", `${describe(record)} created`);
            const view: NotifierView = notifierView(record);
            // The secret made here, this once: whoever set their own knows it.
            return made === null ? view : { ...view, secret: made };
          }),
        );
      }),
      update: Effect.fn("Notifiers.update")(function* (id: string, patch: NotifierPatch) {
        return yield* writeLock.withPermits(1)(
          Effect.gen(function* () {
            const before = yield* find(id);
            const record = yield* checked({
              ...before,
              ...Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)),
              // Turned on again by hand: the reason it was off is past.
              disabled_reason: patch.enabled === true ? null : before.disabled_reason,
            } as NotifierRecord);
            yield* commit(replace(record));
            const fields = Object.keys(patch).sort().join(", ");
            yield* audit(bus, "notifier.update", `${describe(record)} changed: ${fields || "nothing"}`);
            return notifierView(record);
          }),
        );
      }),
      remove: Effect.fn("Notifiers.remove")(function* (id: string) {
        yield* writeLock.withPermits(1)(
          Effect.gen(function* () {
            const record = yield* find(id);
            yield* commit({ ...document, notifiers: document.notifiers.filter((item) => item.id !== id) });
            yield* audit(bus, "notifier.delete", `${describe(record)} deleted`);
          }),
        );
      }),
      /**
       * Replaces the list whole (configuration as code, src/effects/config-code/config-code.ts), each record
       * checked; the caller audits the change it is part of.
       */
      replaceAll: (records: ReadonlyArray<NotifierRecord>) =>
        writeLock.withPermits(1)(
          Effect.gen(function* () {
            for (const record of records) yield* checked(record);
            yield* commit({ ...document, notifiers: [...records] });
          }),
        ),
      /** The service turns a notifier off itself (its receiver answered 410 Gone), saying so in the audit trail. */
      disable: (id: string, reason: string) =>
        writeLock
          .withPermits(1)(
            Effect.gen(function* () {
              const record = yield* find(id);
              if (!record.enabled) return;
              yield* commit(replace({ ...record, enabled: false, disabled_reason: reason }));
              yield* audit(bus, "notifier.disable", `${describe(record)} turned off: ${reason}`);
            }),
          )
          .pipe(Effect.provideService(CurrentActor, { name: "notifications" })),
    } as const;
  }),
}) {}
