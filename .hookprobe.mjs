import { registerHooks } from "node:module";
const seen = new Map();
registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); if (spec === "effect" || spec.endsWith("/Schema") ) console.log("import", spec, "from", ctx.parentURL); return r; } });
