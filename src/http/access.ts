/**
 * Rights per channel at the HTTP edge. A route about one channel (`/api/channels/{id}/…`, its pages, its HLS
 * files and stills) needs the role on that channel: the highest of the caller's grants that reach it
 * (src/domain/control/access.ts). A list (channels, events, the live WebSockets) needs the role anywhere and shows only
 * the channels the caller's grants reach. A refusal says in words which channel and what the caller holds, and
 * is audited — at most one row a minute per caller, the next saying how many refusals it stands for, so a
 * script hammering a channel it may not touch cannot flood the trail — and every one is counted in
 * `distributary_access_refused_total{via}`.
 */
import * as Effect from "effect/Effect";
import * as Runtime from "effect/Runtime";
import type { Context, MiddlewareHandler } from "hono";
import { Counter, type Registry } from "prom-client";
import { ControlError } from "../domain/base/errors.ts";
import { excerpt } from "../domain/base/excerpt.ts";
import {
  allows,
  type Role,
  roleOn,
  type ScopedChannel,
  tagsBeyond,
  unscopedRole,
} from "../domain/control/access.ts";
import { CurrentActor } from "../effects/config/actor.ts";
import { actorOf, describeCaller, describeGrants, type Principal } from "../effects/control/auth.ts";
import { audit, type EventBus } from "../effects/events/event-bus.ts";
import { type AuthEnv, type ChannelAccess, forbidden, unscoped } from "./auth.ts";

/** How often a caller's refusals are written to the audit trail. */
const REFUSAL_ROW_EVERY_MS = 60_000;
/** Callers remembered for that: the oldest are forgotten past this many. */
const MAX_REMEMBERED_CALLERS = 10_000;

/** Every refusal on scope, by how the caller proved who it is, in `registry`'s exposition. */
export const refusalCounter = (registry: Registry) => {
  const counter = new Counter({
    name: "distributary_access_refused_total",
    help: "Requests refused because the caller's grants do not reach the channel (or are not over every channel)",
    labelNames: ["via"],
    registers: [registry],
  });
  return (principal: Principal) => counter.inc({ via: principal.via });
};

/** The service's side of the checks: the stored channels' tags, and the audit trail for refusals. */
export const makeChannelAccess = (
  channels: () => ReadonlyArray<ScopedChannel>,
  bus: EventBus,
  runtime: Runtime.Runtime<never>,
  now: () => number = Date.now,
  count: (principal: Principal) => void = () => undefined,
): ChannelAccess => {
  const lastRow = new Map<string, { at: number; unwritten: number }>();
  return {
    channel: (id) => channels().find((channel) => channel.id === id),
    refused: (principal, what, why) => {
      count(principal);
      const key = `${principal.via}:${principal.issuer ?? ""}:${principal.id}`;
      const at = now();
      const last = lastRow.get(key);
      if (last !== undefined && at - last.at < REFUSAL_ROW_EVERY_MS) {
        last.unwritten += 1;
        return;
      }
      lastRow.delete(key);
      lastRow.set(key, { at, unwritten: 0 });
      if (lastRow.size > MAX_REMEMBERED_CALLERS) {
        const oldest = lastRow.keys().next().value;
        if (oldest !== undefined) lastRow.delete(oldest);
      }
      const more =
        last === undefined || last.unwritten === 0
          ? ""
          : ` (and ${last.unwritten} refusal${last.unwritten === 1 ? "" : "s"} since the last row)`;
      Runtime.runFork(runtime)(
        Effect.ignore(
          audit(bus, "access.refused", `refused ${excerpt(what)}: ${excerpt(why, 400)}${more}`),
        ).pipe(Effect.provideService(CurrentActor, actorOf(principal))),
      );
    },
  };
};

/** The channel of `id` as the checks see it: as stored, or only its id when no channel has it. */
const scoped = (access: ChannelAccess | undefined, id: string): ScopedChannel =>
  access?.channel(id) ?? { id };

/** The caller's role on channel `id`; null when none of its grants reaches it. */
export const roleOnChannel = (c: Context<AuthEnv>, id: string): Role | null =>
  roleOn(c.get("principal").grants, scoped(c.get("access"), id));

/** Whether the caller sees every channel (a grant over all of them): lists need no filtering then. */
export const seesAll = (principal: Principal) => unscopedRole(principal.grants) !== null;

/** Whether the caller's grants reach `channel` (its views and events carry its id and tags). */
export const sees = (principal: Principal, channel: ScopedChannel) =>
  roleOn(principal.grants, channel) !== null;

/**
 * Which events a caller may read: all of them with a grant over every channel; else those of its channels
 * (an event of no channel is the node's: a token's creation, a worker's restart), none of the others.
 */
