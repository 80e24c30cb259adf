/**
 * What a notification says, whoever receives it: the delivery's own JSON (`type`, `timestamp`, `node`,
 * `channel`, `output` and the event's fields under `data`) as a webhook posts it, and the same as PagerDuty
 * Events v2, a Slack message and a Teams Adaptive Card. PagerDuty and Slack bodies carry every field
 * Alertmanager 0.25 sends for an alert (test/notify/alertmanager.test.ts compares them with its own), so what
 * a team built around Alertmanager's messages keeps working. Pure: no secret is read here but the routing key
 * a PagerDuty body must carry.
 */
import type { ChannelEvent } from "./events.ts";

export interface Named {
  readonly id: string;
  readonly name: string | null;
}

/** One notification, as stored in the outbox and posted by a webhook. */
export interface NotificationPayload {
  readonly type: string;
  /** When it happened, ISO 8601. */
  readonly timestamp: string;
  /** The node where it happened (the one that noticed, for node_down and node_up). */
  readonly node: string;
  readonly channel: Named | null;
  readonly output: Named | null;
  /** The event's own fields. */
  readonly data: Readonly<Record<string, unknown>>;
}

const COMMON = new Set(["seq", "at", "type", "channel", "output", "channel_name", "output_name"]);

export const payloadOf = (type: string, event: ChannelEvent, node: string): NotificationPayload => ({
  type,
  timestamp: event.at,
  node,
  channel: event.channel === null ? null : { id: event.channel, name: event.channel_name },
  output: event.output === null ? null : { id: event.output, name: event.output_name },
  data: Object.fromEntries(Object.entries(event).filter(([key]) => !COMMON.has(key))),
});

/** The condition an event opens or closes, for PagerDuty's dedup key; null for one that stands alone. */
const condition = (
  payload: NotificationPayload,
): { readonly key: string; readonly resolves: boolean } | null => {
  const node = typeof payload.data.node === "string" ? payload.data.node : payload.node;
  switch (payload.type) {
    case "input_lost":
    case "input_restored":
      return { key: "input", resolves: payload.type === "input_restored" };
    case "slate_on":
    case "slate_off":
      return { key: "slate", resolves: payload.type === "slate_off" };
    case "output_failed":
    case "output_recovered":
      return { key: `output/${payload.output?.id ?? ""}`, resolves: payload.type === "output_recovered" };
    case "node_down":
    case "node_up":
      return { key: `node/${node}`, resolves: payload.type === "node_up" };
    default:
      return null;
  }
};

const label = (named: Named | null, kind: string) =>
  named === null ? null : `${kind} ${named.name ?? named.id}${named.name === null ? "" : ` (${named.id})`}`;

/** One line a person reads: "input_lost: channel News (news)". */
export const summaryOf = (payload: NotificationPayload): string => {
  const where = [label(payload.channel, "channel"), label(payload.output, "output")].filter(
    (part) => part !== null,
  );
  const message = typeof payload.data.message === "string" ? `: ${payload.data.message}` : "";
  return `${payload.type}${where.length === 0 ? "" : ` on ${where.join(", ")}`}${message}`;
};

const isTrouble = (type: string) =>
  ["input_lost", "output_failed", "node_down", "schedule_missed", "slate_on"].includes(type);
const isGood = (type: string) =>
  ["input_restored", "output_recovered", "node_up", "slate_off"].includes(type);

/** Key/value lines of the event's fields, as Alertmanager lists an alert's labels. */
const fieldLines = (payload: NotificationPayload) =>
  [
    ...(payload.channel === null ? [] : [` - channel = ${payload.channel.name ?? payload.channel.id}`]),
    ...(payload.output === null ? [] : [` - output = ${payload.output.name ?? payload.output.id}`]),
    ...Object.entries(payload.data).map(([key, value]) => ` - ${key} = ${JSON.stringify(value)}`),
  ].join("\n");

