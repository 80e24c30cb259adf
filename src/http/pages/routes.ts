/**
 * The operator pages: server-rendered HTML (views/) over the read model and the event bus, forms that post
 * and redirect, and one WebSocket per page (live.ts) that keeps them current. Actions go through the same
 * commands as the REST API, in the name of the signed-in token (`CurrentActor`), so the audit trail names the
 * person. A viewer sees no button that would be refused; every post is checked for this server's origin and
 * bounded by what its form can hold before any of it is read. Wrong tokens at the login count with the API's.
 */
import { createHash } from "node:crypto";
import { Effect, Either, Runtime } from "effect";
import { type Context, Hono } from "hono";
import { html } from "hono/html";
import { type CueEntry, channelPage, type RecordingsEntry } from "../../../views/channel.ts";
import { page, type Viewer } from "../../../views/layout.ts";
import { overview } from "../../../views/overview.ts";
import { channelForm, editOutputForm, type FormState } from "../../../views/presets.ts";
import { eventsPage, settingsPage } from "../../../views/settings.ts";
import type { ControlError } from "../../domain/errors.ts";
import { type ChannelEventType, EVENT_TYPES } from "../../domain/events.ts";
import { ChannelId, OutputId } from "../../domain/ids.ts";
import { type Auth, allows, type Role } from "../../effects/control/auth.ts";
import type { ConfigTransfer } from "../../effects/control/config-transfer.ts";
import type { Control } from "../../effects/control/control.ts";
import { CurrentActor } from "../../effects/events/actor.ts";
import { audit, type EventBus } from "../../effects/events/event-bus.ts";
import type { Recordings } from "../../effects/outputs/recordings.ts";
import type { ReadModel } from "../../effects/status/read-model.ts";
import type { Thumbnails } from "../../effects/status/thumbnails.ts";
import { type AuthEnv, countFailure, type FailureLimiter } from "../auth.ts";
import { limitBody, MAX_BODY_BYTES, MAX_IMPORT_BODY_BYTES, MAX_LOGIN_BODY_BYTES } from "../body-limit.ts";
import { recordingResponse } from "../recording.ts";
import { assets } from "./assets.ts";
import {
  channelBody,
  channelFields,
  channelPatch,
  fieldErrors,
  outputBody,
  outputFieldsOf,
} from "./forms.ts";
import type { Histories } from "./live.ts";
import { makeSessions, nextAfterLogin, sameOrigin } from "./session.ts";

export interface PageServices {
  readonly control: Control;
  readonly recordings: Recordings;
  readonly readModel: ReadModel;
  readonly bus: EventBus;
  readonly auth: Auth;
  readonly transfer: ConfigTransfer;
  readonly histories: Histories;
  readonly thumbnails: Thumbnails;
  readonly runtime: Runtime.Runtime<never>;
  /** The API's failure limiter: one count of wrong tokens per address. */
  readonly limiter: FailureLimiter;
}

/**
 * What the pages may load: their own scripts, stylesheet, images and connections (the WebSocket included),
 * the preview's media and hls.js's worker from blob: URLs, and no framing by anyone.
 */
export const PAGE_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "media-src 'self' blob:",
  "worker-src 'self' blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const viewerOf = (c: Context<AuthEnv>): Viewer => {
  const principal = c.get("principal");
  return { name: principal.name, role: principal.role };
};

const formFields = async (c: Context): Promise<Record<string, string>> => {
  const body = await c.req.parseBody({ all: false });
  const fields: Record<string, string> = {};
  for (const [key, value] of Object.entries(body)) if (typeof value === "string") fields[key] = value;
  return fields;
};

/** A channel's name as an import document gives it (our format or the original channels.json). */
const nameInDocument = (document: unknown, id: string): string | undefined => {
  if (typeof document !== "object" || document === null) return undefined;
  const record = document as Record<string, unknown>;
  if (Array.isArray(record.channels)) {
    const found = (record.channels as Array<Record<string, unknown>>).find((channel) => channel?.id === id);
    return typeof found?.name === "string" ? found.name : undefined;
  }
  const entry = record[id] as { config?: { name?: unknown } } | undefined;
  return typeof entry?.config?.name === "string" ? entry.config.name : undefined;
};

const loginPage = (error: string | undefined, next: string) =>
  page({ title: "Log in", viewer: null, body: loginForm(error, next) });

