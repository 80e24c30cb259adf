/**
 * The users a listening RIST peer checks its callers against (EAP-SRP): a file of lines as librist's
 * `ristsrppasswd` writes them, `username:verifier:salt:3` (verifier and salt in base64 without padding, 3 the
 * version librist 0.2.7 knows). librist asks for a caller's verifier and salt by the name it gives, on one of its
 * own threads; the answer comes from what was read here when the input started, in memory, so it never waits on
 * the disk. The file holds verifiers, never passwords; its content is never shown, only where it is wrong. Only
 * a file under the directory the node's operator names (DISTRIBUTARY_RIST_SRP_DIR) is read, bounded in size and
 * time, and any other gets one answer that never tells whether it exists.
 */
import { constants } from "node:fs";
import { open, realpath, stat } from "node:fs/promises";
import * as Effect from "effect/Effect";
import { SRP_FILE_MAX_BYTES, srpFilePlaceProblem, srpFileRefusal } from "../../../domain/url/rist.ts";

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
      return `${where} is not of EAP-SRP version 3, the one librist 0.2.7 checks (its ristsrppasswd's)`;
    }
    if (!BASE64.test(verifier) || !BASE64.test(salt)) return `${where}: the verifier and the salt are base64`;
    users.set(name, { verifier: Buffer.from(verifier, "base64"), salt: Buffer.from(salt, "base64") });
  }
  return users.size === 0 ? "it has no user (make its lines with ristsrppasswd <user> <password>)" : users;
};

/** How long reading an srpfile may take before it counts as unreadable. */
export const SRP_READ_MS = 2000;

/**
 * The text of `path` if it may be read as an srpfile, else null: its real path (links followed) under the real
 * path of `dir`, a regular file of at most SRP_FILE_MAX_BYTES, opened without blocking (O_NONBLOCK: a FIFO's
 * open never waits for a writer) and without following a link put in its place since (O_NOFOLLOW), and checked
 * again once open (the same file, still regular and small). Nothing else is opened or read.
 */
const readAllowed = async (path: string, dir: string): Promise<string | null> => {
  const [realDir, real] = await Promise.all([realpath(dir), realpath(path)]);
  if (!real.startsWith(realDir === "/" ? "/" : `${realDir}/`)) return null;
  const seen = await stat(real);
  if (!seen.isFile() || seen.size > SRP_FILE_MAX_BYTES) return null;
  const handle = await open(
    real,
    constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW | constants.O_NOCTTY,
  );
  try {
    const opened = await handle.stat();
    if (!opened.isFile() || opened.ino !== seen.ino || opened.dev !== seen.dev) return null;
    // One byte more than allowed: a file that grew past the bound since is refused, never read whole.
    const buffer = Buffer.alloc(SRP_FILE_MAX_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return length > SRP_FILE_MAX_BYTES ? null : buffer.toString("utf8", 0, length);
  } finally {
    await handle.close();
  }
};

/**
 * Reads a listener's srpfile, at most SRP_FILE_MAX_BYTES within SRP_READ_MS, from under `dir`
 * (DISTRIBUTARY_RIST_SRP_DIR; null: none may be read). A file that may not be read, for whatever reason, fails
 * with the one refusal of domain/url/rist.ts, which never tells whether a file exists; one that is read but
 * wrong fails with what is wrong by line number, never its content.
 */
export const readSrpUsers = <E>(path: string, dir: string | null, fail: (message: string) => E) => {
  const refused = fail(srpFileRefusal(path, dir));
  if (dir === null || srpFilePlaceProblem(path, dir) !== null) return Effect.fail(refused);
  return Effect.tryPromise({ try: () => readAllowed(path, dir), catch: () => refused }).pipe(
    Effect.timeoutFail({ duration: SRP_READ_MS, onTimeout: () => refused }),
    Effect.flatMap((text) => {
      if (text === null) return Effect.fail(refused);
      const users = parseSrpUsers(text);
      return typeof users === "string"
        ? Effect.fail(fail(`the EAP-SRP users' file srpfile=${path}: ${users}`))
        : Effect.succeed(users);
    }),
  );
};