const texts = (data: Readonly<Record<string, unknown>>) =>
  Object.fromEntries(
    Object.entries(data).map(([key, value]) => [
      key,
      typeof value === "string" ? value : JSON.stringify(value),
    ]),
  );

/** Where a person looks: the channel's page on `serviceUrl`, or its front page. */
const linkOf = (payload: NotificationPayload, serviceUrl: string) =>
  payload.channel === null
    ? `${serviceUrl}/`
    : `${serviceUrl}/channels/${encodeURIComponent(payload.channel.id)}`;

/** PagerDuty Events v2: trigger and resolve of one condition share a dedup key per channel. */
export const pagerDutyBody = (payload: NotificationPayload, routingKey: string, serviceUrl: string) => {
  const opened = condition(payload);
  const subject = payload.channel?.id ?? "fleet";
  const dedup =
    opened === null
      ? `distributary/${subject}/${payload.type}/${payload.timestamp}`
      : `distributary/${subject}/${opened.key}`;
  const resolved = opened?.resolves === true;
  const lines = `Labels:\n - type = ${payload.type}\n${fieldLines(payload)}\nSource: ${linkOf(payload, serviceUrl)}\n`;
  return {
    routing_key: routingKey,
    dedup_key: dedup,
    event_action: resolved ? "resolve" : "trigger",
    payload: {
      summary: summaryOf(payload),
      source: payload.node,
      severity: isTrouble(payload.type) ? "error" : isGood(payload.type) ? "info" : "warning",
      timestamp: payload.timestamp,
      component: payload.channel?.name ?? payload.channel?.id ?? "fleet",
      group: "distributary",
      class: payload.type,
      custom_details: {
        firing: resolved ? "" : lines,
        resolved: resolved ? lines : "",
        num_firing: resolved ? "0" : "1",
        num_resolved: resolved ? "1" : "0",
        ...texts(payload.data),
      },
    },
    client: "distributary",
    client_url: linkOf(payload, serviceUrl),
  };
};

/** A Slack incoming webhook's message, in the attachment form Alertmanager uses. */
export const slackBody = (payload: NotificationPayload, serviceUrl: string) => {
  const summary = summaryOf(payload);
  const link = linkOf(payload, serviceUrl);
  const text = fieldLines(payload);
  return {
    username: "distributary",
    text: summary,
    attachments: [
      {
        title: summary,
        title_link: link,
        text,
        fallback: `${summary} | ${link}`,
        callback_id: payload.type,
        footer: `distributary on ${payload.node} · ${payload.timestamp}`,
        color: isTrouble(payload.type) ? "danger" : isGood(payload.type) ? "good" : "warning",
        mrkdwn_in: ["fallback", "pretext", "text"],
      },
    ],
  };
};

/** A Teams Workflows webhook's message: one Adaptive Card (1.4) with the summary and the fields. */
export const teamsBody = (payload: NotificationPayload, serviceUrl: string) => ({
  type: "message",
  attachments: [
    {
      contentType: "application/vnd.microsoft.card.adaptive",
      contentUrl: null,
      content: {
        $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
        type: "AdaptiveCard",
        version: "1.4",
        body: [
          {
            type: "TextBlock",
            size: "Medium",
            weight: "Bolder",
            wrap: true,
            text: summaryOf(payload),
            color: isTrouble(payload.type) ? "Attention" : isGood(payload.type) ? "Good" : "Default",
          },
          {
            type: "FactSet",
            facts: [
              { title: "Event", value: payload.type },
              { title: "When", value: payload.timestamp },
              { title: "Node", value: payload.node },
              ...(payload.channel === null
                ? []
                : [{ title: "Channel", value: payload.channel.name ?? payload.channel.id }]),
              ...(payload.output === null
                ? []
                : [{ title: "Output", value: payload.output.name ?? payload.output.id }]),
              ...Object.entries(texts(payload.data)).map(([title, value]) => ({ title, value })),
            ],
          },
        ],
        actions: [{ type: "Action.OpenUrl", title: "Open distributary", url: linkOf(payload, serviceUrl) }],
      },
    },
  ],
});
