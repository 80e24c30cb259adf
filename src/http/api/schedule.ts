/**
 * `/api/channels/{id}/schedule`: a channel's schedule as it runs — its windows, the phase now, the next
 * occurrences with their phase times — its calendar (`schedule.ics`, for a shared calendar), and the
 * operator's commands on the occurrence in progress: go-live, extend (`{"seconds": N}`), end and skip. Each
 * command is audited in the token's name; one that does not fit the occurrence's phase is a 409 in words.
 */
import * as Effect from "effect/Effect";
import { ExtendBody, ScheduleView } from "../../domain/schedule/schedule-view.ts";
import type { ScheduleRunner } from "../../effects/schedule/runner.ts";
import { type Api, body, inChannel, makeApi, type Run } from "../routes.ts";

export const scheduleApi = (runner: ScheduleRunner, run: Run): Api => {
  const { app, routes, on } = makeApi({ channels: true });

  on(
    {
      method: "get",
      path: "/{id}/schedule",
      access: "viewer",
      summary:
        "The channel's schedule: its windows, the phase now, and the next 5 occurrences with their phase times (ISO), what was done and whether one waits for an operator",
      response: ScheduleView,
    },
    (c) => run(c, inChannel(c, runner.view), (view) => c.json(view)),
  );

  on(
    {
      method: "get",
      path: "/{id}/schedule.ics",
      access: "viewer",
      summary:
        "The channel's schedule as an iCalendar file (text/calendar): one event per window, with its rule",
    },
    (c) =>
      run(c, inChannel(c, runner.ics), (text) =>
        c.body(text, 200, {
          "content-type": "text/calendar; charset=utf-8",
          "content-disposition": 'inline; filename="schedule.ics"',
        }),
      ),
  );

  const commands = [
    ["go-live", "Start the programme now (in warming or preroll; manual staging waits for this at T0)"],
    ["end", "End the programme now: the postroll from now, then the ending (in preroll or live)"],
    ["skip", "Skip the occurrence in progress (or the next): what it did is undone at once"],
  ] as const;
  for (const [kind, summary] of commands)
    on(
      { method: "post", path: `/{id}/schedule/${kind}`, access: "operator", summary, response: ScheduleView },
      (c) =>
        run(
          c,
          inChannel(c, (id) => runner.command(id, { kind })),
          (view) => c.json(view),
        ),
    );

  on(
    {
      method: "post",
      path: "/{id}/schedule/extend",
      access: "operator",
      summary:
        'Extend the occurrence in progress ({"seconds": N}): its postroll and ending move later, never into the next occurrence',
      body: ExtendBody,
      response: ScheduleView,
    },
    (c) =>
      run(
        c,
        Effect.flatMap(body(c, ExtendBody), ({ seconds }) =>
          inChannel(c, (id) => runner.command(id, { kind: "extend", seconds })),
        ),
        (view) => c.json(view),
      ),
  );

  return { app, routes };
};
