/**
 * The users a listening RIST peer checks its callers against (EAP-SRP): a file of lines as librist's
 * `ristsrppasswd` writes them, `username:verifier:salt:3` (verifier and salt in base64 without padding, 3 the
 * version librist 0.2.7 knows). librist asks for a caller's verifier and salt by the name it gives, on one of its
 * own threads; the answer comes from what was read here when the input started, in memory, so it never waits on
 * the disk. The file holds verifiers, never passwords; its content is never shown, only where it is wrong.
 */
import { readFile } from "node:fs/promises";
import * as Effect from "effect/Effect";

export interface SrpVerifier {
  readonly verifier: Uint8Array;
  readonly salt: Uint8Array;
}

/** The most a caller's name is shown with: it comes from the network. */
const SHOWN_NAME = 64;

/** A caller's name as it may be shown: printable, at most 64 characters. */
export const shownSrpName = (name: string): string => {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced.
  const printable = name.replace(/[\u0000-\u001f\u007f]/g, "?");
  return printable.length > SHOWN_NAME ? `${printable.slice(0, SHOWN_NAME)}…` : printable;
};

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The users of a ristsrppasswd file's text, or what is wrong with it in words (line numbers, never content). */
export const parseSrpUsers = (text: string): ReadonlyMap<string, SrpVerifier> | string => {
  const users = new Map<string, SrpVerifier>();
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(":");
    const [name = "", verifier = "", salt = "", version = "3"] = fields;
    const where = `line ${index + 1}`;
    if (fields.length < 3 || fields.length > 4 || name === "" || name.length > 255) {
      return `${where} is not username:verifier:salt:3 as ristsrppasswd writes it`;
    }
    if (version !== "3") {
      return `${where} is of EAP-SRP version ${shownSrpName(version)}; librist 0.2.7 checks version 3 (its ristsrppasswd's)`;
    }
    if (!BASE64.test(verifier) || !BASE64.test(salt)) return `${where}: the verifier and the salt are base64`;
    users.set(name, { verifier: Buffer.from(verifier, "base64"), salt: Buffer.from(salt, "base64") });
  }
  return users.size === 0 ? "it has no user (make its lines with ristsrppasswd <user> <password>)" : users;
};

/** Reads a listener's srpfile; fails with what is wrong, in words, the path named. */
export const readSrpUsers = <E>(path: string, fail: (message: string) => E) =>
  Effect.tryPromise({
    try: () => readFile(path, "utf8"),
    catch: (error) =>
      fail(
        `cannot read the EAP-SRP users' file srpfile=${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      ),
  }).pipe(
    Effect.flatMap((text) => {
      const users = parseSrpUsers(text);
      return typeof users === "string"
        ? Effect.fail(fail(`the EAP-SRP users' file srpfile=${path}: ${users}`))
        : Effect.succeed(users);
    }),
  );
