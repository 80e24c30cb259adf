/**
 * `WS /ws`: `{"channels":[...]}`, the same channel objects as `GET /api/channels`, on connect and with every
 * snapshot of the read model (each second, and at once after a change); events from the bus arrive as they
 * happen in `{"channels":[...],"events":[...]}` — every message carries `channels`, so the original API's
 * clients read each one as they always have.
 *
 * One feed serves every socket: a single fiber, running while at least one socket is open, builds each message
 * once and hands the same text to every socket, so a client costs a send, not a status build, a JSON
 * serialisation of the events or a fiber of its own. A caller whose grants reach only some channels (a scoped
 * token) gets those channels and their events only: one text per scope and message, shared by its sockets. A
 * socket whose token is revoked closes (4403) within a second, at its next message. Shutting down interrupts
 * the feed, which closes the sockets.
 */
import * as Chunk from "effect/Chunk";
import * as Effect from "effect/Effect";
import * as Fiber from "effect/Fiber";
import * as Stream from "effect/Stream";
import type { Context } from "hono";
import type { UpgradeWebSocket, WSContext } from "hono/ws";
import type { ChannelEvent } from "../domain/events/events.ts";
import type { Principal } from "../effects/control/auth.ts";
import type { EventBus } from "../effects/events/event-bus.ts";
import type { ReadModel } from "../effects/status/read-model.ts";
import { eventsFor, sees, seesAll } from "./access.ts";
import { type AuthEnv, presentedToken } from "./auth.ts";

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
export const NO_TOKEN_REASON =
  "add a token: /ws?token=<viewer token> (or any token in an Authorization: Bearer header)";
export const BAD_TOKEN_REASON =
  "the token is not valid here: in the URL only a viewer token, /ws?token=<viewer token>; others in an Authorization header";

/** Open sockets one token may hold: a dashboard wall needs a few, a leak or a loop should not cost a core. */
export const MAX_SOCKETS_PER_TOKEN = 20;

interface Client {
  readonly ws: WSContext;
  readonly token: string;
  /** null: the caller sees every channel; else what it sees, and the key its texts are shared under. */
  readonly scope: {
    readonly key: string;
    readonly principal: Principal;
    readonly event: (event: ChannelEvent) => boolean;
  } | null;
}

/** A message of the feed: a snapshot (no events), or the events of a moment with the snapshot beside them. */
interface Feed {
  readonly events?: ReadonlyArray<ChannelEvent>;
}

export const channelsSocket = (
  readModel: ReadModel,
  bus: EventBus,
  runFork: RunFork,
  upgradeWebSocket: UpgradeWebSocket,
  /** Whether the token the socket was opened with is still valid: checked before every message. */
  stillValid: (token: string) => boolean,
) => {
  const clients = new Set<Client>();
  const perToken = new Map<string, number>();
  let feed: Fiber.RuntimeFiber<void> | undefined;

  const snapshotMessage = () => `{"channels":${readModel.channelsJson()}}`;
  const everyChannel = (feed: Feed) =>
    feed.events === undefined
      ? snapshotMessage()
      : `{"channels":${readModel.channelsJson()},"events":${JSON.stringify(feed.events)}}`;
  /** The text for a caller of some channels only; "" when the message has nothing of theirs. */
  const someChannels = (feed: Feed, scope: NonNullable<Client["scope"]>) => {
    const events = feed.events?.filter(scope.event);
    if (events !== undefined && events.length === 0) return "";
    const channels = JSON.stringify(
      readModel.current().channels.filter((channel) => sees(scope.principal, channel)),
    );
    return events === undefined
      ? `{"channels":${channels}}`
      : `{"channels":${channels},"events":${JSON.stringify(events)}}`;
  };

  /** One message to every socket; each token is checked once per message, a revoked one's sockets close. */
  const broadcast = (feed: Feed) =>
    Effect.sync(() => {
      const valid = new Map<string, boolean>();
      const texts = new Map<string | null, string>();
      const textOf = (client: Client) => {
        const key = client.scope?.key ?? null;
        let text = texts.get(key);
        if (text === undefined) {
          text = client.scope === null ? everyChannel(feed) : someChannels(feed, client.scope);
          texts.set(key, text);
        }
        return text;
      };
      for (const client of clients) {
        let ok = valid.get(client.token);
        if (ok === undefined) {
          ok = stillValid(client.token);
          valid.set(client.token, ok);
        }
        if (ok) {
          const text = textOf(client);
          if (text !== "") client.ws.send(text);
        } else {
          forget(client);
          client.ws.close(4403, "the token was revoked");
        }
      }
    });

  const startFeed = () => {
    const snapshots = readModel.changes.pipe(
      Stream.drop(1),
      Stream.map((): Feed => ({})),
    );
    const events = bus.stream.pipe(
      Stream.groupedWithin(256, "20 millis"),
      Stream.map((batch): Feed => ({ events: Chunk.toReadonlyArray(batch) })),
    );
    return runFork(
      Stream.merge(snapshots, events).pipe(
        Stream.runForEach(broadcast),
        Effect.ensuring(
          Effect.sync(() => {
            for (const client of clients) client.ws.close(1001, "server shutting down");
          }),
        ),
      ),
    );
  };

  const forget = (client: Client) => {
    if (!clients.delete(client)) return;
    const open = (perToken.get(client.token) ?? 1) - 1;
    if (open <= 0) perToken.delete(client.token);
    else perToken.set(client.token, open);
    if (clients.size === 0 && feed !== undefined) {
      const stopping = feed;
      feed = undefined;
      runFork(Fiber.interrupt(stopping));
    }
  };

  return upgradeWebSocket((c: Context<AuthEnv>) => {
    const token = presentedToken(c, true) ?? "";
    const principal = c.get("principal");
    const scope = seesAll(principal)
      ? null
      : { key: JSON.stringify(principal.grants), principal, event: eventsFor(principal, c.get("access")) };
    let client: Client | undefined;
    return {
      onOpen: (_event, ws) => {
        const open = perToken.get(token) ?? 0;
        if (open >= MAX_SOCKETS_PER_TOKEN) {
          ws.close(
            4429,
            `too many WebSockets for this token (at most ${MAX_SOCKETS_PER_TOKEN}); close one first`,
          );
          return;
        }
        perToken.set(token, open + 1);
        client = { ws, token, scope };
        clients.add(client);
        ws.send(scope === null ? snapshotMessage() : someChannels({}, scope));
        feed ??= startFeed();
      },
      onClose: () => {
        if (client !== undefined) forget(client);
      },
    };
  });
};
