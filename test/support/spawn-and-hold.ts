/**
 * A stand-in for the service in process tests: spawns one child the way outputs do, prints its pid, and holds
 * it until this process is killed.
 *
 *   node test/support/spawn-and-hold.ts <command> [args...]
 */
import { Effect } from "effect";
import { spawnChild } from "../../src/effects/runtime/process/child-process.ts";

const [command = "sleep", ...args] = process.argv.slice(2);
await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const child = yield* spawnChild({ command, args });
      process.stdout.write(`${child.pid}\n`);
      return yield* Effect.never;
    }),
  ),
);
