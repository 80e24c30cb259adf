/**
 * The overview and the channel pages: a channel's form, its page (status, PIDs, cues, events, recordings, the
 * slate), and its actions (start, stop, switch, outputs, the slate and its picture), each the REST API's
 * command in the signed-in token's name. A viewer sees no button that would be refused, and a refused action
 * says why.
 */
import { Buffer } from "node:buffer";
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import { type Context, Hono } from "hono";
import { channelPage, type RecordingsEntry } from "../../../views/channel.ts";
import type { CueEntry } from "../../../views/cues.ts";
import { overview } from "../../../views/overview.ts";
import { channelForm, editOutputForm, type FormState } from "../../../views/presets.ts";
import type { ControlError } from "../../domain/base/errors.ts";
import { ChannelId, OutputId } from "../../domain/base/ids.ts";
import type { OutputPolicy } from "../../domain/channel/output-policy-schema.ts";
import { mayOn, mayTag, refusalOn, sees } from "../access.ts";
import type { AuthEnv } from "../auth.ts";
import { recordingResponse } from "../recording.ts";
import {
  channelBody,
  channelFields,
  channelPatch,
  cueBody,
  fieldErrors,
  outputBody,
  outputFieldsOf,
  policyField,
} from "./forms.ts";
import { formFields, needs, type PageServices, pageOn, render, viewerOf } from "./handler.ts";

const channelOf = (c: Context) => ChannelId.make(c.req.param("id") ?? "");
const outputOf = (c: Context) => OutputId.make(c.req.param("oid") ?? "");
const back = (c: Context) => c.redirect(`/channels/${c.req.param("id")}`, 303);
/** Back to the channel, or the command's problem in words. */
const orProblem = (c: Context<AuthEnv>, result: Either.Either<unknown, ControlError>) => {
  if (Either.isRight(result)) return back(c);
  const { message, reason, retry_after_s } = result.left;
  if (reason === "rate_limited") return c.text(message, 429, { "retry-after": String(retry_after_s ?? 60) });
  return c.text(message, reason === "not_found" ? 404 : 409);
};
/** From the overview, back to it: a failed start shows its reason on the tile as on the channel page. */
const fromOverview = (c: Context) => {
  const from = c.req.header("referer");
  return from !== undefined && new URL(from).pathname === "/";
};

/** A channel's page, with a form's state and a status when an action sent it back. */
const channelShower = (services: PageServices) => {
  const { recordings: recordingFiles, readModel, bus } = services;
  const showChannel = (c: Context<AuthEnv>, form?: FormState, status = 200, slateProblem?: string) =>
    Effect.gen(function* () {
      const id = channelOf(c);
      const channel = readModel.current().channels.find((candidate) => candidate.id === id);
      if (channel === undefined) return c.text(`channel '${id}' does not exist`, 404);
      const stats = channel.status === "running" ? yield* Effect.option(readModel.detail(id)) : null;
      const cues: ReadonlyArray<CueEntry> = yield* Effect.orElseSucceed(readModel.cues(id), () => []);
      const schedule = yield* Effect.orElseSucceed(services.schedules.view(id), () => null);
      const recordings: RecordingsEntry[] = [];
      for (const output of channel.outputs.filter((candidate) => candidate.protocol === "file")) {
        const files = yield* Effect.orElseSucceed(
          recordingFiles.list(id, OutputId.make(output.id)),
          () => [],
        );
        recordings.push({ outputId: output.id, outputName: output.name, files });
      }
      return render(
        c,
        channel.name,
        channelPage({
          channel,
          stats: stats === null || stats._tag === "None" ? null : stats.value,
          viewer: viewerOf(c),
          cues: cues.slice(-50),
          events: bus.recent({ channel: id, limit: 100 }),
          history: (outputId) => readModel.history(id, outputId),
          host: new URL(c.req.url).hostname,
          recordings,
          schedule,
          ...(form === undefined ? {} : { form }),
          ...(slateProblem === undefined ? {} : { slateProblem }),
        }),
        `/ui/ws?page=channel&id=${encodeURIComponent(id)}`,
        status,
      );
    });
  return showChannel;
};
type ShowChannel = ReturnType<typeof channelShower>;

