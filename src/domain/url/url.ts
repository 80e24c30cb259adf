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
 * - rist: `secret` and `password` (EAP-SRP) become `****` (src/domain/url/rist.ts).
 * - udp/rtp carry no secrets; nor does a file:// recording (its path is shown as written).
 * - hls: `hls://?dir=/path&target=4&window=6&mode=live|event&cuetags=1&push=http://origin/path`; shown as
 *   written except the push origin's path, which may carry a token (`push=http://host:port/****`).
 */
import * as Either from "effect/Either";
import { OutputError } from "../channel/output-error.ts";
import { type DatagramTarget, parseDatagram } from "./datagram.ts";
import { type FileTarget, type HlsTarget, parseFile, parseHls } from "./recording.ts";
import { parseRist, type RistTarget, ristRoleProblem } from "./rist.ts";
import { parseRtmpInput, type RtmpInputTarget } from "./rtmp-input.ts";
import { parseRtmp, parseRtsp, type RtmpTarget, type RtspTarget } from "./rtmp-rtsp.ts";
import { checkHost, checkText, invalid, ipv6HostProblem } from "./shared.ts";
import { listenerRoute, parseSrt, type SrtTarget } from "./srt.ts";

/** Every output protocol, in the order forms list them: the API's `protocol` words and the URL schemes. */
export const PROTOCOLS = [
  "srt",
  "rist",
  "rtmp",
  "rtmps",
  "udp",
  "rtp",
  "rtsp",
  "rtsps",
  "file",
  "hls",
] as const;
export type OutputProtocol = (typeof PROTOCOLS)[number];

export type OutputTarget =
  | DatagramTarget
  | SrtTarget
  | RistTarget
  | RtmpTarget
  | RtspTarget
  | FileTarget
  | HlsTarget;

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
  const protocol = PROTOCOLS.find((supported) => supported === scheme);
  if (protocol === undefined) {
    const named = scheme === undefined ? "no scheme" : `scheme '${scheme}:'`;
    return invalid(
      `${named} is not an output; use udp://, rtp://, srt://, rist://, rtmp://, rtmps://, rtsp://, rtsps://, file:// or hls://`,
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
  if (protocol === "rist") return parseRist(raw);
  // `srt://:port?mode=listener` is the customary way to listen on every interface.
  const normalised = protocol === "srt" ? raw.replace(/^srt:\/\/:/i, "srt://0.0.0.0:") : raw;
  let url: URL;
  try {
    url = new URL(normalised);
  } catch {
    return (
      ipv6HostProblem(normalised) ??
      invalid(
        `'${protocol}' URL could not be parsed; expected ${protocol}://host:port ([2001:db8::1]:port for IPv6)`,
      )
    );
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
  // An RTMP input (`rtmp://0.0.0.0:1935/live?key=…`) is masked as one: its key may be a parameter.
  const input = /^rtmps?:/i.test(raw) ? parseRtmpInput(raw) : null;
  if (input !== null && !(input instanceof OutputError)) return input.masked;
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

/**
 * The port of an srt:// listener shared by stream id (`mode=listener&streamid=…`), else null: the channels
 * naming one such port run on one forwarding thread, which holds its one listener.
 */
export const sharedSrtPort = (raw: string): number | null => {
  if (!/^srt:/i.test(raw)) return null;
  const parsed = parseChecked(raw);
  return parsed instanceof OutputError || parsed.protocol !== "srt" || listenerRoute(parsed) === null
    ? null
    : parsed.port;
};

/** Why a valid URL cannot be a channel's input (srt://, rist:// and rtmp(s):// can), in words; undefined when it can. */
export const inputUrlProblem = (target: OutputTarget): string | undefined => {
  if (target.protocol === "rist") return ristRoleProblem(target, "input") ?? undefined;
  return target.protocol === "srt"
    ? undefined
    : "an input URL is srt://, rist://, rtmp:// or rtmps:// (RTP and UDP use rtp_ip and rtp_port)";
};

/**
 * A channel input URL, checked: rtmp:// and rtmps:// as an RTMP listener (url/rtmp-input.ts), srt:// and
 * rist:// as their outputs' syntax says. The message says what to change.
 */
export const inputUrlError = (raw: string): string | undefined => {
  if (/^rtmps?:/i.test(raw)) {
    const textProblem = checkText("the input URL", raw);
    if (textProblem !== null) return textProblem.message;
    const target = parseRtmpInput(raw);
    return target instanceof OutputError ? target.message : undefined;
  }
  const parsed = parseOutputUrl(raw);
  return Either.isLeft(parsed) ? parsed.left.message : inputUrlProblem(parsed.right);
};

/** An rtmp(s):// input URL as its listener's target. */
export const rtmpInputTarget = (raw: string): Either.Either<RtmpInputTarget, OutputError> => {
  const textProblem = checkText("the input URL", raw);
  if (textProblem !== null) return Either.left(textProblem);
  const target = parseRtmpInput(raw);
  return target instanceof OutputError ? Either.left(target) : Either.right(target);
};

/** Why a valid URL cannot be an output, in words (a RIST URL in the simple profile that listens). */
export const outputTargetProblem = (target: OutputTarget): string | undefined =>
  target.protocol === "rist" ? (ristRoleProblem(target, "output") ?? undefined) : undefined;
