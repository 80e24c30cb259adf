/**
 * The declarative export of config-code.ts: the whole configuration as a document (YAML or JSON), each field
 * shown as the plan shows it (a reference where the last applied document used one, other secrets masked).
 */
import { stringify } from "yaml";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import type { AccessRule } from "../../domain/control/access.ts";
import { declaredChannel, declaredNotifier } from "../../domain/control/config-code.ts";
import type { NotifierRecord } from "../../domain/events/notifiers.ts";

/** The configuration as a declarative document, each leaf through `show` (field path, value). */
export const exportedDocument = (
  state: {
    readonly channels: ReadonlyArray<ChannelConfig>;
    readonly notifiers: ReadonlyArray<NotifierRecord>;
    readonly rules: ReadonlyArray<AccessRule>;
  },
  show: (field: string, value: unknown) => unknown,
): Record<string, unknown> => {
  const walk = (value: unknown, at: string): unknown => {
    if (Array.isArray(value)) return value.map((item, index) => walk(item, `${at}[${index}]`));
    if (value !== null && typeof value === "object")
      return Object.fromEntries(
        Object.entries(value).map(([key, item]) => [key, walk(item, at === "" ? key : `${at}.${key}`)]),
      );
    return show(at, value);
  };
  const document = {
    version: 1,
    channels: Object.fromEntries(state.channels.map((channel) => [channel.id, declaredChannel(channel)])),
    notifiers: Object.fromEntries(state.notifiers.map((record) => [record.id, declaredNotifier(record)])),
    access_rules: state.rules,
  };
  return walk(document, "") as Record<string, unknown>;
};

/** The document as text: YAML, or JSON with a final newline. */
export const documentText = (document: Record<string, unknown>, format: "json" | "yaml"): string =>
  format === "yaml" ? stringify(document, { lineWidth: 0 }) : `${JSON.stringify(document, null, 2)}\n`;
