/**
 * rist:// inputs and outputs (librist): `rist://@:port?…` or `rist://@address:port?…` listens, `rist://host:port?…`
 * connects. Several peers of one output are several such URLs separated by commas, each with its own `weight`.
 * Only librist's own URL keys are taken (those below, each checked here), plus `profile` (simple or main, main by
 * default as ristsender and ffmpeg have it), which is the context's and not a peer's. The URL handed to librist
 * is rebuilt from the checked values, so no operator text reaches it unvetted; `secret` and `password` are
 * secrets: `****` wherever the URL is shown, in `secrets` for masking by value.
 */
import { posix } from "node:path";
import * as Redacted from "effect/Redacted";
import { OutputError } from "../channel/output-error.ts";
import {
  bareHost,
  beforeQuery,
  checkHost,
  invalid,
  ipv6HostProblem,
  parseInteger,
  parsePort,
  rawQuery,
  readParams,
} from "./shared.ts";

export type RistProfile = "simple" | "main";

export interface RistPeer {
  /** listener: we wait for the peer on `host:port` (`0.0.0.0` for every interface); caller: we connect. */
  readonly mode: "listener" | "caller";
  readonly host: string;
  readonly port: number;
  readonly weight: number | null;
  /** The AES key size when a `secret` is given (128 unless `aes-type=256`). */
  readonly aesType: 128 | 256 | null;
  readonly secret: Redacted.Redacted<string> | null;
  readonly username: string | null;
  readonly password: Redacted.Redacted<string> | null;
  /**
   * A listener's EAP-SRP users: the path of a file of `ristsrppasswd` lines (username:verifier:salt), read when
   * the input starts. A path, not a secret: the file holds verifiers, never passwords.
   */
  readonly srpFile: string | null;
  /** librist's URL for this peer, the secrets in it: for librist alone, never shown. */
  readonly librist: Redacted.Redacted<string>;
}

export interface RistTarget {
  readonly protocol: "rist";
  readonly profile: RistProfile;
  /** The retransmission buffer of the first peer, in ms (librist's default 1000). */
  readonly bufferMs: number;
  readonly peers: ReadonlyArray<RistPeer>;
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>;
  readonly masked: string;
}

/** librist's numeric URL keys, each with its range; the rest are text or the profile. */
const NUMBERS: Readonly<Record<string, readonly [number, number]>> = {
  buffer: [0, 30_000],
  bandwidth: [1, 10_000_000],
  "reorder-buffer": [0, 30_000],
  "rtt-min": [1, 30_000],
  "rtt-max": [1, 30_000],
  weight: [0, 1000],
  "session-timeout": [100, 600_000],
  "keepalive-interval": [10, 60_000],
};
const KEYS = [
  ...Object.keys(NUMBERS),
  ...["profile", "secret", "aes-type", "cname", "username", "password", "srpfile"],
];
const SECRET_KEYS = new Set(["secret", "password"]);

