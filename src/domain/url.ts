/**
 * Output URLs: the one place where operator text becomes something a socket, libsrt or ffmpeg
 * sees. Everything is validated into a typed target here, so the writers never pass raw operator text on.
 *
 * Masking rules (for logs, status, API and pages):
 * - rtmp/rtmps: the last path segment is the stream key and any query may carry tokens: both become `****`.
 * - srt: `passphrase` becomes `****`. A `streamid` is not a secret unless it carries one, and is shown as
 *   written (percent-encoding kept) except for these values, each replaced by `****`:
 *   - in SRT access-control form (`#!::r=...,m=...`): `s` (the session id) and any key whose name contains
 *     key, token, pass, secret, auth or sig (`r`, `m`, `h`, `t`, `u` are always shown);
 *   - in any other streamid: the value of a `name=value` part (parts split on `,` `;` `/` `?`) whose name
 *     contains key, token, pass, secret, auth or sig (`live/x?token=****`);
 *   - a streamid that is one bare word of 16+ characters mixing letters and digits, as providers' ingest
 *     keys are, is masked whole. `publish/mystream` or `live/channel1-2025-backup` are shown.
 *   The rest of the query keeps its own spelling, so what GET shows PUT accepts and stores unchanged.
 * - rtsp/rtsps: a user and password before the host become `****:****`, and any query `****` (the path is
 *   shown: it names the stream, and a server that wants a secret asks for the user and password).
 * - udp/rtp carry no secrets; nor does a file:// recording (its path is shown as written).
 * - hls: `hls://?dir=/path&target=4&window=6&mode=live|event&cuetags=1&push=http://origin/path`; shown as
 *   written except the push origin's path, which may carry a token (`push=http://host:port/****`).
 */
import { posix } from "node:path";
import { Either, Redacted } from "effect";
import { OutputError } from "./errors.ts";

export type OutputProtocol = "udp" | "rtp" | "srt" | "rtmp" | "rtmps" | "rtsp" | "rtsps" | "file" | "hls";

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

export interface RtspTarget {
  readonly protocol: "rtsp" | "rtsps";
  readonly host: string;
  readonly port: number;
  readonly url: Redacted.Redacted<string>;
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>;
  readonly masked: string;
}

export interface HlsTarget {
  readonly protocol: "hls";
  /**
   * Directory the playlist and segments are written to, absolute and normalised (no `.`, no repeated or
   * trailing `/`); null: kept in memory and served only.
   */
  readonly dir: string | null;
  readonly targetSeconds: number;
  /** Segments in a live playlist. */
  readonly window: number;
  readonly mode: "live" | "event";
  /** Also EXT-X-CUE-OUT / EXT-X-CUE-IN beside each EXT-X-DATERANGE. */
  readonly cueTags: boolean;
  /** HTTP origin the playlist and segments are PUT to (`<push>/index.m3u8`, `<push>/<segment>.ts`). */
  readonly push: Redacted.Redacted<string> | null;
  /** The push origin as it may be shown (`http://host:port/****`). */
  readonly pushShown: string | null;
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>;
  readonly masked: string;
}

/** A recording: the TS as received, in files of `rotateSeconds` named by their start time, in `directory`. */
export interface FileTarget {
  readonly protocol: "file";
  /** Absolute, normalised (no `.` or `..`, no trailing `/`). */
  readonly directory: string;
  readonly rotateSeconds: number;
  /** Files whose last write is older than this are deleted; null keeps them whatever their age. */
  readonly keepHours: number | null;
  /** The most the directory's recordings may take, oldest deleted first; null for no limit. */
  readonly maxBytes: number | null;
  readonly masked: string;
}

export type OutputTarget = DatagramTarget | SrtTarget | RtmpTarget | RtspTarget | FileTarget | HlsTarget;

const supportedSchemes: ReadonlyArray<OutputProtocol> = [
  "udp",
  "rtp",
  "srt",
  "rtmp",
  "rtmps",
  "rtsp",
  "rtsps",
  "file",
  "hls",
];

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

const parseDatagram = (protocol: "udp" | "rtp", raw: string, url: URL): DatagramTarget | OutputError => {
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
    // Nothing in a datagram URL is secret: it is shown exactly as written.
    masked: raw,
  };
};

const accessControlShown = new Set(["r", "m", "h", "t", "u"]);
/** A parameter whose name says it carries a secret. */
const secretName = /key|token|pass|secret|auth|sig/i;

