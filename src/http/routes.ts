/**
 * How every API route is declared: method, path, the role it needs, and the Schemas of its body and answer.
 * The same declaration registers the Hono handler behind the role check and feeds `/api/openapi.json`, so the
 * documented contract, the enforced roles and the code cannot drift apart. Handlers stay inline after the
 * declaration, and reach the Effect services through `run`, the one bridge from a request to the runtime.
 */
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Runtime from "effect/Runtime";
import * as Schema from "effect/Schema";
import { type Context, type Handler, Hono } from "hono";
import { type ControlError, notFound } from "../domain/base/errors.ts";
import { ChannelId, OutputId } from "../domain/base/ids.ts";
import { decodeBody, decodeLenient, invalid, type Lenient } from "../domain/base/validate.ts";
import type { Role } from "../domain/control/access.ts";
import { sightOf, unscopedRole } from "../domain/control/access.ts";
import { CurrentActor, CurrentSight } from "../effects/config/actor.ts";
import { CurrentNodeRole } from "../effects/config/node-role.ts";
import { actorOf } from "../effects/control/auth.ts";
import { requireAnywhere, requireOnChannel } from "./access.ts";
import { type AuthEnv, requireRole } from "./auth.ts";
import { controlErrorResponse, internalError, problemResponse } from "./problem.ts";

type Access = Role | "public";

/**
 * A value of `Same<A, B>` exists only when A and B are the same shape, each assignable to the other: an API's
 * documented answer Schema and the type its handler answers with, held together by the compiler
 * (`sameShape<Stored, typeof Documented.Type>(true)`).
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
export const sameShape = <A, B>(_proof: Same<A, B>): void => undefined;
type Method = "get" | "post" | "put" | "patch" | "delete";

export interface RouteDoc {
  readonly method: Method;
  /** OpenAPI form (`/{id}`), relative to where the sub-app is mounted. */
  readonly path: string;
  readonly access: Access;
  readonly summary: string;
  readonly body?: Schema.Schema.AnyNoContext;
  readonly response?: Schema.Schema.AnyNoContext;
  /** The success status; 200 unless given. */
  readonly status?: number;
  /**
   * Where the role counts (set by makeApi): `channel`, on the channel of the path's `{id}`; `anywhere`, on some
   * channel (a list, filtered to the caller's channels, or a creation checked against the new channel's tags);
   * `node`, over every channel (a node-wide route).
   */
  readonly scope?: "channel" | "anywhere" | "node";
}

export interface Api {
  readonly app: Hono<AuthEnv>;
  readonly routes: ReadonlyArray<RouteDoc>;
}

/**
 * A resource's routes. Under `/api/channels` (`channels: true`) a route with `{id}` is about that channel and
 * needs its role there, the others (the list, a creation) need it on some channel; elsewhere every route is
 * node-wide, its role needed over every channel.
 */
export const makeApi = (options: { readonly channels?: boolean } = {}) => {
  const app = new Hono<AuthEnv>();
  const routes: RouteDoc[] = [];
  const on = (doc: RouteDoc, handler: Handler<AuthEnv>) => {
    const scope =
      doc.access === "public"
        ? undefined
        : options.channels !== true
          ? "node"
          : doc.path.includes("{id}")
            ? "channel"
            : "anywhere";
    routes.push(scope === undefined ? doc : { ...doc, scope });
    const path = doc.path.replace(/\{(\w+)\}/g, ":$1");
    if (doc.access === "public") app.on(doc.method.toUpperCase(), path, handler);
    else
      app.on(
        doc.method.toUpperCase(),
        path,
        scope === "channel"
          ? requireOnChannel(doc.access)
          : scope === "anywhere"
            ? requireAnywhere(doc.access)
            : requireRole(doc.access),
        handler,
      );
  };
  return { app, routes, on };
};

export const mounted = (prefix: string, api: Api): ReadonlyArray<RouteDoc> =>
  api.routes.map((route) => ({ ...route, path: `${prefix}${route.path === "/" ? "" : route.path}` }));

export type Run = <A>(
  c: Context<AuthEnv>,
  effect: Effect.Effect<A, ControlError>,
  respond: (value: A) => Response,
) => Promise<Response>;

/**
 * Runs one request's effect as the token that made it (`CurrentActor`, for the audit trail) and with what its
 * grants see (`CurrentSight`, for refusals that would name another channel); a ControlError
 * becomes its problem, a defect a logged 500.
 */
export const makeRun =
  (runtime: Runtime.Runtime<never>): Run =>
  (c, effect, respond) =>
    Runtime.runPromise(runtime)(
      effect.pipe(
        Effect.provideService(
          CurrentActor,
          c.get("principal") === undefined ? { name: "anonymous" } : actorOf(c.get("principal")),
        ),
        Effect.provideService(CurrentSight, sightOf(c.get("principal")?.grants ?? [])),
        Effect.provideService(CurrentNodeRole, unscopedRole(c.get("principal")?.grants ?? [])),
        Effect.map(respond),
        Effect.catchAll((error) => Effect.succeed(controlErrorResponse(error))),
        Effect.catchAllCause((cause) =>
          Effect.suspend(() => {
            const { problem, reference } = internalError();
            return Effect.as(
              Effect.logError(`request failed (reference ${reference})`, cause),
              problemResponse(problem),
            );
          }),
        ),
      ),
    );

