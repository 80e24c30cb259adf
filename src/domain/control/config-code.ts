/**
 * Configuration as code, pure: the declarative document (channels and their outputs keyed by id, notifiers,
 * access rules) made from the same schemas the API validates with, its JSON Schema, secret references
 * (`${secret:NAME}`), and the plan: what differs between the stored configuration and a document, field by
 * field, with what each change costs on air. What the costs say follows what the control plane does with
 * each kind of change (src/effects/control/control.ts, src/effects/channel/output-set.ts): an output's name
 * or policy applies live, a new URL or protocol reconnects that output alone, a channel's inputs re-open
 * live with its outputs connected, a channel moved between nodes or stopped goes dark.
 */
import * as JSONSchema from "effect/JSONSchema";
import * as Schema from "effect/Schema";
import { ChannelId, OutputId } from "../base/ids.ts";
import { sameValue } from "../base/same.ts";
import { type ChannelConfig, ChannelImport, OutputConfig, OutputPatch } from "../channel/channel.ts";
import { NotifierBody, type NotifierRecord } from "../events/notifiers.ts";
import { AccessRules } from "./access.ts";

/** One output: its id is its key in the channel's `outputs`. */
export const DeclaredOutput = Schema.Struct({
  ...OutputPatch.fields,
  protocol: OutputConfig.from.fields.protocol,
  url: OutputConfig.from.fields.url,
}).annotations({ identifier: "DeclaredOutput" });
export type DeclaredOutput = typeof DeclaredOutput.Type;

const { id: _id, outputs: _outputs, created_at: _created, ...channelFields } = ChannelImport.fields;

/** One channel: its id is its key in `channels`, its outputs keyed by theirs. */
export const DeclaredChannel = Schema.Struct({
  ...channelFields,
  outputs: Schema.optional(Schema.Record({ key: OutputId, value: DeclaredOutput })),
}).annotations({ identifier: "DeclaredChannel" });
export type DeclaredChannel = typeof DeclaredChannel.Type;

export const DeclaredNotifier = Schema.Struct(NotifierBody.fields).annotations({
  identifier: "DeclaredNotifier",
});
export type DeclaredNotifier = typeof DeclaredNotifier.Type;

const NotifierKey = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, {
    message: () => "must be a notifier id (1–64 letters, digits, '-' or '_')",
  }),
);

export const DeclarativeDocument = Schema.Struct({
  version: Schema.Literal(1),
  channels: Schema.optional(Schema.Record({ key: ChannelId, value: DeclaredChannel })),
  notifiers: Schema.optional(Schema.Record({ key: NotifierKey, value: DeclaredNotifier })),
  access_rules: Schema.optional(AccessRules),
}).annotations({
  identifier: "DeclarativeDocument",
  title: "distributary configuration",
  description:
    "channels and their outputs keyed by id, notifiers keyed by id, access rules; any string may refer to a secret the server holds as $" +
    "{secret:NAME}",
});
export type DeclarativeDocument = typeof DeclarativeDocument.Type;

/** The document's JSON Schema, for editors (GET /api/config/schema). */
export const declarativeJsonSchema = () => JSONSchema.make(DeclarativeDocument);

// ---------------------------------------------------------------------------------------------- secrets

/** A reference to a secret the server holds: `${secret:NAME}`. */
export const SECRET_REFERENCE = /\$\{secret:([^}]*)\}/g;
const SECRET_NAME = /^[A-Za-z0-9_]{1,128}$/;
export const secretNameProblem = (name: string): string | null =>
  SECRET_NAME.test(name) ? null : `'${name}' is not a secret's name (letters, digits and '_', up to 128)`;

/** The names a text refers to, in order. */
export const referencesIn = (text: string): ReadonlyArray<string> =>
  [...text.matchAll(SECRET_REFERENCE)].map((match) => match[1] ?? "");

/** `text` with each reference replaced by its value. */
export const resolveText = (text: string, values: ReadonlyMap<string, string>): string =>
  text.replace(SECRET_REFERENCE, (whole, name: string) => values.get(name) ?? whole);

/** A path through a document, as a plan names fields: `channels.news.outputs.yt.url`. */
export type Path = ReadonlyArray<string | number>;
export const pathText = (path: Path): string =>
  path.reduce<string>(
    (name, key) =>
      typeof key === "number" ? `${name}[${key}]` : name === "" ? String(key) : `${name}.${String(key)}`,
    "",
  );

/** Every string of `value` that carries a reference, by its path. */
export const templatesIn = (value: unknown, path: Path = []): Map<string, string> => {
  const found = new Map<string, string>();
  const walk = (node: unknown, at: Path) => {
    if (typeof node === "string") {
      if (referencesIn(node).length > 0) found.set(pathText(at), node);
    } else if (Array.isArray(node)) {
      for (const [index, item] of node.entries()) walk(item, [...at, index]);
    } else if (node !== null && typeof node === "object")
      for (const [key, item] of Object.entries(node)) walk(item, [...at, key]);
  };
  walk(value, path);
  return found;
};

/** `value` with every string's references resolved. */
export const resolveAll = (value: unknown, values: ReadonlyMap<string, string>): unknown => {
  if (typeof value === "string") return resolveText(value, values);
  if (Array.isArray(value)) return value.map((item) => resolveAll(item, values));
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, resolveAll(item, values)]));
  return value;
};

// ---------------------------------------------------------------------------------------- the document

const outputOf = (output: ChannelConfig["outputs"][number]): DeclaredOutput => ({
  name: output.name,
  protocol: output.protocol,
  url: output.url,
  enabled: output.enabled,
  ...(output.policy == null ? {} : { policy: output.policy }),
});

