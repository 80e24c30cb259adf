/**
 * An input's sender allow-list, as AWS MediaConnect's whitelist: addresses and CIDR blocks, IPv4 and IPv6.
 * Datagrams from any other sender are dropped and counted before they reach the packet path. Absent (or
 * null) means every sender.
 */
import { isIP } from "node:net";

/** Entries one list may hold. */
export const MAX_ALLOWED_SOURCES = 64;

interface SourceBlock {
  readonly address: string;
  readonly prefix: number;
  readonly family: 4 | 6;
}

/** A value as a message quotes it: JSON, cut at 60 characters. */
export const showGiven = (value: unknown): string => {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 60)}…` : text;
};

/** `198.51.100.7`, `198.51.100.0/24`, `2001:db8::1` or `2001:db8::/32`; a message when it is none of them. */
export const parseSourceBlock = (text: string): SourceBlock | string => {
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family !== 4 && family !== 6)
    return `must be an IPv4 or IPv6 address or CIDR block such as 198.51.100.0/24 or 2001:db8::/32, got ${showGiven(text)}`;
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return { address, prefix: max, family };
  const prefixText = text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefix > max)
    return `the prefix length after / must be a whole number from 0 to ${max} for an IPv${family} block, got ${showGiven(text)}`;
  return { address, prefix, family };
};
