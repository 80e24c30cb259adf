// A forwarding worker's entry (threads.ts): the same stripped copies as the main thread, then the worker.
import { useStrippedSources } from "../../runtime/threads/stripped-sources.mjs";

useStrippedSources();
await import("./worker.ts");