/** The overview, its bulk start and stop, and a new channel's form. */
const overviewRoutes = (app: Hono<AuthEnv>, services: PageServices) => {
  const { control, readModel, thumbnails } = services;
  const page = pageOn(services.runtime);

  app.get("/", (c) =>
    render(
      c,
      "Channels",
      overview(
        readModel.current().channels.filter((channel) => sees(c.get("principal"), channel)),
        viewerOf(c),
        thumbnails.tileState(),
        services.schedules.phase,
      ),
      "/ui/ws?page=overview",
    ),
  );

  app.post(
    "/channels/bulk",
    needs("operator"),
    page((c) =>
      Effect.gen(function* () {
        const body = yield* Effect.promise(() => c.req.parseBody({ all: true }));
        const ids = ([] as unknown[])
          .concat(body.ids ?? [])
          .filter((id): id is string => typeof id === "string");
        const action = body.action === "stop" ? control.stop : control.start;
        // Each channel needs the role on it: one out of reach is left as it is (and the refusal audited).
        const access = c.get("access");
        for (const id of ids)
          if (refusalOn(c, access?.channel(id) ?? { id }, "operator") === null)
            yield* Effect.either(action(ChannelId.make(id)));
        return c.redirect("/", 303);
      }),
    ),
  );

  app.get("/channels/new", needs("admin"), (c) =>
    render(
      c,
      "New channel",
      channelForm({ action: "/channels/new", title: "New channel", state: { values: {}, errors: {} } }),
    ),
  );
  app.post(
    "/channels/new",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const fields = yield* formFields(c);
        const result = yield* Effect.either(
          Effect.flatMap(channelBody(fields), (body) =>
            Effect.zipRight(
              Effect.zipRight(
                mayOn(c, { id: body.id ?? "", tags: body.tags }, "admin"),
                mayTag(c, body.tags, []),
              ),
              control.create(body),
            ),
          ),
        );
        if (Either.isRight(result)) return c.redirect(`/channels/${result.right.id}`, 303);
        const state: FormState = { values: fields, errors: fieldErrors(result.left) };
        const form = channelForm({ action: "/channels/new", title: "New channel", state });
        return render(c, "New channel", form, undefined, 400);
      }),
    ),
  );
};

