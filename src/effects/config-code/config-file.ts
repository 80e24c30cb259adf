/**
 * The file as the source of truth (DISTRIBUTARY_CONFIG_FILE): the declarative document is applied at start and
 * whenever its text changes (read every half second: editors replace files rather than write them, which a
 * watch misses). A file that cannot be applied changes nothing: an audit event (`config.file_refused`) and
 * `distributary_config_file_errors_total` say why. Drift — what differs between the file and the service, an
 * object changed through the API or the pages since — is planned again every two seconds and shown as
 * `distributary_config_drift` and by `GET /api/config/drift`, with the plan that would restore the file.
 * On one box; a fleet's nodes each apply it (not once for the fleet: docs/config-as-code.md).
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import * as Option from "effect/Option";
import * as Schedule from "effect/Schedule";
import { Counter, Gauge, type Registry } from "prom-client";
import { CurrentActor } from "../config/actor.ts";
import { configFile } from "../config/settings.ts";
import { audit, EventBus } from "../events/event-bus.ts";
import { Metrics } from "../status/metrics.ts";
import { ConfigCode, type ConfigPlan } from "./config-code.ts";

const POLL_MS = 500;
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
    const read = Effect.tryPromise({
      try: () => readFile(path, "utf8"),
      catch: (error) => `it cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`,
    });
    const step = Effect.gen(function* () {
      ticks += 1;
      const text = yield* read;
      if (text !== applied) {
        applied = text;
        const plan = yield* code.plan(text, { file: path }).pipe(Effect.mapError((error) => error.message));
        if (!plan.no_changes) yield* code.apply(plan.plan_id).pipe(Effect.mapError((error) => error.message));
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
