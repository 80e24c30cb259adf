/**
 * The Nodes page of a fleet (its menu link shows only in a fleet) and its one action, an admin's drain of a
 * node, carried out and audited as `POST /api/nodes/{id}/drain` is. On one box the page says there is no fleet.
 */
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import { Hono } from "hono";
import { nodesPage } from "../../../views/fleet.ts";
import { withStates } from "../../effects/fleet/node-states.ts";
import { drained, drainNode } from "../api/nodes.ts";
import type { AuthEnv } from "../auth.ts";
import { needs, type PageServices, pageOn, render, viewerOf } from "./handler.ts";

export const fleetPages = (services: PageServices) => {
  const { fleet, bus } = services;
  const page = pageOn(services.runtime);
  const app = new Hono<AuthEnv>();
  const noFleet = "This service runs alone (no DISTRIBUTARY_DATABASE_URL): it has no fleet of nodes.";

  app.get("/nodes", (c) =>
    fleet.enabled
      ? render(c, "Nodes", nodesPage(withStates(fleet.nodes()), viewerOf(c)), "/ui/ws?page=nodes")
      : c.text(noFleet, 404),
  );

  app.post(
    "/nodes/:id/drain",
    needs("admin"),
    page((c) =>
      Effect.gen(function* () {
        if (!fleet.enabled) return c.text(noFleet, 404);
        const outcome = yield* Effect.either(drainNode(fleet, bus, c.req.param("id") ?? ""));
        const message = Either.isRight(outcome)
          ? `Done: ${drained(outcome.right.node, outcome.right.released)}.`
          : `Not drained: ${outcome.left.message}.`;
        return render(
          c,
          "Nodes",
          nodesPage(withStates(fleet.nodes()), viewerOf(c), message),
          "/ui/ws?page=nodes",
          Either.isRight(outcome) ? 200 : outcome.left.reason === "not_found" ? 404 : 409,
        );
      }),
    ),
  );

  return app;
};
