/**
 * Output URLs: the one place where operator text becomes something a socket, srt-live-transmit or ffmpeg
 * sees. Everything is validated into a typed target here, so the writers never pass raw operator text on.
 *
 * Masking rules (for logs, status, API and pages):
 * - rtmp/rtmps: the last path segment is the stream key and any query may carry tokens: both become `****`.
 * - srt: `passphrase` becomes `****`. A `streamid` in SRT access-control form (`#!::r=...,m=...`) is shown
 *   with its `r`, `m`, `h`, `t` and `u` values and every other value (`s`, the session token, and custom
 *   keys) masked. A plain streamid is masked when it looks like a token (16+ characters mixing letters and
 *   digits, as providers' ingest keys do) and shown otherwise (`live/channel1`).
 * - udp/rtp carry no secrets.
 */
import { Either, Redacted } from "effect";
import { OutputError } from "./errors.ts";

export type OutputProtocol = "udp" | "rtp" | "srt" | "rtmp" | "rtmps";

export interface DatagramTarget {
  readonly protocol: "udp" | "rtp";
  readonly host: string;
  readonly port: number;
  readonly multicast: boolean;
  readonly ttl: number | null;
  /** Local address to send from; for multicast also the interface to send on. */
  readonly localAddress: string | null;
  readonly masked: string;
}

export type SrtMode = "caller" | "listener";

export interface SrtTarget {
  readonly protocol: "srt";
  /** For a listener, the address to bind (`0.0.0.0` for all interfaces). */
  readonly host: string;
  readonly port: number;
  readonly mode: SrtMode;
  readonly latencyMs: number | null;
  readonly passphrase: Redacted.Redacted<string> | null;
  readonly pbkeylen: 16 | 24 | 32 | null;
  readonly streamId: string | null;
  /** SRTO_MAXBW in bytes per second (0: relative to the input rate, with `oheadbw`). */
  readonly maxbw: number | null;
  /** SRTO_OHEADBW: percent over the input rate for retransmissions when maxbw is 0. */
  readonly oheadbw: number | null;
  /** SRTO_PAYLOADSIZE: bytes of TS per SRT packet, a multiple of 188 (default 1316). */
  readonly payloadSize: number;
  /** Listener only: how many receivers are served at once. */
  readonly maxReceivers: number;
  /** Listener only: the stream ids a receiver may ask for; null takes any. */
  readonly allowedStreamIds: ReadonlyArray<string> | null;
  /** Values that must be masked wherever a peer's or libsrt's words are repeated. */
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>;
  readonly masked: string;
}

export interface RtmpTarget {
  readonly protocol: "rtmp" | "rtmps";
  readonly host: string;
  readonly port: number;
  readonly url: Redacted.Redacted<string>;
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>;
  readonly masked: string;
}

export type OutputTarget = DatagramTarget | SrtTarget | RtmpTarget;

const supportedSchemes: ReadonlyArray<OutputProtocol> = ["udp", "rtp", "srt", "rtmp", "rtmps"];