export const eventsFor = (principal: Principal, access: ChannelAccess | undefined) =>
  seesAll(principal)
    ? () => true
    : (event: { readonly channel?: string | null }) =>
        typeof event.channel === "string" && sees(principal, scoped(access, event.channel));

/** The words of a refusal on channel `id`: which channel, what it needs, what the caller holds. */
export const channelRefusal = (principal: Principal, id: string, role: Role) =>
  unscoped(principal)
    ? `this needs the ${role} role; ${describeCaller(principal)} has ${principal.role}`
    : `channel '${id}' needs the ${role} role; ${describeCaller(principal)} holds ${describeGrants(principal.grants)}`;

/**
 * Refuses, audited, unless the caller holds `role` on channel `id`; null when it does. For handlers that
 * learn the channel from a body (a creation, new tags): `channel` is the channel as it would be.
 */
export const refusalOn = (c: Context<AuthEnv>, channel: ScopedChannel, role: Role): ControlError | null => {
  const principal = c.get("principal");
  const held = roleOn(principal.grants, channel);
  if (held !== null && allows(held, role)) return null;
  const why = channelRefusal(principal, channel.id === "" ? "(new)" : channel.id, role);
  if (!unscoped(principal)) c.get("access")?.refused(principal, `${c.req.method} ${c.req.path}`, why);
  return new ControlError({ reason: "forbidden", message: why });
};

/** `refusalOn` as an Effect: fails with the refusal, or goes on. */
export const mayOn = (c: Context<AuthEnv>, channel: ScopedChannel, role: Role) => {
  const refusal = refusalOn(c, channel, role);
  return refusal === null ? Effect.void : Effect.fail(refusal);
};

/** A route about the channel of the path's `param`: the caller needs `role` on it. */
export const requireOnChannel =
  (role: Role, param = "id"): MiddlewareHandler<AuthEnv> =>
  async (c, next) => {
    const refusal = refusalOn(c, scoped(c.get("access"), c.req.param(param) ?? ""), role);
    return refusal === null ? next() : forbidden(refusal.message);
  };

/** A list: the caller needs `role` on some channel; what it lists is filtered by `sees`. */
export const requireAnywhere =
  (role: Role): MiddlewareHandler<AuthEnv> =>
  async (c, next) => {
    const principal = c.get("principal");
    if (allows(principal.role, role)) return next();
    return forbidden(
      unscoped(principal)
        ? `this needs the ${role} role; ${describeCaller(principal)} has ${principal.role}`
        : `this needs the ${role} role on some channel; ${describeCaller(principal)} holds ${describeGrants(principal.grants)}`,
    );
  };

/**
 * Refuses, audited, a tag added or removed beyond the caller's grants (403 naming the tag): a tag puts a channel
 * into the list of every desk that holds it, so a desk's admin may not move its channel into another desk's list
 * nor take one out of it. `before`: the channel's stored tags (none for a new channel); `tags` undefined: no change.
 */
export const mayTag = (
  c: Context<AuthEnv>,
  tags: ReadonlyArray<string> | undefined,
  before: ReadonlyArray<string> | undefined,
  role: Role = "admin",
): Effect.Effect<void, ControlError> =>
  // Suspended: built beside the other checks, it refuses (and counts) only if they let it run.
  Effect.suspend(() => tagRefusal(c, tags, before, role));

const tagRefusal = (
  c: Context<AuthEnv>,
  tags: ReadonlyArray<string> | undefined,
  before: ReadonlyArray<string> | undefined,
  role: Role,
): Effect.Effect<void, ControlError> => {
  if (tags === undefined) return Effect.void;
  const principal = c.get("principal");
  const kept = new Set(before ?? []);
  const wanted = new Set(tags);
  const changed = [...tags.filter((tag) => !kept.has(tag)), ...[...kept].filter((tag) => !wanted.has(tag))];
  const beyond = tagsBeyond(principal.grants, changed, role);
  if (beyond.length === 0) return Effect.void;
  const named = beyond.map((tag) => `'${tag}'`).join(", ");
  const why =
    `${beyond.length === 1 ? `tag ${named} is` : `tags ${named} are`} outside the grants of ` +
    `${describeCaller(principal)} (${describeGrants(principal.grants)}): a tag puts a channel into the list of ` +
    `everyone who holds it, so only tags held with the ${role} role may be added or removed`;
  c.get("access")?.refused(principal, `${c.req.method} ${c.req.path}`, why);
  return Effect.fail(
    new ControlError({
      reason: "forbidden",
      message: `tags: ${why}`,
      errors: [{ field: "tags", message: why }],
    }),
  );
};
