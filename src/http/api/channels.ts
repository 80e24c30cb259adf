/**
 * `/api/channels`: the original API's channel calls, and what automation needs beyond them (the slate, a move,
 * cues, events). A channel's outputs and recordings are outputs.ts, mounted under the same prefix.
 */
import { Buffer } from "node:buffer";
import * as Effect from "effect/Effect";
import * as Schema from "effect/Schema";
import type { Context } from "hono";
import { type ControlError, FieldIssue } from "../../domain/base/errors.ts";
import type { ChannelId } from "../../domain/base/ids.ts";
import { ChannelBody, ChannelPatch, MoveChannelBody, SwitchInputBody } from "../../domain/channel/channel.ts";
import { CueInsertBody } from "../../domain/channel/cue-insert.ts";
import { MAX_SLATE_IMAGE_BYTES, SlateSwitchBody } from "../../domain/channel/slate.ts";
import { EventList } from "../../domain/events/events.ts";
import {
  ChannelList,
  ChannelStats,
  ChannelView,
  CueList,
  InsertedCueView,
} from "../../domain/views/views.ts";
import type { Control } from "../../effects/control/control.ts";
import { audit, type EventBus } from "../../effects/events/event-bus.ts";
import type { FleetShape } from "../../effects/fleet/fleet-types.ts";
import type { ReadModel } from "../../effects/status/read-model.ts";
import { mayOn, mayTag, sees, seesAll } from "../access.ts";
import type { AuthEnv } from "../auth.ts";
import { type Api, body, inChannel, lenientBody, makeApi, param, type Run, withWarnings } from "../routes.ts";
import { eventFilter } from "./events.ts";

/** What the request held that was ignored: unknown fields, empty strings taken as absent; absent if nothing. */
export const Warnings = Schema.optional(Schema.Array(FieldIssue)).annotations({
  description:
    "what the request held that was ignored (unknown fields, empty optional fields); absent if nothing",
});
const ChannelAnswer = Schema.Struct({ ...ChannelView.fields, warnings: Warnings }).annotations({
  identifier: "ChannelAnswer",
});

export const Deleted = Schema.Struct({ id: Schema.String, deleted: Schema.Literal(true) }).annotations({
  identifier: "Deleted",
});

/** A command with a body on the channel of the path, answered with the channel as it then is. */
export const commandOnChannel =
  (run: Run) =>
  <B, I>(
    schema: Schema.Schema<B, I>,
    command: (id: ChannelId, value: B, c: Context<AuthEnv>) => Effect.Effect<ChannelView, ControlError>,
  ) =>
  (c: Context<AuthEnv>) =>
    run(
      c,
      Effect.flatMap(body(c, schema), (value) => inChannel(c, (id) => command(id, value, c))),
      (channel) => c.json(channel),
    );
type OnChannel = ReturnType<typeof commandOnChannel>;

/**
 * The commands on a channel beyond its own fields: its input, the slate and its picture, a move, its stats, its
 * cues and its events.
 */
