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

/**
 * A WebSocket refused after its upgrade, with a close code and a reason a person can act on. A browser never
 * shows the status of a refused upgrade (its script sees 1006 and nothing else), so a socket without a valid
 * token is accepted only to be closed at once with 4401 and what to add.
 */
export const refusedSocket = (upgradeWebSocket: UpgradeWebSocket, code: number, reason: string) =>
  upgradeWebSocket(() => ({
    onOpen: (_event, ws) => ws.close(code, reason),
  }));

/** Close reasons of a WebSocket opened without a token, or with one that is not valid (at most 123 bytes). */
export const NO_TOKEN_REASON = "add a token: /ws?token=<your token> (or an Authorization: Bearer header)";
export const BAD_TOKEN_REASON = "the token is not valid; add a valid one: /ws?token=<your token>";

/** Open sockets one token may hold: a dashboard wall needs a few, a leak or a loop should not cost a core. */
export const MAX_SOCKETS_PER_TOKEN = 20;

export const channelsSocket = (
  readModel: ReadModel,
  bus: EventBus,
  runFork: RunFork,
  upgradeWebSocket: UpgradeWebSocket,
  /** Whether the token the socket was opened with is still valid: checked before every message. */
  stillValid: (token: string) => boolean,
  /** Open sockets by token; one map for the whole app. */
  openSockets: Map<string, number> = new Map(),
) =>
  upgradeWebSocket((c) => {
    const token = presentedToken(c, true) ?? "";
    let feed: Fiber.RuntimeFiber<void> | undefined;
    let counted = false;
    return {
      onOpen: (_event, ws) => {
        const open = openSockets.get(token) ?? 0;
        if (open >= MAX_SOCKETS_PER_TOKEN) {
          ws.close(
            4429,
            `too many WebSockets for this token (at most ${MAX_SOCKETS_PER_TOKEN}); close one first`,
          );
          return;
        }
        openSockets.set(token, open + 1);
        counted = true;
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
        if (counted) {
          const open = (openSockets.get(token) ?? 1) - 1;
          if (open <= 0) openSockets.delete(token);
          else openSockets.set(token, open);
          counted = false;
        }
        if (feed !== undefined) runFork(Fiber.interrupt(feed));
      },
    };
  });
