/**
 * `/api/channels/{id}/outputs`: one channel's outputs, as the original API had them (add, replace, change,
 * enable, disable, remove), and a file:// output's recordings. Mounted beside the channel calls (channels.ts)
 * under the same prefix: an output is always reached through its channel.
 */
import * as Effect from "effect/Effect";
import * as Schema from "effect/Schema";
import { OutputBody, OutputPatch } from "../../domain/channel/channel.ts";
import { OutputView } from "../../domain/views/views.ts";
import type { Control } from "../../effects/control/control.ts";
import type { Recordings } from "../../effects/outputs/recordings.ts";
import type { ReadModel } from "../../effects/status/read-model.ts";
import { recordingResponse } from "../recording.ts";
import {
  type Api,
  body,
  inChannel,
  inOutput,
  lenientBody,
  makeApi,
  param,
  type Run,
  withWarnings,
} from "../routes.ts";
import { Deleted, Warnings } from "./channels.ts";

const OutputAnswer = Schema.Struct({ ...OutputView.fields, warnings: Warnings }).annotations({
  identifier: "OutputAnswer",
});

const Recording = Schema.Struct({
  name: Schema.String,
  bytes: Schema.Number,
  started_at: Schema.String,
  modified_at: Schema.String,
}).annotations({ identifier: "Recording" });
const RecordingList = Schema.Struct({ recordings: Schema.Array(Recording) }).annotations({
  identifier: "RecordingList",
});

export const outputsApi = (control: Control, recordings: Recordings, readModel: ReadModel, run: Run): Api => {
  const { app, routes, on } = makeApi({ channels: true });

  on(
    {
      method: "post",
      path: "/{id}/outputs",
      access: "operator",
      summary:
        "Add an output; it starts at once if the channel is running. Unknown fields are ignored and listed in " +
        "warnings; protocol rtmp also takes an rtmps:// URL",
      body: OutputBody,
      response: OutputAnswer,
      status: 201,
    },
    (c) =>
      run(
        c,
        Effect.flatMap(lenientBody(c, OutputBody), ({ value, warnings }) =>
          inChannel(c, (id) =>
            Effect.map(control.addOutput(id, value), (output) => withWarnings(output, warnings)),
          ),
        ),
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
    (c) => run(c, inOutput(c, readModel.output), (output) => c.json(output)),
  );

  on(
    {
      method: "put",
      path: "/{id}/outputs/{oid}",
      access: "operator",
      summary:
        "Replace an output; only that output restarts (not at all when nothing changed). The output as GET " +
        "gives it is accepted back as it is: read-only fields are ignored and listed in warnings",
      body: OutputBody,
      response: OutputAnswer,
    },
    (c) =>
      run(
        c,
        Effect.flatMap(lenientBody(c, OutputBody), ({ value, warnings }) =>
          inOutput(c, (id, oid) =>
            Effect.map(control.replaceOutput(id, oid, value), (output) => withWarnings(output, warnings)),
          ),
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
        c,
        Effect.flatMap(body(c, OutputPatch), (changes) =>
          inOutput(c, (id, oid) => control.patchOutput(id, oid, changes)),
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
        run(
          c,
          inOutput(c, (id, oid) => control.patchOutput(id, oid, { enabled })),
          (output) => c.json(output),
        ),
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
    (c) => run(c, inOutput(c, control.removeOutput), () => c.json({ id: param(c, "oid"), deleted: true })),
  );

  on(
    {
      method: "get",
      path: "/{id}/outputs/{oid}/recordings",
      access: "viewer",
      summary:
        "A file:// output's recordings, oldest first: name (its start time), size, start and last write",
      response: RecordingList,
    },
    (c) => run(c, inOutput(c, recordings.list), (list) => c.json({ recordings: list })),
  );

  on(
    {
      method: "get",
      path: "/{id}/outputs/{oid}/recordings/{file}",
      access: "viewer",
      summary:
        "Download one recording (MPEG-TS, as received); only a name the listing gives is served, never a path",
    },
    (c) =>
      run(
        c,
        inOutput(c, (id, oid) => recordings.file(id, oid, param(c, "file"))),
        (path) => recordingResponse(path, param(c, "file")),
      ),
  );

  return { app, routes };
};
