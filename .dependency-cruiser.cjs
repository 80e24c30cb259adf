/**
 * The dependency rules of ARCHITECTURE.md, checked by `npm test` (scripts/test.sh):
 *   src/domain ← src/core ← src/effects ← src/http ← src/cli
 * and inside src/effects: config ← runtime, events ← ingest, outputs ← channel ← medialive ← status ← control ← schedule ← fleet ← services.ts,
 * and notify beside control, schedule and fleet (above status, below services.ts)
 * Each layer imports only from the layers before it; views/ (page templates) take data, never services; no
 * import cycles anywhere (but through a type-only import); nothing in src/ imports tests or benchmarks, or Effect's
 * index (its modules one by one). That a forwarding thread loads no effect/Schema is test/ops/worker-modules.test.ts's.
 */
const layer = (name, from, forbidden, comment) => ({
  name,
  comment,
  severity: "error",
  from: { path: from },
  to: { path: forbidden },
});

module.exports = {
  forbidden: [
    {
      name: "no-cycles",
      comment:
        "An import cycle makes the load order and the layering ambiguous, a type-only one as much as any: the two " +
        "modules can no longer be read one after the other.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "effect-by-module",
      comment:
        "src/ imports Effect's modules one by one (effect/Effect, effect/Schema): the package's index loads every " +
        "module of it, some 20 MiB of heap in each thread that loads it (the main thread and each forwarding worker).",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "node_modules/effect/dist/(esm|cjs)/index\\.js$" },
    },
    layer(
      "domain-is-the-bottom",
      "^src/domain/",
      "^(src/(core|effects|http|cli)|views)/",
      "src/domain holds schemas, rules, URLs, masking and ids: pure, and imported by everyone else.",
    ),
    layer(
      "domain-base-is-the-floor",
      "^src/domain/base/",
      "^src/domain/(?!base/)",
      "src/domain/base (ids, equality, body checks, wording) is what every other part of src/domain builds on; it knows none of them.",
    ),
    layer(
      "core-below-effects",
      "^src/core/",
      "^(src/(effects|http|cli)|views)/",
      "The packet core and the SCTE-35 codec know nothing of services or HTTP.",
    ),
    layer(
      "effects-below-http",
      "^src/effects/",
      "^(src/(http|cli)|views)/",
      "Services never reach up into the HTTP layer or the pages.",
    ),
    layer(
      "core-ts-is-the-bottom-of-core",
      "^src/core/ts/",
      "^src/core/(?!ts/)",
      "The TS toolkit (packets, sections, PAT/PMT, PES) is what the rest of src/core reads TS with; it knows none of them.",
    ),
    // Inside src/effects, folders by role, each above the ones it may import (services.ts at the root wires
    // them all): fleet → schedule → control → status → medialive → channel → ingest | outputs → runtime | events → config.
    layer(
      "effects-config-is-the-bottom",
      "^src/effects/config/",
      "^src/effects/(?!config/)",
      "Storage (store, config state, secrets) knows nothing of the rest of the service.",
    ),
    layer(
      "effects-runtime-below-channels",
      "^src/effects/runtime/",
      "^src/effects/(?!(runtime|config)/)",
      "Sockets, libc, libsrt and child processes are tools: they know no channel, output or event.",
    ),
    layer(
      "effects-events-below-channels",
      "^src/effects/events/",
      "^src/effects/(?!(events|config)/)",
      "The event bus and log carry what others say; they call no service above them.",
    ),
    layer(
      "effects-ingest-below-channel",
      "^src/effects/ingest/",
      "^src/effects/(?!(ingest|runtime|events|config)/)",
      "The input path knows sockets and the clock, not the outputs or the channel that assembles it.",
    ),
    layer(
      "effects-outputs-below-channel",
      "^src/effects/outputs/",
      "^src/effects/(?!(outputs|runtime|events|config)/)",
      "An output knows its destination and its queue, not the input path or the channel that feeds it.",
    ),
    layer(
      "effects-channel-below-status",
      "^src/effects/channel/",
      "^src/effects/(medialive|status|control|schedule|services)",
      "Channels and their supervisor report through counters and events; they do not read status or take commands from above.",
    ),
    layer(
      "effects-medialive-below-status",
      "^src/effects/medialive/",
      "^src/effects/(status|control|schedule|fleet|services)",
      "The link to AWS MediaLive reads channels and the configuration and is shown by status; it takes no commands from above.",
    ),
    layer(
      "effects-status-below-control",
      "^src/effects/status/",
      "^src/effects/(control|schedule|notify|services)",
      "Status (read model, metrics, readiness, cue history, stills) is read by commands, never the other way.",
    ),
    layer(
      "effects-control-below-fleet",
      "^src/effects/control/",
      "^src/effects/(schedule|fleet|notify|services)",
      "Commands use the services below; the schedule's runner and the fleet's coordinator drive them, not the other way.",
    ),
    layer(
      "effects-schedule-below-fleet",
      "^src/effects/schedule/",
      "^src/effects/(fleet|notify|services)",
      "The schedule's runner drives the commands, MediaLive and the slate; the fleet tells it what this node holds through Placement.",
    ),
    layer(
      "effects-notify-beside-fleet",
      "^src/effects/notify/",
      "^src/effects/(control|schedule|fleet|services)",
      "Notifications read the configuration, the bus and the metrics, and post; they drive nothing.",
    ),
    layer(
      "effects-fleet-below-wiring",
      "^src/effects/fleet/",
      "^src/effects/services",
      "The fleet's coordinator (leases, nodes, peers) uses the commands; services.ts wires it.",
    ),
    layer("http-below-cli", "^src/http/", "^src/cli/", "The CLI starts the HTTP layer, not the other way."),
    layer(
      "views-take-data",
      "^views/",
      "^src/(effects|http|cli)/",
      "Page templates render the data they are given; they do not call services.",
    ),
    layer(
      "src-not-tests",
      "^(src|views)/",
      "^(test|load-tests)/",
      "Shipped code never imports tests or benchmarks.",
    ),
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    // MPEG-TS samples end in .ts too: they are data, not TypeScript.
    exclude: { path: "^test/fixtures/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".tsx", ".js"] },
  },
};
