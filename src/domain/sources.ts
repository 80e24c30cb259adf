/**
 * An input's sender allow-list, as AWS MediaConnect's whitelist: addresses and CIDR blocks, IPv4 and IPv6.
 * Datagrams from any other sender are dropped and counted before they reach the packet path. Absent (or
 * null) means every sender.
 */
import { isIP } from "node:net";
import * as Schema from "effect/Schema";

/** Entries one list may hold. */
const MAX_ALLOWED_SOURCES = 64;

interface SourceBlock {
  readonly address: string;
  readonly prefix: number;
  readonly family: 4 | 6;
}

const show = (value: unknown): string => {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 60)}…` : text;
};

/** `198.51.100.7`, `198.51.100.0/24`, `2001:db8::1` or `2001:db8::/32`; a message when it is none of them. */
export const parseSourceBlock = (text: string): SourceBlock | string => {
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family !== 4 && family !== 6)
    return `must be an IPv4 or IPv6 address or CIDR block such as 198.51.100.0/24 or 2001:db8::/32, got ${show(text)}`;
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return { address, prefix: max, family };
  const prefixText = text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefix > max)
    return `the prefix length after / must be a whole number from 0 to ${max} for an IPv${family} block, got ${show(text)}`;
  return { address, prefix, family };
};

const SourceEntry = Schema.String.annotations({
  message: (issue) => `must be an address or CIDR block as a string, got ${show(issue.actual)}`,
}).pipe(
  Schema.filter((text) => {
    const parsed = parseSourceBlock(text);
    return typeof parsed === "string" ? parsed : undefined;
  }),
);

/** The list as the API takes it: at least one entry; null or absent for every sender. */
export const AllowedSources = Schema.Array(SourceEntry)
  .annotations({
    message: (issue) => `must be a list of addresses or CIDR blocks, got ${show(issue.actual)}`,
  })
  .pipe(
    Schema.filter(
      (list) =>
        list.length === 0
          ? "must list at least one address or CIDR block; leave it out or set null to accept every sender"
          : list.length > MAX_ALLOWED_SOURCES
            ? `must list at most ${MAX_ALLOWED_SOURCES} entries, got ${list.length}`
            : undefined,
      // Read by the API before any entry is checked (validate.ts).
      { jsonSchema: { maxItems: MAX_ALLOWED_SOURCES } },
    ),
    Schema.annotations({
      description:
        "Only datagrams from these senders reach the channel (addresses or CIDR blocks, IPv4 or IPv6, e.g. " +
        '["203.0.113.7", "198.51.100.0/24"]); others are dropped and counted as sender_not_allowed. ' +
        "Absent or null: every sender.",
    }),
  );
