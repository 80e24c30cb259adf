/**
 * Readiness: whether the service has loaded its store and started the channels that were running, and which
 * of those could not start. The commands set it (at start-up and after an import); `/api/ready` and
 * `/metrics` read it.
 */
import * as Effect from "effect/Effect";
import type { ChannelId } from "../../domain/base/ids.ts";
import { Channels } from "../channel/channels.ts";

interface NotResumed {
  readonly id: ChannelId;
  readonly name: string;
  readonly error: string;
}

export class Readiness extends Effect.Service<Readiness>()("distributary/Readiness", {
  effect: Effect.gen(function* () {
    const channels = yield* Channels;
    let ready = false;
    let failed: ReadonlyArray<NotResumed> = [];
    return {
      ready: (): boolean => ready,
      markReady: (): void => {
        ready = true;
      },
      /** Channels that should run but failed to start when the service started (or at the last import). */
      notResumed: (): ReadonlyArray<NotResumed> =>
        failed.filter((channel) => channels.state(channel.id) !== "running"),
      setNotResumed: (channels: ReadonlyArray<NotResumed>): void => {
        failed = channels;
      },
    } as const;
  }),
}) {}
