/**
 * `GET /metrics`, the Prometheus exposition. Who may scrape is a setting (`DISTRIBUTARY_METRICS_AUTH`):
 * - `token` (default): any API token with the viewer role or more, or the separate scrape token
 *   `DISTRIBUTARY_METRICS_TOKEN`, which opens `/metrics` and nothing else;
 * - `loopback`: no token, but only from 127.0.0.0/8 or ::1 (a Prometheus on the same host).
 */
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import * as Redacted from "effect/Redacted";
import type { Context, MiddlewareHandler } from "hono";
import { metricsAuth, metricsToken } from "../effects/config/settings.ts";
import { type AuthEnv, clientAddress, presentedToken, requireRole, sameSecret } from "./auth.ts";
import { problemResponse } from "./problem.ts";

interface MetricsAccess {
  readonly mode: "token" | "loopback";
  readonly scrapeToken: Option.Option<Redacted.Redacted<string>>;
}

export const metricsAccessConfig = Effect.all({ mode: metricsAuth, scrapeToken: metricsToken });

const isLoopback = (address: string) =>
  address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");

/** Lets a scrape through as the setting says; otherwise hands over to the API's token check. */
export const metricsGuard =
  (access: MetricsAccess, requireToken: MiddlewareHandler<AuthEnv>): MiddlewareHandler<AuthEnv> =>
  async (c: Context<AuthEnv>, next) => {
    if (access.mode === "loopback") {
      if (isLoopback(clientAddress(c))) return next();
      return problemResponse({
        status: 403,
        title: "Forbidden",
        detail: "metrics are served to this host only (DISTRIBUTARY_METRICS_AUTH=loopback)",
      });
    }
    const token = presentedToken(c, false);
    if (
      token !== undefined &&
      Option.isSome(access.scrapeToken) &&
      sameSecret(token, Redacted.value(access.scrapeToken.value))
    ) {
      return next();
    }
    return requireToken(c, async () => {
      const refused = await requireRole("viewer")(c, next);
      if (refused instanceof Response) c.res = refused;
    });
  };
