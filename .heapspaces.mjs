import { useStrippedSources } from "/work/main/src/effects/runtime/stripped-sources.mjs";
import v8 from "node:v8";
useStrippedSources();
for (const m of process.argv.slice(2)) await import(m);
globalThis.gc(); globalThis.gc();
for (const s of v8.getHeapSpaceStatistics()) if (s.space_size > 0) console.log(s.space_name.padEnd(28), (s.space_size/1048576).toFixed(1), (s.space_used_size/1048576).toFixed(1), "phys", (s.physical_space_size/1048576).toFixed(1));
console.log("rss", (process.memoryUsage().rss/1048576).toFixed(0));