const channelCommandRoutes = (
  on: ReturnType<typeof makeApi>["on"],
  onChannel: OnChannel,
  {
    control,
    readModel,
    bus,
    fleet,
    run,
  }: {
    readonly control: Control;
    readonly readModel: ReadModel;
    readonly bus: EventBus;
    readonly fleet: FleetShape;
    readonly run: Run;
  },
) => {
  on(
    {
      method: "post",
      path: "/{id}/input",
      access: "operator",
      summary: "Switch the active input (operator failover)",
      body: SwitchInputBody,
      response: ChannelView,
    },
    onChannel(SwitchInputBody, (id, { active }) => control.switchInput(id, active)),
  );

  on(
    {
      method: "post",
      path: "/{id}/slate",
      access: "operator",
      summary:
        'Put the channel on its slate by hand ({"on": true}: a break, a fault upstream) or take it off ({"on": false}: the inputs decide again)',
      body: SlateSwitchBody,
      response: ChannelView,
    },
    onChannel(SlateSwitchBody, (id, { on: wanted }) => control.switchSlate(id, wanted)),
  );

  on(
    {
      method: "put",
      path: "/{id}/slate/image",
      access: "admin",
      summary: `The slate's picture: the body is a PNG or JPEG (at most ${MAX_SLATE_IMAGE_BYTES / (1024 * 1024)} MiB, 16×16 to 7680×4320), scaled to the stream's size`,
      response: ChannelView,
    },
    (c) =>
      run(
        c,
        Effect.flatMap(
          Effect.promise(() => c.req.arrayBuffer()),
          (bytes) => inChannel(c, (id) => control.putSlateImage(id, new Uint8Array(bytes))),
        ),
        (channel) => c.json(channel),
      ),
  );

  on(
    {
      method: "delete",
      path: "/{id}/slate/image",
      access: "admin",
      summary: "Remove the slate's picture: the slate shows a generated card with the channel's name",
      response: ChannelView,
    },
    (c) =>
      run(
        c,
        inChannel(c, (id) => control.putSlateImage(id, null)),
        (channel) => c.json(channel),
      ),
  );

  on(
    { method: "get", path: "/{id}/slate/image", access: "viewer", summary: "The slate's uploaded picture" },
    (c) =>
      run(c, inChannel(c, control.slateImage), (image) =>
        c.body(new Uint8Array(Buffer.from(image.data, "base64")), 200, {
          "content-type": image.type,
          "cache-control": "no-cache",
        }),
      ),
  );

  on(
    {
      method: "post",
      path: "/{id}/move",
      access: "operator",
      summary:
        "Run the channel on another forwarding worker thread, without a gap in its outputs ({worker: n}); in " +
        "a fleet, hand its lease to another node that receives its input ({node: id}: a short gap on air)",
      body: MoveChannelBody,
      response: ChannelView,
    },
    onChannel(MoveChannelBody, (id, { worker, node }) =>
      node === undefined
        ? control.move(id, worker ?? 0)
        : Effect.gen(function* () {
            const moved = yield* fleet.move(id, node);
            if (moved !== null)
              yield* audit(bus, "channel.move", `channel ${id}: moved from node ${moved.from} to ${node}`, {
                channel: id,
              });
            return yield* readModel.channel(id);
          }),
    ),
  );

  on(
    {
      method: "get",
      path: "/{id}/stats",
      access: "viewer",
      summary: "Input bitrate, RTP loss, continuity errors, programs and PIDs; per-output statistics",
      response: ChannelStats,
    },
    (c) => run(c, inChannel(c, readModel.detail), (stats) => c.json(stats)),
  );

  on(
    {
      method: "get",
      path: "/{id}/cues",
      access: "viewer",
      summary: "Recent SCTE-35 cues, decoded",
      response: CueList,
    },
    (c) => run(c, inChannel(c, readModel.cues), (cues) => c.json({ cues })),
  );

  on(
    {
      method: "post",
      path: "/{id}/cues",
      access: "operator",
      summary:
        'Insert a break now: a splice_insert or a time_signal, encoded by the service, onto the channel\'s SCTE-35 PID (added to the PMT when the input has none), to every output whose policy keeps it, e.g. {"command": "splice_insert", "duration_s": 30}',
      body: CueInsertBody,
      response: InsertedCueView,
      status: 201,
    },
    (c) =>
      run(
        c,
        Effect.flatMap(body(c, CueInsertBody), (cue) => inChannel(c, (id) => control.insertCue(id, cue))),
        (inserted) => c.json(inserted, 201),
      ),
  );

  on(
    {
      method: "get",
      path: "/{id}/events",
      access: "viewer",
      summary: "Recent events of this channel, oldest first (query: type=a,b, limit, after=seq)",
      response: EventList,
    },
    (c) =>
      run(
        c,
        inChannel(c, (id) =>
          Effect.zipRight(
            readModel.channel(id),
            Effect.map(eventFilter(c.req.query(), id), (filter) => bus.recent(filter)),
          ),
        ),
        (events) => c.json({ events }),
      ),
  );
};

