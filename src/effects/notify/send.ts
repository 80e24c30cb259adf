/**
 * One attempt of one delivery: the notifier's body made for its kind, signed for a webhook (Standard Webhooks:
 * `webhook-id`, `webhook-timestamp`, `webhook-signature`), and POSTed within 10 s. The address is an admin's
 * text, so it is held to the HLS push's rules (src/domain/channel/addresses.ts): the name is resolved at each attempt
 * and only an allowed address is connected to, and a redirect is a failure, never followed. What an attempt
 * says of a failure names the status or the kind of failure, never the URL's secret parts.
 */
import { createHmac } from "node:crypto";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import { type PushAddressPolicy, pushAddressProblem } from "../../domain/channel/addresses.ts";
import { type NotifierRecord, notifierView, PAGERDUTY_URL } from "../../domain/events/notifiers.ts";
import {
  type NotificationPayload,
  pagerDutyBody,
  slackBody,
  teamsBody,
} from "../../domain/events/notify-bodies.ts";
import { isNameError, RefusedAddress, vettedLookup } from "../outputs/hls-push.ts";

/** The longest an attempt waits for its answer. */
export const ATTEMPT_TIMEOUT_MS = 10_000;

export interface AttemptOutcome {
  readonly ok: boolean;
  /** The HTTP status, or null when no HTTP answer came. */
  readonly status: number | null;
  /** What happened, in words. */
  readonly message: string;
}

/** Standard Webhooks' signature: HMAC-SHA256 of `id.timestamp.body`, keyed by the secret's base64 part. */
export const signature = (secret: string, id: string, timestamp: number, body: string): string =>
  `v1,${createHmac("sha256", Buffer.from(secret.replace(/^whsec_/, ""), "base64"))
    .update(`${id}.${timestamp}.${body}`)
    .digest("base64")}`;

interface Prepared {
  readonly url: string;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** The request for `record`'s kind; `nowMs` is the attempt's time (the webhook's timestamp). */
export const prepare = (
  record: NotifierRecord,
  id: string,
  payload: NotificationPayload,
  serviceUrl: string,
  nowMs: number,
): Prepared => {
  const json = { "content-type": "application/json" };
  switch (record.kind) {
    case "webhook": {
      const body = JSON.stringify(payload);
      const timestamp = Math.floor(nowMs / 1000);
      return {
        url: record.url ?? "",
        body,
        headers: {
          ...json,
          "webhook-id": id,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": signature(record.secret ?? "", id, timestamp, body),
        },
      };
    }
    case "pagerduty":
      return {
        url: record.url ?? PAGERDUTY_URL,
        body: JSON.stringify(pagerDutyBody(payload, record.routing_key ?? "", serviceUrl)),
        headers: json,
      };
    case "slack":
      return { url: record.url ?? "", body: JSON.stringify(slackBody(payload, serviceUrl)), headers: json };
    case "teams":
      return { url: record.url ?? "", body: JSON.stringify(teamsBody(payload, serviceUrl)), headers: json };
  }
};

const post = (url: URL, prepared: Prepared, policy: PushAddressPolicy, shown: string) =>
  new Promise<IncomingMessage>((resolve, reject) => {
    const request = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, {
      method: "POST",
      lookup: vettedLookup(policy, shown),
      signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
      headers: {
        ...prepared.headers,
        "content-length": String(Buffer.byteLength(prepared.body)),
        "user-agent": "distributary-notifications",
      },
    });
    request.on("response", resolve);
    request.on("error", reject);
    request.end(prepared.body);
  });

/** POSTs the prepared request; never fails: the outcome says how it went. */
export const attempt = async (
  record: NotifierRecord,
  prepared: Prepared,
  policy: PushAddressPolicy,
): Promise<AttemptOutcome> => {
  // The address as the API shows it: a Slack or Teams URL is a secret whole.
  const shown = notifierView(record).url ?? PAGERDUTY_URL;
  let url: URL;
  try {
    url = new URL(prepared.url);
  } catch {
    return { ok: false, status: null, message: `the address ${shown} is not a URL` };
  }
  const literal = url.hostname.replace(/^\[|\]$/g, "");
  const refused = isIP(literal) === 0 ? null : pushAddressProblem(literal, policy, shown, false);
  if (refused !== null) return { ok: false, status: null, message: refused };
  try {
    const response = await post(url, prepared, policy, shown);
    response.resume();
    const status = response.statusCode ?? 0;
    if (status >= 200 && status < 300) return { ok: true, status, message: `delivered (HTTP ${status})` };
    if (status >= 300 && status < 400)
      return {
        ok: false,
        status,
        message: `${shown} answered a redirect (${status}): redirects are not followed`,
      };
    return { ok: false, status, message: `${shown} answered HTTP ${status}` };
  } catch (cause) {
    if (cause instanceof RefusedAddress) return { ok: false, status: null, message: cause.message };
    if (isNameError(cause))
      return { ok: false, status: null, message: `${shown}: its name does not resolve` };
    const timedOut = cause instanceof Error && (cause.name === "TimeoutError" || cause.name === "AbortError");
    return {
      ok: false,
      status: null,
      message: timedOut
        ? `${shown} did not answer within ${ATTEMPT_TIMEOUT_MS / 1000} s`
        : `${shown}: no HTTP answer`,
    };
  }
};
