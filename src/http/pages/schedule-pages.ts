/**
 * The channel page's schedule buttons (go-live, extend, end, skip), each the API's command in the signed-in
 * token's name (audited); a command that does not fit the phase answers in words. And the schedule's calendar
 * for the page's link (the API's, for a signed-in viewer).
 */
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import { Hono } from "hono";
import { ChannelId } from "../../domain/base/ids.ts";
import type { ScheduleCommand } from "../../domain/schedule/schedule-steps.ts";
import type { AuthEnv } from "../auth.ts";
import { formFields, needs, type PageServices, pageOn } from "./handler.ts";

export const schedulePages = (services: PageServices) => {
  const { schedules } = services;
  const page = pageOn(services.runtime);
  const app = new Hono<AuthEnv>();
  const idOf = (id: string | undefined) => ChannelId.make(id ?? "");

  for (const kind of ["go-live", "extend", "end", "skip"] as const) {
    app.post(
      `/channels/:id/schedule/${kind}`,
      needs("operator"),
      page((c) =>
        Effect.gen(function* () {
          const fields = yield* formFields(c);
          const command: ScheduleCommand =
            kind === "extend" ? { kind, seconds: Number(fields.seconds ?? "300") } : { kind };
          const result = yield* Effect.either(schedules.command(idOf(c.req.param("id")), command));
          return Either.isRight(result)
            ? c.redirect(`/channels/${c.req.param("id")}`, 303)
            : c.text(result.left.message, result.left.reason === "not_found" ? 404 : 409);
        }),
      ),
    );
  }

  app.get(
    "/channels/:id/schedule.ics",
    page((c) =>
      Effect.map(Effect.either(schedules.ics(idOf(c.req.param("id")))), (result) =>
        Either.isRight(result)
          ? c.body(result.right, 200, { "content-type": "text/calendar; charset=utf-8" })
          : c.text(result.left.message, 404),
      ),
    ),
  );
  return app;
};
