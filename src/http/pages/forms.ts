/**
 * Form fields to the REST API's request bodies, and the API's problems back to form fields: the pages check
 * what is typed with the same schemas (domain/channel/channel.ts) and show the same messages beside each field.
 */
import * as Either from "effect/Either";
import * as Schema from "effect/Schema";
import type { ControlError } from "../../domain/base/errors.ts";
import { invalid, toFieldIssues } from "../../domain/base/validate.ts";
import { ChannelBody, ChannelPatch, OutputBody } from "../../domain/channel/channel.ts";
import { CueInsertBody } from "../../domain/channel/cue-insert.ts";
import type { ChannelView, OutputView } from "../../domain/views/views.ts";

export type Fields = Readonly<Record<string, string>>;

/** A field's number as the schema wants it (whole, or with `decimals` a decimal), else its text to refuse. */
const numberOrText = (text: string | undefined, decimals = false) =>
  text === undefined || text.trim() === ""
    ? undefined
    : (decimals ? /^\d+(\.\d+)?$/ : /^\d+$/).test(text.trim())
      ? Number(text.trim())
      : text;

/** What a form gives, checked as the API checks a body: the value, or the problem with every field's message. */
const decodeForm =
  <A, I>(schema: Schema.Schema<A, I>) =>
  (input: unknown): Either.Either<A, ControlError> =>
    Either.mapLeft(Schema.decodeUnknownEither(schema, { errors: "all" })(input), (error) =>
      invalid(toFieldIssues(error)),
    );

const present = (text: string | undefined) =>
  text === undefined || text.trim() === "" ? undefined : text.trim();

const channelJson = (fields: Fields) => {
  const redundancy: Record<string, unknown> = {};
  const failover = numberOrText(fields.failover_after_ms);
  if (failover !== undefined) redundancy.failover_after_ms = failover;
  if (fields.revert === "auto" || fields.revert === "sticky") redundancy.revert = fields.revert;
  const backupPort = numberOrText(fields.backup_rtp_port);
  const expect = numberOrText(fields.expect_cues_within_s);
  return {
    name: fields.name ?? "",
    tags: (fields.tags ?? "")
      .split(",")
      .map((tag) => tag.trim())
      .filter((tag) => tag !== ""),
    rtp_ip: present(fields.rtp_ip) ?? "",
    rtp_port: numberOrText(fields.rtp_port) ?? "",
    ...(backupPort === undefined ? {} : { backup_rtp_port: backupPort }),
    ...(present(fields.backup_rtp_ip) === undefined || backupPort === undefined
      ? {}
      : { backup_rtp_ip: present(fields.backup_rtp_ip) }),
    ...(Object.keys(redundancy).length === 0 ? {} : { redundancy }),
    expect_cues_within_s: expect ?? null,
    medialive: medialiveJson(fields),
  };
};

/** The MediaLive fields of the form; null (no link) when the channel id is blank. */
const medialiveJson = (fields: Fields) => {
  const channelId = present(fields.medialive_channel_id);
  if (channelId === undefined) return null;
  const minutes = numberOrText(fields.medialive_idle_minutes);
  return {
    channel_id: channelId,
    region: present(fields.medialive_region) ?? "",
    start_with_channel: fields.medialive_start_with_channel === "on",
    stop_when_idle: fields.medialive_stop_when_idle === "on",
    ...(minutes === undefined ? {} : { idle_minutes: minutes }),
    egress_allowlist: fields.medialive_egress_allowlist === "on",
  };
};

/**
 * The slate's time and whether it goes on for unhealthy inputs, as a body gives them (the alert time, picture
 * and hand switch stay as stored), or none; the box ticked without a time is a problem at the box.
 */
const slateJson = (fields: Fields) => {
  const after = numberOrText(fields.slate_after_ms);
  const onUnhealthy = fields.slate_on_unhealthy === "on";
  if (after === undefined && onUnhealthy)
    return Either.left(
      invalid([
        {
          field: "slate.on_unhealthy",
          message: "needs a slate: set “Slate after (ms)” too, or untick it",
        },
      ]),
    );
  return Either.right(after === undefined ? undefined : { after_ms: after, on_unhealthy: onUnhealthy });
};