/** A channel's page, its recordings, and its commands: start, stop, switch, cues, the slate. */
const channelRoutes = (app: Hono<AuthEnv>, services: PageServices, show: ShowChannel) => {
  const { control, recordings: recordingFiles } = services;
  const page = pageOn(services.runtime);
  app.get(
    "/channels/:id",
    page((c) => show(c)),
  );
  // A recording, for the page's session as the API gives it to a token; only a name the listing gives.
  app.get(
    "/channels/:id/outputs/:oid/recordings/:file",
    page((c) =>
      Effect.gen(function* () {
        const file = c.req.param("file") ?? "";
        const result = yield* Effect.either(recordingFiles.file(channelOf(c), outputOf(c), file));
        return Either.isRight(result)
          ? recordingResponse(result.right, file)
          : c.text(result.left.message, 404);
      }),
    ),
  );

  app.post(
    "/channels/:id/start",
    needs("operator"),
    page((c) =>
      Effect.gen(function* () {
        const result = yield* Effect.either(control.start(channelOf(c)));
        if (fromOverview(c)) return c.redirect("/", 303);
        return Either.isRight(result) || result.left.reason === "start_failed"
          ? back(c)
          : orProblem(c, result);
      }),
    ),
  );
  app.post(
    "/channels/:id/stop",
    needs("operator"),
    page((c) =>
      Effect.gen(function* () {
        const result = yield* Effect.either(control.stop(channelOf(c)));
        return fromOverview(c) ? c.redirect("/", 303) : orProblem(c, result);
      }),
    ),
  );
  app.post(
    "/channels/:id/input",
    needs("operator"),
    page((c) =>
      Effect.gen(function* () {
        const fields = yield* formFields(c);
        const role = fields.active === "backup" ? "backup" : "primary";
        return orProblem(c, yield* Effect.either(control.switchInput(channelOf(c), role)));
      }),
    ),
  );

  // "Insert a break now": the API's command with the form's command and duration.
  app.post(
    "/channels/:id/cues",
    needs("operator"),
    page((c) =>
      Effect.gen(function* () {
        const body = cueBody(yield* formFields(c));
        if (Either.isLeft(body))
          return c.text(
            `The break was not inserted: ${(body.left.errors ?? [])
              .map((issue) => `${issue.field}: ${issue.message}`)
              .join("; ")}`,
            400,
          );
        return orProblem(c, yield* Effect.either(control.insertCue(channelOf(c), body.right)));
      }),
    ),
  );

  // The slate: an operator puts the channel on it or takes it off; an admin gives it a picture, or the card.
  app.post(
    "/channels/:id/slate",
    needs("operator"),
    page((c) =>
      Effect.gen(function* () {
        const fields = yield* formFields(c);
        return orProblem(c, yield* Effect.either(control.switchSlate(channelOf(c), fields.on === "true")));
      }),
    ),
  );
  app.post(
    "/channels/:id/slate/image",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const body = yield* Effect.promise(() => c.req.parseBody({ all: false }));
        const file = body.image;
        if (typeof file === "string" || file === undefined || file.size === 0)
          return yield* show(c, undefined, 400, "Choose a PNG or JPEG picture to upload.");
        const bytes = new Uint8Array(yield* Effect.promise(() => file.arrayBuffer()));
        const result = yield* Effect.either(control.putSlateImage(channelOf(c), bytes));
        if (Either.isRight(result) || result.left.reason !== "invalid") return orProblem(c, result);
        // The picture's problem in words beside the upload; the stored picture is unchanged.
        const problem = result.left.errors?.[0]?.message ?? result.left.message;
        return yield* show(c, undefined, 400, `${file.name}: ${problem}`);
      }),
    ),
  );
  app.post(
    "/channels/:id/slate/card",
    needs("admin"),
    page((c) =>
      Effect.map(Effect.either(control.putSlateImage(channelOf(c), null)), (result) => orProblem(c, result)),
    ),
  );
  // The slate's uploaded picture, for the page's <img> (any signed-in viewer, as the API's GET).
  app.get(
    "/channels/:id/slate/image",
    page((c) =>
      Effect.gen(function* () {
        const result = yield* Effect.either(control.slateImage(channelOf(c)));
        if (Either.isLeft(result)) return c.text(result.left.message, 404);
        return c.body(new Uint8Array(Buffer.from(result.right.data, "base64")), 200, {
          "content-type": result.right.type,
          "cache-control": "private, no-cache",
          "x-content-type-options": "nosniff",
        });
      }),
    ),
  );
};

/** A channel's form, to change it. */
const editRoutes = (app: Hono<AuthEnv>, services: PageServices, show: ShowChannel) => {
  const { control, readModel } = services;
  const page = pageOn(services.runtime);
  app.get("/channels/:id/edit", needs("admin"), (c) => {
    const channel = readModel.current().channels.find((candidate) => candidate.id === channelOf(c));
    if (channel === undefined) return c.text("no such channel", 404);
    const state: FormState = { values: channelFields(channel), errors: {} };
    return render(
      c,
      `Edit ${channel.name}`,
      channelForm({ action: `/channels/${channel.id}/edit`, title: `Edit ${channel.name}`, state }),
    );
  });
  app.post(
    "/channels/:id/edit",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        const fields = yield* formFields(c);
        const current = readModel.current().channels.find((candidate) => candidate.id === channelOf(c));
        const result = yield* Effect.either(
          Effect.flatMap(channelPatch(fields, current), (changes) =>
            Effect.zipRight(
              // New tags need the role on the channel as it would be too, and each tag changed the role over it.
              changes.tags === undefined
                ? Effect.void
                : Effect.zipRight(
                    mayOn(c, { id: channelOf(c), tags: changes.tags }, "admin"),
                    mayTag(c, changes.tags, current?.tags),
                  ),
              control.patch(channelOf(c), changes),
            ),
          ),
        );
        if (Either.isRight(result)) return back(c);
        const state: FormState = { values: fields, errors: fieldErrors(result.left) };
        const action = `/channels/${c.req.param("id")}/edit`;
        return render(
          c,
          "Edit channel",
          channelForm({ action, title: "Edit channel", state }),
          undefined,
          400,
        );
      }),
    ),
  );

  app.post(
    "/channels/:id/outputs",
    needs("operator"),
    page((c) =>
      Effect.gen(function* () {
        const fields = yield* formFields(c);
        const result = yield* Effect.either(
          Effect.flatMap(outputBody(fields), (body) => control.addOutput(channelOf(c), body)),
        );
        if (Either.isRight(result)) return back(c);
        return yield* show(c, { values: fields, errors: fieldErrors(result.left) }, 400);
      }),
    ),
  );
};

