/**
 * The dependency rules of ARCHITECTURE.md, checked by `npm test` (scripts/test.sh):
 *   src/domain ← src/core ← src/effects ← src/http ← src/cli
 * Each layer imports only from the layers before it; views/ (page templates) take data, never services; no
 * import cycles anywhere; nothing in src/ imports tests or benchmarks.
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
      comment: "An import cycle makes the load order and the layering ambiguous.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    layer(
      "domain-is-the-bottom",
      "^src/domain/",
      "^(src/(core|effects|http|cli)|views)/",
      "src/domain holds schemas, rules, URLs, masking and ids: pure, and imported by everyone else.",
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
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".tsx", ".js"] },
  },
};