// Printable ASCII only: no whitespace, control or non-ASCII characters that a tool might read differently.
const notPrintableAscii = /[^\x21-\x7e]/;
// None of these belong in a destination URL; refusing them keeps a URL from ever meaning something else to
// a tool or to anyone who pastes it into a shell.
const shellMetacharacters = /[`$;|<>\\"'(){}]/;
const hostnamePattern =
  /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const ipv4Pattern = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

const invalid = (message: string) => new OutputError({ reason: "invalid_url", message });

const checkText = (what: string, text: string): OutputError | null => {
  if (notPrintableAscii.test(text)) {
    return invalid(`${what} contains whitespace, control or non-ASCII characters`);
  }
  const meta = shellMetacharacters.exec(text);
  if (meta !== null) return invalid(`${what} contains the character '${meta[0]}', which is not allowed`);
  return null;
};

const ipv4Octets = (host: string): ReadonlyArray<number> | null => {
  const match = ipv4Pattern.exec(host);
  if (match === null) return null;
  const octets = match.slice(1).map(Number);
  return octets.every((octet) => octet <= 255) ? octets : null;
};

const checkHost = (host: string): OutputError | null => {
  if (host === "") return invalid("the URL has no host");
  if (host.startsWith("["))
    return invalid("IPv6 destinations are not supported yet; use an IPv4 address or name");
  if (ipv4Pattern.test(host))
    return ipv4Octets(host) === null ? invalid(`'${host}' is not an IPv4 address`) : null;
  return hostnamePattern.test(host) ? null : invalid(`'${host}' is not a valid host name`);
};

const isMulticast = (host: string): boolean => {
  const first = ipv4Octets(host)?.[0];
  return first !== undefined && first >= 224 && first <= 239;
};

const parsePort = (text: string, fallback: number | null): number | OutputError => {
  if (text === "") return fallback ?? invalid("the URL needs a port (host:port)");
  const port = Number(text);
  return Number.isInteger(port) && port >= 1 && port <= 65535
    ? port
    : invalid(`port ${text} is out of range`);
};

const parseInteger = (name: string, text: string, min: number, max: number): number | OutputError => {
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  return Number.isInteger(value) && value >= min && value <= max
    ? value
    : invalid(`${name} must be a whole number from ${min} to ${max}, got '${text}'`);
};

/** Query parameters, decoded, refusing unknown names and repeats so nothing unvetted reaches a tool. */
const readParams = (url: URL, allowed: ReadonlyArray<string>): Map<string, string> | OutputError => {
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

const authority = (host: string, port: number) => `${host}:${port}`;

const parseDatagram = (protocol: "udp" | "rtp", url: URL): DatagramTarget | OutputError => {
  if (url.pathname !== "" && url.pathname !== "/") return invalid(`a ${protocol} URL has no path`);
  const port = parsePort(url.port, null);
  if (port instanceof OutputError) return port;
  const params = readParams(url, ["ttl", "localaddr"]);
  if (params instanceof OutputError) return params;
  const ttlText = params.get("ttl");
  const ttl = ttlText === undefined ? null : parseInteger("ttl", ttlText, 1, 255);
  if (ttl instanceof OutputError) return ttl;
  const localAddress = params.get("localaddr") ?? null;
  if (localAddress !== null && ipv4Octets(localAddress) === null) {
    return invalid(`localaddr must be an IPv4 address of this machine, got '${localAddress}'`);
  }
  return {
    protocol,
    host: url.hostname,
    port,
    multicast: isMulticast(url.hostname),
    ttl,
    localAddress,
    masked: `${protocol}://${authority(url.hostname, port)}${url.search}`,
  };
};

const accessControlShown = new Set(["r", "m", "h", "t", "u"]);

/** The streamid as it may be shown, and the parts of it that are secret. */
export const maskStreamId = (streamId: string): { shown: string; secrets: ReadonlyArray<string> } => {
  if (streamId.startsWith("#!::")) {
    const secrets: Array<string> = [];
    const pairs = streamId
      .slice(4)
      .split(",")
      .map((pair) => {
        const equals = pair.indexOf("=");
        if (equals < 0) return pair;
        const key = pair.slice(0, equals);
        const value = pair.slice(equals + 1);
        if (accessControlShown.has(key) || value === "") return pair;
        secrets.push(value);
        return `${key}=****`;
      });
    return { shown: `#!::${pairs.join(",")}`, secrets };
  }
  const looksLikeToken = streamId.length >= 16 && /[A-Za-z]/.test(streamId) && /\d/.test(streamId);
  return looksLikeToken ? { shown: "****", secrets: [streamId] } : { shown: streamId, secrets: [] };
};

