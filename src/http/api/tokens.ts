/** `/api/tokens`: token management, admin only. A token's secret is in the answer to its creation, never again. */
import * as Effect from "effect/Effect";
import * as Schema from "effect/Schema";
import { type Auth, TokenBody, TokenView } from "../../effects/control/auth.ts";
import { type Api, body, makeApi, param, type Run } from "../routes.ts";
import { Deleted } from "./channels.ts";

const CreatedToken = Schema.Struct({
  ...TokenView.fields,
  token: Schema.String.annotations({ description: "the secret: shown only in this answer" }),
}).annotations({ identifier: "CreatedToken" });

export const tokensApi = (auth: Auth, run: Run): Api => {
  const { app, routes, on } = makeApi();

  on(
    {
      method: "get",
      path: "/",
      access: "admin",
      summary: "List tokens (never their secrets)",
      response: Schema.Struct({ tokens: Schema.Array(TokenView) }),
    },
    (c) => run(c, auth.list, (tokens) => c.json({ tokens })),
  );

  on(
    {
      method: "post",
      path: "/",
      access: "admin",
      summary: "Create a token; its secret is returned once",
      body: TokenBody,
      response: CreatedToken,
      status: 201,
    },
    (c) => run(c, Effect.flatMap(body(c, TokenBody), auth.create), (token) => c.json(token, 201)),
  );

  on(
    { method: "delete", path: "/{id}", access: "admin", summary: "Revoke a token", response: Deleted },
    (c) => run(c, auth.revoke(param(c, "id")), () => c.json({ id: param(c, "id"), deleted: true })),
  );

  return { app, routes };
};
