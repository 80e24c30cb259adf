/**
 * `/api/access/rules`: the access rules that turn a signed-in person's claims into grants, read and replaced
 * whole by an admin over every channel. The body is `{"rules": [...]}`, or the bare list `[...]` (taken as
 * `{"rules": [...]}`); either way a problem names its entry and field (`rules[1].channels`).
 */
import * as Effect from "effect/Effect";
import * as Schema from "effect/Schema";
import { AccessRule, AccessRules as AccessRulesSchema } from "../../domain/control/access.ts";
import type { AccessRules } from "../../effects/control/access-rules.ts";
import { type Api, body, makeApi, type Run } from "../routes.ts";

const RulesObject = Schema.Struct({ rules: AccessRulesSchema }).annotations({
  identifier: "AccessRulesBody",
  parseOptions: { onExcessProperty: "error" },
  description:
    'the whole list, e.g. {"rules": [{"claim": "groups", "equals": "tv-ops-eu", "role": "operator", ' +
    '"channels": {"tags": ["eu"]}}]}, or the bare list; [] removes every rule',
});
/** A bare list is the rules themselves: decoded as `{"rules": [...]}`, so a problem still says `rules[1].role`. */
const RulesBody = Schema.compose(
  Schema.transform(Schema.Unknown, Schema.Unknown, {
    strict: true,
    decode: (value) => (Array.isArray(value) ? { rules: value } : value),
    encode: (value) => value,
  }),
  RulesObject,
);
const RulesAnswer = Schema.Struct({ rules: Schema.Array(AccessRule) }).annotations({
  identifier: "AccessRulesList",
});

export const accessApi = (rules: AccessRules, run: Run): Api => {
  const { app, routes, on } = makeApi();
  on(
    {
      method: "get",
      path: "/rules",
      access: "admin",
      summary: "The access rules: a person whose claim matches gets the rule's role on its channels",
      response: RulesAnswer,
    },
    (c) => c.json({ rules: rules.current() }),
  );
  on(
    {
      method: "put",
      path: "/rules",
      access: "admin",
      summary: "Replace the access rules whole; every node grants by them at once",
      body: RulesBody,
      response: RulesAnswer,
    },
    (c) =>
      run(
        c,
        Effect.flatMap(body(c, RulesBody), (value) => rules.replace(value.rules)),
        (current) => c.json({ rules: current }),
      ),
  );
  return { app, routes };
};