const parseSrt = (url: URL): SrtTarget | OutputError => {
  if (url.pathname !== "" && url.pathname !== "/") {
    return invalid("an srt URL has no path; give a stream id as ?streamid=");
  }
  const port = parsePort(url.port, null);
  if (port instanceof OutputError) return port;
  const params = readParams(url, [
    "mode",
    "latency",
    "passphrase",
    "pbkeylen",
    "streamid",
    "maxbw",
    "oheadbw",
    "payloadsize",
    "maxreceivers",
    "allowstreamid",
  ]);
  if (params instanceof OutputError) return params;
  const mode = params.get("mode") ?? "caller";
  if (mode !== "caller" && mode !== "listener")
    return invalid(`mode must be caller or listener, got '${mode}'`);
  const latencyText = params.get("latency");
  const latencyMs = latencyText === undefined ? null : parseInteger("latency", latencyText, 0, 60_000);
  if (latencyMs instanceof OutputError) return latencyMs;
  const passphrase = params.get("passphrase") ?? null;
  if (passphrase !== null && (passphrase.length < 10 || passphrase.length > 79)) {
    return invalid("passphrase must be 10 to 79 characters long");
  }
  const pbkeylenText = params.get("pbkeylen");
  let pbkeylen: 16 | 24 | 32 | null = null;
  if (pbkeylenText !== undefined) {
    if (passphrase === null) return invalid("pbkeylen only applies with a passphrase");
    if (pbkeylenText !== "16" && pbkeylenText !== "24" && pbkeylenText !== "32") {
      return invalid(`pbkeylen must be 16, 24 or 32, got '${pbkeylenText}'`);
    }
    pbkeylen = pbkeylenText === "16" ? 16 : pbkeylenText === "24" ? 24 : 32;
  }
  const streamId = params.get("streamid") ?? null;
  if (streamId !== null && streamId.length > 512) return invalid("streamid is longer than 512 characters");
  const streamIdMask = streamId === null ? null : maskStreamId(streamId);
  const number = (name: string, min: number, max: number): number | null | OutputError => {
    const text = params.get(name);
    return text === undefined ? null : parseInteger(name, text, min, max);
  };
  const maxbw = number("maxbw", 0, 10_000_000_000);
  if (maxbw instanceof OutputError) return maxbw;
  const oheadbw = number("oheadbw", 5, 100);
  if (oheadbw instanceof OutputError) return oheadbw;
  const payloadSize = number("payloadsize", 188, 1316);
  if (payloadSize instanceof OutputError) return payloadSize;
  if (payloadSize !== null && payloadSize % 188 !== 0) {
    return invalid(`payloadsize must be a multiple of 188 (whole TS packets) up to 1316, got ${payloadSize}`);
  }
  const maxReceivers = number("maxreceivers", 1, 64);
  if (maxReceivers instanceof OutputError) return maxReceivers;
  const allowText = params.get("allowstreamid");
  if (mode !== "listener" && (maxReceivers !== null || allowText !== undefined)) {
    return invalid("maxreceivers and allowstreamid apply to mode=listener only");
  }
  const allowedStreamIds = allowText === undefined ? null : allowText.split(",").filter((id) => id !== "");
  if (allowedStreamIds !== null && allowedStreamIds.length === 0) {
    return invalid("allowstreamid needs at least one stream id (several separated by commas)");
  }
  const allowedMasks = (allowedStreamIds ?? []).map(maskStreamId);

  const shownParams = [...params].map(([name, value]) => {
    if (name === "passphrase") return "passphrase=****";
    if (name === "streamid" && streamIdMask !== null) return `streamid=${streamIdMask.shown}`;
    if (name === "allowstreamid") return `allowstreamid=${allowedMasks.map((mask) => mask.shown).join(",")}`;
    return `${name}=${value}`;
  });
  const secrets = [
    ...(passphrase === null ? [] : [passphrase]),
    ...(streamIdMask?.secrets ?? []),
    ...allowedMasks.flatMap((mask) => mask.secrets),
  ];
  return {
    protocol: "srt",
    host: url.hostname,
    port,
    mode,
    latencyMs,
    passphrase: passphrase === null ? null : Redacted.make(passphrase),
    pbkeylen,
    streamId,
    maxbw,
    oheadbw,
    payloadSize: payloadSize ?? 1316,
    maxReceivers: maxReceivers ?? 8,
    allowedStreamIds,
    secrets: secrets.map((secret) => Redacted.make(secret)),
    masked: `srt://${authority(url.hostname, port)}${shownParams.length === 0 ? "" : `?${shownParams.join("&")}`}`,
  };
};

