/**
 * The Settings page as every admin form answers it: the tokens, the access rules, the notifiers with their last
 * deliveries, and whatever the form adds (a message, a secret shown once, an import's preview). Shared by the forms of
 * admin-pages.ts and notifier-pages.ts.
 */
import * as Effect from "effect/Effect";
import type { Context } from "hono";
import type { AccessRuleRow } from "../../../views/access-rules.ts";
import type { NotificationsSection } from "../../../views/notifiers.ts";
import { settingsPage } from "../../../views/settings.ts";
import type { AccessRule } from "../../domain/control/access.ts";
import { NOTIFIER_KINDS, NOTIFY_EVENTS } from "../../domain/events/notifiers.ts";
import { describeScope } from "../../effects/control/auth.ts";
import { deliveryView } from "../api/notifiers.ts";
import type { AuthEnv } from "../auth.ts";
import { type PageServices, render } from "./handler.ts";

export type SettingsView = Parameters<typeof settingsPage>[0];

/** The notifiers and their deliveries, as the page shows them. */
export const notificationsOf = (
  services: PageServices,
  createdSecret?: NotificationsSection["createdSecret"],
) =>
  Effect.gen(function* () {
    const notifiers = yield* services.notifiers.list;
    const rows = yield* Effect.forEach(notifiers, (notifier) =>
      Effect.map(services.notifications.recent(notifier.id), (deliveries) => ({
        notifier,
        deliveries: deliveries.map(deliveryView),
      })),
    );
    return {
      notifiers: rows,
      events: NOTIFY_EVENTS,
      kinds: NOTIFIER_KINDS,
      ...(createdSecret === undefined ? {} : { createdSecret }),
    } satisfies NotificationsSection;
  });

/** A rule as its row and forms show it. */
export const accessRuleRow = (rule: AccessRule): AccessRuleRow => ({
  claim: rule.claim,
  equals: rule.equals,
  role: rule.role,
  scope: describeScope(rule.channels),
  tags: rule.channels === "*" ? [] : (rule.channels.tags ?? []),
  ids: rule.channels === "*" ? [] : (rule.channels.ids ?? []),
  shown: JSON.stringify(rule),
});

export const settingsResponse =
  (services: PageServices) =>
  (
    c: Context<AuthEnv>,
    extra: Partial<SettingsView> = {},
    status = 200,
    createdSecret?: NotificationsSection["createdSecret"],
  ) =>
    Effect.gen(function* () {
      const tokens = (yield* services.auth.list).map((token) => ({
        ...token,
        scope: describeScope(token.channels),
      }));
      const notifications = yield* notificationsOf(services, createdSecret);
      const accessRules = {
        rules: services.accessRules.current().map(accessRuleRow),
        signOn: services.signOn.active !== null,
      };
      return render(
        c,
        "Settings",
        settingsPage({
          tokens,
          thumbnails: services.thumbnails.enabled(),
          notifications,
          accessRules,
          configFile: services.configCode.drift(),
          ...extra,
        }),
        undefined,
        status,
      );
    });
