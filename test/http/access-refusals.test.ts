/**
 * How refusals on scope reach the audit trail: one row per caller a minute at most, the next saying how many
 * refusals it stands for, each caller counted on its own, the row in the caller's name and how it proved it.
 */
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { tokenPrincipal } from "../../src/effects/control/auth.ts";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { makeChannelAccess } from "../../src/http/access.ts";
import { eventually } from "../support/app.ts";

describe("refusals in the audit trail", () => {
  it("are one row a minute per caller, the next counting those left out", async () => {
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const bus = yield* EventBus;
          const runtime = yield* Effect.runtime<never>();
          let now = 0;
          const access = makeChannelAccess(
            () => [],
            bus,
            runtime,
            () => now,
          );
          const desk = tokenPrincipal({
            id: "t1",
            name: "eu desk",
            role: "operator",
            channels: { tags: ["eu"] },
          });
          const other = tokenPrincipal({
            id: "t2",
            name: "us desk",
            role: "viewer",
            channels: { tags: ["us"] },
          });
          const rows = () =>
            bus
              .recent({ types: ["api_change"] })
              .flatMap((event) =>
                event.type === "api_change" && event.action === "access.refused"
                  ? [{ actor: event.actor, via: event.actor_via, detail: event.detail }]
                  : [],
              );
          access.refused(desk, "GET /api/channels/us-1", "no");
          for (const at of [10_000, 20_000, 59_999]) {
            now = at;
            access.refused(desk, "GET /api/channels/us-2", "no");
          }
          access.refused(other, "GET /api/channels/eu-1", "no");
          now = 60_000;
          access.refused(desk, "POST /api/channels/us-3/stop", "still no");
          yield* Effect.promise(() =>
            eventually("the three rows", () => (rows().length === 3 ? true : undefined)),
          );
          expect(rows()).toEqual([
            { actor: "eu desk", via: "token", detail: "refused GET /api/channels/us-1: no" },
            { actor: "us desk", via: "token", detail: "refused GET /api/channels/eu-1: no" },
            {
              actor: "eu desk",
              via: "token",
              detail: "refused POST /api/channels/us-3/stop: still no (and 3 refusals since the last row)",
            },
          ]);
        }).pipe(Effect.provide(EventBus.Default)),
      ),
    );
  });
});
