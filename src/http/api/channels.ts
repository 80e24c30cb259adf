/** `/api/channels`: the original API's channel and output calls, and what automation needs beyond them. */
import { Effect, Schema } from "effect";
import { ChannelBody, ChannelPatch, OutputBody, OutputPatch, SwitchInputBody } from "../../domain/channel.ts";
import { ChannelList, ChannelStats, ChannelView, CueList, OutputView } from "../../domain/views.ts";
import type { Control } from "../../effects/control.ts";
import { type Api, body, makeApi, param, type Run } from "../routes.ts";

export const Deleted = Schema.Struct({ id: Schema.String, deleted: Schema.Literal(true) }).annotations({
  identifier: "Deleted",
});

export const channelsApi = (control: Control, run: Run): Api => {
  const { app, routes, on } = makeApi();

  on({ method: "get", path: "/", access: "viewer", summary: "List channels", response: ChannelList }, (c) =>
    run(control.list, (channels) => c.json({ channels })),
  );

  on(
    {
      method: "post",
      path: "/",
      access: "admin",
      summary: "Create a channel, with its outputs if given; it is created stopped",
      body: ChannelBody,
      response: ChannelView,
      status: 201,
    },
    (c) => run(Effect.flatMap(body(c, ChannelBody), control.create), (channel) => c.json(channel, 201)),
  );

  on({ method: "get", path: "/{id}", access: "viewer", summary: "One channel", response: ChannelView }, (c) =>
    run(control.get(param(c, "id")), (channel) => c.json(channel)),
  );

  on(
    {
      method: "patch",
      path: "/{id}",
      access: "admin",
      summary: "Change a channel; a changed input or redundancy setting restarts a running channel",
      body: ChannelPatch,
      response: ChannelView,
    },
    (c) =>
      run(
        Effect.flatMap(body(c, ChannelPatch), (changes) => control.patch(param(c, "id"), changes)),
        (channel) => c.json(channel),
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
    (c) => run(control.remove(param(c, "id")), () => c.json({ id: param(c, "id"), deleted: true })),
  );

  on(
    {
      method: "post",
      path: "/{id}/start",
      access: "operator",
      summary: "Start a channel",
      response: ChannelView,
    },
    (c) => run(control.start(param(c, "id")), (channel) => c.json(channel)),
  );

  on(
    {
      method: "post",
      path: "/{id}/stop",
      access: "operator",
      summary: "Stop a channel",
      response: ChannelView,
    },
    (c) => run(control.stop(param(c, "id")), (channel) => c.json(channel)),
  );

  on(
    {
      method: "post",
      path: "/{id}/input",
      access: "operator",
      summary: "Switch the active input (operator failover)",
      body: SwitchInputBody,
      response: ChannelView,
    },
    (c) =>
      run(
        Effect.flatMap(body(c, SwitchInputBody), ({ active }) => control.switchInput(param(c, "id"), active)),
        (channel) => c.json(channel),
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
    (c) => run(control.stats(param(c, "id")), (stats) => c.json(stats)),
  );

  on(
    {
      method: "get",
      path: "/{id}/cues",
      access: "viewer",
      summary: "Recent SCTE-35 cues, decoded",
      response: CueList,
    },
    (c) => run(control.cues(param(c, "id")), (cues) => c.json({ cues })),
  );

  on(
    {
      method: "post",
      path: "/{id}/outputs",
      access: "operator",
      summary: "Add an output; it starts at once if the channel is running",
      body: OutputBody,
      response: OutputView,
      status: 201,
    },
    (c) =>
      run(
        Effect.flatMap(body(c, OutputBody), (output) => control.addOutput(param(c, "id"), output)),
        (output) => c.json(output, 201),
      ),
  );

  on(
    {
      method: "get",
      path: "/{id}/outputs/{oid}",
      access: "viewer",
      summary: "One output",
      response: OutputView,
    },
    (c) => run(control.getOutput(param(c, "id"), param(c, "oid")), (output) => c.json(output)),
  );

  on(
    {
      method: "put",
      path: "/{id}/outputs/{oid}",
      access: "operator",
      summary: "Replace an output; only that output restarts",
      body: OutputBody,
      response: OutputView,
    },
    (c) =>
      run(
        Effect.flatMap(body(c, OutputBody), (output) =>
          control.replaceOutput(param(c, "id"), param(c, "oid"), output),
        ),
        (output) => c.json(output),
      ),
  );

  on(
    {
      method: "patch",
      path: "/{id}/outputs/{oid}",
      access: "operator",
      summary: "Change some fields of an output; only that output restarts",
      body: OutputPatch,
      response: OutputView,
    },
    (c) =>
      run(
        Effect.flatMap(body(c, OutputPatch), (changes) =>
          control.patchOutput(param(c, "id"), param(c, "oid"), changes),
        ),
        (output) => c.json(output),
      ),
  );

  for (const [action, enabled] of [
    ["enable", true],
    ["disable", false],
  ] as const) {
    on(
      {
        method: "post",
        path: `/{id}/outputs/{oid}/${action}`,
        access: "operator",
        summary: enabled
          ? "Enable an output: it starts streaming"
          : "Disable an output: it stays configured, not streaming",
        response: OutputView,
      },
      (c) =>
        run(control.patchOutput(param(c, "id"), param(c, "oid"), { enabled }), (output) => c.json(output)),
    );
  }

  on(
    {
      method: "delete",
      path: "/{id}/outputs/{oid}",
      access: "operator",
      summary: "Remove an output; the others are not touched",
      response: Deleted,
    },
    (c) =>
      run(control.removeOutput(param(c, "id"), param(c, "oid")), () =>
        c.json({ id: param(c, "oid"), deleted: true }),
      ),
  );

  return { app, routes };
};