const parsePeer = (
  raw: string,
  profile: RistProfile | null,
): { peer: RistPeer; profile: RistProfile } | OutputError => {
  // `rist://@:port` listens on every interface, `rist://@host:port` on one address.
  const listen = /^rist:\/\/@/i.test(raw);
  const normalised = raw.replace(/^rist:\/\/@?:?/i, (prefix) =>
    listen ? (prefix.endsWith(":") ? "rist://0.0.0.0:" : "rist://") : prefix,
  );
  let url: URL;
  try {
    url = new URL(normalised);
  } catch {
    return (
      ipv6HostProblem(raw) ??
      invalid(
        "'rist' URL could not be parsed; expected rist://host:port (connect) or rist://@:port (listen), an IPv6 address in brackets",
      )
    );
  }
  if (url.username !== "" || url.password !== "") {
    return invalid("a rist URL takes its user and password as ?username=…&password=…, not before the host");
  }
  if (url.hash !== "") return invalid("the URL has a '#' fragment; write '#' inside a value as %23");
  if (url.pathname !== "" && url.pathname !== "/") return invalid("a rist URL has no path");
  const hostProblem = checkHost(url.hostname);
  if (hostProblem !== null) return hostProblem;
  const port = parsePort(url.port, null);
  if (port instanceof OutputError) return port;
  const params = readParams(url, KEYS);
  if (params instanceof OutputError) return params;
  const profileText = params.get("profile");
  if (profileText !== undefined && profileText !== "simple" && profileText !== "main") {
    return invalid(`profile must be simple or main, got '${profileText}'`);
  }
  const own = profileText ?? profile ?? "main";
  if (profile !== null && own !== profile)
    return invalid("every peer of a rist URL must use the same profile");
  // librist (0.2.7) writes the simple profile's RTCP peer as `[addr:port`, which no socket takes.
  if (own === "simple" && url.hostname.startsWith("["))
    return invalid(
      "the simple profile does not work over IPv6 in librist (its RTCP port is lost); use profile=main",
    );
  const numbers = new Map<string, number>();
  for (const [name, [min, max]] of Object.entries(NUMBERS)) {
    const text = params.get(name);
    if (text === undefined) continue;
    const value = parseInteger(name, text, min, max);
    if (value instanceof OutputError) return value;
    numbers.set(name, value);
  }
  const secret = params.get("secret") ?? null;
  const aesText = params.get("aes-type");
  const username = params.get("username") ?? null;
  const password = params.get("password") ?? null;
  const srpFile = params.get("srpfile") ?? null;
  if (own === "simple" && (secret !== null || username !== null || password !== null || srpFile !== null)) {
    return invalid(
      "the simple profile has no encryption or authentication; use profile=main for secret, username and password, srpfile",
    );
  }
  const srpProblem = srpFile === null ? null : srpFileProblem(srpFile, listen, username !== null);
  if (srpProblem !== null) return invalid(srpProblem);
  if (secret !== null && secret !== "****" && (secret.length < 8 || secret.length > 127)) {
    return invalid("secret must be 8 to 127 characters long");
  }
  if (aesText !== undefined && secret === null) return invalid("aes-type only applies with a secret");
  if (aesText !== undefined && aesText !== "128" && aesText !== "256") {
    return invalid(`aes-type must be 128 or 256, got '${aesText}'`);
  }
  if ((username === null) !== (password === null))
    return invalid("username and password go together (EAP-SRP)");
  if (password !== null && password !== "****" && password.length > 255)
    return invalid("password is longer than 255 characters");
  const cname = params.get("cname");
  if (cname !== undefined && cname.length > 127) return invalid("cname is longer than 127 characters");
  const aesType = secret === null ? null : aesText === "256" ? 256 : 128;
  // librist's own URL: the same keys, checked, the AES size written out; `profile` is the context's.
  const query = [
    ...[...numbers].map(([name, value]) => `${name}=${value}`),
    ...(cname === undefined ? [] : [`cname=${encodeURIComponent(cname)}`]),
    ...(secret === null ? [] : [`secret=${encodeURIComponent(secret)}`, `aes-type=${aesType}`]),
    ...(username === null ? [] : [`username=${encodeURIComponent(username)}`]),
    ...(password === null ? [] : [`password=${encodeURIComponent(password)}`]),
  ];
  const address = `${listen ? "@" : ""}${url.hostname}:${port}`;
  return {
    profile: own,
    peer: {
      mode: listen ? "listener" : "caller",
      host: bareHost(url.hostname),
      port,
      weight: numbers.get("weight") ?? null,
      aesType,
      secret: secret === null ? null : Redacted.make(secret),
      username,
      password: password === null ? null : Redacted.make(password),
      srpFile,
      librist: Redacted.make(`rist://${address}${query.length === 0 ? "" : `?${query.join("&")}`}`),
    },
  };
};

