/**
 * Notifiers: where the service tells on-call and automation what happened (a signed webhook, PagerDuty's
 * Events v2, a Slack or Teams channel), which events each wants and for which channels. What is stored, what the
 * API takes and shows, and which bus event is which notification are here, pure; delivering them is
 * src/effects/notify/. Secrets (a webhook's signing secret, a PagerDuty routing key, a Slack or Teams URL,
 * which lets anyone post) are write-only: stored, never shown again.
 */
import * as Schema from "effect/Schema";
import type { FieldIssue } from "../base/errors.ts";
import { oneOf } from "../base/literals.ts";
import { Name } from "../channel/channel.ts";
import { ipv6HostProblem } from "../url/shared.ts";
import type { ChannelEvent } from "./events.ts";

export const NOTIFIER_KINDS = ["webhook", "pagerduty", "slack", "teams"] as const;
export type NotifierKind = (typeof NOTIFIER_KINDS)[number];

/** The events a notifier may ask for, as deliveries name them (`type`). */
export const NOTIFY_EVENTS = [
  "input_lost",
  "input_restored",
  "failover",
  "slate_on",
  "slate_off",
  "schedule_phase",
  "schedule_missed",
  "node_down",
  "node_up",
  "output_failed",
  "output_recovered",
  "medialive_state",
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];
/** What a test delivery (`POST /api/notifiers/{id}/test`) is called. */
export const TEST_EVENT = "test";

/**
 * The notifiers a service keeps at most: each has its own queue and fiber, and at most one attempt in flight,
 * so this also bounds the attempts under way at once (docs/limits.md).
 */
export const MAX_NOTIFIERS = 200;

/** Where PagerDuty's Events v2 take events unless a notifier says otherwise. */
export const PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue";
/** What masked secrets read as: a webhook secret keeps its prefix. */
export const MASK = "****";
export const MASKED_SECRET = "whsec_****";

const idPattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const listOf = (words: ReadonlyArray<string>) => words.join(", ");

const NotifyEventField = oneOf(...NOTIFY_EVENTS);
const KindField = oneOf(...NOTIFIER_KINDS);
const ChannelsField = Schema.Union(
  Schema.Literal("*"),
  Schema.Array(
    Schema.String.pipe(
      Schema.pattern(idPattern, { message: () => "must be a channel id (1–64 letters, digits, '-' or '_')" }),
    ),
  ),
).annotations({ message: () => 'must be "*" (every channel) or a list of channel ids' });

/** A notifier as the store keeps it, its secrets in clear (the store is 0600, or the fleet's database). */
export const NotifierRecord = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  kind: KindField,
  /** The address posted to (null: PagerDuty's own). */
  url: Schema.NullOr(Schema.String),
  /** webhook: `whsec_` and the key, base64. */
  secret: Schema.NullOr(Schema.String),
  /** pagerduty: the integration's routing key. */
  routing_key: Schema.NullOr(Schema.String),
  events: Schema.Array(NotifyEventField),
  channels: ChannelsField,
  enabled: Schema.Boolean,
  /** Why the service turned it off itself (a 410 Gone), or null. */
  disabled_reason: Schema.NullOr(Schema.String),
  created_at: Schema.String,
});
export type NotifierRecord = typeof NotifierRecord.Type;

export const NotifiersDocument = Schema.Struct({
  version: Schema.Literal(1),
  notifiers: Schema.Array(NotifierRecord),
});
export type NotifiersDocument = typeof NotifiersDocument.Type;

const secretText = Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty" }));

/** What POST takes; PATCH takes the same fields, each optional, and the kind never changes. */
const bodyFields = {
  name: Name,
  kind: KindField,
  url: Schema.optional(Schema.String),
  secret: Schema.optional(secretText),
  routing_key: Schema.optional(secretText),
  events: Schema.Array(NotifyEventField).pipe(
    Schema.minItems(1, { message: () => `must name at least one of ${listOf(NOTIFY_EVENTS)}` }),
  ),
  channels: Schema.optional(ChannelsField),
  enabled: Schema.optional(Schema.Boolean),
};
export const NotifierBody = Schema.Struct(bodyFields).annotations({
  identifier: "NotifierBody",
  parseOptions: { onExcessProperty: "error" },
});
export type NotifierBody = typeof NotifierBody.Type;

export const NotifierPatch = Schema.Struct({
  name: Schema.optional(Name),
  url: Schema.optional(Schema.String),
  secret: Schema.optional(secretText),
  routing_key: Schema.optional(secretText),
  events: Schema.optional(bodyFields.events),
  channels: Schema.optional(ChannelsField),
  enabled: Schema.optional(Schema.Boolean),
}).annotations({ identifier: "NotifierPatch", parseOptions: { onExcessProperty: "error" } });
export type NotifierPatch = typeof NotifierPatch.Type;

