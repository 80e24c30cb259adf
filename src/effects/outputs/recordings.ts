/**
 * Where recordings may be written, and reading them back. The recordings directory is
 * `DISTRIBUTARY_RECORDINGS_DIR`, else `<config-dir>/recordings` as the service sets it (`RecordingsDir`);
 * without either (a test's memory store) recording to files is off. A file:// output writes in a directory of
 * its own under it, and so does an HLS output that writes its segments to a `dir`; anything else, or a
 * directory whose real path (symbolic links followed) lies elsewhere, is refused when the output is saved (a
 * 400 in words) and again when it runs.
 *
 * Listing and download (`Recordings`) read only names this service gives its files (outputs/file.ts), in the
 * directory the output's stored URL names: a requested name is matched against that pattern, never joined as
 * a path.
 */
import { resolve } from "node:path";
import * as Context from "effect/Context";
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Option from "effect/Option";
import * as Redacted from "effect/Redacted";
import { ControlError } from "../../domain/base/errors.ts";
import type { ChannelId, OutputId } from "../../domain/base/ids.ts";
import { pushAddressProblem } from "../../domain/channel/addresses.ts";
import { recordingPlaceProblem } from "../../domain/url/recording.ts";
import { parseOutputUrl } from "../../domain/url/url.ts";
import { ConfigState } from "../config/config-state.ts";
import { hlsPushAllowPrivate, recordingsDir } from "../config/settings.ts";
import { listRecordings, recordingName } from "./file.ts";
import { realPlace, realPlaceProblem } from "./place.ts";

/** The default recordings directory (the service sets `<config-dir>/recordings`); null: none. */
export class RecordingsDir extends Context.Reference<RecordingsDir>()("distributary/RecordingsDir", {
  defaultValue: (): string | null => null,
}) {}

/** The recordings directory, absolute, or null when recording to files is off. */
export const recordingsRoot: Effect.Effect<string | null> = Effect.gen(function* () {
  const fromSetting = yield* recordingsDir.pipe(Effect.orElseSucceed(() => Option.none<string>()));
  const dir = Option.getOrNull(fromSetting) ?? (yield* RecordingsDir);
  return dir === null ? null : resolve(dir);
});

/**
 * Why `url` may not be stored as an output here: a file:// output, or an HLS output with a `dir`, that would
 * write outside the recordings directory.
 */
const recordingUrlProblem = (url: string, root: string | null): string | null => {
  const directory = directoryOf(url);
  return directory === null ? null : recordingPlaceProblem(directory, root);
};

/**
 * Why an HLS output may not push where its URL says, known from the URL alone: a literal address of a kind
 * pushes may not reach (a name is checked on what it resolves to, at each attempt).
 */
const pushUrlProblem = (url: string, allowPrivate: boolean): string | null => {
  const parsed = parseOutputUrl(url);
  if (Either.isLeft(parsed) || parsed.right.protocol !== "hls" || parsed.right.push === null) return null;
  const host = new URL(Redacted.value(parsed.right.push)).hostname.replace(/^\[|\]$/g, "");
  return pushAddressProblem(host, { allowPrivate }, parsed.right.pushShown ?? "", false);
};

/** Where an output writes files: a recording's directory, or an HLS output's `dir`; null for the others. */
const directoryOf = (url: string): string | null => {
  const parsed = parseOutputUrl(url);
  if (Either.isLeft(parsed)) return null;
  const target = parsed.right;
  return target.protocol === "file" ? target.directory : target.protocol === "hls" ? target.dir : null;
};

/** An output already stored; `unseen` when its channel is beyond the caller's grants (it is then not named). */
export interface OtherOutput {
  readonly url: string;
  readonly unseen?: boolean;
}

/**
 * The first output of `outputs` that may not write where it says, as a 400 on its field: an HLS push to an
 * address pushes may not reach; a recording or HLS dir outside the recordings directory (symbolic links
 * followed), or in a directory another output records in (`others`, or one before it), whose retention would
 * delete its files. Directories are compared by where they really are, so a link to another output's
 * directory is that directory; `places` keeps real paths for the length of one command (an import checks
 * every channel against the same outputs).
 */
