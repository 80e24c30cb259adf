import * as Either from "effect/Either";
import { Scte35Error } from "./types.ts";

const HEX_DIGITS = "0123456789abcdef";
const BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_VALUES: ReadonlyMap<string, number> = new Map([...BASE64_ALPHABET].map((c, i) => [c, i]));

export const bytesToHex = (bytes: Uint8Array): string => {
  let out = "";
  for (const byte of bytes) out += (HEX_DIGITS[byte >> 4] ?? "") + (HEX_DIGITS[byte & 0x0f] ?? "");
  return out;
};

const badEncoding = (message: string) => Either.left(new Scte35Error({ reason: "bad_encoding", message }));

/** Strict: any character outside the hex alphabet, or an odd digit count, is an error. */
export const hexToBytes = (hex: string): Either.Either<Uint8Array, Scte35Error> => {
  const bad = hex.search(/[^0-9a-fA-F]/);
  if (bad >= 0) return badEncoding(`not hex: character ${JSON.stringify(hex[bad])} at position ${bad}`);
  if (hex.length % 2 !== 0) return badEncoding(`hex has an odd number of digits (${hex.length})`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return Either.right(out);
};

/** Strict RFC 4648 base64; the `=` padding may be left out, as some cue sources do. */
export const base64ToBytes = (text: string): Either.Either<Uint8Array, Scte35Error> => {
  const body = text.replace(/={1,2}$/, "");
  const bad = body.search(/[^A-Za-z0-9+/]/);
  if (bad >= 0) return badEncoding(`not base64: character ${JSON.stringify(body[bad])} at position ${bad}`);
  if (body.length % 4 === 1) return badEncoding(`base64 of ${body.length} characters cannot be complete`);
  if (body.length !== text.length && text.length % 4 !== 0) {
    return badEncoding(`base64 padding does not fit a length of ${text.length} characters`);
  }
  const out = new Uint8Array(Math.floor((body.length * 6) / 8));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (const c of body) {
    acc = ((acc << 6) | (BASE64_VALUES.get(c) ?? 0)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return Either.right(out);
};

/**
 * Reads a cue as it is pasted from logs, manifests or tools: hex (with or without 0x, whitespace anywhere)
 * or base64. A section starts with table_id 0xFC, which base64 writes as "/": so a string of hex digits is
 * hex, and one starting "fc" is meant as hex even when it is broken, which gives a hex error, not a base64 one.
 */
export const parseCueText = (text: string): Either.Either<Uint8Array, Scte35Error> => {
  const compact = text.replace(/\s+/g, "");
  if (compact.length === 0) return badEncoding("cue text is empty");
  if (/^0x/i.test(compact)) return hexToBytes(compact.slice(2));
  if (/^fc/i.test(compact) || /^([0-9a-fA-F]{2})+$/.test(compact)) return hexToBytes(compact);
  return base64ToBytes(compact);
};
