/**
 * Who may do what, and on which channels. A caller holds grants: a role (viewer, operator, admin) over a
 * channel scope — every channel (`"*"`), or the channels with one of some tags or ids. A local token holds one
 * grant; a person signed in through the company's identity provider holds the grants of every access rule
 * whose claim matches their token (`groups` equals `tv-ops-eu` → operator on the `eu` channels). On a channel
 * the highest role of the grants that reach it counts; a node-wide route (settings, tokens, rules, nodes,
 * import/export) counts only the grants over every channel, so a desk's admin of the EU channels is no admin of
 * the node.
 */
import * as ParseResult from "effect/ParseResult";
import * as Schema from "effect/Schema";

export const Role = Schema.Literal("viewer", "operator", "admin").annotations({
  // override: a union of literals would otherwise report one "Expected …" per word.
  message: (issue) => ({
    message: `must be viewer, operator or admin; got ${JSON.stringify(issue.actual)}`,
    override: true,
  }),
});
export type Role = typeof Role.Type;

const rank: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
/** Whether holding `held` is enough where `needed` is asked. */
export const allows = (held: Role, needed: Role) => rank[held] >= rank[needed];
const higher = (a: Role | null, b: Role): Role => (a === null || rank[b] > rank[a] ? b : a);

const MAX_TAG_LENGTH = 40;
const MAX_SCOPE_ENTRIES = 100;

/** A channel's tag: short, lower case, what a desk or region is called (`eu`, `sports-uk`). */
export const Tag = Schema.String.pipe(
  Schema.filter((tag) =>
    /^[a-z0-9][a-z0-9_-]*$/.test(tag) && tag.length <= MAX_TAG_LENGTH
      ? undefined
      : `a tag is 1 to ${MAX_TAG_LENGTH} lower-case letters, digits, '-' or '_', starting with a letter or digit; got ${JSON.stringify(tag)}`,
  ),
);

/**
 * What a channel is called by desk or region (`eu`, `sports-uk`): access rules and tokens reach channels by
 * their tags (src/domain/control/access.ts). Absent or empty: none, and only grants over every channel or by id reach it.
 */
export const ChannelTags = Schema.Array(Tag)
  .pipe(
    Schema.maxItems(20),
    Schema.filter((tags) => new Set(tags).size === tags.length || "must not name a tag twice"),
  )
  .annotations({
    description: 'the channel\'s tags (e.g. ["eu"]): scoped tokens and access rules reach channels by them',
  });

/** The channels a grant reaches: all of them, or those with one of `tags` or one of `ids`. */
/** A scope that names channels: by tags, by ids, or both. */
const NamedChannels = Schema.Struct({
  tags: Schema.optional(Schema.Array(Tag).pipe(Schema.maxItems(MAX_SCOPE_ENTRIES))),
  ids: Schema.optional(Schema.Array(Schema.String).pipe(Schema.maxItems(MAX_SCOPE_ENTRIES))),
})
  .annotations({ parseOptions: { onExcessProperty: "error" } })
  .pipe(
    // A scope of nothing reaches no channel: surely a mistake, so it is said rather than stored.
    Schema.filter((scope) =>
      (scope.tags?.length ?? 0) + (scope.ids?.length ?? 0) > 0
        ? undefined
        : 'must name at least one tag or id (or be "*" for every channel)',
    ),
  );

/**
 * What is wrong with a scope, in one line: a union reports each member's refusal ("Expected "*"" beside the
 * object's own problem), which tells a caller less than what the object lacks.
 */
const scopeProblem = (actual: unknown): string => {
  if (typeof actual !== "object" || actual === null || Array.isArray(actual))
    return `must be "*" (every channel) or {"tags": [...], "ids": [...]}; got ${JSON.stringify(actual)}`;
  const decoded = Schema.decodeUnknownEither(NamedChannels, { errors: "all" })(actual);
  if (decoded._tag === "Right") return "is not a channel scope";
  const issues = ParseResult.ArrayFormatter.formatErrorSync(decoded.left);
  // An optional field's "Expected undefined" half says nothing its other half does not.
  const telling = issues.filter((issue) => !issue.message.startsWith("Expected undefined, actual "));
  return (telling.length > 0 ? telling : issues)
    .map((issue) => {
      const where = issue.path
        .map((key) => (typeof key === "number" ? `[${key}]` : `.${String(key)}`))
        .join("");
      const what = issue._tag === "Unexpected" ? "is not a known field (tags, ids)" : issue.message;
      return where === "" ? what : `${where.replace(/^\./, "")}: ${what}`;
    })
    .join("; ");
};

export const ChannelScope = Schema.Union(Schema.Literal("*"), NamedChannels).annotations({
  identifier: "ChannelScope",
  description:
    '"*" for every channel, or {"tags": [...], "ids": [...]}: the channels with one of the tags or ids',
  message: (issue) => ({ message: scopeProblem(issue.actual), override: true }),
});
export type ChannelScope = typeof ChannelScope.Type;