/**
 * The health rules' fields: the rules as JSON (a problem at the field when it is not JSON), the expression and
 * the clear time, what the watcher decodes; undefined when the rules and the expression are both blank (no rules).
 */
const healthJson = (fields: Fields): Either.Either<unknown, ControlError> => {
  const rules = present(fields.health_rules);
  const when = present(fields.health_unhealthy_when);
  if (rules === undefined && when === undefined) return Either.right(undefined);
  const parsed = jsonField(
    rules,
    "redundancy.health.rules",
    '{"no_video": {"pid_missing": "video", "for_ms": 1000}}',
  );
  const clear = numberOrText(fields.health_clear_after_ms);
  const decode = present(fields.health_decode);
  return Either.map(parsed, (value) => ({
    rules: value ?? {},
    unhealthy_when: when ?? "",
    ...(clear === undefined ? {} : { clear_after_ms: clear }),
    ...(decode === undefined ? {} : { decode }),
  }));
};

/**
 * A form's body from its fields, its health rules and its slate, checked by the API's schema; the rules' and
 * the slate's own problems (not JSON, the box without a time) come first, both at once.
 */
const decodeChannel = <A, I>(
  schema: Schema.Schema<A, I>,
  fields: Fields,
  body: (
    json: ReturnType<typeof channelJson>,
    health: unknown,
    slate: { readonly after_ms: unknown; readonly on_unhealthy: boolean } | undefined,
  ) => unknown,
): Either.Either<A, ControlError> => {
  const health = healthJson(fields);
  const slate = slateJson(fields);
  if (Either.isLeft(health) || Either.isLeft(slate))
    return Either.left(
      invalid([health, slate].flatMap((part) => (Either.isLeft(part) ? (part.left.errors ?? []) : []))),
    );
  return decodeForm(schema)(body(channelJson(fields), health.right, slate.right));
};

const withHealth = (json: ReturnType<typeof channelJson>, health: unknown) =>
  health === undefined ? json : { ...json, redundancy: { ...json.redundancy, health } };

/** A new channel: a blank slate time leaves the slate out (none), blank rules the health rules. */
export const channelBody = (fields: Fields) =>
  decodeChannel(ChannelBody, fields, (json, health, slate) => ({
    ...withHealth(json, health),
    ...(slate === undefined ? {} : { slate }),
  }));

/**
 * An edit: a slate time sets it (the stored alert time, picture and hand switch stay); blank removes a slate
 * the channel has, and blank rules the health rules it has.
 */
export const channelPatch = (fields: Fields, current?: Pick<ChannelView, "slate" | "redundancy">) =>
  decodeChannel(ChannelPatch, fields, (json, given, givenSlate) => {
    const slate = givenSlate ?? (current?.slate == null ? undefined : null);
    const health = given ?? (current?.redundancy?.health == null ? undefined : null);
    // An edit without a backup removes it.
    return {
      ...withHealth(json, health),
      backup_rtp_ip: "backup_rtp_ip" in json ? json.backup_rtp_ip : null,
      backup_rtp_port: "backup_rtp_port" in json ? json.backup_rtp_port : null,
      ...(slate === undefined ? {} : { slate }),
    };
  });

/** A form's JSON field: blank, null; text that is not JSON, a problem on the field. The schema checks the rest. */
const jsonField = (
  text: string | undefined,
  field: string,
  example: string,
): Either.Either<unknown, ControlError> => {
  const given = present(text);
  if (given === undefined) return Either.right(null);
  try {
    return Either.right(JSON.parse(given));
  } catch {
    return Either.left(invalid([{ field, message: `must be JSON, e.g. ${example}` }]));
  }
};

/** The output's policy as the form's JSON field gives it: blank, none (null). */
export const policyField = (text: string | undefined) =>
  jsonField(text, "policy", '{"scte35": "strip"} or {"program": 1}');

