/**
 * `WS /ws`: `{"channels":[...]}`, the same channel objects as `GET /api/channels`, on connect and with every
 * snapshot of the read model (each second, and at once after a change); events from the bus arrive as they
 * happen in `{"channels":[...],"events":[...]}` — every message carries `channels`, so the original API's
 * clients read each one as before. Every socket shares the read model's snapshot and its JSON text: a client
 * costs a send, not a status build. A socket whose token is revoked closes (4403) within a second, at its next
 * message. Each socket is one fiber in the app's FiberSet: closing the socket
 * interrupts it, and shutting down interrupts them all, which closes the sockets.
 */
import { Chunk, Effect, Fiber, Stream } from "effect";
import type { UpgradeWebSocket } from "hono/ws";
import type { EventBus } from "../effects/event-bus.ts";
import type { ReadModel } from "../effects/read-model.ts";
import { presentedToken } from "./auth.ts";

export type RunFork = <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>;

export const channelsSocket = (
  readModel: ReadModel,
  bus: EventBus,
  runFork: RunFork,
  upgradeWebSocket: UpgradeWebSocket,
  /** Whether the token the socket was opened with is still valid: checked before every message. */
  stillValid: (token: string) => boolean,
) =>
  upgradeWebSocket((c) => {
    const token = presentedToken(c, true) ?? "";
    let feed: Fiber.RuntimeFiber<void> | undefined;
    return {
      onOpen: (_event, ws) => {
        const snapshots = readModel.changes.pipe(
          Stream.map(() => `{"channels":${readModel.channelsJson()}}`),
        );
        const events = bus.stream.pipe(
          Stream.groupedWithin(256, "20 millis"),
          Stream.map(
            (batch) =>
              `{"channels":${readModel.channelsJson()},"events":${JSON.stringify(Chunk.toReadonlyArray(batch))}}`,
          ),
        );
        feed = runFork(
          Stream.merge(snapshots, events).pipe(
            // A revoked token's socket closes at the next message: within a second, as snapshots are.
            Stream.takeWhile(() => {
              if (stillValid(token)) return true;
              ws.close(4403, "the token was revoked");
              return false;
            }),
            Stream.runForEach((text) => Effect.sync(() => ws.send(text))),
            Effect.ensuring(Effect.sync(() => ws.close(1001, "server shutting down"))),
          ),
        );
      },
      onClose: () => {
        if (feed !== undefined) runFork(Fiber.interrupt(feed));
      },
    };
  });
