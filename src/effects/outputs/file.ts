/**
 * Recording (`file://`): the channel's TS as received, byte for byte, into files of `rotate` seconds named by
 * their start time (`2026-11-22T18-00-00Z.ts`). Files turn over at the wall clock's multiples of `rotate`
 * (hourly files start on the hour), at the first chunk written after the boundary, so the files of one
 * output, concatenated in name order, are the stream it was given. After each turn (and when the attempt
 * starts) retention runs: files last written more than `keep_hours` ago go, then the oldest until the
 * recordings take at most `max_gb`; the file being written is never deleted.
 *
 * Writes are asynchronous (the thread pool, never the event loop), fed from the output's bounded queue: a slow
 * disk makes this output drop its oldest data, never stalls the channel. A full disk, a directory it may not
 * write, a read-only file system: each is an output error in words, retried on the reconnect schedule.
 */
import { lstat, mkdir, open, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import * as Effect from "effect/Effect";
import type * as Scope from "effect/Scope";
import { OutputError } from "../../domain/channel/output-error.ts";
import type { FileTarget } from "../../domain/url/recording.ts";
import type { WriterContext } from "./context.ts";
import { checkRealPlace } from "./place.ts";

/** One write gathers up to this much. */
const writeBatchBytes = 256 * 1024;

/** The names this writer gives its files, and the only files listing, download and retention touch. */
export const recordingName = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z\.ts$/;

/** `2026-11-22T18-00-00Z.ts` for the second `epochMs` falls in. */
export const recordingFileName = (epochMs: number): string =>
  `${new Date(Math.floor(epochMs / 1000) * 1000)
    .toISOString()
    .replace(/\.000Z$/, "Z")
    .replaceAll(":", "-")}.ts`;

interface RecordingFile {
  readonly name: string;
  readonly bytes: number;
  /** Start time (from the name), ISO 8601. */
  readonly started_at: string;
  /** Last write, ISO 8601. */
  readonly modified_at: string;
}

const startOf = (name: string): string => `${name.slice(0, 10)}T${name.slice(11, 19).replaceAll("-", ":")}Z`;

/** The recordings in `directory`, oldest first; an absent directory holds none. */
export const listRecordings = (directory: string): Effect.Effect<ReadonlyArray<RecordingFile>> =>
  Effect.promise(async () => {
    const names = await readdir(directory).catch(() => [] as string[]);
    const files: RecordingFile[] = [];
    for (const name of names.filter((candidate) => recordingName.test(candidate)).sort()) {
      // lstat: a link placed among the recordings is never listed, served or deleted.
      const info = await lstat(join(directory, name)).catch(() => null);
      if (info?.isFile())
        files.push({
          name,
          bytes: info.size,
          started_at: startOf(name),
          modified_at: info.mtime.toISOString(),
        });
    }
    return files;
  });

/** Deletes what retention says must go, never `current`; returns the names deleted. */
const applyRetention = (
  target: Pick<FileTarget, "directory" | "keepHours" | "maxBytes">,
  current: string | null,
  now: number,
): Effect.Effect<ReadonlyArray<string>> =>
  Effect.gen(function* () {
    const files = yield* listRecordings(target.directory);
    const doomed = new Set<string>();
    if (target.keepHours !== null) {
      const oldest = now - target.keepHours * 3_600_000;
      for (const file of files) if (Date.parse(file.modified_at) < oldest) doomed.add(file.name);
    }
    if (target.maxBytes !== null) {
      let total = files.reduce((sum, file) => sum + (doomed.has(file.name) ? 0 : file.bytes), 0);
      for (const file of files) {
        if (total <= target.maxBytes) break;
        if (doomed.has(file.name) || file.name === current) continue;
        doomed.add(file.name);
        total -= file.bytes;
      }
    }
    doomed.delete(current ?? "");
    const deleted: string[] = [];
    for (const name of doomed) {
      const gone = yield* Effect.promise(() =>
        unlink(join(target.directory, name)).then(
          () => true,
          () => false,
        ),
      );
      if (gone) deleted.push(name);
    }
    return deleted;
  });

/** `writev` may write less than asked: the rest follows, so no byte is lost or repeated. */
const writeAll = async (
  handle: Awaited<ReturnType<typeof open>>,
  segments: ReadonlyArray<Uint8Array>,
  bytes: number,
) => {
  const { bytesWritten } = await handle.writev(segments as Uint8Array[]);
  if (bytesWritten >= bytes) return;
  const rest = Buffer.concat(segments as Uint8Array[]).subarray(bytesWritten);
  let at = 0;
  while (at < rest.length) at += (await handle.write(rest, at)).bytesWritten;
};

const codeOf = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : "";

/** A file-system failure in words; `what` names what could not be written (an HLS output names its file). */
export const diskError = (directory: string, cause: unknown, what = "the recording"): OutputError => {
  const code = codeOf(cause);
  const message =
    code === "ENOSPC" || code === "EDQUOT"
      ? `the disk is full: cannot write ${what} in ${directory}`
      : code === "EACCES" || code === "EPERM"
        ? `permission denied: cannot write ${what} in ${directory}`
        : code === "EROFS"
          ? `the file system is read-only: cannot write ${what} in ${directory}`
          : code === "ENOTDIR" || code === "EEXIST"
            ? `${directory} is not a directory`
            : `cannot write ${what} in ${directory} (${code === "" ? String(cause) : code})`;
  return new OutputError({ reason: "write_failed", message });
};

/** `root`: the recordings directory the real path must stay under; left out (a test), anywhere. */
export const fileAttempt = (
  target: FileTarget,
  context: WriterContext,
  root?: string | null,
): Effect.Effect<never, OutputError, Scope.Scope> =>
  Effect.gen(function* () {
    const fail = (cause: unknown) => diskError(target.directory, cause);
    // A symbolic link in the recordings directory may lead anywhere: checked before anything is created and
    // at each file opened, so a link swapped in later writes nothing either.
    const inPlace = checkRealPlace(target.directory, root);
    yield* inPlace;
    yield* Effect.tryPromise({ try: () => mkdir(target.directory, { recursive: true }), catch: fail });
    yield* inPlace;
    let current: { name: string; handle: Awaited<ReturnType<typeof open>>; endsAt: number } | null = null;
    const closeCurrent = Effect.promise(async () => {
      const closing = current;
      current = null;
      await closing?.handle.close().catch(() => undefined);
    });
    yield* Effect.addFinalizer(() => closeCurrent);
    yield* applyRetention(target, null, Date.now());
    yield* context.markConnected;

    const rotateMs = target.rotateSeconds * 1000;
    return yield* Effect.forever(
      Effect.gen(function* () {
        const segments = yield* context.queue.takeUpTo(writeBatchBytes);
        const now = Date.now();
        if (current === null || now >= current.endsAt) {
          yield* closeCurrent;
          const name = recordingFileName(now);
          yield* inPlace;
          const handle = yield* Effect.tryPromise({
            try: () => open(join(target.directory, name), "a"),
            catch: fail,
          });
          current = { name, handle, endsAt: (Math.floor(now / rotateMs) + 1) * rotateMs };
          yield* applyRetention(target, name, now);
        }
        const { handle } = current;
        const bytes = segments.reduce((sum, segment) => sum + segment.length, 0);
        yield* Effect.tryPromise({ try: () => writeAll(handle, segments, bytes), catch: fail });
        context.countSent(bytes);
      }),
    );
  });
