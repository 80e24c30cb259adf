/**
 * The pages' one WebSocket (`/ui/ws?page=…`): out-of-band swaps of server-rendered fragments, by id, with
 * every snapshot of the read model and every event of the bus — tiles on the overview; the head, inputs,
 * outputs and PIDs of a channel page, with new cues on top of its cue log and new events at the end of its
 * event log; new events on the events page. No polling: the browser only listens. The session is checked
 * again with every message, so a revoked token's page stops at once (closed with 4401), and each message shows
 * only the channels (and their events) the session's grants reach. When the service
 * stops, pages are closed with 1012 and reconnect by themselves once it is back.
 */
import * as Chunk from "effect/Chunk";
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Fiber from "effect/Fiber";
import * as Option from "effect/Option";
import * as Stream from "effect/Stream";
import type { Context } from "hono";
import { html } from "hono/html";
import type { UpgradeWebSocket } from "hono/ws";
import { channelHead, inputsSection, outputsSection, pidsSection } from "../../../views/channel.ts";
import { cueItem } from "../../../views/cues.ts";
import { eventItem } from "../../../views/events.ts";
import { nodesTable } from "../../../views/fleet.ts";
import type { Viewer } from "../../../views/layout.ts";
import { medialiveSection } from "../../../views/medialive.ts";
import { channelTile } from "../../../views/overview.ts";
import { scheduleSection } from "../../../views/schedule.ts";
import { slateState } from "../../../views/slate.ts";
import { decodeSection } from "../../core/scte35/index.ts";
import type { ChannelId } from "../../domain/base/ids.ts";
import { roleOn } from "../../domain/control/access.ts";
import type { ChannelEvent } from "../../domain/events/events.ts";
import type { StatusSnapshot } from "../../domain/views/views.ts";
import type { Principal } from "../../effects/control/auth.ts";
import type { EventBus } from "../../effects/events/event-bus.ts";
import type { FleetShape } from "../../effects/fleet/fleet-types.ts";
import { withStates } from "../../effects/fleet/node-states.ts";
import type { ScheduleRunner } from "../../effects/schedule/runner.ts";
import type { ReadModel } from "../../effects/status/read-model.ts";
import type { Thumbnails } from "../../effects/status/thumbnails.ts";
import { eventsFor, sees, seesAll } from "../access.ts";
import type { AuthEnv } from "../auth.ts";
import type { RunFork } from "../ws.ts";
import { rolesByChannel } from "./handler.ts";
import type { makeSessions } from "./session.ts";

/** Templates may render asynchronously (hono/html): their parts, awaited and joined. */
const joined = (parts: ReadonlyArray<string | Promise<string>>): Effect.Effect<string> =>
  Effect.map(
    Effect.promise(() => Promise.all(parts)),
    (texts) => texts.join(""),
  );

type Message =
  | { readonly kind: "snapshot"; readonly snapshot: StatusSnapshot }
  | { readonly kind: "events"; readonly events: ReadonlyArray<ChannelEvent> };

