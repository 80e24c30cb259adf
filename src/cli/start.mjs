// The service's entry on Node.js (bin/distributary): the TypeScript modules come stripped from setup's copies
// (src/effects/runtime/threads/stripped-sources.mjs), then the CLI runs.
import { useStrippedSources } from "../effects/runtime/threads/stripped-sources.mjs";

useStrippedSources();
await import("./main.ts");
