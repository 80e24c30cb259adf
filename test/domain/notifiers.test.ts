/**
 * Notifications' pure rules: which bus event is which notification (an output's `connected` is a recovery
 * only after an `error`), who wants it, PagerDuty's dedup key shared by a condition's trigger and resolve,
 * what a notifier shows (secrets masked) and what is wrong with one, in words.
 */
import { describe, expect, it } from "vitest";
import type { ChannelEvent } from "../../src/domain/events/events.ts";
import {
  type NotifierRecord,
  notifierProblems,
  notifierSecrets,
  notifierView,
  notifyEventOf,
  wants,
} from "../../src/domain/events/notifiers.ts";
import { pagerDutyBody, payloadOf } from "../../src/domain/events/notify-bodies.ts";

const common = {
  seq: 1,
  at: "2026-12-05T19:00:00.000Z",
  channel: "news",
  output: null,
  channel_name: "News",
  output_name: null,
} as const;
const outputState = (state: "error" | "connected" | "reconnecting"): ChannelEvent => ({
  ...common,
  output: "cdn",
  output_name: "CDN",
  type: "output_state",
  state,
  error: state === "error" ? "refused" : null,
});
const record = (fields: Partial<NotifierRecord> = {}): NotifierRecord => ({
  id: "n1",
  name: "ops",
  kind: "webhook",
  url: "https://ops.example/hook",
  secret: "whsec_c2VjcmV0LXNpZ25pbmcta2V5",
  routing_key: null,
  events: ["input_lost", "output_failed"],
  channels: "*",
  enabled: true,
  disabled_reason: null,
  created_at: common.at,
  ...fields,
});

describe("notifications' rules", () => {
  it("maps bus events to notifications; a recovery is a connected output after an error", () => {
    expect(notifyEventOf({ ...common, type: "input_lost" }, undefined)).toBe("input_lost");
    expect(
      notifyEventOf(
        { ...common, type: "input_switched", from: "primary", to: "backup", reason: "silence" },
        undefined,
      ),
    ).toBe("failover");
    expect(notifyEventOf(outputState("error"), "connected")).toBe("output_failed");
    expect(notifyEventOf(outputState("connected"), "error")).toBe("output_recovered");
    expect(notifyEventOf(outputState("connected"), "reconnecting")).toBeNull();
    expect(notifyEventOf(outputState("reconnecting"), "connected")).toBeNull();
    expect(notifyEventOf({ ...common, type: "channel_started" }, undefined)).toBeNull();
  });

  it("a notifier wants its events, of its channels, while enabled; a node's events go to all", () => {
    const some = record({ channels: ["news"], events: ["input_lost", "node_down"] });
    expect(wants(some, "input_lost", "news")).toBe(true);
    expect(wants(some, "input_lost", "sports")).toBe(false);
    expect(wants(some, "input_restored", "news")).toBe(false);
    expect(wants(some, "node_down", null)).toBe(true);
    expect(wants({ ...some, enabled: false }, "input_lost", "news")).toBe(false);
  });

  it("PagerDuty: trigger and resolve of one condition share a dedup key per channel and output", () => {
    const body = (event: ChannelEvent, type: string) =>
      pagerDutyBody(payloadOf(type, event, "edge-1"), "key", "http://edge-1:8000");
    const failed = body(outputState("error"), "output_failed");
    const recovered = body(outputState("connected"), "output_recovered");
    expect(failed.event_action).toBe("trigger");
    expect(recovered.event_action).toBe("resolve");
    expect(failed.dedup_key).toBe(recovered.dedup_key);
    expect(failed.dedup_key).toBe("distributary/news/output/cdn");
    const lost = body({ ...common, type: "input_lost" }, "input_lost");
    expect(lost.dedup_key).not.toBe(failed.dedup_key);
    const elsewhere = body({ ...common, channel: "sports", type: "input_lost" }, "input_lost");
    expect(elsewhere.dedup_key).not.toBe(lost.dedup_key);
    expect(lost.client_url).toBe("http://edge-1:8000/channels/news");
  });

  it("shows no secret, and says what is wrong with a notifier in words", () => {
    const slack = record({
      kind: "slack",
      url: "https://hooks.slack.com/services/T0/B0/abcdef123",
      secret: null,
    });
    expect(notifierView(slack).url).toBe("https://hooks.slack.com/****");
    expect(notifierView(record()).secret).toBe("whsec_****");
    expect(
      notifierView(record({ kind: "pagerduty", url: null, secret: null, routing_key: "rk-0123456789" }))
        .routing_key,
    ).toBe("****");
    expect(notifierSecrets(slack)).toContain("/services/T0/B0/abcdef123");
    expect(notifierProblems(record())).toEqual([]);
    // IPv6: in brackets, and a bad one said in words.
    expect(notifierProblems(record({ url: "https://[2001:db8::7]:8443/hook" }))).toEqual([]);
    expect(notifierProblems(record({ url: "https://[2001:db8::7::1]/hook" }))).toEqual([
      { field: "url", message: "'[2001:db8::7::1]' is not an IPv6 address (write it as [2001:db8::1]:port)" },
    ]);
    expect(notifierProblems(record({ url: "https://user:pw@ops.example/" }))).toEqual([
      { field: "url", message: expect.stringContaining("must not carry a user name or password") },
    ]);
    expect(notifierProblems(record({ kind: "pagerduty", url: null, secret: null }))).toEqual([
      { field: "routing_key", message: "is required: the Events v2 integration's routing key" },
    ]);
  });
});
