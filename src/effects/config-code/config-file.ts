/**
 * The file as the source of truth (DISTRIBUTARY_CONFIG_FILE): the declarative document is applied at start and
 * whenever its text changes (read every half second: editors replace files rather than write them, which a
 * watch misses). A file that cannot be applied changes nothing: an audit event (`config.file_refused`) and
 * `distributary_config_file_errors_total` say why. Drift — what differs between the file and the service, an
 * object changed through the API or the pages since — is planned again every two seconds and shown as
 * `distributary_config_drift` and by `GET /api/config/drift`, with the plan that would restore the file.
 * In a fleet (every node given the same file) one node applies each version of it, once: under a PostgreSQL
 * advisory lock, a node applies the file only if the digest the fleet last applied (the `cluster` row
 * `config_file_sha256`) is not its own, and writes its digest in the same transaction; the others find it
 * there and apply nothing, and learn the change as they learn any other node's.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import * as Option from "effect/Option";
import * as Schedule from "effect/Schedule";
import { Counter, Gauge, type Registry } from "prom-client";
import { CurrentActor } from "../config/actor.ts";
import { Database, type DatabaseError } from "../config/postgres/database.ts";
import { configFile } from "../config/settings.ts";
import { audit, EventBus } from "../events/event-bus.ts";
import { Metrics } from "../status/metrics.ts";
import { ConfigCode, type ConfigPlan } from "./config-code.ts";

const POLL_MS = 500;
/** The first half of the advisory lock's key under which a fleet's node applies the file. */
const CONFIG_FILE_LOCK = 2_029_068;

interface Failed {
  readonly message: string;
  /** Tried again at the next reading rather than refused. */
  readonly again: boolean;
}
const DRIFT_EVERY = 4;

export const ConfigFileLive = Layer.scopedDiscard(
  Effect.gen(function* () {
    const path = Option.getOrNull(yield* Effect.orDie(configFile));
    const code = yield* ConfigCode;
    if (path === null) return;
    const bus = yield* EventBus;
    const metrics = yield* Metrics;
    let drift: ConfigPlan | null = null;
    let applied: string | null = null;
    let ticks = 0;
    const registry = metrics.registry as unknown as Registry;
    const errors = new Counter({
      name: "distributary_config_file_errors_total",
      help: "times DISTRIBUTARY_CONFIG_FILE could not be read or applied (the reason: the config.file_refused event)",
      registers: [registry],
    });
    new Gauge({
      name: "distributary_config_drift",
      help: "objects (channels, outputs, notifiers, access rules) that differ from DISTRIBUTARY_CONFIG_FILE",
      registers: [registry],
      collect() {
        this.set(drift?.changes.length ?? 0);
      },
    });
    const refused = (reason: string) =>
      Effect.zipRight(
        Effect.sync(() => errors.inc()),
        audit(bus, "config.file_refused", `${path} was not applied, nothing changed: ${reason}`),
      );
    const db = yield* Effect.serviceOption(Database);
    /**
     * Runs `apply` unless the fleet already applied the text of this digest: "taken"; "busy" while another node
     * applies one (tried again at the next reading). On one box, always.
     */
    const once = (
      sha256: string,
      apply: Effect.Effect<void, Failed>,
    ): Effect.Effect<"applied" | "taken" | "busy", Failed> =>
      Option.isNone(db)
        ? Effect.as(apply, "applied" as const)
        : db.value
            .transaction((tx) =>
              Effect.gen(function* () {
                const [lock] = yield* tx.query<{ taken: boolean }>(
                  "select pg_try_advisory_xact_lock($1, hashtext('config-file')) as taken",
                  [CONFIG_FILE_LOCK],
                );
                if (lock?.taken !== true) return "busy" as const;
                const [last] = yield* tx.query<{ value: string }>(
                  "select value from cluster where key = 'config_file_sha256'",
                );
                if (last?.value === sha256) return "taken" as const;
                yield* apply;
                yield* tx.query(
                  `insert into cluster (key, value) values ('config_file_sha256', $1)
                   on conflict (key) do update set value = excluded.value`,
                  [sha256],
                );
                return "applied" as const;
              }),
            )
            .pipe(
              Effect.catchIf(
                (error): error is DatabaseError => "_tag" in error,
                () => Effect.succeed("busy" as const),
              ),
            );
    const read = Effect.tryPromise({
      try: () => readFile(path, "utf8"),
      catch: (error) => `it cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`,
    });
    /** Plans the text and applies what it changes; a conflict (another node wrote first) is tried again. */
    const applyText = (text: string) =>
      Effect.gen(function* () {
        const plan = yield* code.plan(text, { file: path });
        if (!plan.no_changes) yield* code.apply(plan.plan_id);
      }).pipe(
        Effect.mapError((error): Failed => ({ message: error.message, again: error.reason === "conflict" })),
      );
    const step = Effect.gen(function* () {
      ticks += 1;
      const text = yield* read;
      if (text !== applied) {
        const sha256 = createHash("sha256").update(text).digest("hex");
        const outcome = yield* once(sha256, applyText(text)).pipe(
          Effect.catchAll((failed) => {
            // Another node changed the configuration meanwhile, or the database did not answer: next time.
            if (failed.again) return Effect.succeed("busy" as const);
            applied = text;
            return Effect.fail(failed.message);
          }),
        );
        if (outcome === "busy") return;
        if (outcome === "taken") yield* Effect.logInfo(`${path}: another node of the fleet applied it`);
        applied = text;
        drift = null;
        return;
      }
      if (ticks % DRIFT_EVERY !== 0) return;
      const plan = yield* code.plan(text, { file: path }).pipe(Effect.mapError((error) => error.message));
      drift = plan.no_changes ? null : plan;
    }).pipe(
      Effect.catchAll((reason) => refused(reason)),
      Effect.provideService(CurrentActor, { name: "config file" }),
    );
    code.setDrift(() => ({
      file: path,
      // The text last taken (applied or refused), so that a reader knows which version it speaks of.
      document_sha256: applied === null ? null : createHash("sha256").update(applied).digest("hex"),
      drift: drift?.changes.length ?? 0,
      plan: drift,
    }));
    yield* step;
    yield* Effect.forkScoped(Effect.repeat(step, Schedule.spaced(POLL_MS)));
  }),
);
