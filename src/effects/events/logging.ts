/**
 * pino as the Effect logger: JSON lines on stdout, or a readable line per entry when stdout is a terminal.
 * Every line passes a masking step first: output URLs are reduced to their masked
 * form, and anything shaped like a credential (stream keys, passphrases, tokens) or equal to a secret the
 * service holds becomes `****`, so a secret that reaches a log message by any path still does not reach the
 * log. Fields that only name things (ids, the actor, the event type) are written as they are.
 */
import * as Cause from "effect/Cause";
import * as HashMap from "effect/HashMap";
import type * as Layer from "effect/Layer";
import * as Logger from "effect/Logger";
import type * as LogLevel from "effect/LogLevel";
import pino, { type DestinationStream } from "pino";
import { maskUrl } from "../../domain/url/url.ts";
import { maskKnownSecrets } from "../config/secrets.ts";
import { logLevel, settingNow } from "../config/settings.ts";

// Commas belong to URLs (an SRT streamid is `#!::r=…,s=…`): a URL ends at a space, a quote or a bracket.
const outputUrlPattern = /\b(?:rtmps?|rtsps?|srt|udp|rtp|hls):\/\/[^\s"'<>]+/gi;
// `streamid` is not here: most carry no secret (`live/channel1`), and those that do are masked by value and
// by the URL masker, which knows the SRT access-control form.
const secretParameter = /\b(passphrase|token|key|password|secret)=[^&\s"'<>,]+/gi;

// A URL that parses has an exact masked form; one that does not (a typo, a raw `#` in a streamid) keeps only
// its scheme and host, so no piece of its query can slip through.
const maskUrlText = (url: string): string => maskUrl(url);

export const maskSecrets = (text: string): string =>
  maskKnownSecrets(text)
    .replace(outputUrlPattern, maskUrlText)
    .replace(secretParameter, "$1=****")
    .replace(/\b(Bearer\s+)[^\s"']+/gi, "$1****")
    .replace(/\bdst_[A-Za-z0-9_-]+/g, "dst_****");

/**
 * Fields that name things rather than say what happened, written as they are: masking them by value would
 * blank a name or id that happens to equal a secret (an actor's name turned into `****` in every audit line),
 * and none can carry a URL or an error's text. `event` and `action` are the service's own words; `channel` and
 * `output` are ids (generated, or chosen at creation and checked); `actor` is a token's name, which the API
 * shows as it is.
 * Any other field (a `cause`, whatever a caller annotates) may carry a URL or an error and is masked.
 */
const UNMASKED_FIELDS: ReadonlySet<string> = new Set(["event", "action", "channel", "output", "actor"]);

const messageText = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message];
  return parts.map((part) => (typeof part === "string" ? part : JSON.stringify(part))).join(" ");
};

const pinoLevel = (level: LogLevel.LogLevel): pino.Level => {
  switch (level._tag) {
    case "Fatal":
      return "fatal";
    case "Error":
      return "error";
    case "Warning":
      return "warn";
    case "Debug":
      return "debug";
    case "Trace":
    case "All":
      return "trace";
    default:
      return "info";
  }
};

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO ",
  40: "WARN ",
  50: "ERROR",
  60: "FATAL",
};

/** On a terminal, a person reads the log: time, level, message, then the fields, one line per entry. */
const prettyTerminal = (): DestinationStream => ({
  write: (line: string) => {
    const { level, time, msg, service: _service, ...fields } = JSON.parse(line) as Record<string, unknown>;
    const extra = Object.entries(fields)
      .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
      .join(" ");
    const at = new Date(typeof time === "number" ? time : Date.now()).toISOString().slice(11, 23);
    process.stdout.write(
      `${at} ${LEVEL_NAMES[level as number] ?? "INFO "} ${String(msg)}${extra ? `  ${extra}` : ""}\n`,
    );
  },
});

const makePinoLogger = (destination?: DestinationStream): Logger.Logger<unknown, void> => {
  const logger = pino(
    { base: { service: "distributary" }, level: settingNow(logLevel, "info") },
    destination ?? (process.stdout.isTTY ? prettyTerminal() : pino.destination({ dest: 1, sync: true })),
  );
  return Logger.make(({ logLevel, message, cause, annotations }) => {
    if (logLevel._tag === "None") return;
    const fields: Record<string, string> = {};
    for (const [key, value] of HashMap.toEntries(annotations)) {
      const text = typeof value === "string" ? value : JSON.stringify(value);
      fields[key] = UNMASKED_FIELDS.has(key) ? text : maskSecrets(text);
    }
    if (!Cause.isEmpty(cause)) fields.cause = maskSecrets(Cause.pretty(cause));
    logger[pinoLevel(logLevel)](fields, maskSecrets(messageText(message)));
  });
};

/** Replaces the default logger with pino; tests pass a destination to capture the lines. */
export const PinoLoggerLive = (destination?: DestinationStream): Layer.Layer<never> =>
  Logger.replace(Logger.defaultLogger, makePinoLogger(destination));
