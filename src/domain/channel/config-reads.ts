/**
 * What of a channel's configuration a node must be of this release or later to read. In a fleet, every node
 * reads the whole configuration from the database, and a node of the previous release refuses all of it (it
 * applies no later change at all) once one channel holds what it cannot decode. So a node of this release
 * refuses, in words, to write such a thing while a live node has not said it reads it
 * (src/effects/config/postgres/node-reads.ts; docs/upgrades.md).
 *
 * Each release adds here what it reads that the one before it did not; a node advertises every name here.
 */
import type { ChannelConfig } from "./channel.ts";

/** Every kind of configuration this release reads that the previous one did not, with what it is in words. */
export const CONFIG_READS = {
  ipv6_destinations: "an IPv6 address in a URL ([address]:port)",
} as const;

export type ConfigRead = keyof typeof CONFIG_READS;

/** A URL whose host is written in brackets: an IPv6 address (the previous release refused every such URL). */
const bracketedHost = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^@/?]*@)?\[/;

/** The kinds of CONFIG_READS `channel` uses, each with where (an output's or input's name). */
export const readsOf = (
  channel: ChannelConfig,
): ReadonlyArray<{ readonly read: ConfigRead; readonly where: string }> => [
  ...channel.outputs
    .filter((output) => bracketedHost.test(output.url))
    .map((output) => ({ read: "ipv6_destinations" as const, where: `output ${output.id}` })),
  ...[channel.input_url, channel.backup_input_url]
    .filter((url): url is string => typeof url === "string" && bracketedHost.test(url))
    .map(() => ({ read: "ipv6_destinations" as const, where: "its input" })),
];

/**
 * What `next` uses of CONFIG_READS that `before` did not (a channel's new output, a changed URL), in words per
 * channel; empty when the change adds nothing only this release reads.
 */
export const newReads = (
  before: ReadonlyArray<ChannelConfig>,
  next: ReadonlyArray<ChannelConfig>,
): ReadonlyArray<{ readonly read: ConfigRead; readonly what: string }> => {
  const had = new Set(
    before.flatMap((channel) =>
      readsOf(channel).map((use) => `${channel.id}\u0000${use.where}\u0000${use.read}`),
    ),
  );
  return next.flatMap((channel) =>
    readsOf(channel)
      .filter((use) => !had.has(`${channel.id}\u0000${use.where}\u0000${use.read}`))
      .map((use) => ({
        read: use.read,
        what: `channel ${channel.name}'s ${use.where}: ${CONFIG_READS[use.read]}`,
      })),
  );
};
