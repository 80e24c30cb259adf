/**
 * Makes a channel's slate clip, or reuses the one already made: ffmpeg encodes it once per format and picture
 * (core/slate/clip-args.ts says how), into a cache directory, under a name that is a hash of what it depends
 * on. The clip is written under a temporary name and renamed when ffmpeg has finished well, so a clip cut
 * short (a crash, a timeout, a full disk) is never found and reused. ffmpeg runs as a bounded child: killed
 * (and reaped) when it takes longer than the timeout or when the caller is interrupted. Beside the clips it
 * keeps each channel's last format, so that a new copy of the channel can go on the slate before it has read
 * its input. Every file of the slate is read and written here; the slate itself (slate.ts) touches none.
 */

import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as Data from "effect/Data";
import * as Duration from "effect/Duration";
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import { clipArgs, clipRefusal } from "../../core/slate/clip-args.ts";
import { readSlateImage } from "../../core/slate/image.ts";
import { formatKey, type SlateFormat } from "../../core/slate/types.ts";
import { PACKET, SYNC } from "../../core/ts/index.ts";
import { settingNow, slateDir } from "../config/settings.ts";
import { describeExit, spawnChild } from "../runtime/process/child-process.ts";

class SlateMakerError extends Data.TaggedError("SlateMakerError")<{ readonly message: string }> {}

/** The generated card's font (Debian's fonts-dejavu-core; scripts/setup.sh checks for it). */
const SLATE_CARD_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
const DEFAULT_SLATE_TIMEOUT_MS = 60_000;

export type SlatePicture =
  | { readonly kind: "image"; readonly bytes: Uint8Array; readonly sha256: string }
  | { readonly kind: "card"; readonly title: string };

export interface SlateClip {
  /** The cache key: the clip's file is `<key>.ts` in the directory. */
  readonly key: string;
  readonly path: string;
  readonly bytes: Uint8Array;
  /** True when the clip was already there and no ffmpeg ran. */
  readonly reused: boolean;
}

/** Where the slate's files are kept: the slate directory's setting, else a folder in the system's temporary one. */
export const slateDirNow = (): string =>
  Option.getOrElse(settingNow(slateDir, Option.none()), () => join(tmpdir(), "distributary-slates"));

/** A picture in a word: an uploaded image by its SHA-256, the generated card by its title. */
export const pictureKey = (
  picture:
    | { readonly kind: "image"; readonly sha256: string }
    | { readonly kind: "card"; readonly title: string },
): string => (picture.kind === "image" ? `image:${picture.sha256}` : `card:${picture.title}`);

/** What a clip depends on, hashed: the format's key and the picture (the image's SHA-256, or the card's title). */
const slateClipKey = (format: SlateFormat, picture: SlatePicture): string =>
  createHash("sha256")
    .update(formatKey(format))
    .update("\n")
    .update(pictureKey(picture))
    .digest("hex")
    .slice(0, 32);

const fail = (message: string) => new SlateMakerError({ message });

const formatFile = (dir: string, channel: string) => join(dir, `format-${encodeURIComponent(channel)}.json`);

/**
 * Keeps a channel's last format beside the clips (`format-<channel>.json`, written under a temporary name and
 * renamed): a new copy of the channel (a move to another thread, a restart, a fleet node taking it over) can
 * then go on the slate before it has read its input. Synchronous, as it was read: in the turn that read it.
 */
export const keepSlateFormat = (
  dir: string,
  channel: string,
  format: SlateFormat,
): Effect.Effect<void, SlateMakerError> =>
  Effect.try({
    try: () => {
      const file = formatFile(dir, channel);
      mkdirSync(dir, { recursive: true });
      const text = JSON.stringify({
        ...format,
        pat: Buffer.from(format.pat).toString("base64"),
        pmt: Buffer.from(format.pmt).toString("base64"),
      });
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    },
    catch: (thrown) =>
      fail(`could not keep the slate's format: ${thrown instanceof Error ? thrown.message : String(thrown)}`),
  });

/** The format kept for a channel; null when none was kept or it cannot be read. */
export const keptSlateFormat = (dir: string, channel: string): Effect.Effect<SlateFormat | null> =>
  Effect.sync(() => {
    try {
      const kept = JSON.parse(readFileSync(formatFile(dir, channel), "utf8")) as SlateFormat & {
        pat: string;
        pmt: string;
      };
      if (typeof kept.video?.pid !== "number" || !Array.isArray(kept.audio)) return null;
      return {
        ...kept,
        ptsLead: typeof kept.ptsLead === "number" ? kept.ptsLead : 0,
        pat: new Uint8Array(Buffer.from(kept.pat, "base64")),
        pmt: new Uint8Array(Buffer.from(kept.pmt, "base64")),
      };
    } catch {
      return null;
    }
  });

