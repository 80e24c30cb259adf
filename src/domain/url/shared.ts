/**
 * What every output URL's parser shares: the checks on its text and host, numbers and query parameters read
 * with one error wording, and the URL's pieces as written (masking shows what was written, not a re-encoding).
 */
import { isIPv6 } from "node:net";
import { OutputError } from "../channel/output-error.ts";

// Printable ASCII only: no whitespace, control or non-ASCII characters that a tool might read differently.
const notPrintableAscii = /[^\x21-\x7e]/;
// None of these belong in a destination URL; refusing them keeps a URL from ever meaning something else to
// a tool or to anyone who pastes it into a shell.
const shellMetacharacters = /[`$;|<>\\"'(){}]/;
const hostnamePattern =
  /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const ipv4Pattern = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export const invalid = (message: string) => new OutputError({ reason: "invalid_url", message });

export const checkText = (what: string, text: string): OutputError | null => {
  if (notPrintableAscii.test(text)) {
    return invalid(`${what} contains whitespace, control or non-ASCII characters`);
  }
  const meta = shellMetacharacters.exec(text);
  if (meta !== null) return invalid(`${what} contains the character '${meta[0]}', which is not allowed`);
  return null;
};

export const ipv4Octets = (host: string): ReadonlyArray<number> | null => {
  const match = ipv4Pattern.exec(host);
  if (match === null) return null;
  const octets = match.slice(1).map(Number);
  return octets.every((octet) => octet <= 255) ? octets : null;
};

/**
 * What is wrong with a host in brackets, `shown` as written, whose IPv6 literal is `inner`: a zone, or not an
 * address; null: nothing.
 */
const bracketedProblem = (shown: string, inner: string): OutputError | null => {
  if (inner.includes("%"))
    return invalid(
      `'${shown}': a URL cannot carry an IPv6 zone (%interface); use a global or unique local address`,
    );
  return isIPv6(inner) ? null : invalid(`'${shown}' is not an IPv6 address (write it as [2001:db8::1]:port)`);
};

/**
 * A URL's host as WHATWG URL gives it (`[2001:db8::1]` for IPv6) checked: a name, an IPv4 address or an IPv6
 * address in brackets. A zone (`%eth0`) cannot be written in a URL; say which interface with a global address.
 */
export const checkHost = (host: string): OutputError | null => {
  if (host === "") return invalid("the URL has no host");
  if (host.startsWith("[")) return bracketedProblem(host, bareHost(host));
  if (host.includes(":"))
    return invalid(`'${host}' looks like an IPv6 address: write it in brackets, [${host}]:port`);
  if (ipv4Pattern.test(host))
    return ipv4Octets(host) === null ? invalid(`'${host}' is not an IPv4 address`) : null;
  return hostnamePattern.test(host) ? null : invalid(`'${host}' is not a valid host name`);
};

/**
 * Why a URL that WHATWG URL could not parse fails, when it is its IPv6 host: a bracketed literal that is not an
 * IPv6 address, or an IPv6 address written without brackets; null otherwise (the caller's own words apply).
 */
export const ipv6HostProblem = (raw: string): OutputError | null => {
  const authorityText = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/@?(?:[^@/?]*@)?([^/?]*)/.exec(raw)?.[1] ?? "";
  const bracketed = /^\[([^\]]*)\](?::(\d*))?$/.exec(authorityText);
  if (bracketed !== null) return bracketedProblem(`[${bracketed[1] ?? ""}]`, bracketed[1] ?? "");
  if (authorityText.startsWith("["))
    return invalid(`'${authorityText}': an IPv6 address is written [address]:port`);
  return (authorityText.match(/:/g)?.length ?? 0) > 1
    ? invalid(`'${authorityText}' looks like an IPv6 address: write it in brackets, [address]:port`)
    : null;
};

/** The address as a socket takes it: an IPv6 literal without its URL brackets, lower case; anything else as is. */
export const bareHost = (host: string): string =>
  host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1).toLowerCase() : host;

/** An IPv6 multicast group (ff00::/8), `ff0e::1` or `ff3e::8000:1` (source-specific). */
export const isIPv6Multicast = (host: string): boolean => isIPv6(host) && /^ff[0-9a-f]{2}:/i.test(host);

/** A multicast group: IPv4 224.0.0.0/4 or IPv6 ff00::/8 (bare, as bareHost gives it). */
export const isMulticast = (host: string): boolean => {
  if (isIPv6Multicast(host)) return true;
  const first = ipv4Octets(host)?.[0];
  return first !== undefined && first >= 224 && first <= 239;
};

export const parsePort = (text: string, fallback: number | null): number | OutputError => {
  if (text === "") return fallback ?? invalid("the URL needs a port (host:port)");
  const port = Number(text);
  return Number.isInteger(port) && port >= 1 && port <= 65535
    ? port
    : invalid(`port ${text} is out of range`);
};

export const parseInteger = (name: string, text: string, min: number, max: number): number | OutputError => {
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  return Number.isInteger(value) && value >= min && value <= max
    ? value
    : invalid(`${name} must be a whole number from ${min} to ${max}, got '${text}'`);
};

/** Query parameters, decoded, refusing unknown names and repeats so nothing unvetted reaches a tool. */
export const readParams = (url: URL, allowed: ReadonlyArray<string>): Map<string, string> | OutputError => {
  const params = new Map<string, string>();
  for (const [name, value] of url.searchParams) {
    if (!allowed.includes(name)) {
      const accepted = allowed.length === 0 ? "none" : allowed.join(", ");
      return invalid(`unknown parameter '${name}' for ${url.protocol.slice(0, -1)} (accepted: ${accepted})`);
    }
    if (params.has(name)) return invalid(`parameter '${name}' is given twice`);
    // A decoded '&' would change the meaning of the URL wherever it is shown or pasted again.
    const problem =
      checkText(`parameter '${name}'`, value) ??
      (value.includes("&") ? invalid(`parameter '${name}' contains '&'`) : null);
    if (problem !== null) return problem;
    params.set(name, value);
  }
  return params;
};

/** `host:port` as people and URLs write it: an IPv6 address in brackets, `[2001:db8::1]:5000`. */
export const authority = (host: string, port: number) =>
  `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;

export const decoded = (text: string): string => {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
};

/** The URL as written up to its query. */
export const beforeQuery = (raw: string): string => {
  const mark = raw.indexOf("?");
  return mark < 0 ? raw : raw.slice(0, mark);
};

/** The query as written after `?` (no fragment is accepted, so it runs to the end). */
export const rawQuery = (raw: string): string => {
  const mark = raw.indexOf("?");
  return mark < 0 ? "" : raw.slice(mark + 1);
};

export const parseDecimal = (name: string, text: string, min: number, max: number): number | OutputError => {
  const value = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  return Number.isFinite(value) && value >= min && value <= max
    ? value
    : invalid(`${name} must be a number from ${min} to ${max}, got '${text}'`);
};