export const recordingOutputsError = (
  outputs: ReadonlyArray<{ readonly url: string }>,
  root: string | null,
  field: (index: number) => string,
  others: ReadonlyArray<OtherOutput> = [],
  places: Map<string, Promise<string | null>> = new Map(),
): Effect.Effect<ControlError | undefined> =>
  Effect.gen(function* () {
    const allowPrivate = yield* Effect.orDie(hlsPushAllowPrivate);
    const real = (directory: string) => {
      let place = places.get(directory);
      if (place === undefined) {
        place = realPlace(directory);
        places.set(directory, place);
      }
      return place;
    };
    /**
     * Each directory taken, by where it really is (or as written, when the file system will not say), with
     * whether only outputs of channels the caller cannot see hold it (`unseen`).
     */
    let taken: Map<string, { readonly dir: string; readonly unseen: boolean }> | undefined;
    const takenBy = async (directory: string) => {
      if (taken === undefined) {
        const written = new Map<string, boolean>();
        for (const other of others) {
          const dir = directoryOf(other.url);
          if (dir !== null) written.set(dir, (written.get(dir) ?? true) && other.unseen === true);
        }
        const dirs = [...written.keys()];
        const reals = await Promise.all(dirs.map(real));
        taken = new Map();
        for (const [i, dir] of dirs.entries()) {
          const key = reals[i] ?? dir;
          const unseen = (written.get(dir) ?? false) && (taken.get(key)?.unseen ?? true);
          taken.set(key, { dir: taken.get(key)?.dir ?? dir, unseen });
        }
      }
      const key = (await real(directory)) ?? directory;
      const holder = taken.get(key);
      taken.set(key, holder ?? { dir: directory, unseen: false });
      return holder;
    };
    for (const [index, output] of outputs.entries()) {
      const directory = directoryOf(output.url);
      let problem = pushUrlProblem(output.url, allowPrivate) ?? recordingUrlProblem(output.url, root);
      if (problem === null && directory !== null) {
        const holder = yield* Effect.promise(() => takenBy(directory));
        problem =
          holder !== undefined
            ? holder.unseen
              ? `an output of a channel you cannot see already records where ${directory} leads: give each recording a directory of its own`
              : `another output already records in ${holder.dir}${holder.dir === directory ? "" : `, where ${directory} leads`}: give each recording a directory of its own`
            : // A symbolic link under the recordings directory may lead anywhere: where it really leads counts.
              root !== null
              ? yield* Effect.promise(() => realPlaceProblem(directory, root))
              : null;
      }
      if (problem !== null) {
        const name = field(index);
        return new ControlError({
          reason: "invalid",
          message: `${name}: ${problem}`,
          errors: [{ field: name, message: problem }],
        });
      }
    }
    return undefined;
  });

export const checkRecordingOutputs = (
  outputs: ReadonlyArray<{ readonly url: string }>,
  root: string | null,
  field: (index: number) => string,
  others: ReadonlyArray<OtherOutput> = [],
): Effect.Effect<void, ControlError> =>
  Effect.flatMap(recordingOutputsError(outputs, root, field, others), (error) =>
    error === undefined ? Effect.void : Effect.fail(error),
  );

/** The recording directory of an output's URL, or a 404 in words when it is not a file:// output. */
const recordingDirectoryOf = (url: string, what: string): Effect.Effect<string, ControlError> => {
  const parsed = parseOutputUrl(url);
  return Either.isRight(parsed) && parsed.right.protocol === "file"
    ? Effect.succeed(parsed.right.directory)
    : Effect.fail(
        new ControlError({
          reason: "not_found",
          message: `${what} is not a file:// output: it has no recordings`,
        }),
      );
};

/** The path of recording `name` in `directory`, if it is one of its recordings; a 404 otherwise. */
const recordingPath = (directory: string, name: string): Effect.Effect<string, ControlError> =>
  Effect.gen(function* () {
    const notFound = new ControlError({ reason: "not_found", message: `recording '${name}' does not exist` });
    if (!recordingName.test(name)) return yield* notFound;
    const files = yield* listRecordings(directory);
    if (!files.some((file) => file.name === name)) return yield* notFound;
    return `${directory}/${name}`;
  });

/** A stored file:// output's recordings, read from the directory its URL names (404s in words otherwise). */
export class Recordings extends Effect.Service<Recordings>()("distributary/Recordings", {
  effect: Effect.gen(function* () {
    const configs = yield* ConfigState;
    const directoryOf = (id: ChannelId, outputId: OutputId) =>
      Effect.gen(function* () {
        const channel = yield* configs.find(id);
        const output = yield* configs.findOutput(channel, outputId);
        return yield* recordingDirectoryOf(output.url, `output '${outputId}'`);
      });
    return {
      /** A file:// output's recordings, oldest first. */
      list: Effect.fn("Recordings.list")(function* (id: ChannelId, outputId: OutputId) {
        return yield* listRecordings(yield* directoryOf(id, outputId));
      }),
      /** The path of one of a file:// output's recordings; a 404 for any name that is not one of them. */
      file: Effect.fn("Recordings.file")(function* (id: ChannelId, outputId: OutputId, name: string) {
        return yield* recordingPath(yield* directoryOf(id, outputId), name);
      }),
    } as const;
  }),
}) {}