/** An output's commands and its form. */
const outputRoutes = (app: Hono<AuthEnv>, services: PageServices) => {
  const { control, readModel } = services;
  const page = pageOn(services.runtime);
  const findOutput = (c: Context) =>
    readModel
      .current()
      .channels.find((channel) => channel.id === channelOf(c))
      ?.outputs.find((output) => output.id === outputOf(c));

  for (const [action, enabled] of [
    ["enable", true],
    ["disable", false],
  ] as const) {
    app.post(
      `/channels/:id/outputs/:oid/${action}`,
      needs("operator"),
      page((c) =>
        Effect.map(Effect.either(control.patchOutput(channelOf(c), outputOf(c), { enabled })), (result) =>
          orProblem(c, result),
        ),
      ),
    );
  }
  app.post(
    "/channels/:id/outputs/:oid/remove",
    needs("operator"),
    page((c) =>
      Effect.map(Effect.either(control.removeOutput(channelOf(c), outputOf(c))), (result) =>
        orProblem(c, result),
      ),
    ),
  );
  app.post(
    "/channels/:id/outputs/:oid/clone",
    needs("operator"),
    page((c) =>
      Effect.map(Effect.either(control.cloneOutput(channelOf(c), outputOf(c))), (result) =>
        orProblem(c, result),
      ),
    ),
  );
  app.get("/channels/:id/outputs/:oid/edit", needs("operator"), (c) => {
    const output = findOutput(c);
    if (output === undefined) return c.text("no such output", 404);
    return render(
      c,
      `Edit ${output.name}`,
      editOutputForm(channelOf(c), output.id, { values: outputFieldsOf(output), errors: {} }),
    );
  });
  app.post(
    "/channels/:id/outputs/:oid/edit",
    needs("operator"),
    page((c) =>
      Effect.gen(function* () {
        const fields = yield* formFields(c);
        const output = findOutput(c);
        if (output === undefined) return c.text("no such output", 404);
        // The masked URL sent back unchanged means "keep the stored one" (its key or passphrase included).
        const unchanged = (fields.url ?? "").trim() === output.url;
        const name = fields.name?.trim() || output.name;
        const body = unchanged ? Either.right(null) : outputBody(fields);
        const result = yield* Effect.either(
          Effect.flatMap(Effect.zip(body, policyField(fields.policy)), ([changed, policy]) =>
            control.patchOutput(channelOf(c), outputOf(c), {
              name,
              protocol: changed?.protocol ?? output.protocol,
              ...(changed === null ? {} : { url: changed.url }),
              policy: policy as OutputPolicy | null,
            }),
          ),
        );
        if (Either.isRight(result)) return back(c);
        const state: FormState = { values: fields, errors: fieldErrors(result.left) };
        return render(c, "Edit output", editOutputForm(channelOf(c), output.id, state), undefined, 400);
      }),
    ),
  );
};

export const channelPages = (services: PageServices) => {
  const app = new Hono<AuthEnv>();
  const show = channelShower(services);
  overviewRoutes(app, services);
  channelRoutes(app, services, show);
  editRoutes(app, services, show);
  outputRoutes(app, services);
  return app;
};
