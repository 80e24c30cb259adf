import { useStrippedSources } from "/work/main/src/effects/runtime/stripped-sources.mjs";
import v8 from "node:v8";
useStrippedSources();
const h = () => { globalThis.gc?.(); const s = v8.getHeapStatistics(); return `${(s.used_heap_size/1048576).toFixed(1)} used / ${(s.total_heap_size/1048576).toFixed(1)} total MiB, rss ${(process.memoryUsage().rss/1048576).toFixed(0)}`; };
console.log("bare", h());
for (const m of process.argv.slice(2)) { await import(m); console.log(m.split("/").slice(-2).join("/"), h()); }