const decoded = (text: string): string => {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
};

const looksLikeToken = (text: string) => text.length >= 16 && /[A-Za-z]/.test(text) && /\d/.test(text);

/**
 * The streamid as it may be shown, written as it was given (percent-encoding kept), and the secrets it carries
 * (see the masking rules at the top of this file).
 */
export const maskStreamId = (raw: string): { shown: string; secrets: ReadonlyArray<string> } => {
  const accessControl = /^(#|%23)!::/i.exec(raw)?.[0];
  const body = accessControl === undefined ? raw : raw.slice(accessControl.length);
  if (accessControl === undefined && !/[=,;/?]/.test(decoded(body))) {
    const whole = decoded(raw);
    return looksLikeToken(whole) ? { shown: "****", secrets: [whole] } : { shown: raw, secrets: [] };
  }
  const separators = accessControl === undefined ? /(,|;|\/|\?|%2C|%3B|%2F|%3F)/i : /(,|%2C)/i;
  const secrets: string[] = [];
  const shown = body
    .split(separators)
    .map((piece, index) => {
      if (index % 2 === 1) return piece;
      const equals = /=|%3D/i.exec(piece);
      if (equals === null) return piece;
      const name = decoded(piece.slice(0, equals.index));
      const value = piece.slice(equals.index + equals[0].length);
      const secret =
        accessControl === undefined
          ? secretName.test(name)
          : !accessControlShown.has(name) && (name === "s" || secretName.test(name));
      if (!secret || value === "") return piece;
      secrets.push(decoded(value));
      return `${piece.slice(0, equals.index + equals[0].length)}****`;
    })
    .join("");
  return { shown: `${accessControl ?? ""}${shown}`, secrets };
};

/** The URL as written up to its query. */
const beforeQuery = (raw: string): string => {
  const mark = raw.indexOf("?");
  return mark < 0 ? raw : raw.slice(0, mark);
};

/** The query as written after `?` (no fragment is accepted, so it runs to the end). */
const rawQuery = (raw: string): string => {
  const mark = raw.indexOf("?");
  return mark < 0 ? "" : raw.slice(mark + 1);
};

const parseSrt = (raw: string, url: URL): SrtTarget | OutputError => {
  // Parameters are read from the URL as normalised (`srt://:port` listens on 0.0.0.0); shown as written.
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
  // `****` is the masked passphrase sent back from a GET: the control plane puts the stored one in its place,
  // or refuses the URL as masked.
  if (passphrase !== null && passphrase !== "****" && (passphrase.length < 10 || passphrase.length > 79)) {
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

  // Shown as written: each parameter keeps its own spelling and percent-encoding, only secrets become ****.
  const streamIdSecrets: string[] = [];
  const masked = (streamIdText: string) => {
    const mask = maskStreamId(streamIdText);
    streamIdSecrets.push(...mask.secrets);
    return mask.shown;
  };
  const query = rawQuery(raw);
  const shownParams =
    query === ""
      ? []
      : query.split("&").map((piece) => {
          const equals = piece.indexOf("=");
          const name = decoded(equals < 0 ? piece : piece.slice(0, equals));
          const value = piece.slice(equals + 1);
          if (name === "passphrase") return `${piece.slice(0, equals + 1)}****`;
          if (equals < 0) return piece;
          if (name === "streamid") return `${piece.slice(0, equals + 1)}${masked(value)}`;
          if (name === "allowstreamid")
            return `${piece.slice(0, equals + 1)}${value.split(",").map(masked).join(",")}`;
          return piece;
        });
  const secrets = [...(passphrase === null ? [] : [passphrase]), ...streamIdSecrets];
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
    // Scheme and address as written (they hold no secret: user and password are refused), then the query.
    masked: `${beforeQuery(raw)}${shownParams.length === 0 ? "" : `?${shownParams.join("&")}`}`,
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

const parseRtsp = (protocol: "rtsp" | "rtsps", raw: string, url: URL): RtspTarget | OutputError => {
  const port = parsePort(url.port, protocol === "rtsp" ? 554 : 322);
  if (port instanceof OutputError) return port;
  if (url.pathname === "" || url.pathname === "/") {
    return invalid(`an ${protocol} URL needs a path naming the stream: ${protocol}://host:port/path`);
  }
  const password = decoded(url.password);
  const query = url.search.slice(1);
  const hostPart = url.port === "" ? url.hostname : authority(url.hostname, port);
  const credentials =
    url.username === "" && url.password === "" ? "" : url.password === "" ? "****@" : "****:****@";
  return {
    protocol,
    host: url.hostname,
    port,
    url: Redacted.make(raw),
    // The user name is masked in the URL's shape only: by value it would mask ordinary words ("publisher").
    secrets: [password, url.password, query]
      .filter((secret) => secret !== "")
      .map((secret) => Redacted.make(secret)),
    masked: `${protocol}://${credentials}${hostPart}${url.pathname}${query === "" ? "" : "?****"}`,
  };
};

/** Characters a recording's directory may hold: no spaces, no percent-escapes, nothing a shell reads. */
const plainPath = /^(?:\/[A-Za-z0-9._-]+)+$/;

const parseDecimal = (name: string, text: string, min: number, max: number): number | OutputError => {
  const value = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  return Number.isFinite(value) && value >= min && value <= max
    ? value
    : invalid(`${name} must be a number from ${min} to ${max}, got '${text}'`);
};

const parseFile = (raw: string): FileTarget | OutputError => {
  const rest = raw.slice("file://".length);
  const mark = rest.indexOf("?");
  const path = (mark < 0 ? rest : rest.slice(0, mark)).replace(/\/+$/, "");
  if (!path.startsWith("/")) {
    return invalid("a file URL names an absolute directory: file:///var/lib/distributary/recordings/name");
  }
  if (!plainPath.test(path)) {
    return invalid("a recording directory may hold only letters, digits, '.', '_', '-' and '/'");
  }
  if (path.split("/").some((segment) => segment === "." || segment === "..")) {
    return invalid("a recording directory must not contain '.' or '..' segments");
  }
  const params = readParams(new URL(`file:///?${mark < 0 ? "" : rest.slice(mark + 1)}`), [
    "rotate",
    "keep_hours",
    "max_gb",
  ]);
  if (params instanceof OutputError) return params;
  const rotateText = params.get("rotate");
  const rotateSeconds = rotateText === undefined ? 3600 : parseInteger("rotate", rotateText, 1, 86_400);
  if (rotateSeconds instanceof OutputError) return rotateSeconds;
  const keepText = params.get("keep_hours");
  const keepHours = keepText === undefined ? null : parseDecimal("keep_hours", keepText, 0.001, 87_600);
  if (keepHours instanceof OutputError) return keepHours;
  const maxText = params.get("max_gb");
  const maxGb = maxText === undefined ? null : parseDecimal("max_gb", maxText, 0.000001, 1_000_000);
  if (maxGb instanceof OutputError) return maxGb;
  return {
    protocol: "file",
    directory: path,
    rotateSeconds,
    keepHours,
    maxBytes: maxGb === null ? null : Math.floor(maxGb * 1e9),
    masked: raw,
  };
};

/**
 * Why a recording may not be written in `directory`, or null if it may: recordings go in a directory of their
 * own under `root` (the service's recordings directory), never in the root itself or outside it.
 */
export const recordingPlaceProblem = (directory: string, root: string | null): string | null => {
  if (root === null) {
    return "recording to files is off on this server: start it with DISTRIBUTARY_RECORDINGS_DIR set";
  }
  const base = root.replace(/\/+$/, "");
  return directory.startsWith(`${base}/`)
    ? null
    : `${directory} is outside the recordings directory ${base}: record in a directory under it, e.g. file://${base}/channel-name`;
};

const parseHls = (raw: string, url: URL): HlsTarget | OutputError => {
  if (url.hostname !== "" || (url.pathname !== "" && url.pathname !== "/")) {
    return invalid("an hls URL has no host or path: hls://?dir=/path&target=4&window=6&mode=live");
  }
  const params = readParams(url, ["dir", "target", "window", "mode", "cuetags", "push"]);
  if (params instanceof OutputError) return params;
  const dirText = params.get("dir") ?? null;
  if (dirText !== null && (!dirText.startsWith("/") || dirText.split("/").includes(".."))) {
    return invalid(`dir must be an absolute path without '..', got '${dirText}'`);
  }
  // Normalised, as a recording's directory is: the place and duplicate checks compare one spelling.
  const dir = dirText === null ? null : posix.normalize(dirText).replace(/(.)\/+$/, "$1");
  const targetSeconds = parseInteger("target", params.get("target") ?? "4", 1, 60);
  if (targetSeconds instanceof OutputError) return targetSeconds;
  const window = parseInteger("window", params.get("window") ?? "6", 2, 1000);
  if (window instanceof OutputError) return window;
  const mode = params.get("mode") ?? "live";
  if (mode !== "live" && mode !== "event") return invalid(`mode must be live or event, got '${mode}'`);
  const cueTagsText = params.get("cuetags") ?? "0";
  if (cueTagsText !== "0" && cueTagsText !== "1")
    return invalid(`cuetags must be 0 or 1, got '${cueTagsText}'`);
  const pushText = params.get("push") ?? null;
  let push: URL | null = null;
  if (pushText !== null) {
    try {
      push = new URL(pushText);
    } catch {
      return invalid(`push must be an http:// or https:// URL, got '${pushText}'`);
    }
    if (push.protocol !== "http:" && push.protocol !== "https:") {
      return invalid("push must be an http:// or https:// URL");
    }
    if (push.username !== "" || push.password !== "" || push.search !== "" || push.hash !== "") {
      return invalid("push takes an origin and a path, without user, password, query or fragment");
    }
    const hostProblem = checkHost(push.hostname);
    if (hostProblem !== null) return hostProblem;
  }
  // An event playlist keeps every segment: in memory only it would grow without end.
  if (mode === "event" && dir === null && push === null) {
    return invalid("mode=event keeps every segment: give a dir or a push origin to write them to");
  }
  const pushPath = push === null ? "" : push.pathname.replace(/\/+$/, "");
  const maskedPush = push === null ? null : `${push.protocol}//${push.host}${pushPath === "" ? "" : "/****"}`;
  const query = rawQuery(raw);
  const shown =
    query === ""
      ? []
      : query.split("&").map((piece) => {
          // By the decoded name, as the parameter was read: `p%75sh=` is the push origin too.
          const equals = piece.indexOf("=");
          const name = decoded(equals < 0 ? piece : piece.slice(0, equals));
          return name === "push" && equals >= 0 ? `${piece.slice(0, equals + 1)}${maskedPush}` : piece;
        });
  return {
    protocol: "hls",
    dir,
    targetSeconds,
    window,
    mode,
    cueTags: cueTagsText === "1",
    push: push === null ? null : Redacted.make(`${push.protocol}//${push.host}${pushPath}`),
    pushShown: maskedPush,
    secrets: pushPath === "" ? [] : [Redacted.make(pushPath.slice(1))],
    masked: `hls://${shown.length === 0 ? "" : `?${shown.join("&")}`}`,
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
    return invalid(
      `${named} is not an output; use udp://, rtp://, srt://, rtmp://, rtmps://, rtsp://, rtsps://, file:// or hls://`,
    );
  }
  if (protocol === "hls") {
    let hls: URL;
    try {
      hls = new URL(raw);
    } catch {
      return invalid("'hls' URL could not be parsed; expected hls://?dir=/path&target=4");
    }
    if (hls.username !== "" || hls.password !== "" || hls.hash !== "") {
      return invalid("an hls URL has no user, password or '#' fragment");
    }
    return parseHls(raw, hls);
  }
  if (protocol === "file") return parseFile(raw);
  // `srt://:port?mode=listener` is the customary way to listen on every interface.
  const normalised = protocol === "srt" ? raw.replace(/^srt:\/\/:/i, "srt://0.0.0.0:") : raw;
  let url: URL;
  try {
    url = new URL(normalised);
  } catch {
    return invalid(`'${protocol}' URL could not be parsed; expected ${protocol}://host:port`);
  }
  if (!normalised.slice(protocol.length).startsWith("://")) return invalid(`expected ${protocol}://host...`);
  if ((url.username !== "" || url.password !== "") && protocol !== "rtsp" && protocol !== "rtsps")
    return invalid("user names and passwords in the URL are not supported");
  if (url.hash !== "") return invalid("the URL has a '#' fragment; write '#' inside a value as %23");
  const hostProblem = checkHost(url.hostname);
  if (hostProblem !== null) return hostProblem;
  switch (protocol) {
    case "udp":
    case "rtp":
      return parseDatagram(protocol, raw, url);
    case "srt":
      return parseSrt(raw, url);
    case "rtmp":
    case "rtmps":
      return parseRtmp(protocol, normalised, url);
    case "rtsp":
    case "rtsps":
      return parseRtsp(protocol, raw, url);
  }
  return invalid(`${protocol} URL could not be parsed`);
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