const parseRtmp = (protocol: "rtmp" | "rtmps", raw: string, url: URL): RtmpTarget | OutputError => {
  const port = parsePort(url.port, protocol === "rtmp" ? 1935 : 443);
  if (port instanceof OutputError) return port;
  const segments = url.pathname.split("/").filter((segment) => segment !== "");
  const key = segments.at(-1);
  if (segments.length < 2 || key === undefined) {
    return invalid(`an ${protocol} URL needs an application and a stream key: ${protocol}://host/app/key`);
  }
  const query = url.search.slice(1);
  const appPath = segments.slice(0, -1).join("/");
  const hostPart = url.port === "" ? url.hostname : authority(url.hostname, port);
  return {
    protocol,
    host: url.hostname,
    port,
    url: Redacted.make(raw),
    secrets: [key, ...(query === "" ? [] : [query])].map((secret) => Redacted.make(secret)),
    masked: `${protocol}://${hostPart}/${appPath}/****`,
  };
};

/** Validates an output URL into a target; the error message says what to change. */
export const parseOutputUrl = (raw: string): Either.Either<OutputTarget, OutputError> => {
  const result = parseChecked(raw);
  return result instanceof OutputError ? Either.left(result) : Either.right(result);
};

const parseChecked = (raw: string): OutputTarget | OutputError => {
  if (raw === "") return invalid("the output URL is empty");
  if (raw.startsWith("-")) return invalid("the output URL must not start with '-'");
  const textProblem = checkText("the output URL", raw);
  if (textProblem !== null) return textProblem;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(raw)?.[1]?.toLowerCase();
  const protocol = supportedSchemes.find((supported) => supported === scheme);
  if (protocol === undefined) {
    const named = scheme === undefined ? "no scheme" : `scheme '${scheme}:'`;
    return invalid(`${named} is not an output; use udp://, rtp://, srt://, rtmp:// or rtmps://`);
  }
  // `srt://:port?mode=listener` is the customary way to listen on every interface.
  const normalised = protocol === "srt" ? raw.replace(/^srt:\/\/:/i, "srt://0.0.0.0:") : raw;
  let url: URL;
  try {
    url = new URL(normalised);
  } catch {
    return invalid(`'${protocol}' URL could not be parsed; expected ${protocol}://host:port`);
  }
  if (!normalised.slice(protocol.length).startsWith("://")) return invalid(`expected ${protocol}://host...`);
  if (url.username !== "" || url.password !== "")
    return invalid("user names and passwords in the URL are not supported");
  if (url.hash !== "") return invalid("the URL has a '#' fragment; write '#' inside a value as %23");
  const hostProblem = checkHost(url.hostname);
  if (hostProblem !== null) return hostProblem;
  switch (protocol) {
    case "udp":
    case "rtp":
      return parseDatagram(protocol, url);
    case "srt":
      return parseSrt(url);
    case "rtmp":
    case "rtmps":
      return parseRtmp(protocol, normalised, url);
  }
};

/**
 * A URL safe to show. Invalid URLs are masked too, keeping only scheme and host, because an operator's typo
 * may still contain a key.
 */
export const maskUrl = (raw: string): string => {
  const parsed = parseChecked(raw);
  if (!(parsed instanceof OutputError)) return parsed.masked;
  try {
    const url = new URL(raw);
    const rest = url.pathname.replace(/^\/$/, "") + url.search + url.hash;
    return `${url.protocol}//${url.host}${rest === "" ? "" : "/****"}`;
  } catch {
    return "****";
  }
};