const io = <A>(what: string, run: () => Promise<A>): Effect.Effect<A, SlateMakerError> =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => fail(`could not ${what}: ${cause instanceof Error ? cause.message : String(cause)}`),
  });

/** A clip found in the cache is used only if it looks like whole TS (the rename makes a torn one unlikely). */
const looksWhole = (bytes: Uint8Array): boolean =>
  bytes.length >= PACKET && bytes.length % PACKET === 0 && bytes[0] === SYNC;

const seconds = (ms: number) => (ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`);

export const makeSlateClip = (options: {
  readonly dir: string;
  readonly format: SlateFormat;
  readonly picture: SlatePicture;
  readonly timeoutMs?: number;
}): Effect.Effect<SlateClip, SlateMakerError> =>
  Effect.gen(function* () {
    const { dir, format, picture } = options;
    const timeoutMs = options.timeoutMs ?? DEFAULT_SLATE_TIMEOUT_MS;
    const refusal = clipRefusal(format);
    if (refusal !== null) return yield* Effect.fail(fail(refusal));

    const key = slateClipKey(format, picture);
    const path = join(dir, `${key}.ts`);
    yield* io(`create the slate directory ${dir}`, () => mkdir(dir, { recursive: true }));
    const cached = yield* io(`read the slate clip ${path}`, () =>
      readFile(path).catch((error: NodeJS.ErrnoException) =>
        error.code === "ENOENT" ? null : Promise.reject(error),
      ),
    );
    if (cached !== null && looksWhole(cached))
      return { key, path, bytes: new Uint8Array(cached), reused: true } satisfies SlateClip;

    // The picture as ffmpeg reads it: the image in a file named for its type, or the card's title as text.
    const temp = join(dir, `${key}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
    const output = `${temp}.ts`;
    let input: string;
    let clipPicture: Parameters<typeof clipArgs>[1];
    if (picture.kind === "image") {
      const image = readSlateImage(picture.bytes);
      if ("problem" in image)
        return yield* Effect.fail(fail(`the slate image cannot be used: ${image.problem}`));
      input = `${temp}${image.type === "image/png" ? ".png" : ".jpg"}`;
      clipPicture = { kind: "image", path: input };
    } else {
      if (!existsSync(SLATE_CARD_FONT))
        return yield* Effect.fail(
          fail(
            `the slate card's font ${SLATE_CARD_FONT} is missing: install the Debian package fonts-dejavu-core (scripts/setup.sh checks for it)`,
          ),
        );
      input = `${temp}.txt`;
      clipPicture = {
        kind: "card",
        titleFile: input,
        fontFile: SLATE_CARD_FONT,
        titleLength: [...picture.title].length,
      };
    }
    const removeTemporaries = Effect.promise(() =>
      Promise.all([rm(input, { force: true }), rm(output, { force: true })]),
    ).pipe(Effect.ignore);

    const encode = Effect.gen(function* () {
      yield* io(`write the slate picture ${input}`, () =>
        writeFile(input, picture.kind === "image" ? picture.bytes : picture.title),
      );
      const exit = yield* Effect.scoped(
        Effect.gen(function* () {
          const child = yield* spawnChild({
            command: "ffmpeg",
            args: [
              "-nostdin",
              "-hide_banner",
              "-loglevel",
              "error",
              ...clipArgs(format, clipPicture, output),
            ],
            killGraceMs: 1_000,
          });
          return yield* child.exit;
        }),
      ).pipe(
        Effect.timeoutFail({
          duration: Duration.millis(timeoutMs),
          onTimeout: () =>
            fail(
              `ffmpeg took too long making the slate clip (over ${seconds(timeoutMs)}) and was stopped; the machine may be overloaded`,
            ),
        }),
      );
      if (exit.code !== 0 || exit.signal !== null)
        return yield* Effect.fail(fail(`the slate clip could not be made: ${describeExit("ffmpeg", exit)}`));
      const bytes = yield* io(`read the new slate clip ${output}`, () => readFile(output));
      if (!looksWhole(bytes))
        return yield* Effect.fail(
          fail(
            `the slate clip could not be made: ffmpeg finished but wrote ${bytes.length} bytes, not an MPEG-TS`,
          ),
        );
      // Atomic: the clip appears whole under its name, or not at all.
      yield* io(`store the slate clip as ${path}`, () => rename(output, path));
      return { key, path, bytes: new Uint8Array(bytes), reused: false } satisfies SlateClip;
    });
    return yield* encode.pipe(Effect.ensuring(removeTemporaries));
  });
