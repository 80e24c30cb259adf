/**
 * A machine without libsrt: SRT outputs fail at once with words that say what to install, are not retried,
 * and the other protocols are untouched. Its own file, since libsrt is loaded once per process.
 */
import { it } from "@effect/vitest";
import { Effect, Exit } from "effect";
import { describe, expect } from "vitest";
import { makeOutput } from "../../src/effects/outputs/writer.ts";
import { freeUdpPort } from "../support/peers.ts";

describe("srt output without libsrt", () => {
  it.scopedLive("an SRT URL is refused with the library's name and the command that installs it", () =>
    Effect.gen(function* () {
      process.env.DISTRIBUTARY_LIBSRT = "/nonexistent/libsrt.so.1.5";
      yield* Effect.addFinalizer(() => Effect.sync(() => delete process.env.DISTRIBUTARY_LIBSRT));
      const output = yield* makeOutput(
        `srt://127.0.0.1:${yield* freeUdpPort}?passphrase=never-shown-anywhere`,
        { reconnect: { firstDelay: "10 millis" } },
      );
      const exit = yield* Effect.exit(output.run);
      expect(Exit.isFailure(exit)).toBe(true);
      expect(output.status()).toMatchObject({
        state: "error",
        reconnects: 0,
        lastErrorReason: "not_installed",
        lastError:
          "SRT needs libsrt, which cannot be loaded (/nonexistent/libsrt.so.1.5); install it with: apt-get install libsrt1.5-openssl",
      });
    }),
  );
});
