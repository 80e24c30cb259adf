/**
 * Where the control plane keeps its documents (`channels.json`, `tokens.json`): an interface, a Tag, and two
 * layers, as @effect/platform's KeyValueStore does — memory for tests, files for production.
 *
 * The file layer replaces a document atomically: the new text goes to a temp file in the same directory, is
 * fsynced, the current file is copied to `<name>.bak`, the temp file is renamed over the current one and the
 * directory is fsynced. A reader therefore sees the old or the new document, never a mix, and a crash at any
 * point leaves a whole file. Writes are serialised: one writer at a time. Files are 0600 because they hold
 * stream keys, passphrases and token hashes. A journal (the notifications' outbox) is appended to instead, each
 * append fsynced; what it holds is its owner's to read back whole or in part.
 */
import { constants } from "node:fs";
import { chmod, copyFile, mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import * as Context from "effect/Context";
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import * as Option from "effect/Option";
import type * as ParseResult from "effect/ParseResult";
import * as Schema from "effect/Schema";
import { toFieldIssues } from "../../domain/base/validate.ts";

/**
 * `unavailable`: the shared database cannot be reached; `conflict`: another node changed what this write
 * changes since this node read it (the PostgreSQL store, postgres/).
 */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  reason: Schema.Literal("read_failed", "write_failed", "corrupt", "unavailable", "unconfirmed", "conflict"),
  message: Schema.String,
}) {}

interface DocumentStoreShape {
  /** Where a document lives, for messages a person acts on. */
  readonly locate: (name: string) => string;
  readonly read: (name: string) => Effect.Effect<Option.Option<string>, StoreError>;
  /** Replaces the document whole; the previous version stays readable as `<name>.bak`. */
  readonly write: (name: string, text: string) => Effect.Effect<void, StoreError>;
  /**
   * Adds `text` at the end of a document (made if missing), durably once it succeeds: for journals, whose
   * cost must not grow with what they hold. A failed append may leave part of `text` behind. Not every store
   * has it (the fleet's PostgreSQL store does not).
   */
  readonly append?: (name: string, text: string) => Effect.Effect<void, StoreError>;
}

export class DocumentStore extends Context.Tag("distributary/DocumentStore")<
  DocumentStore,
  DocumentStoreShape
>() {}

export const layerMemory: Layer.Layer<DocumentStore> = Layer.effect(
  DocumentStore,
  Effect.sync(() => {
    const documents = new Map<string, string>();
    return DocumentStore.of({
      locate: (name) => `memory:${name}`,
      read: (name) => Effect.sync(() => Option.fromNullable(documents.get(name))),
      write: (name, text) =>
        Effect.sync(() => {
          const previous = documents.get(name);
          if (previous !== undefined) documents.set(`${name}.bak`, previous);
          documents.set(name, text);
        }),
      append: (name, text) => Effect.sync(() => documents.set(name, (documents.get(name) ?? "") + text)),
    });
  }),
);

const errorText = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause));
const isMissing = (cause: unknown) =>
  typeof cause === "object" && cause !== null && "code" in cause && cause.code === "ENOENT";