const WEBHOOK_SECRET = /^whsec_[A-Za-z0-9+/]{16,}={0,2}$/;

/** Why `url` cannot be posted to, in words, or null. */
const urlProblem = (url: string): string | null => {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // An IPv6 host is written in brackets: https://[2001:db8::1]/hook.
    const ipv6 = ipv6HostProblem(url);
    return ipv6 !== null
      ? ipv6.message
      : "is not a URL; give the full address, e.g. https://ops.example/hook";
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:")
    return "must be an http:// or https:// URL";
  if (parsed.username !== "" || parsed.password !== "")
    return "must not carry a user name or password; a webhook signs its deliveries with its secret instead";
  return null;
};

/** What is wrong with a notifier as it would be stored, field by field (a POST's, or a PATCH's result). */
export const notifierProblems = (record: NotifierRecord): ReadonlyArray<FieldIssue> => {
  const issues: FieldIssue[] = [];
  const needsUrl = record.kind !== "pagerduty";
  if (record.url === null) {
    if (needsUrl)
      issues.push({
        field: "url",
        message:
          record.kind === "webhook"
            ? "is required: the address deliveries are posted to"
            : `is required: the ${record.kind === "slack" ? "Slack incoming webhook" : "Teams Workflows webhook"} URL`,
      });
  } else {
    const problem = urlProblem(record.url);
    if (problem !== null) issues.push({ field: "url", message: problem });
  }
  if (record.kind === "webhook" && record.secret !== null && !WEBHOOK_SECRET.test(record.secret))
    issues.push({
      field: "secret",
      message: "must be whsec_ followed by at least 16 characters of base64 (or leave it out: one is made)",
    });
  if (record.kind !== "webhook" && record.secret !== null)
    issues.push({ field: "secret", message: "is for webhook notifiers only" });
  if (record.kind === "pagerduty" && record.routing_key === null)
    issues.push({ field: "routing_key", message: "is required: the Events v2 integration's routing key" });
  if (record.kind !== "pagerduty" && record.routing_key !== null)
    issues.push({ field: "routing_key", message: "is for pagerduty notifiers only" });
  return issues;
};

/** What the API and the pages show of a notifier: every secret masked. */
export const NotifierView = Schema.Struct(NotifierRecord.fields).annotations({ identifier: "Notifier" });
export type NotifierView = typeof NotifierView.Type;

/** A URL shown without what lets anyone post to it (Slack's and Teams' are secrets whole). */
const shownUrl = (record: NotifierRecord): string | null => {
  if (record.url === null) return null;
  if (record.kind === "slack" || record.kind === "teams") {
    try {
      return `${new URL(record.url).origin}/${MASK}`;
    } catch {
      return MASK;
    }
  }
  return record.url;
};

export const notifierView = (record: NotifierRecord): NotifierView => ({
  ...record,
  url: shownUrl(record),
  secret: record.secret === null ? null : MASKED_SECRET,
  routing_key: record.routing_key === null ? null : MASK,
});

/** Every secret a notifier holds, for the masker. */
export const notifierSecrets = (record: NotifierRecord): ReadonlyArray<string> => [
  ...(record.secret === null ? [] : [record.secret, record.secret.slice("whsec_".length)]),
  ...(record.routing_key === null ? [] : [record.routing_key]),
  ...((record.kind === "slack" || record.kind === "teams") && record.url !== null
    ? [record.url, ...pathOf(record.url)]
    : []),
];

const pathOf = (url: string): ReadonlyArray<string> => {
  try {
    const { pathname, search } = new URL(url);
    return [`${pathname}${search}`];
  } catch {
    return [];
  }
};

/** Whether `record` wants `event` of `channel` (an event of no channel, a node's, goes to every notifier). */
export const wants = (record: NotifierRecord, event: string, channel: string | null): boolean =>
  record.enabled &&
  (record.events as ReadonlyArray<string>).includes(event) &&
  (record.channels === "*" || channel === null || record.channels.includes(channel));

/**
 * The notification a bus event is, or null: `input_switched` is a failover, an output's `error` state one
 * that failed, and its `connected` after an error one that recovered (`lastOutputState` is the output's
 * previous state as the caller saw it).
 */
export const notifyEventOf = (
  event: ChannelEvent,
  lastOutputState: string | undefined,
): NotifyEvent | null => {
  switch (event.type) {
    case "input_lost":
    case "input_restored":
    case "slate_on":
    case "slate_off":
    case "schedule_phase":
    case "schedule_missed":
    case "node_down":
    case "node_up":
    case "medialive_state":
      return event.type;
    case "input_switched":
      return "failover";
    case "output_state":
      if (event.state === "error") return "output_failed";
      if (event.state === "connected" && lastOutputState === "error") return "output_recovered";
      return null;
    default:
      return null;
  }
};