/** What is wrong with a peer's `srpfile`, in words; null when nothing is. */
const srpFileProblem = (path: string, listen: boolean, withUser: boolean): string | null => {
  if (!listen) {
    return "srpfile names the ristsrppasswd file a listener checks its callers against, so it goes on a listening peer (rist://@…); a caller authenticates itself with username and password";
  }
  if (withUser) {
    return "a listener checks either the users of a ristsrppasswd file (srpfile) or one user (username and password), not both";
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused.
  if (!path.startsWith("/") || path.length > 4096 || /[\u0000-\u001f\u007f]/.test(path)) {
    return "srpfile must be the absolute path of a file of ristsrppasswd lines, e.g. srpfile=/etc/distributary/rist-users";
  }
  return null;
};

/** The largest srpfile a listener reads (runtime/links/rist-srp.ts): a ristsrppasswd line is about 400 bytes. */
export const SRP_FILE_MAX_BYTES = 1024 * 1024;

/**
 * The one answer for an srpfile that may not be read: whatever the reason (outside the directory, a link out of
 * it, no such file, not a regular file, too large, unreadable), so that it never tells whether a file exists.
 */
export const srpFileRefusal = (path: string, dir: string | null): string =>
  dir === null
    ? "srpfile is off on this node: its operator names the directory of the ristsrppasswd files listeners may use with DISTRIBUTARY_RIST_SRP_DIR"
    : `srpfile=${path} is not an allowed srpfile: name a regular file of ristsrppasswd lines, at most 1 MiB, in ${posix.normalize(dir).replace(/(.)\/+$/, "$1")} (DISTRIBUTARY_RIST_SRP_DIR) or below`;

/**
 * Why `path` may not be a listener's srpfile, known from the path alone (the file itself is checked where it is
 * read, its real path included); null when it may be. `dir`: DISTRIBUTARY_RIST_SRP_DIR, null when unset.
 */
export const srpFilePlaceProblem = (path: string, dir: string | null): string | null => {
  if (dir === null) return srpFileRefusal(path, dir);
  const base = posix.normalize(dir).replace(/\/+$/, "");
  return posix.normalize(path) === path && path.startsWith(`${base}/`) ? null : srpFileRefusal(path, dir);
};

/** The srpfiles a URL names (a RIST URL's listening peers'); none for any other URL or one that does not parse. */
export const srpFilesOf = (url: string | null | undefined): ReadonlyArray<string> => {
  if (url == null || !/^rist:/i.test(url) || !/srpfile=/i.test(url)) return [];
  const target = parseRist(url);
  return target instanceof OutputError
    ? []
    : target.peers.flatMap((peer) => (peer.srpFile === null ? [] : [peer.srpFile]));
};

/** The URL as written, `secret` and `password` values `****`. */
const maskedOf = (raw: string): string => {
  const query = rawQuery(raw);
  if (query === "") return raw;
  const shown = query.split("&").map((piece) => {
    const equals = piece.indexOf("=");
    return equals >= 0 && SECRET_KEYS.has(piece.slice(0, equals))
      ? `${piece.slice(0, equals + 1)}****`
      : piece;
  });
  return `${beforeQuery(raw)}?${shown.join("&")}`;
};

export const parseRist = (raw: string): RistTarget | OutputError => {
  const pieces = raw.split(/,(?=rist:\/\/)/i);
  if (pieces.length > 8) return invalid("a rist URL takes at most 8 peers");
  const peers: RistPeer[] = [];
  let profile: RistProfile | null = null;
  for (const piece of pieces) {
    const parsed = parsePeer(piece, profile);
    if (parsed instanceof OutputError)
      return pieces.length === 1 ? parsed : invalid(`peer ${peers.length + 1}: ${parsed.message}`);
    profile = parsed.profile;
    peers.push(parsed.peer);
  }
  const modes = new Set(peers.map((peer) => peer.mode));
  if (modes.size > 1) return invalid("the peers of a rist URL either all listen (rist://@…) or all connect");
  const first = pieces[0] ?? "";
  const bufferText = /[?&]buffer=(\d+)/.exec(first)?.[1];
  const secrets = peers.flatMap((peer) => [peer.secret, peer.password].filter((value) => value !== null));
  return {
    protocol: "rist",
    profile: profile ?? "main",
    bufferMs: bufferText === undefined ? 1000 : Number(bufferText),
    peers,
    secrets,
    masked: pieces.map(maskedOf).join(","),
  };
};

/**
 * The simple profile has no handshake: its sender always connects to a listening receiver (librist's own tools
 * get nothing the other way round). What a RIST URL cannot do in `role`, in words; null when it can.
 */
export const ristRoleProblem = (target: RistTarget, role: "input" | "output"): string | null => {
  if (target.profile !== "simple") return null;
  const mode = target.peers[0]?.mode;
  if (role === "input" && mode === "caller") {
    return "in the simple profile a RIST input listens (rist://@:port) and the sender connects to it; use profile=main to connect to a sender";
  }
  if (role === "output" && mode === "listener") {
    return "in the simple profile a RIST output connects to its receiver (rist://host:port); use profile=main to wait for receivers";
  }
  return null;
};
