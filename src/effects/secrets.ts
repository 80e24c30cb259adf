/**
 * Masking by value: every secret the service knows — stream keys and query secrets of RTMP URLs, SRT
 * passphrases, API tokens — is registered here as it is loaded or created, and replaced by `****` wherever it
 * appears in text that leaves the process (log lines, problem details, last errors), whatever shape the text
 * has. Shape-based masking (URL parsing) still runs too; this catches what no shape foresaw.
 */
import { Either, Redacted } from "effect";
import { parseOutputUrl } from "../domain/url.ts";

/** Shorter values would mask ordinary words; every secret the service makes or accepts is longer. */
const MIN_LENGTH = 6;
const known = new Set<string>();
let longestFirst: ReadonlyArray<string> = [];

export const registerSecrets = (values: Iterable<string>): void => {
  let added = false;
  for (const value of values) {
    for (const form of [value, encodeURIComponent(value)]) {
      if (form.length >= MIN_LENGTH && !known.has(form)) {
        known.add(form);
        added = true;
      }
    }
  }
  if (added) longestFirst = [...known].sort((a, b) => b.length - a.length);
};

/** The secrets an output URL carries: an RTMP key and its query (whole and value by value), a passphrase. */
export const secretsOfUrl = (url: string): ReadonlyArray<string> => {
  const parsed = parseOutputUrl(url);
  if (Either.isLeft(parsed) || !("secrets" in parsed.right)) return [];
  const values = parsed.right.secrets.map((secret) => Redacted.value(secret));
  for (const value of [...values]) {
    for (const pair of value.split("&")) {
      const part = pair.split("=")[1];
      if (part !== undefined && part !== "") values.push(decodeURIComponent(part));
    }
  }
  return values;
};

export const maskKnownSecrets = (text: string): string => {
  let masked = text;
  for (const secret of longestFirst) if (masked.includes(secret)) masked = masked.split(secret).join("****");
  return masked;
};
