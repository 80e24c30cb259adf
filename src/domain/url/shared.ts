/**
 * What every output URL's parser shares: the checks on its text and host, numbers and query parameters read
 * with one error wording, and the URL's pieces as written (masking shows what was written, not a re-encoding).
 */
import { OutputError } from "../output-error.ts";

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

export const checkHost = (host: string): OutputError | null => {
  if (host === "") return invalid("the URL has no host");
  if (host.startsWith("["))
    return invalid("IPv6 destinations are not supported yet; use an IPv4 address or name");
  if (ipv4Pattern.test(host))
    return ipv4Octets(host) === null ? invalid(`'${host}' is not an IPv4 address`) : null;
  return hostnamePattern.test(host) ? null : invalid(`'${host}' is not a valid host name`);
};

export const isMulticast = (host: string): boolean => {
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

export const authority = (host: string, port: number) => `${host}:${port}`;

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
