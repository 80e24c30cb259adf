/**
 * The channel page's MediaLive buttons: start, stop, and "keep running" against the cost guard's pending stop,
 * each the API's command in the signed-in token's name (audited, with its outcome as an event). A refusal —
 * a state that does not allow it, AWS's — answers in words.
 */
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import { Hono } from "hono";
import { ChannelId } from "../../domain/base/ids.ts";
import type { AuthEnv } from "../auth.ts";
import { needs, type PageServices, pageOn } from "./handler.ts";

export const medialivePages = (services: PageServices) => {
  const { medialive } = services;
  const page = pageOn(services.runtime);
  const app = new Hono<AuthEnv>();

  for (const action of ["start", "stop", "keep"] as const) {
    app.post(
      `/channels/:id/medialive/${action}`,
      needs("operator"),
      page((c) =>
        Effect.map(Effect.either(medialive[action](ChannelId.make(c.req.param("id") ?? ""))), (result) =>
          Either.isRight(result)
            ? c.redirect(`/channels/${c.req.param("id")}`, 303)
            : c.text(
                result.left.message,
                result.left.reason === "not_found" ? 404 : result.left.reason === "upstream" ? 502 : 409,
              ),
        ),
      ),
    );
  }
  return app;
};
