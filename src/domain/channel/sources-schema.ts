/**
 * An input's sender allow-list as the API takes it (what the entries may be: sources.ts, which the forwarding
 * threads load without Schema).
 */
import * as Schema from "effect/Schema";
import { MAX_ALLOWED_SOURCES, parseSourceBlock, showGiven as show } from "./sources.ts";

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
