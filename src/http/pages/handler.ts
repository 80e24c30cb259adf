/**
 * What every signed-in page handler shares: the services it reads, and `page`, which runs a handler's Effect on
 * the application runtime (its logger, its services) in the name of the session's token (`CurrentActor`), so
 * the audit trail names the person. A defect rejects the request and the app's error handler logs it with a
 * reference, as for the API.
 */
import * as Effect from "effect/Effect";
import * as Runtime from "effect/Runtime";
import type { Context } from "hono";
import type { html } from "hono/html";
import { page as layout, type Viewer } from "../../../views/layout.ts";
import type { Role } from "../../domain/control/access.ts";
import { allows, roleOn, sightOf, unscopedRole } from "../../domain/control/access.ts";
import { CurrentActor, CurrentSight } from "../../effects/config/actor.ts";
import { CurrentNodeRole } from "../../effects/config/node-role.ts";
import type { PersonSessionStore, TokenSessionStore } from "../../effects/config/person-sessions.ts";
import type { ConfigCode } from "../../effects/config-code/config-code.ts";
import type { AccessRules } from "../../effects/control/access-rules.ts";
import { type Auth, actorOf, type Principal } from "../../effects/control/auth.ts";
import type { ConfigTransfer } from "../../effects/control/config-transfer.ts";
import type { Control } from "../../effects/control/control.ts";
import type { SignOn } from "../../effects/control/sign-on.ts";
import type { EventBus } from "../../effects/events/event-bus.ts";
import type { FleetShape } from "../../effects/fleet/fleet-types.ts";
import type { MediaLive } from "../../effects/medialive/medialive.ts";
import type { Notifications } from "../../effects/notify/deliveries.ts";
import type { Notifiers } from "../../effects/notify/notifiers.ts";
import type { Recordings } from "../../effects/outputs/recordings.ts";
import type { ScheduleRunner } from "../../effects/schedule/runner.ts";
import type { ReadModel } from "../../effects/status/read-model.ts";
import type { Thumbnails } from "../../effects/status/thumbnails.ts";
import { refusalOn } from "../access.ts";
import type { AuthEnv, FailureLimiter } from "../auth.ts";

export interface PageServices {
  readonly control: Control;
  readonly recordings: Recordings;
  readonly readModel: ReadModel;
  readonly bus: EventBus;
  readonly medialive: MediaLive;
  readonly schedules: ScheduleRunner;
  readonly auth: Auth;
  readonly transfer: ConfigTransfer;
  /** Configuration as code: what the Settings page says of the configuration file's drift. */
  readonly configCode: ConfigCode;
  readonly thumbnails: Thumbnails;
  readonly fleet: FleetShape;
  readonly notifiers: Notifiers;
  readonly notifications: Notifications;
  /** The access rules that turn a signed-in person's claims into grants (Settings edits them). */
  readonly accessRules: AccessRules;
  readonly runtime: Runtime.Runtime<never>;
  /** The API's failure limiter: one count of wrong tokens per address. */
  readonly limiter: FailureLimiter;
  /** Sign-on through the identity provider (its `active` null when not configured). */
  readonly signOn: SignOn;
  /** Where people's sessions are kept: memory on one box, the fleet's database in a fleet. */
  readonly personSessions: PersonSessionStore;
  /** A fleet's token-login sessions (in its database); none on one box, where they stay in memory. */
  readonly tokenSessions?: TokenSessionStore | null;
}

type Answer = Response | Promise<Response>;

/** A handler as an Effect, run on the application runtime in the name of the signed-in token. */
export const pageOn =
  (runtime: Runtime.Runtime<never>) =>
  (handler: (c: Context<AuthEnv>) => Effect.Effect<Answer>) =>
  async (c: Context<AuthEnv>): Promise<Response> =>
    await Runtime.runPromise(runtime)(
      handler(c).pipe(
        Effect.provideService(CurrentActor, actorOf(c.get("principal"))),
        Effect.provideService(CurrentSight, sightOf(c.get("principal").grants)),
        Effect.provideService(CurrentNodeRole, unscopedRole(c.get("principal").grants)),
      ),
    );

/** The channel of a channel page's path (`/channels/:id/…`), if the page is one. */
const pageChannel = (c: Context<AuthEnv>): string | undefined => {
  const id = c.req.param("id");
  return id !== undefined && c.req.path.startsWith("/channels/") ? id : undefined;
};

/**
 * Who the page is for: on a channel's page, with the role the grants give on that channel, so that it shows
 * no button the channel would refuse; elsewhere with the highest role held.
 */
export const viewerOf = (c: Context<AuthEnv>): Viewer => {
  const principal = c.get("principal");
  const id = pageChannel(c);
  const role =
    id === undefined
      ? principal.role
      : (roleOn(principal.grants, c.get("access")?.channel(id) ?? { id }) ?? principal.role);
  return { name: principal.name, role, inFleet: c.get("inFleet") === true, ...rolesByChannel(principal) };
};

/** For a caller whose grants differ by channel, its role on each (the overview's tiles); nothing otherwise. */
export const rolesByChannel = (principal: Principal): Pick<Viewer, "roleOn"> =>
  principal.grants.every((grant) => grant.channels === "*")
    ? {}
    : { roleOn: (channel) => roleOn(principal.grants, channel) };

/** The posted form's text fields. */
export const formFields = (c: Context): Effect.Effect<Record<string, string>> =>
  Effect.map(
    Effect.promise(() => c.req.parseBody({ all: false })),
    (body) => {
      const fields: Record<string, string> = {};
      for (const [key, value] of Object.entries(body)) if (typeof value === "string") fields[key] = value;
      return fields;
    },
  );

/** A page in the layout, for the signed-in viewer; `live` is the page's WebSocket. */
export const render = (
  c: Context<AuthEnv>,
  title: string,
  body: ReturnType<typeof html>,
  live?: string,
  status = 200,
): Answer =>
  c.html(
    layout({ title, viewer: viewerOf(c), body, ...(live === undefined ? {} : { live }) }),
    status as 200,
  );

/**
 * Refuses with 403, in words, a caller below `role` where it counts: on a channel's page, on that channel; on
 * the channel list's own forms (a new channel, the bulk actions), on some channel (each channel is checked
 * again); anywhere else (settings, notifiers, nodes), over every channel.
 */
export const needs = (role: Role) => async (c: Context<AuthEnv>, next: () => Promise<void>) => {
  const principal = c.get("principal");
  const id = pageChannel(c);
  if (id !== undefined) {
    const refusal = refusalOn(c, c.get("access")?.channel(id) ?? { id }, role);
    if (refusal !== null) return c.text(refusal.message, 403);
  } else if (c.req.path.startsWith("/channels/")) {
    if (!allows(principal.role, role)) return c.text(`this needs the ${role} role`, 403);
  } else {
    const held = unscopedRole(principal.grants);
    if (held === null || !allows(held, role))
      return c.text(
        principal.role === held
          ? `this needs the ${role} role`
          : `this needs the ${role} role over every channel: your role is on some channels only`,
        403,
      );
  }
  await next();
};
