/** `/api/openapi.json`, generated from the route declarations and the same Schemas that check the bodies. */
import * as JSONSchema from "effect/JSONSchema";
import * as Schema from "effect/Schema";
import { FieldIssue } from "../domain/base/errors.ts";
import { MAX_SLATE_IMAGE_BYTES } from "../domain/channel/slate.ts";
import { version } from "../version.ts";
import type { RouteDoc } from "./routes.ts";

const ProblemSchema = Schema.Struct({
  type: Schema.String,
  title: Schema.String,
  status: Schema.Number,
  detail: Schema.String,
  errors: Schema.optional(Schema.Array(FieldIssue)),
}).annotations({ identifier: "Problem", description: "application/problem+json (RFC 9457)" });

/**
 * Routes whose body is not JSON, by "method path": the media types they take (app.ts bounds their bodies by
 * path too). What they take is read by the handler itself, so no Schema describes it.
 */
const rawBodies: Record<string, { readonly types: ReadonlyArray<string>; readonly limit: string }> = {
  "put /api/channels/{id}/slate/image": {
    types: ["image/png", "image/jpeg"],
    limit: `${MAX_SLATE_IMAGE_BYTES / (1024 * 1024)} MiB`,
  },
};
const rawBodyOf = (route: RouteDoc) => rawBodies[`${route.method} ${route.path}`];

const problems = (route: RouteDoc): Record<string, string> => ({
  ...(rawBodyOf(route) === undefined
    ? {}
    : {
        "400": "the body is not what the route takes: the problem says what to send instead",
        "413": `body over ${rawBodyOf(route)?.limit}`,
      }),
  ...(route.body === undefined
    ? {}
    : {
        "400": "invalid body: each problem names its field",
        "413": `body over ${route.path === "/api/config" ? "64 MiB" : "the most one channel with 64 outputs can take (about 180 KiB)"}`,
      }),
  ...(route.access === "public"
    ? {}
    : {
        "401": "no or wrong token",
        "403": `needs the ${route.access} role`,
        "429": "too many wrong tokens",
      }),
  ...(route.path.includes("{") ? { "404": "unknown id" } : {}),
  ...(route.method === "get" ? {} : { "409": "conflicts with the current configuration" }),
});

export const openApiDocument = (routes: ReadonlyArray<RouteDoc>) => {
  const definitions: Record<string, JSONSchema.JsonSchema7> = {};
  const schemaOf = (schema: Schema.Schema.AnyNoContext) =>
    JSONSchema.fromAST(schema.ast, {
      definitions,
      definitionPath: "#/components/schemas/",
      target: "openApi3.1",
    });
  const problem = schemaOf(ProblemSchema);
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const raw = rawBodyOf(route);
    const operation = {
      summary: route.summary,
      "x-required-role": route.access,
      ...(route.scope === undefined ? {} : { "x-role-scope": route.scope }),
      ...(route.access === "public" ? { security: [] } : {}),
      ...(raw === undefined
        ? {}
        : {
            requestBody: {
              required: true,
              content: Object.fromEntries(
                raw.types.map((type) => [type, { schema: { type: "string", format: "binary" } }]),
              ),
            },
          }),
      ...(route.body === undefined
        ? {}
        : {
            requestBody: {
              required: true,
              content: { "application/json": { schema: schemaOf(route.body) } },
            },
          }),
      responses: {
        [String(route.status ?? 200)]: {
          description: "success",
          ...(route.response === undefined
            ? {}
            : { content: { "application/json": { schema: schemaOf(route.response) } } }),
        },
        ...Object.fromEntries(
          Object.entries(problems(route)).map(([status, description]) => [
            status,
            { description, content: { "application/problem+json": { schema: problem } } },
          ]),
        ),
      },
    };
    paths[route.path] = { ...paths[route.path], [route.method]: operation };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "distributary",
      version,
      description:
        "Live MPEG-TS distribution. Compatible with the original MediaLive Distributor API; every route but " +
        "health, readiness and this document needs a token (Authorization: Bearer, or X-API-Key). " +
        "x-required-role names the least role a route needs: viewer < operator < admin; x-role-scope where it " +
        "counts: channel (on the channel of the path), anywhere (on some channel: a list shows only the caller's " +
        "channels) or node (over every channel).",
    },
    components: {
      schemas: definitions,
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description:
            "a local token (dst_…), or with sign-on configured an access token (JWT) of the identity provider for DISTRIBUTARY_OIDC_AUDIENCE — never an ID token",
        },
        apiKey: {
          type: "apiKey",
          in: "header",
          name: "X-API-Key",
          description: "a local token (dst_…) only: a JWT here is refused; send it as a bearer token",
        },
      },
    },
    security: [{ bearer: [] }, { apiKey: [] }],
    paths,
  };
};
