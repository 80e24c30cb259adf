/**
 * The service's Effect services wired together, given a document store: one event bus, the channel
 * supervisor, the configuration, the cue history and the recordings, the read model over them, the commands
 * and the resume of channels that should run, import/export, the tokens and the notifications.
 * The service and the tests build the same graph from here.
 */
import * as ConfigProvider from "effect/ConfigProvider";
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import { Channels } from "./channel/channels.ts";
import { ConfigState } from "./config/config-state.ts";
import { Placement } from "./config/placement.ts";
import { layerSchedulePostgres } from "./config/postgres/schedule-progress.ts";
import { layerScheduleDocument, type ScheduleStore } from "./config/schedule-progress.ts";
import { type DocumentStore, layerMemory } from "./config/store.ts";
import { ConfigCode } from "./config-code/config-code.ts";
import { ConfigFileLive } from "./config-code/config-file.ts";
import { layerReferring } from "./config-code/referring-store.ts";
import { AccessRules } from "./control/access-rules.ts";
import { Auth } from "./control/auth.ts";
import { ConfigTransfer } from "./control/config-transfer.ts";
import { Control } from "./control/control.ts";
import { Resume } from "./control/resume.ts";
import { SignOn } from "./control/sign-on.ts";
import { EventBus } from "./events/event-bus.ts";
import { EventLogLive } from "./events/event-log.ts";
import { makeCoordinator } from "./fleet/coordinator.ts";
import { Fleet, layerOneBox } from "./fleet/fleet.ts";
import { FleetMetricsLive } from "./fleet/fleet-metrics.ts";
import { MediaLive } from "./medialive/medialive.ts";
import { Notifications } from "./notify/deliveries.ts";
import { Notifiers } from "./notify/notifiers.ts";
import { NotifyMetricsLive } from "./notify/notify-metrics.ts";
import { Recordings } from "./outputs/recordings.ts";
import { ScheduleRunner } from "./schedule/runner.ts";
import { CueHistory } from "./status/cue-history.ts";
import { Metrics } from "./status/metrics.ts";
import { ReadModel } from "./status/read-model.ts";
import { Readiness } from "./status/readiness.ts";
import { Thumbnails } from "./status/thumbnails.ts";

/** Events name their channel and output as the configuration names them (wired here: neither knows the other). */
const EventNames = Layer.effectDiscard(
  Effect.gen(function* () {
    const bus = yield* EventBus;
    const config = yield* ConfigState;
    bus.nameWith(config.names);
  }),
);

/** The inputs follow the linked MediaLive channel's egress (wired here: the link is below the commands). */
const MediaLiveSenders = Layer.effectDiscard(
  Effect.gen(function* () {
    const medialive = yield* MediaLive;
    const control = yield* Control;
    medialive.onSendersChanged((id) => Effect.ignore(control.applySenders(id)));
  }),
);

/**
 * In a fleet, a channel's events are notified by the node holding its lease, a node found down has its pending
 * deliveries taken over by a live one, and a node whose own lease ran out (and not isolated) sends none the
 * database cannot confirm are still its own (wired here: neither knows the other).
 */
const NotifyWhereHeld = Layer.effectDiscard(
  Effect.gen(function* () {
    const fleet = yield* Fleet;
    const notifications = yield* Notifications;
    if (!fleet.enabled) return;
    notifications.sendOnlyFor((channel) => fleet.held().has(channel));
    // Isolated (no peer reaches the database either), nobody can take them over: they go on, as the outputs do.
    notifications.sendUnconfirmedWhile(() => fleet.leaseHolds() || fleet.isolated());
    fleet.onNodeDown(notifications.adoptFrom);
  }),
);

/**
 * The graph around one `Fleet`: one box's (none) or a fleet node's coordinator, and where the schedule's
 * progress is kept (the document store on one box, PostgreSQL in a fleet).
 */
const graph = <R, S>(fleet: Layer.Layer<Fleet, never, R>, schedules: Layer.Layer<ScheduleStore, never, S>) =>
  Layer.mergeAll(FleetMetricsLive, NotifyMetricsLive, NotifyWhereHeld, SignOn.Default, ConfigFileLive).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        ConfigTransfer.Default,
        ConfigCode.Default,
        Notifications.Default,
        Metrics.Default,
        Thumbnails.Default,
        Layer.scopedDiscard(EventLogLive),
        MediaLiveSenders,
        fleet,
      ),
    ),
    Layer.provideMerge(ScheduleRunner.Default),
    Layer.provideMerge(
      Layer.mergeAll(Control.Default, Resume.Default, Auth.Default, Notifiers.Default, AccessRules.Default),
    ),
    Layer.provideMerge(Layer.mergeAll(ReadModel.Default, Readiness.Default)),
    Layer.provideMerge(MediaLive.Default),
    Layer.provideMerge(Layer.mergeAll(CueHistory.Default, Recordings.Default, EventNames)),
    Layer.provideMerge(Layer.mergeAll(Channels.Default, ConfigState.Default, Placement.Default, schedules)),
    Layer.provideMerge(EventBus.Default),
    // The configuration is stored with its secrets' references, never their values (config as code).
    Layer.provide(layerReferring),
  );

/** One box: the embedded JSON store, no fleet. */
export const ServicesLive = graph(layerOneBox, layerScheduleDocument);

/** A fleet node: with the Database and StoreChanges of the PostgreSQL store (config/postgres/layer.ts). */
export const ServicesFleet = graph(
  Layer.scoped(Fleet, makeCoordinator).pipe(Layer.orDie),
  layerSchedulePostgres,
);

/**
 * The same graph for tests and benchmarks: a memory store unless another is given, and `adminToken` as the
 * admin token (as `DISTRIBUTARY_ADMIN_TOKEN` would give it).
 */
export const ServicesTest = (
  adminToken: string,
  store: Layer.Layer<DocumentStore> = layerMemory,
  /** Further settings, as environment variables would give them. */
  settings: Readonly<Record<string, string>> = {},
) =>
  ServicesLive.pipe(
    Layer.provideMerge(store),
    Layer.provide(
      Layer.setConfigProvider(
        ConfigProvider.fromMap(
          new Map([["DISTRIBUTARY_ADMIN_TOKEN", adminToken], ...Object.entries(settings)]),
        ),
      ),
    ),
  );
