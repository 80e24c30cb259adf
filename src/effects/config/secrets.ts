/**
 * Masking by value: every secret the service holds — stream keys and query secrets of RTMP URLs, SRT
 * passphrases, API tokens — is held here by its owner (an output, a channel's inputs, a token) for as long as
 * the owner has it, and replaced by `****` wherever it appears in text that leaves the process (log messages,
 * problem details, last errors), whatever shape the text has. Shape-based masking (URL parsing) still runs
 * too; this catches what no shape foresaw.
 *
 * A value stops being masked when no owner holds it any more (an output deleted or changed, a token revoked),
 * and a value that is a token's name or a word of the service's own texts is never masked by value: it would
 * blank that name or word out of every line.
 */
import * as Either from "effect/Either";
import * as Redacted from "effect/Redacted";
import { SERVICE_WORDS } from "../../domain/base/words.ts";
import { parseOutputUrl, rtmpInputTarget } from "../../domain/url/url.ts";

/** Shorter values would mask ordinary words; every secret the service makes or accepts is longer. */
const MIN_LENGTH = 6;
/** The forms (as given and percent-encoded) each owner holds. */
const owned = new Map<string, ReadonlySet<string>>();
/** How many owners hold each form: a key two outputs share stays masked while one of them remains. */
const holders = new Map<string, number>();
let tokenNames: ReadonlyArray<string> = [];
let longestFirst: ReadonlyArray<string> = [];

/** What `isWordlike` said of each form held so far: thousands of outputs each ask on every change. */
const wordlike = new Map<string, boolean>();

/** A piece of an ordinary word or of a token's name, compared without case. */
const isWordlike = (form: string): boolean => {
  let answer = wordlike.get(form);
  if (answer === undefined) {
    const lower = form.toLowerCase();
    answer =
      SERVICE_WORDS.some((word) => word.includes(lower)) ||
      tokenNames.some((name) => name.toLowerCase().includes(lower));
    wordlike.set(form, answer);
  }
  return answer;
};

const rebuild = () => {
  longestFirst = [...holders.keys()].filter((form) => !isWordlike(form)).sort((a, b) => b.length - a.length);
};

const formsOf = (values: Iterable<string>): ReadonlySet<string> => {
  const forms = new Set<string>();
  for (const value of values) {
    for (const form of [value, encodeURIComponent(value)]) if (form.length >= MIN_LENGTH) forms.add(form);
  }
  return forms;
};

const sameForms = (a: ReadonlySet<string> | undefined, b: ReadonlySet<string>) =>
  a !== undefined && a.size === b.size && [...b].every((form) => a.has(form));

const drop = (owner: string): void => {
  for (const form of owned.get(owner) ?? []) {
    const count = (holders.get(form) ?? 1) - 1;
    if (count <= 0) {
      holders.delete(form);
      wordlike.delete(form);
    } else holders.set(form, count);
  }
  owned.delete(owner);
};

const put = (owner: string, forms: ReadonlySet<string>): void => {
  drop(owner);
  if (forms.size === 0) return;
  owned.set(owner, forms);
  for (const form of forms) holders.set(form, (holders.get(form) ?? 0) + 1);
};

/** `owner` now holds exactly `values` (what it held before and no longer holds is released). */
export const holdSecrets = (owner: string, values: Iterable<string>): void => {
  const forms = formsOf(values);
  if (sameForms(owned.get(owner), forms)) return;
  put(owner, forms);
  rebuild();
};

/** `owner` holds no secret any more. */
export const releaseSecrets = (owner: string): void => {
  if (!owned.has(owner)) return;
  drop(owner);
  rebuild();
};

/**
 * The owners whose names start with `prefix` are exactly those of `byOwner`, holding those values: an owner
 * of that prefix that is not there any more releases what it held (a deleted output, a replaced config).
 */
export const holdSecretsOf = (prefix: string, byOwner: ReadonlyMap<string, Iterable<string>>): void => {
  let changed = false;
  for (const owner of [...owned.keys()]) {
    if (owner.startsWith(prefix) && !byOwner.has(owner)) {
      drop(owner);
      changed = true;
    }
  }
  for (const [owner, values] of byOwner) {
    const forms = formsOf(values);
    if (sameForms(owned.get(owner), forms) || (forms.size === 0 && !owned.has(owner))) continue;
    put(owner, forms);
    changed = true;
  }
  if (changed) rebuild();
};

/** The tokens' names: shown in every audit line, so never masked by value, even if a key equals one. */
export const setTokenNames = (names: Iterable<string>): void => {
  tokenNames = [...names];
  wordlike.clear();
  rebuild();
};

/** The secrets an output URL carries: an RTMP key and its query (whole and value by value), a passphrase. */
export const secretsOfUrl = (url: string): ReadonlyArray<string> => {
  // An RTMP input's key (`rtmp://0.0.0.0:1935/live?key=…`) as its own syntax says.
  const input = /^rtmps?:/i.test(url) ? rtmpInputTarget(url) : null;
  const parsed = parseOutputUrl(url);
  const secrets =
    input !== null && Either.isRight(input)
      ? input.right.secrets
      : Either.isRight(parsed) && "secrets" in parsed.right
        ? parsed.right.secrets
        : null;
  if (secrets === null) return [];
  const values = secrets.map((secret) => Redacted.value(secret));
  for (const value of [...values]) {
    for (const pair of value.split("&")) {
      const part = pair.split("=")[1];
      if (part !== undefined && part !== "") values.push(decodedOrRaw(part));
    }
  }
  return values;
};

/** A query value as a destination reads it; one with a malformed escape is held as written. */
const decodedOrRaw = (text: string): string => {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
};

export const maskKnownSecrets = (text: string): string => {
  let masked = text;
  for (const secret of longestFirst) if (masked.includes(secret)) masked = masked.split(secret).join("****");
  return masked;
};