const loginForm = (
  error: string | undefined,
  next: string,
) => html`<section class="login" aria-labelledby="login-title">
  <h1 id="login-title">Log in</h1>
  <form method="post" action="/login" class="stacked">
    <input type="hidden" name="next" value="${next}" />
    <label>Token <input type="password" name="token" required autocomplete="current-password" ${error === undefined ? "" : html`aria-invalid="true" aria-describedby="token-error"`} /></label>
    ${error === undefined ? "" : html`<p class="field-error" id="token-error" role="alert">${error}</p>`}
    <button type="submit" class="primary">Log in</button>
  </form>
  <p class="muted">The admin token was printed when the service first started. Tokens are managed in Settings.</p>
</section>`;

export const pagesApp = (services: PageServices) => {
  const {
    control,
    recordings: recordingFiles,
    readModel,
    bus,
    auth,
    transfer,
    histories,
    thumbnails,
    runtime,
    limiter,
  } = services;
  const sessions = makeSessions(auth.authenticate);
  const app = new Hono<AuthEnv>();
  const run = Runtime.runPromise(runtime);

  /** A command in the name of the signed-in token: its result, or the problem. */
  const command = <A>(c: Context<AuthEnv>, effect: Effect.Effect<A, ControlError>) =>
    run(Effect.either(effect.pipe(Effect.provideService(CurrentActor, { name: c.get("principal").name }))));

  const render = (
    c: Context<AuthEnv>,
    title: string,
    body: ReturnType<typeof html>,
    live?: string,
    status = 200,
  ) =>
    c.html(
      page({ title, viewer: viewerOf(c), body, ...(live === undefined ? {} : { live }) }),
      status as 200,
    );

  const needs = (role: Role) => async (c: Context<AuthEnv>, next: () => Promise<void>) => {
    if (!allows(c.get("principal").role, role)) return c.text(`this needs the ${role} role`, 403);
    await next();
  };

  app.use("*", async (c, next) => {
    await next();
    c.header("content-security-policy", PAGE_POLICY);
  });
  // Each post may carry what its form holds: a token at the login, a channel elsewhere, a document at the
  // import. Past the login, the limit applies after the session check, so nobody unknown sends a document.
  const limits = {
    login: limitBody(MAX_LOGIN_BODY_BYTES),
    form: limitBody(MAX_BODY_BYTES),
    import: limitBody(MAX_IMPORT_BODY_BYTES),
  };
  app.route("/assets", assets());
  app.use("*", sameOrigin);

  app.get("/login", (c) => c.html(loginPage(undefined, nextAfterLogin(c, c.req.query("next")))));
  app.post("/login", limits.login, async (c) => {
    const fields = await formFields(c);
    const next = nextAfterLogin(c, fields.next);
    if (sessions.login(c, fields.token ?? "")) return c.redirect(next, 303);
    const wait = countFailure(limiter, c);
    if (wait > 0) {
      c.header("retry-after", String(wait));
      return c.html(loginPage(`Too many wrong tokens from this address: try again in ${wait} s.`, next), 429);
    }
    return c.html(loginPage("That token is not valid.", next), 401);
  });
  app.post("/logout", limits.login, (c) => {
    sessions.logout(c);
    return c.redirect("/login", 303);
  });

  const signedIn = new Hono<AuthEnv>();
  signedIn.use("*", sessions.require());
  signedIn.use("*", (c, next) =>
    c.req.method === "GET" || c.req.method === "HEAD"
      ? next()
      : (c.req.path === "/settings/import" ? limits.import : limits.form)(c, next),
  );

  signedIn.get("/", (c) =>
    render(
      c,
      "Channels",
      overview(readModel.current().channels, viewerOf(c), thumbnails.tileState()),
      "/ui/ws?page=overview",
    ),
  );

  signedIn.post("/channels/bulk", needs("operator"), async (c) => {
    const body = await c.req.parseBody({ all: true });
    const ids = ([] as unknown[]).concat(body.ids ?? []).filter((id): id is string => typeof id === "string");
    const action = body.action === "stop" ? control.stop : control.start;
    for (const id of ids) {
      const parsed = ChannelId.make(id);
      await command(c, action(parsed));
    }
    return c.redirect("/", 303);
  });

  signedIn.get("/channels/new", needs("admin"), (c) =>
    render(
      c,
      "New channel",
      channelForm({ action: "/channels/new", title: "New channel", state: { values: {}, errors: {} } }),
    ),
  );
  signedIn.post("/channels/new", needs("admin"), async (c) => {
    const fields = await formFields(c);
    const result = await command(c, Effect.flatMap(channelBody(fields), control.create));
    if (Either.isRight(result)) return c.redirect(`/channels/${result.right.id}`, 303);
    const state: FormState = { values: fields, errors: fieldErrors(result.left) };
    return render(
      c,
      "New channel",
      channelForm({ action: "/channels/new", title: "New channel", state }),
      undefined,
      400,
    );
  });

  const channelOf = (c: Context) => ChannelId.make(c.req.param("id") ?? "");
  const showChannel = async (c: Context<AuthEnv>, form?: FormState, status = 200) => {
    const id = channelOf(c);
    const channel = readModel.current().channels.find((candidate) => candidate.id === id);
    if (channel === undefined) return c.text(`channel '${id}' does not exist`, 404);
    const stats = channel.status === "running" ? await run(Effect.option(readModel.detail(id))) : null;
    const cues = (await run(Effect.orElseSucceed(readModel.cues(id), () => []))) as ReadonlyArray<CueEntry>;
    const recordings: RecordingsEntry[] = [];
    for (const output of channel.outputs.filter((candidate) => candidate.protocol === "file")) {
      const files = await run(
        Effect.orElseSucceed(recordingFiles.list(id, OutputId.make(output.id)), () => []),
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
        history: (outputId) => histories.of(id, outputId),
        host: new URL(c.req.url).hostname,
        recordings,
        ...(form === undefined ? {} : { form }),
      }),
      `/ui/ws?page=channel&id=${encodeURIComponent(id)}`,
      status,
    );
  };
  signedIn.get("/channels/:id", (c) => showChannel(c));
  // A recording, for the page's session as the API gives it to a token; only a name the listing gives.
  signedIn.get("/channels/:id/outputs/:oid/recordings/:file", async (c) => {
    const file = c.req.param("file");
    const result = await command(
      c,
      recordingFiles.file(channelOf(c), OutputId.make(c.req.param("oid")), file),
    );
    return Either.isRight(result) ? recordingResponse(result.right, file) : c.text(result.left.message, 404);
  });

  const back = (c: Context) => c.redirect(`/channels/${c.req.param("id")}`, 303);
  const orProblem = async (c: Context<AuthEnv>, result: Either.Either<unknown, ControlError>) =>
    Either.isRight(result)
      ? back(c)
      : c.text(result.left.message, result.left.reason === "not_found" ? 404 : 409);

  signedIn.post("/channels/:id/start", needs("operator"), async (c) => {
    const result = await command(c, control.start(channelOf(c)));
    // From the overview, back to it; a failed start shows its reason on the tile and the channel page.
    const from = c.req.header("referer");
    if (from !== undefined && new URL(from).pathname === "/") return c.redirect("/", 303);
    return Either.isRight(result) || result.left.reason === "start_failed" ? back(c) : orProblem(c, result);
  });
  signedIn.post("/channels/:id/stop", needs("operator"), async (c) => {
    const result = await command(c, control.stop(channelOf(c)));
    const from = c.req.header("referer");
    if (from !== undefined && new URL(from).pathname === "/") return c.redirect("/", 303);
    return orProblem(c, result);
  });
  signedIn.post("/channels/:id/input", needs("operator"), async (c) => {
    const fields = await formFields(c);
    const role = fields.active === "backup" ? "backup" : "primary";
    return orProblem(c, await command(c, control.switchInput(channelOf(c), role)));
  });

  signedIn.get("/channels/:id/edit", needs("admin"), (c) => {
    const channel = readModel.current().channels.find((candidate) => candidate.id === channelOf(c));
    if (channel === undefined) return c.text("no such channel", 404);
    const state: FormState = { values: channelFields(channel), errors: {} };
    return render(
      c,
      `Edit ${channel.name}`,
      channelForm({ action: `/channels/${channel.id}/edit`, title: `Edit ${channel.name}`, state }),
    );
  });
  signedIn.post("/channels/:id/edit", needs("admin"), async (c) => {
    const fields = await formFields(c);
    const result = await command(
      c,
      Effect.flatMap(channelPatch(fields), (changes) => control.patch(channelOf(c), changes)),
    );
    if (Either.isRight(result)) return back(c);
    const state: FormState = { values: fields, errors: fieldErrors(result.left) };
    const action = `/channels/${c.req.param("id")}/edit`;
    return render(c, "Edit channel", channelForm({ action, title: "Edit channel", state }), undefined, 400);
  });

  signedIn.post("/channels/:id/outputs", needs("operator"), async (c) => {
    const fields = await formFields(c);
    const result = await command(
      c,
      Effect.flatMap(outputBody(fields), (body) => control.addOutput(channelOf(c), body)),
    );
    if (Either.isRight(result)) return back(c);
    return showChannel(c, { values: fields, errors: fieldErrors(result.left) }, 400);
  });

  const outputOf = (c: Context) => OutputId.make(c.req.param("oid") ?? "");
  const findOutput = (c: Context) =>
    readModel
      .current()
      .channels.find((channel) => channel.id === channelOf(c))
      ?.outputs.find((output) => output.id === outputOf(c));

  for (const [action, enabled] of [
    ["enable", true],
    ["disable", false],
  ] as const) {
    signedIn.post(`/channels/:id/outputs/:oid/${action}`, needs("operator"), async (c) =>
      orProblem(c, await command(c, control.patchOutput(channelOf(c), outputOf(c), { enabled }))),
    );
  }
  signedIn.post("/channels/:id/outputs/:oid/remove", needs("operator"), async (c) =>
    orProblem(c, await command(c, control.removeOutput(channelOf(c), outputOf(c)))),
  );
  signedIn.post("/channels/:id/outputs/:oid/clone", needs("operator"), async (c) => {
    return orProblem(c, await command(c, control.cloneOutput(channelOf(c), outputOf(c))));
  });
  signedIn.get("/channels/:id/outputs/:oid/edit", needs("operator"), (c) => {
    const output = findOutput(c);
    if (output === undefined) return c.text("no such output", 404);
    return render(
      c,
      `Edit ${output.name}`,
      editOutputForm(channelOf(c), output.id, { values: outputFieldsOf(output), errors: {} }),
    );
  });
  signedIn.post("/channels/:id/outputs/:oid/edit", needs("operator"), async (c) => {
    const fields = await formFields(c);
    const output = findOutput(c);
    if (output === undefined) return c.text("no such output", 404);
    // The masked URL sent back unchanged means "keep the stored one" (its key or passphrase included).
    const unchanged = (fields.url ?? "").trim() === output.url;
    const name = fields.name?.trim() || output.name;
    const result = await command(
      c,
      Effect.flatMap(unchanged ? Effect.succeed(null) : outputBody(fields), (body) =>
        control.patchOutput(channelOf(c), outputOf(c), {
          name,
          protocol: body?.protocol ?? output.protocol,
          ...(body === null ? {} : { url: body.url }),
        }),
      ),
    );
    if (Either.isRight(result)) return back(c);
    const state: FormState = { values: fields, errors: fieldErrors(result.left) };
    return render(c, "Edit output", editOutputForm(channelOf(c), output.id, state), undefined, 400);
  });

  signedIn.get("/events", (c) => {
    const channel = c.req.query("channel") ?? "";
    const type = c.req.query("type") ?? "";
    const types = (EVENT_TYPES as ReadonlyArray<string>).includes(type)
      ? [type as ChannelEventType]
      : undefined;
    const events = bus.recent({ ...(channel === "" ? {} : { channel }), types, limit: 500 });
    return render(
      c,
      "Events",
      eventsPage({ events, channel, type, types: EVENT_TYPES }),
      `/ui/ws?${new URLSearchParams({ page: "events", channel, type })}`,
    );
  });

  const settings = async (
    c: Context<AuthEnv>,
    extra: Partial<Parameters<typeof settingsPage>[0]> = {},
    status = 200,
  ) => {
    const tokens = await run(auth.list);
    return render(
      c,
      "Settings",
      settingsPage({ tokens, thumbnails: thumbnails.enabled(), ...extra }),
      undefined,
      status,
    );
  };
  signedIn.get("/settings", needs("admin"), (c) => settings(c));
  signedIn.post("/settings/tokens", needs("admin"), async (c) => {
    const fields = await formFields(c);
    const role = fields.role === "admin" || fields.role === "operator" ? fields.role : "viewer";
    const created = await command(c, auth.create({ name: fields.name ?? "", role }));
    if (Either.isLeft(created)) return settings(c, { message: created.left.message }, 400);
    return settings(c, { created: { name: created.right.name, secret: created.right.token } });
  });
  signedIn.post("/settings/tokens/:tid/revoke", needs("admin"), async (c) => {
    const result = await command(c, auth.revoke(c.req.param("tid") ?? ""));
    return settings(c, { message: Either.isRight(result) ? "Token revoked." : result.left.message });
  });
  signedIn.post("/settings/thumbnails", needs("admin"), async (c) => {
    const fields = await formFields(c);
    thumbnails.setEnabled(fields.enabled === "true");
    await command(
      c,
      audit(bus, "settings.thumbnails", `thumbnails turned ${thumbnails.enabled() ? "on" : "off"}`),
    );
    return c.redirect("/settings", 303);
  });
  // The export for the browser's session (the API's /api/config wants a bearer token): masked for sharing, or
  // with secrets for a backup (an audit event in the admin's name, never cached).
  signedIn.get("/settings/export", needs("admin"), async (c) => {
    const secrets = c.req.query("secrets") === "true";
    const exported = await command(c, transfer.exportConfig({ secrets }));
    if (Either.isLeft(exported)) return settings(c, { message: exported.left.message }, 500);
    const name = secrets ? "distributary-backup.json" : "distributary-config.json";
    return c.body(JSON.stringify(exported.right, null, 2), 200, {
      "content-type": "application/json",
      "content-disposition": `attachment; filename="${name}"`,
      "cache-control": "no-store",
    });
  });
  signedIn.post("/settings/import", needs("admin"), async (c) => {
    const fields = await formFields(c);
    const document = fields.document ?? "";
    const mode = fields.mode === "replace" ? "replace" : "merge";
    const fingerprint = createHash("sha256").update(`${mode}\n${document}`).digest("hex");
    // Apply only what was previewed: a document or mode edited since gets a fresh preview, not applied.
    const stale = fields.step === "apply" && fields.previewed !== fingerprint;
    const apply = fields.step === "apply" && !stale;
    let parsed: unknown;
    try {
      parsed = JSON.parse(document);
    } catch (error) {
      const problems = [`not valid JSON: ${(error as Error).message}`];
      return settings(
        c,
        { preview: { document, mode, result: { create: [], change: [], remove: [], problems } } },
        400,
      );
    }
    // The preview is the import's own dry run: what it shows is what applying does.
    const outcome = await command(c, transfer.importConfig(parsed, { mode, dryRun: !apply }));
    if (Either.isLeft(outcome)) {
      const problems = outcome.left.errors?.map((issue) => `${issue.field}: ${issue.message}`) ?? [
        outcome.left.message,
      ];
      return settings(
        c,
        { preview: { document, mode, result: { create: [], change: [], remove: [], problems } } },
        400,
      );
    }
    const plan = outcome.right;
    const name = (id: string) => {
      const channel = readModel.current().channels.find((candidate) => candidate.id === id);
      const named = channel?.name ?? nameInDocument(parsed, id);
      return named === undefined ? id : `${named} (${id})`;
    };
    const issue = (prefix: string) => (found: { readonly field: string; readonly message: string }) =>
      `${prefix}${found.field}: ${found.message}`;
    const result = {
      create: plan.created.map(name),
      change: plan.changed.map(name),
      remove: plan.deleted.map(name),
      problems: [],
      notes: [
        ...(plan.report ?? []).flatMap((channel) => [
          ...channel.not_taken.map(issue(`${channel.id}, not taken: `)),
          ...channel.warnings.map(issue(`${channel.id}, ignored: `)),
        ]),
        ...(plan.warnings ?? []).map(issue("ignored: ")),
      ],
    };
    if (apply) {
      const message = `Configuration imported (${mode}): ${plan.created.length} created, ${plan.changed.length} changed, ${plan.deleted.length} deleted.`;
      return settings(c, { message });
    }
    const message = stale
      ? "Nothing was imported: the document or the mode changed after its preview. Here is what it would do now; apply again to confirm."
      : undefined;
    return settings(c, {
      preview: { document, mode, result, fingerprint },
      ...(message === undefined ? {} : { message }),
    });
  });

  app.route("/", signedIn);
  return { app, sessions };
};