export interface Grant {
  readonly role: Role;
  readonly channels: ChannelScope;
}

/** What a grant needs to know of a channel. */
export interface ScopedChannel {
  readonly id: string;
  readonly tags?: ReadonlyArray<string> | undefined;
}

export const inScope = (scope: ChannelScope, channel: ScopedChannel): boolean =>
  scope === "*" ||
  (scope.ids?.includes(channel.id) ?? false) ||
  (scope.tags?.some((tag) => channel.tags?.includes(tag) ?? false) ?? false);

/** The highest role the grants give on `channel`; null when none reaches it (the channel is not theirs to see). */
export const roleOn = (grants: ReadonlyArray<Grant>, channel: ScopedChannel): Role | null =>
  grants.reduce<Role | null>(
    (best, grant) => (inScope(grant.channels, channel) ? higher(best, grant.role) : best),
    null,
  );

/** The highest role the grants give over every channel: what a node-wide route checks. */
export const unscopedRole = (grants: ReadonlyArray<Grant>): Role | null =>
  grants.reduce<Role | null>(
    (best, grant) => (grant.channels === "*" ? higher(best, grant.role) : best),
    null,
  );

/** The highest role held anywhere. */
export const highestRole = (grants: ReadonlyArray<Grant>): Role | null =>
  grants.reduce<Role | null>((best, grant) => higher(best, grant.role), null);

/**
 * Which channels a caller may have named in an answer: those its grants reach, every one for a grant over all
 * of them. A check that finds another channel holding what was asked (an id, a port, an input an output would
 * feed) names that channel only when the caller sees it, so a desk's admin learns nothing of another desk's.
 */
export type Sight = (channel: ScopedChannel) => boolean;
export const seesEveryChannel: Sight = () => true;
export const sightOf = (grants: ReadonlyArray<Grant>): Sight =>
  unscopedRole(grants) !== null ? seesEveryChannel : (channel) => roleOn(grants, channel) !== null;

/** What an answer calls a channel the caller cannot see. */
export const UNSEEN_CHANNEL = "a channel you cannot see";

/** A channel as an answer names it: `channel 'News' (news-1)`, or only "a channel you cannot see". */
export const channelFor = (sight: Sight, channel: ScopedChannel & { readonly name: string }): string =>
  sight(channel) ? `channel '${channel.name}' (${channel.id})` : UNSEEN_CHANNEL;

/**
 * The tags of `tags` that the grants do not give `role` over: a tag puts a channel into the list of everyone
 * who holds that tag, so adding or removing one needs the role over every channel or over the tag itself.
 */
export const tagsBeyond = (
  grants: ReadonlyArray<Grant>,
  tags: ReadonlyArray<string>,
  role: Role,
): ReadonlyArray<string> => {
  if (grants.some((grant) => grant.channels === "*" && allows(grant.role, role))) return [];
  return tags.filter(
    (tag) =>
      !grants.some(
        (grant) =>
          grant.channels !== "*" && allows(grant.role, role) && (grant.channels.tags?.includes(tag) ?? false),
      ),
  );
};

/** One access rule: a person whose claim `claim` equals (or, for a list, contains) `equals` gets the grant. */
export const AccessRule = Schema.Struct({
  claim: Schema.String.pipe(
    Schema.filter((claim) =>
      claim.trim() === "" || claim.length > 200 ? "must be a claim's name" : undefined,
    ),
  ),
  equals: Schema.String,
  role: Role,
  channels: ChannelScope,
}).annotations({ identifier: "AccessRule", parseOptions: { onExcessProperty: "error" } });
export type AccessRule = typeof AccessRule.Type;

export const AccessRules = Schema.Array(AccessRule).pipe(Schema.maxItems(500));

/**
 * A claim's value: the claim named so (names may contain dots, as URL-named claims do), else the dotted path
 * through nested objects (`realm_access.roles`).
 */
const claimValue = (claims: Readonly<Record<string, unknown>>, name: string): unknown => {
  if (name in claims) return claims[name];
  let value: unknown = claims;
  for (const step of name.split(".")) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[step];
  }
  return value;
};

const matches = (value: unknown, wanted: string): boolean =>
  Array.isArray(value)
    ? value.some((item) => matches(item, wanted))
    : (typeof value === "string" || typeof value === "number" || typeof value === "boolean") &&
      String(value) === wanted;

/** The grants of every rule the claims match; none when no rule matches (the person may not sign in). */
export const grantsFromClaims = (
  rules: ReadonlyArray<AccessRule>,
  claims: Readonly<Record<string, unknown>>,
): ReadonlyArray<Grant> =>
  rules
    .filter((rule) => matches(claimValue(claims, rule.claim), rule.equals))
    .map(({ role, channels }) => ({ role, channels }));