/** A stored channel as the document writes it: no id (its key), no creation time. */
export const declaredChannel = (channel: ChannelConfig): DeclaredChannel => {
  const { id: _, created_at: _c, outputs, ...rest } = channel;
  return {
    ...rest,
    outputs: Object.fromEntries(outputs.map((output) => [output.id, outputOf(output)])),
  } as DeclaredChannel;
};

/** A stored notifier as the document writes it (its secrets as stored: the caller masks or refers). */
export const declaredNotifier = (record: NotifierRecord): DeclaredNotifier => ({
  name: record.name,
  kind: record.kind,
  ...(record.url === null ? {} : { url: record.url }),
  ...(record.secret === null ? {} : { secret: record.secret }),
  ...(record.routing_key === null ? {} : { routing_key: record.routing_key }),
  events: record.events,
  channels: record.channels,
  enabled: record.enabled,
});

/** The channel a document declares, as an import takes it. */
export const channelImportOf = (id: string, channel: DeclaredChannel): ChannelImport =>
  ({
    ...channel,
    id,
    outputs: Object.entries(channel.outputs ?? {}).map(([outputId, output]) => ({ id: outputId, ...output })),
  }) as unknown as ChannelImport;

// ----------------------------------------------------------------------------------------------- plans

export type Action = "create" | "change" | "delete";
export type Kind = "channel" | "output" | "notifier" | "access_rules";

export interface FieldChange {
  readonly field: string;
  readonly before: unknown;
  readonly after: unknown;
}

export interface PlannedChange {
  readonly kind: Kind;
  readonly action: Action;
  /** `channel`, `channel/output`, a notifier's id, or `access_rules`. */
  readonly id: string;
  readonly fields: ReadonlyArray<FieldChange>;
  /** What the change costs on air, in words. */
  readonly cost: string;
  /** The change in one line of words. */
  readonly words: string;
}

export const NO_INTERRUPTION = "no interruption";
export const CHANNEL_RESTARTS = "channel restarts: every output dark for about a second";

const isPlain = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The leaves that differ between two values: objects compared key by key, anything else whole. */
export const leafChanges = (before: unknown, after: unknown, prefix: string): FieldChange[] => {
  if (isPlain(before) && isPlain(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((key) =>
      leafChanges(before[key], after[key], prefix === "" ? key : `${prefix}.${key}`),
    );
  }
  const same = sameValue(before, after);
  return same ? [] : [{ field: prefix, before: before ?? null, after: after ?? null }];
};

/** The fields whose change re-opens a channel's inputs (as `inputChanged` in rules.ts judges it). */
const INPUT_FIELDS = new Set([
  "rtp_ip",
  "rtp_port",
  "backup_rtp_ip",
  "backup_rtp_port",
  "input_url",
  "backup_input_url",
  "rtp_allowed_sources",
  "backup_rtp_allowed_sources",
]);
/** Applied to the running channel live, with its inputs and outputs as they are. */
const LIVE_FIELDS = new Set(["redundancy", "slate"]);

const topField = (field: string) => field.split(".")[0] ?? field;

/** What a channel's own fields (not its outputs) changing costs, by what the control plane then does. */
export const channelCost = (
  name: string,
  fields: ReadonlyArray<FieldChange>,
  running: boolean,
  moves: boolean,
): string => {
  const tops = new Set(fields.map((change) => topField(change.field)));
  const desired = fields.find((change) => change.field === "desired");
  if (desired !== undefined)
    return desired.after === "stopped"
      ? running
        ? `channel ${name} stops: every output goes dark`
        : NO_INTERRUPTION
      : `channel ${name} starts`;
  if (!running) return `${NO_INTERRUPTION} (channel ${name} is not running here)`;
  if (moves) return `${CHANNEL_RESTARTS} (it moves between nodes)`;
  if ([...tops].some((field) => INPUT_FIELDS.has(field)))
    return (
      `channel ${name}'s inputs re-open on their new addresses: its outputs stay connected and carry nothing ` +
      `new until the new input delivers (the ${CHANNEL_RESTARTS.replace(":", " instead:")} if the new address cannot be opened); no other channel is touched`
    );
  if ([...tops].some((field) => LIVE_FIELDS.has(field))) return `${NO_INTERRUPTION} (applies live)`;
  return NO_INTERRUPTION;
};

/** What an output's change costs: a new URL, protocol or switch reconnects it alone; the rest applies live. */
export const outputCost = (
  name: string,
  action: Action,
  fields: ReadonlyArray<FieldChange>,
  running: boolean,
  enabledAfter: boolean,
): string => {
  if (!running) return `${NO_INTERRUPTION} (the channel is not running here)`;
  if (action === "create") return enabledAfter ? `output ${name} starts` : NO_INTERRUPTION;
  if (action === "delete") return `output ${name} stops`;
  const enabled = fields.find((change) => change.field === "enabled");
  if (enabled !== undefined) return enabled.after === true ? `output ${name} starts` : `output ${name} stops`;
  if (!enabledAfter) return `${NO_INTERRUPTION} (output ${name} is off)`;
  if (fields.some((change) => change.field === "url" || change.field === "protocol"))
    return `output ${name} reconnects`;
  return NO_INTERRUPTION;
};

/** One line of a plan in words: `~ output news/yt (YouTube): url; cost: output YouTube reconnects`. */
export const planLine = (change: PlannedChange): string => {
  const sign = change.action === "create" ? "+" : change.action === "delete" ? "-" : "~";
  const fields =
    change.action === "change" ? `: ${change.fields.map((field) => field.field).join(", ")}` : "";
  return `${sign} ${change.kind.replace("_", " ")} ${change.id}${fields} (${change.cost})`;
};