export const channelsApi = (
  control: Control,
  readModel: ReadModel,
  bus: EventBus,
  fleet: FleetShape,
  run: Run,
): Api => {
  const { app, routes, on } = makeApi({ channels: true });

  const onChannel = commandOnChannel(run);

  // The most polled route: the snapshot's bytes as they are, with no work per request. A fleet's standby asks
  // its holders for the few channels it watches (ids=a,b), not for every channel they know.
  on(
    {
      method: "get",
      path: "/",
      access: "viewer",
      summary: "List channels (query: ids=a,b for just those channels; unknown ids are left out)",
      response: ChannelList,
    },
    (c) => {
      const ids = c.req.query("ids");
      const principal = c.get("principal");
      // A caller with a grant over every channel reads the shared bytes; one with a scope, its own channels.
      if (seesAll(principal)) {
        if (ids === undefined)
          return c.body(readModel.channelsMessage(), 200, { "content-type": "application/json" });
        return c.json({ channels: readModel.channelsOf(new Set(ids.split(",").filter((id) => id !== ""))) });
      }
      const listed =
        ids === undefined
          ? readModel.current().channels
          : readModel.channelsOf(new Set(ids.split(",").filter((id) => id !== "")));
      return c.json({ channels: listed.filter((channel) => sees(principal, channel)) });
    },
  );

  on(
    {
      method: "post",
      path: "/",
      access: "admin",
      summary:
        "Create a channel, with its outputs if given; it is created stopped. As in the original API, unknown " +
        "fields are ignored and listed in warnings, and an empty optional field counts as absent",
      body: ChannelBody,
      response: ChannelAnswer,
      status: 201,
    },
    (c) =>
      run(
        c,
        Effect.flatMap(lenientBody(c, ChannelBody), ({ value, warnings }) =>
          // The role is needed on the channel as it would be: its id and tags.
          Effect.zipRight(
            Effect.zipRight(
              mayOn(c, { id: value.id ?? "", tags: value.tags }, "admin"),
              mayTag(c, value.tags, []),
            ),
            Effect.map(control.create(value), (channel) => withWarnings(channel, warnings)),
          ),
        ),
        (channel) => c.json(channel, 201),
      ),
  );

  on({ method: "get", path: "/{id}", access: "viewer", summary: "One channel", response: ChannelView }, (c) =>
    run(c, inChannel(c, readModel.channel), (channel) => c.json(channel)),
  );

  on(
    {
      method: "patch",
      path: "/{id}",
      access: "admin",
      summary:
        "Change a channel; inputs and redundancy settings apply to a running channel live, its outputs untouched",
      body: ChannelPatch,
      response: ChannelView,
    },
    // New tags need the role on the channel as it would be too, so nobody moves a channel out of their reach,
    // and each tag added or removed needs the role over that tag, so nobody moves one into another desk's list.
    onChannel(ChannelPatch, (id, changes, c) =>
      changes.tags === undefined
        ? control.patch(id, changes)
        : Effect.zipRight(
            Effect.zipRight(
              mayOn(c, { id, tags: changes.tags }, "admin"),
              mayTag(c, changes.tags, c.get("access")?.channel(id)?.tags),
            ),
            control.patch(id, changes),
          ),
    ),
  );

  on(
    {
      method: "delete",
      path: "/{id}",
      access: "admin",
      summary: "Stop and delete a channel",
      response: Deleted,
    },
    (c) => run(c, inChannel(c, control.remove), () => c.json({ id: param(c, "id"), deleted: true })),
  );

  on(
    {
      method: "post",
      path: "/{id}/start",
      access: "operator",
      summary: "Start a channel",
      response: ChannelView,
    },
    (c) => run(c, inChannel(c, control.start), (channel) => c.json(channel)),
  );

  on(
    {
      method: "post",
      path: "/{id}/stop",
      access: "operator",
      summary: "Stop a channel",
      response: ChannelView,
    },
    (c) => run(c, inChannel(c, control.stop), (channel) => c.json(channel)),
  );

  channelCommandRoutes(on, onChannel, { control, readModel, bus, fleet, run });
  return { app, routes };
};
