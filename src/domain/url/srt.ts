/** srt:// destinations and inputs: caller or listener, encryption, stream ids, and what of them is secret. */
import * as Redacted from "effect/Redacted";
import { OutputError } from "../channel/output-error.ts";
import {
  bareHost,
  beforeQuery,
  decoded,
  invalid,
  parseInteger,
  parsePort,
  rawQuery,
  readParams,
} from "./shared.ts";

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

const accessControlShown = new Set(["r", "m", "h", "t", "u"]);
/** A parameter whose name says it carries a secret. */
const secretName = /key|token|pass|secret|auth|sig/i;

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

/** What a caller asks for with its stream id: a resource by name, to publish it or to receive it. */
export interface SrtStreamRequest {
  readonly name: string;
  /** `m=` of the Access Control syntax; null for a plain stream id, which names a resource and no mode. */
  readonly mode: "publish" | "request" | null;
}

/**
 * A stream id as SRT's Access Control convention reads it (`#!::r=name,m=publish`: `r` the resource, `m`
 * request, its default, or publish), or a plain stream id as the resource's name. A string saying what is wrong
 * for anything else (no `r`, another mode).
 */
export const parseStreamId = (raw: string): SrtStreamRequest | string => {
  if (!raw.startsWith("#!::")) return { name: raw, mode: null };
  const fields = new Map<string, string>();
  for (const piece of raw.slice(4).split(",")) {
    const equals = piece.indexOf("=");
    if (equals <= 0) return `'${piece}' is not key=value (the stream id is #!::r=name,m=publish)`;
    fields.set(piece.slice(0, equals), piece.slice(equals + 1));
  }
  const name = fields.get("r") ?? "";
  if (name === "") return "it names no resource (r=)";
  const mode = fields.get("m") ?? "request";
  if (mode !== "publish" && mode !== "request") {
    return `mode m=${mode} is not served here (publish to an input, request from an output)`;
  }
  return { name, mode };
};

/**
 * The name callers reach a listener by (`streamid=` of a `mode=listener` URL, plain or `#!::r=name`), or null for
 * a listener that takes any caller on its port alone.
 */
export const listenerRoute = (target: SrtTarget): string | null => {
  if (target.mode !== "listener" || target.streamId === null) return null;
  const parsed = parseStreamId(target.streamId);
  return typeof parsed === "string" ? null : parsed.name;
};

export const parseSrt = (raw: string, url: URL): SrtTarget | OutputError => {
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
  if (streamId !== null && mode === "listener") {
    // A listener's stream id is the name its callers reach it by, among the others sharing its port.
    const route = parseStreamId(streamId);
    if (typeof route === "string") return invalid(`streamid of a listener: ${route}`);
    if (route.name === "") return invalid("streamid of a listener needs a name");
  }
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
    host: bareHost(url.hostname),
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
