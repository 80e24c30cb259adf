/**
 * Where a recording or an HLS dir really is: a symbolic link inside the recordings directory could lead a
 * writer anywhere, so the real path of each output's directory (its nearest existing ancestor's, resolved by
 * the file system, then the rest as written) must lie under the real path of the recordings directory. Checked
 * when an output is saved (src/effects/outputs/recordings.ts) and again before the writers create or open anything.
 */
import { realpath } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import * as Effect from "effect/Effect";
import { OutputError } from "../../domain/channel/output-error.ts";

const codeOf = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : "";

/** The real path `path` has, or would have once created; null when the file system will not say. */
export const realPlace = async (path: string): Promise<string | null> => {
  const rest: string[] = [];
  let existing = path;
  while (true) {
    try {
      return join(await realpath(existing), ...rest.reverse());
    } catch (cause) {
      const code = codeOf(cause);
      const parent = dirname(existing);
      if ((code !== "ENOENT" && code !== "ENOTDIR") || parent === existing) return null;
      rest.push(basename(existing));
      existing = parent;
    }
  }
};

/** Why `directory` may not be written, following its links: null if its real path lies under `root`'s. */
export const realPlaceProblem = async (directory: string, root: string): Promise<string | null> => {
  const [realRoot, real] = await Promise.all([realPlace(root), realPlace(directory)]);
  if (realRoot === null || real === null) return `cannot tell where ${directory} leads: it cannot be written`;
  return real.startsWith(`${realRoot.replace(/\/+$/, "")}/`)
    ? null
    : `${directory} leads outside the recordings directory ${root} through a symbolic link: record in a real directory under it`;
};

/**
 * Fails the attempt in words when `directory` leads outside `root`; with no root (a test of one writer) it
 * may write anywhere.
 */
export const checkRealPlace = (directory: string, root: string | null | undefined) =>
  root === undefined || root === null
    ? Effect.void
    : Effect.flatMap(
        Effect.promise(() => realPlaceProblem(directory, root)),
        (problem) =>
          problem === null
            ? Effect.void
            : Effect.fail(new OutputError({ reason: "invalid_url", message: problem })),
      );
