/**
 * How a channel meets a throw in its own code. One in the input path ends the channel (`guarded` stops
 * forwarding at once and completes `crashed`, which the supervisor waits on). One in what reads inside the
 * stream beside the TS fan-out — the remux, the cue log — is `contained`: the work of that datagram is lost to
 * it alone, the fault is counted and logged (at most once per 10 s), and the input path and every other output
 * go on.
 */
import * as Deferred from "effect/Deferred";
import * as Effect from "effect/Effect";
import * as Exit from "effect/Exit";
import { ChannelError } from "./channel-types.ts";

export interface FaultHandling {
  /** Fails once the packet path threw: the channel is to end. */
  readonly crashed: Effect.Effect<never, ChannelError>;
  /**
   * Wraps a per-datagram callback so a throw ends this channel only. Two arguments at most, passed as they
   * are: a rest parameter would make an array per datagram.
   */
  readonly guarded: <A, B>(where: string, callback: (a: A, b: B) => void) => (a: A, b?: B) => void;
  /** A fault beside the fan-out: counted and logged, and the channel goes on. */
  readonly contained: (where: string, thrown: unknown) => void;
}

const detailOf = (thrown: unknown) => (thrown instanceof Error ? thrown.message : String(thrown));

/** `log` runs a log line on the channel's runtime (on a forwarding thread, the service's logger and masking). */
export const makeFaultHandling = (
  channelId: () => string,
  log: (line: Effect.Effect<void>) => void,
): Effect.Effect<FaultHandling> =>
  Effect.gen(function* () {
    const crash = yield* Deferred.make<never, ChannelError>();
    let crashed = false;
    const fail = (where: string, thrown: unknown) => {
      if (crashed) return;
      crashed = true;
      const message = `the channel stopped after an internal error in ${where}: ${detailOf(thrown)}`;
      Deferred.unsafeDone(crash, Exit.fail(new ChannelError({ reason: "crashed", message })));
    };
    const seen = { count: 0, loggedAt: 0 };
    return {
      crashed: Deferred.await(crash),
      guarded:
        <A, B>(where: string, callback: (a: A, b: B) => void) =>
        (a: A, b?: B) => {
          if (crashed) return;
          try {
            callback(a, b as B);
          } catch (thrown) {
            fail(where, thrown);
          }
        },
      contained: (where, thrown) => {
        seen.count++;
        const now = Date.now();
        if (now - seen.loggedAt < 10_000) return;
        seen.loggedAt = now;
        log(
          Effect.logWarning(
            `channel ${channelId()}: ${where} failed (${seen.count} times so far): ${detailOf(thrown)}; the channel and its other outputs go on`,
          ),
        );
      },
    };
  });
