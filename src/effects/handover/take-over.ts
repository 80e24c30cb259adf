/**
 * The new process's side of an upgrade (upgrade.ts), once its resume has started (and so taken, through
 * peer.ts) every channel: it tells the old process what it took, and when the old one answers that all is
 * its own, takes the control socket and the PID file, says it serves, and records the hand-over (its event,
 * metrics and state).
 */
import * as Effect from "effect/Effect";
import { version } from "../../version.ts";
import type { Channels } from "../channel/channels.ts";
import type { EventBus } from "../events/event-bus.ts";
import type { Readiness } from "../status/readiness.ts";
import { type FromNew, type FromOld, stopTaking, UPGRADE_FROM_ENV } from "./peer.ts";
import { reportUpgradeHandovers } from "./report.ts";
import { upgradeDone } from "./upgrade-state.ts";

type Yours = Extract<FromOld, { readonly t: "yours" }>;

export const finishTakeOver = (ctx: {
  readonly channels: Channels;
  readonly bus: EventBus;
  readonly readiness: Readiness;
  /** The control socket and the PID file, this process's from here. */
  readonly claim: Effect.Effect<void>;
}) =>
  Effect.gen(function* () {
    const { channels, bus, readiness } = ctx;
    while (!readiness.ready()) yield* Effect.sleep("10 millis");
    stopTaking();
    const send = (message: FromNew) => process.send?.(message);
    const handedOver = yield* Effect.async<Yours>((resume) => {
      const onMessage = (received: unknown) => {
        if (typeof received !== "object" || received === null || (received as FromOld).t !== "yours") return;
        process.off("message", onMessage);
        resume(Effect.succeed(received as Yours));
      };
      process.on("message", onMessage);
      send({
        t: "taken",
        pid: process.pid,
        version,
        channels: channels.running(),
        failed: readiness.notResumed().map((channel) => channel.id),
      });
    });
    yield* ctx.claim;
    send({ t: "serving" });
    bus.emit(handedOver.event);
    reportUpgradeHandovers(bus, handedOver.event, handedOver.durations ?? {});
    upgradeDone(handedOver.event);
    yield* Effect.logInfo(
      `upgrade: took over from pid ${process.env[UPGRADE_FROM_ENV]?.split(" ")[0] ?? "?"}; serving`,
    );
  });
