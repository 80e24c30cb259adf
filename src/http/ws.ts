/**
 * `WS /ws`: `{"channels":[...]}`, the same channel objects as `GET /api/channels`, on connect, after every
 * stored change, and every second (which carries the runtime figures: status, bytes, errors). Each socket is
 * one fiber in the app's FiberSet: closing the socket interrupts it, and shutting down interrupts them all,
 * which closes the sockets.
 */
import { Effect, Fiber, Stream } from "effect";
import type { UpgradeWebSocket } from "hono/ws";
import type { Control } from "../effects/control.ts";

export type RunFork = <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>;

export const channelsSocket = (control: Control, runFork: RunFork, upgradeWebSocket: UpgradeWebSocket) =>
  upgradeWebSocket(() => {
    let feed: Fiber.RuntimeFiber<void> | undefined;
    return {
      onOpen: (_event, ws) => {
        feed = runFork(
          Stream.merge(Stream.tick("1 second"), control.changes).pipe(
            Stream.mapEffect(() => control.list),
            Stream.runForEach((channels) => Effect.sync(() => ws.send(JSON.stringify({ channels })))),
            Effect.ensuring(Effect.sync(() => ws.close(1001, "server shutting down"))),
          ),
        );
      },
      onClose: () => {
        if (feed !== undefined) runFork(Fiber.interrupt(feed));
      },
    };
  });
