/**
 * Where a service's memory goes, thread by thread: preloaded into the service under the load harness, each
 * thread (the main thread is t0, forwarding workers t1, t2, …) appends its V8 heap figures to a file every
 * 10 s, in MiB: used and physical heap, the old and large-object spaces and code, and memory outside the heap
 * (array buffers, WebAssembly memories: reserved, not all resident).
 *
 *   DISTRIBUTARY_HEAP_STATS=/tmp/heap.log DISTRIBUTARY_NODE_OPTIONS="--import ./load-tests/heap-stats.ts" \
 *     npm run load -- --channels 100 --outputs 4 --seconds 45 --anchors none
 */
import { appendFileSync } from "node:fs";
import { getHeapSpaceStatistics, getHeapStatistics } from "node:v8";
import { threadId } from "node:worker_threads";

const file = process.env.DISTRIBUTARY_HEAP_STATS ?? "heap-stats.log";
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const timer = setInterval(() => {
  const heap = getHeapStatistics();
  const spaces = getHeapSpaceStatistics()
    .filter((space) =>
      ["old_space", "large_object_space", "code_space", "new_space"].includes(space.space_name),
    )
    .map((space) => `${space.space_name} ${mib(space.space_used_size)}/${mib(space.physical_space_size)}`);
  appendFileSync(
    file,
    `${new Date().toISOString()} t${threadId} used ${mib(heap.used_heap_size)} physical ${mib(heap.total_physical_size)}` +
      ` outside ${mib(heap.external_memory)} | ${spaces.join(", ")}\n`,
  );
}, 10_000);
timer.unref();