export const outputBody = (fields: Fields) =>
  Either.flatMap(policyField(fields.policy), (policy) =>
    decodeForm(OutputBody)({
      ...(present(fields.name) === undefined ? {} : { name: present(fields.name) }),
      protocol: fields.protocol ?? "",
      url: (fields.url ?? "").trim(),
      policy,
    }),
  );

/** The Insert break form: its command and duration (seconds, decimals allowed; blank: open-ended). */
export const cueBody = (fields: Fields) => {
  const duration = numberOrText(fields.duration_s, true);
  return decodeForm(CueInsertBody)({
    command: fields.command ?? "",
    ...(duration === undefined ? {} : { duration_s: duration }),
  });
};

/** Fields the form shows as one JSON text: a problem with a part names the part. */
const JSON_FIELDS = [
  { field: "policy", prefix: "" },
  { field: "tags", prefix: "" },
  { field: "redundancy.health.rules", prefix: "redundancy.health." },
];

/** The API's problem as messages by form field. */
export const fieldErrors = (error: ControlError): Record<string, string> => {
  const errors: Record<string, string> = {};
  for (const issue of error.errors ?? []) {
    const whole = JSON_FIELDS.find(({ field }) => issue.field.startsWith(field));
    if (whole !== undefined) {
      errors[whole.field] ??=
        issue.field === whole.field
          ? issue.message
          : `${issue.field.slice(whole.prefix.length)}: ${issue.message}`;
      continue;
    }
    errors[issue.field] ??= issue.message;
  }
  if (Object.keys(errors).length === 0) errors["(body)"] = error.message;
  return errors;
};

export const channelFields = (channel: ChannelView): Fields => ({
  name: channel.name,
  tags: (channel.tags ?? []).join(", "),
  rtp_ip: channel.rtp_ip,
  rtp_port: String(channel.rtp_port),
  backup_rtp_ip: channel.backup_rtp_ip ?? "",
  backup_rtp_port: channel.backup_rtp_port === null ? "" : String(channel.backup_rtp_port),
  failover_after_ms: channel.redundancy === null ? "" : String(channel.redundancy.failover_after_ms),
  revert: channel.redundancy?.revert ?? "auto",
  expect_cues_within_s: channel.expect_cues_within_s === null ? "" : String(channel.expect_cues_within_s),
  slate_after_ms: channel.slate === null ? "" : String(channel.slate.after_ms),
  ...(channel.slate?.on_unhealthy === true ? { slate_on_unhealthy: "on" } : {}),
  ...healthFields(channel.redundancy?.health ?? null),
  ...medialiveFields(channel.medialive),
});

/** The health rules as the form shows them: the rules as indented JSON, the expression, the clear time, the decoding. */
const healthFields = (health: NonNullable<ChannelView["redundancy"]>["health"]): Fields =>
  health === null
    ? {}
    : {
        health_rules: JSON.stringify(health.rules, null, 2),
        health_unhealthy_when: health.unhealthy_when,
        health_clear_after_ms: health.clear_after_ms === undefined ? "" : String(health.clear_after_ms),
        health_decode: health.decode ?? "key_frames",
      };

const medialiveFields = (link: ChannelView["medialive"]): Fields =>
  link === undefined
    ? {}
    : {
        medialive_channel_id: link.channel_id,
        medialive_region: link.region,
        medialive_idle_minutes: String(link.idle_minutes),
        ...(link.start_with_channel ? { medialive_start_with_channel: "on" } : {}),
        ...(link.stop_when_idle ? { medialive_stop_when_idle: "on" } : {}),
        ...(link.egress_allowlist ? { medialive_egress_allowlist: "on" } : {}),
      };

export const outputFieldsOf = (output: OutputView): Fields => ({
  name: output.name,
  protocol: output.protocol,
  url: output.url,
  policy: output.policy == null ? "" : JSON.stringify(output.policy),
});
