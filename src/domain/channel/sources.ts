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

/** A source-specific multicast group (RFC 4607): IPv4 232.0.0.0/8, IPv6 ff3x::/32. */
export const isSsmGroup = (ip: string): boolean =>
  isIP(ip) === 6 ? /^ff3[0-9a-f]:/i.test(ip) : isIP(ip) === 4 && ip.startsWith("232.");

/** The one address an allow-list entry names (`198.51.100.7`, `198.51.100.7/32`, `2001:db8::1/128`), or null. */
const singleAddress = (entry: string): string | null => {
  const block = parseSourceBlock(entry);
  return typeof block === "string" || block.prefix !== (block.family === 4 ? 32 : 128) ? null : block.address;
};

/**
 * The senders an input on a source-specific group joins it by (an IGMPv3 or MLDv2 join per sender): its allowed
 * senders' addresses. Null for any other group, joined for any sender (an allow-list there filters what arrives).
 */
export const sourceJoins = (
  ip: string,
  allowed: ReadonlyArray<string> | null | undefined,
): ReadonlyArray<string> | null => {
  if (!isSsmGroup(ip) || allowed == null || allowed.length === 0) return null;
  const addresses = allowed.map(singleAddress);
  return addresses.every((address) => address !== null) ? (addresses as ReadonlyArray<string>) : null;
};

/** Why an input on `ip` with this allow-list cannot be joined, in words (a field's message); null when it can. */
export const ssmSourcesProblem = (
  ip: string,
  allowed: ReadonlyArray<string> | null | undefined,
): string | null => {
  if (!isSsmGroup(ip)) return null;
  const range = isIP(ip) === 6 ? "ff3x::/32" : "232.0.0.0/8";
  if (allowed == null || allowed.length === 0)
    return `${ip} is a source-specific multicast group (${range}): a router forwards it only to a join that names its senders; list their addresses`;
  const block = allowed.find((entry) => singleAddress(entry) === null);
  if (block !== undefined)
    return `${ip} is a source-specific multicast group (${range}), joined by each sender's address: ${showGiven(block)} is a block; list the senders' addresses`;
  const family = isIP(ip);
  const other = allowed.find((entry) => isIP(singleAddress(entry) ?? "") !== family);
  return other === undefined
    ? null
    : `${ip} is an IPv${family} group: its senders are IPv${family} addresses, got ${showGiven(other)}`;
};