export const liveSocket = (deps: {
  readonly readModel: ReadModel;
  readonly bus: EventBus;
  readonly sessions: ReturnType<typeof makeSessions>;
  readonly thumbnails: Thumbnails;
  readonly fleet: FleetShape;
  readonly schedules: ScheduleRunner;
  readonly runFork: RunFork;
  readonly upgradeWebSocket: UpgradeWebSocket;
}) =>
  deps.upgradeWebSocket((c: Context<AuthEnv>) => {
    const sessionId = deps.sessions.sessionId(c);
    const pageName = c.req.query("page") ?? "overview";
    const channelId = (c.req.query("id") ?? "") as ChannelId;
    // The events page's filters, so that live events are the ones its list shows.
    const onlyChannel = c.req.query("channel") ?? "";
    const onlyType = c.req.query("type") ?? "";
    const listed = (event: ChannelEvent) =>
      pageName === "events"
        ? (onlyChannel === "" || event.channel === onlyChannel) &&
          (onlyType === "" || event.type === onlyType)
        : event.channel === channelId;
    let feed: Fiber.RuntimeFiber<void> | undefined;
    let watching = false;

    const access = c.get("access");
    /** The page's fragments for one message, rendered on the application runtime; "" when nothing changed. */
    const render = (
      message: Message,
      viewer: Viewer,
      tick: number,
      principal: Principal,
    ): Effect.Effect<string> =>
      Effect.gen(function* () {
        if (message.kind === "events") {
          const visible = eventsFor(principal, access);
          const mine = message.events.filter((event) => listed(event) && visible(event));
          if (pageName === "overview" || mine.length === 0) return "";
          const parts = [
            html`<ol id="event-log" hx-swap-oob="beforeend">${mine.map((event) => eventItem(event, pageName === "events"))}</ol>`,
          ];
          const cues = mine.filter((event) => event.type === "scte35_cue");
          if (pageName === "channel" && cues.length > 0) {
            // The event carries the section as it was sent: decoded here for its fields and full JSON.
            const items = cues.map((event) => {
              if (event.type !== "scte35_cue") return "";
              const decoded = decodeSection(Buffer.from(event.section_base64, "base64"));
              return cueItem({
                at: event.at,
                pid: event.pid,
                command: event.command,
                summary: event.summary,
                cue: Either.isRight(decoded) ? decoded.right : null,
                error: Either.isLeft(decoded) ? decoded.left.message : null,
                ...(event.origin === undefined ? {} : { origin: event.origin }),
                ...(event.by === undefined ? {} : { by: event.by }),
                ...(event.withheld === undefined ? {} : { withheld: event.withheld }),
              });
            });
            parts.push(
              html`<ol id="cue-log" hx-swap-oob="afterbegin">${items}</ol><p id="no-cues" hx-swap-oob="true"></p>`,
            );
          }
          return yield* joined(parts);
        }
        const snapshot = message.snapshot;
        const channels = snapshot.channels.filter((channel) => sees(principal, channel));
        if (pageName === "overview") {
          const tiles = channels.map((channel) =>
            channelTile(channel, viewer, deps.thumbnails.tileState(), deps.schedules.phase(channel.id)),
          );
          return `<div id="tiles" class="tiles">${yield* joined(tiles)}</div>`;
        }
        // The nodes' states and heartbeat ages, once a snapshot (a second).
        if (pageName === "nodes")
          return seesAll(principal)
            ? yield* joined([nodesTable(withStates(deps.fleet.nodes()), viewer)])
            : "";
        if (pageName !== "channel") return "";
        const channel = channels.find((candidate) => candidate.id === channelId);
        if (channel === undefined) return "";
        const parts = [
          channelHead(channel, viewer),
          medialiveSection(channel, viewer),
          scheduleSection(
            channel,
            yield* Effect.orElseSucceed(deps.schedules.view(channel.id as ChannelId), () => null),
            viewer,
          ),
          inputsSection(channel, viewer),
          slateState(channel, viewer),
          outputsSection(channel, viewer, (outputId) => deps.readModel.history(channel.id, outputId)),
        ];
        // The PID tables cost a walk of the core's tables: every fifth snapshot is enough for them.
        if (tick % 5 === 0 && channel.status === "running") {
          const stats = yield* Effect.option(deps.readModel.detail(channel.id));
          parts.push(pidsSection(Option.getOrNull(stats)));
        }
        return yield* joined(parts);
      });

    return {
      onOpen: (_event, ws) => {
        const first = deps.sessions.principalFor(sessionId);
        if (first === null) {
          ws.close(4401, "log in again");
          return;
        }
        watching = true;
        deps.thumbnails.viewerJoined();
        let tick = 0;
        const snapshots = deps.readModel.changes.pipe(
          Stream.map((snapshot): Message => ({ kind: "snapshot", snapshot })),
        );
        const events = deps.bus.stream.pipe(
          Stream.groupedWithin(64, "50 millis"),
          Stream.map((batch): Message => ({ kind: "events", events: Chunk.toReadonlyArray(batch) })),
        );
        feed = deps.runFork(
          Stream.merge(snapshots, events).pipe(
            Stream.runForEach((message) =>
              Effect.gen(function* () {
                const principal = deps.sessions.principalFor(sessionId);
                if (principal === null) {
                  ws.close(4401, "the session ended: log in again");
                  return;
                }
                if (message.kind === "snapshot") tick += 1;
                const text = yield* render(
                  message,
                  {
                    name: principal.name,
                    // A channel's page shows the buttons of the role on that channel, as its first render did.
                    role:
                      pageName === "channel"
                        ? (roleOn(principal.grants, access?.channel(channelId) ?? { id: channelId }) ??
                          principal.role)
                        : principal.role,
                    ...rolesByChannel(principal),
                  },
                  tick,
                  principal,
                );
                if (text !== "") ws.send(text);
              }),
            ),
            // 1012 (service restart): the page's WebSocket extension reconnects by itself when the service is back.
            Effect.ensuring(Effect.sync(() => ws.close(1012, "the service is restarting"))),
          ),
        );
      },
      onClose: () => {
        if (watching) deps.thumbnails.viewerLeft();
        watching = false;
        if (feed !== undefined) deps.runFork(Fiber.interrupt(feed));
      },
    };
  });