/** The request body as JSON, checked against `schema`; every problem names its field. */
export const body = <A, I>(c: Context, schema: Schema.Schema<A, I>): Effect.Effect<A, ControlError> =>
  Effect.flatMap(json(c), decodeBody(schema));

/**
 * The request body as the original API read it (`decodeLenient`): unknown fields and "" in optional fields are
 * ignored, and `warnings` says which.
 */
export const lenientBody = <A, I>(
  c: Context,
  schema: Schema.Schema<A, I>,
): Effect.Effect<Lenient<A>, ControlError> => Effect.flatMap(json(c), decodeLenient(schema));

/** `answer` with the warnings of its request, when there are any. */
export const withWarnings = <A extends object>(answer: A, warnings: Lenient<unknown>["warnings"]) =>
  warnings.length === 0 ? answer : { ...answer, warnings };

/** The request body parsed as JSON, refused when empty, unparseable or nested too deeply. */
const json = (c: Context): Effect.Effect<unknown, ControlError> =>
  Effect.promise(() => c.req.text()).pipe(
    Effect.flatMap((text) => {
      if (text.trim() === "")
        return Effect.fail(invalid([{ field: "(body)", message: "is empty; send a JSON object" }]));
      return Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: (error) =>
          invalid([
            {
              field: "(body)",
              message: `is not valid JSON (${error instanceof Error ? error.message : "parse error"})`,
            },
          ]),
      });
    }),
    Effect.flatMap((json) => {
      const depth = nesting(json);
      return depth > MAX_NESTING
        ? Effect.fail(
            invalid([
              {
                field: "(body)",
                message: `is nested ${depth} levels deep; at most ${MAX_NESTING} levels are accepted`,
              },
            ]),
          )
        : Effect.succeed(json);
    }),
  );

/** No document of this API nests deeper than a handful of levels; far deeper ones only cost stack. */
const MAX_NESTING = 32;

/** How deeply `value` nests objects and arrays, counted without recursion (stops past the limit). */
const nesting = (value: unknown): number => {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (typeof current !== "object" || current === null) continue;
    if (depth + 1 > deepest) deepest = depth + 1;
    if (deepest > MAX_NESTING) return deepest;
    // Only objects and arrays go deeper: a list of 100,000 numbers is one look at each, nothing kept.
    for (const child of Object.values(current))
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
  }
  return deepest;
};

/** A path parameter; the route's path declares it, so it is always there. */
export const param = (c: Context, name: string): string => c.req.param(name) ?? "";

/** An id from the path as the services take it; one that cannot be an id names nothing (404). */
const pathId = <B>(schema: Schema.Schema<B, string>, what: string, c: Context, name: string) => {
  const text = param(c, name);
  return Schema.decodeEither(schema)(text).pipe(Either.mapLeft(() => notFound(what, text)));
};

/** Runs `use` with the channel id of the path. */
export const inChannel = <A>(c: Context, use: (id: ChannelId) => Effect.Effect<A, ControlError>) =>
  Effect.flatMap(pathId(ChannelId, "channel", c, "id"), use);

/** Runs `use` with the channel and output ids of the path. */
export const inOutput = <A>(
  c: Context,
  use: (id: ChannelId, oid: OutputId) => Effect.Effect<A, ControlError>,
) =>
  Effect.flatMap(pathId(ChannelId, "channel", c, "id"), (id) =>
    Effect.flatMap(
      pathId(OutputId, "output", c, "oid").pipe(
        Either.mapLeft(() => notFound("output", `${id}/${param(c, "oid")}`)),
      ),
      (oid) => use(id, oid),
    ),
  );

const METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] as const;

/**
 * The answer for a request no route took: 405 with `Allow` when the path is a route's under another method
 * (a GET route answers HEAD too), else 404; both problem+json.
 */
export const unmatched = (routes: ReadonlyArray<RouteDoc>) => {
  const patterns = routes.map((route) => ({
    method: route.method.toUpperCase(),
    pattern: new RegExp(`^${route.path.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{\w+\}/g, "[^/]+")}$`),
  }));
  return (c: Context) => {
    const path = c.req.path;
    const methods = new Set(
      patterns.filter((route) => route.pattern.test(path)).map((route) => route.method),
    );
    if (methods.has("GET")) methods.add("HEAD");
    if (methods.size === 0)
      return problemResponse({
        status: 404,
        title: "Not found",
        detail: `no route for ${c.req.method} ${path}`,
      });
    const allow = METHOD_ORDER.filter((method) => methods.has(method)).join(", ");
    return problemResponse(
      {
        status: 405,
        title: "Method not allowed",
        detail: `${path} does not take ${c.req.method}; it takes ${allow}`,
      },
      { allow },
    );
  };
};