const syncDirectory = async (directory: string) => {
  const handle = await open(directory, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
};

export const layerFile = (directory: string): Layer.Layer<DocumentStore, StoreError> =>
  Layer.effect(
    DocumentStore,
    Effect.gen(function* () {
      yield* Effect.tryPromise({
        try: () => mkdir(directory, { recursive: true, mode: 0o700 }),
        catch: (cause) =>
          new StoreError({
            reason: "write_failed",
            message: `cannot create the config directory ${directory}: ${errorText(cause)}`,
          }),
      });
      // A crash between writing a temporary file and renaming it leaves the temporary file behind: it is
      // never the document, so it goes.
      yield* Effect.promise(async () => {
        for (const entry of await readdir(directory).catch(() => [] as string[])) {
          if (/^\..+\.\d+\.\d+\.tmp$/.test(entry)) await rm(join(directory, entry), { force: true });
        }
      });
      const writer = yield* Effect.makeSemaphore(1);
      let sequence = 0;

      const replace = async (name: string, text: string) => {
        const target = join(directory, name);
        sequence += 1;
        const temp = join(directory, `.${name}.${process.pid}.${sequence}.tmp`);
        try {
          const handle = await open(temp, "wx", 0o600);
          try {
            await handle.writeFile(text);
            await handle.sync();
          } finally {
            await handle.close();
          }
          try {
            await copyFile(target, `${target}.bak`);
            await chmod(`${target}.bak`, 0o600);
          } catch (cause) {
            if (!isMissing(cause)) throw cause;
          }
          await rename(temp, target);
          await syncDirectory(directory);
        } catch (cause) {
          await rm(temp, { force: true });
          throw cause;
        }
      };

      const append = async (name: string, text: string) => {
        const handle = await open(join(directory, name), "a", 0o600);
        let made: boolean;
        try {
          made = (await handle.stat()).size === 0;
          await handle.writeFile(text);
          await handle.datasync();
        } finally {
          await handle.close();
        }
        // A new file is durable once its directory entry is.
        if (made) await syncDirectory(directory);
      };

      return DocumentStore.of({
        locate: (name) => join(directory, name),
        read: (name) =>
          Effect.tryPromise({
            try: () => readFile(join(directory, name), "utf8"),
            catch: (cause) => cause,
          }).pipe(
            Effect.map(Option.some),
            Effect.catchAll((cause) =>
              isMissing(cause)
                ? Effect.succeed(Option.none())
                : Effect.fail(
                    new StoreError({
                      reason: "read_failed",
                      message: `cannot read ${join(directory, name)}: ${errorText(cause)}`,
                    }),
                  ),
            ),
          ),
        write: (name, text) =>
          writer.withPermits(1)(
            Effect.tryPromise({
              try: () => replace(name, text),
              catch: (cause) =>
                new StoreError({
                  reason: "write_failed",
                  message: `cannot write ${join(directory, name)}: ${errorText(cause)}`,
                }),
            }),
          ),
        append: (name, text) =>
          writer.withPermits(1)(
            Effect.tryPromise({
              try: () => append(name, text),
              catch: (cause) =>
                new StoreError({
                  reason: "write_failed",
                  message: `cannot append to ${join(directory, name)}: ${errorText(cause)}`,
                }),
            }),
          ),
      });
    }),
  );

/**
 * Reads and checks one document; a missing document is `empty`. A document that does not parse stops the
 * caller with a message naming the file and the copy to fall back on.
 */
export const loadDocument = <A, I>(name: string, schema: Schema.Schema<A, I>, empty: A) =>
  Effect.gen(function* () {
    const store = yield* DocumentStore;
    const text = yield* store.read(name);
    if (Option.isNone(text)) return empty;
    const problem = yield* Effect.try({
      try: () => JSON.parse(text.value) as unknown,
      catch: (cause) => `it is not JSON (${errorText(cause)})`,
    }).pipe(
      Effect.flatMap((json) =>
        Schema.decodeUnknown(schema, { errors: "all" })(json).pipe(
          Effect.mapError((error: ParseResult.ParseError) => {
            const issues = toFieldIssues(error);
            const listed = issues
              .slice(0, 5)
              .map((issue) => `${issue.field}: ${issue.message}`)
              .join("; ");
            return `it does not match the expected format (${listed}${issues.length > 5 ? "; …" : ""})`;
          }),
        ),
      ),
      Effect.either,
    );
    if (problem._tag === "Right") return problem.right;
    const hasBackup = Option.isSome(yield* store.read(`${name}.bak`));
    const location = store.locate(name);
    return yield* new StoreError({
      reason: "corrupt",
      message:
        `${location} is corrupt: ${problem.left}. ` +
        (hasBackup
          ? `The last good copy is kept beside it as ${location}.bak (written before each replace): ` +
            `fix the file or copy the .bak over it, then start again.`
          : `There is no ${location}.bak to fall back on: fix the file or move it away, then start again.`),
    });
  });

/** Writes a document in its encoded form, pretty-printed so a person can read and diff it. */
export const saveDocument = <A, I>(name: string, schema: Schema.Schema<A, I>, value: A) =>
  Effect.gen(function* () {
    const store = yield* DocumentStore;
    const encoded = yield* Schema.encode(schema)(value).pipe(
      Effect.mapError(
        (error) =>
          new StoreError({ reason: "write_failed", message: `cannot encode ${name}: ${error.message}` }),
      ),
    );
    yield* store.write(name, `${JSON.stringify(encoded, null, 2)}\n`);
  });
