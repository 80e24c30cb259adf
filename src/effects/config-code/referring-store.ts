/**
 * Secrets by reference where the configuration is kept: the document store (store.ts, or a fleet's PostgreSQL
 * tables) holds `${secret:NAME}` wherever the applied document used one, never its value, and each node
 * resolves it from its own DISTRIBUTARY_SECRET_<NAME> or DISTRIBUTARY_SECRETS_DIR when it reads the stored
 * channels and notifiers. A wrapper around the store: ConfigState and Notifiers see values, as before; what is
 * written has each field whose value is what its reference resolves to put back as the reference.
 *
 * Which fields refer to which secret (`SecretRefs`) is read from what is stored (so every node of a fleet
 * knows the references another node applied) and set by an apply (config-code.ts) before it writes. A field
 * changed by hand to another value is written as that value. A name this node cannot resolve stays a
 * reference in memory (the destination then refuses it) and is logged by name.
 */
import * as Context from "effect/Context";
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import * as Option from "effect/Option";
import { referencesIn, resolveText } from "../../domain/control/config-code.ts";
import { DocumentStore } from "../config/store.ts";
import { resolveNames } from "./secret-refs.ts";

/** Where the references of documents applied before they were kept in the store were kept (one box). */
export const LEGACY_REFS_FILE = "config-refs.json";

/** The documents whose fields may refer to secrets, and the path a declarative document gives their items. */
const REFERRING: Readonly<Record<string, "channels" | "notifiers">> = {
  "channels.json": "channels",
  "notifiers.json": "notifiers",
};

export interface SecretRefsShape {
  /** The references in use, by the field's path in a declarative document (`channels.news.outputs.yt.url`). */
  readonly current: () => Readonly<Record<string, string>>;
  /** An apply's references, taken before it writes: what it writes refers where its document did. */
  readonly replace: (refs: Readonly<Record<string, string>>) => void;
}

export class SecretRefs extends Context.Tag("distributary/SecretRefs")<SecretRefs, SecretRefsShape>() {}

type Leaf = (path: string, value: string) => string;

/** A keyed item's path (`channels.news`), or an array's element by index. */
const itemPath = (at: string, index: number, item: unknown) => {
  const id = typeof item === "object" && item !== null ? (item as { id?: unknown }).id : undefined;
  return typeof id === "string" ? `${at}.${id}` : `${at}[${index}]`;
};

/** `value` with each string leaf through `leaf`, by its path as a declarative document names the field. */
const mapLeaves = (value: unknown, at: string, keyed: boolean, leaf: Leaf): unknown => {
  if (typeof value === "string") return leaf(at, value);
  if (Array.isArray(value))
    return value.map((item, index) =>
      mapLeaves(item, keyed ? itemPath(at, index, item) : `${at}[${index}]`, false, leaf),
    );
  if (value !== null && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        key === "id" ? item : mapLeaves(item, `${at}.${key}`, key === "outputs", leaf),
      ]),
    );
  return value;
};

/** The stored document's items with `leaf` applied (the top array's items keyed by their ids). */
const mapDocument = (document: Record<string, unknown>, top: string, leaf: Leaf) => ({
  ...document,
  [top]: mapLeaves(document[top], top, true, leaf),
});

const parsed = (text: string): Record<string, unknown> | null => {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
};

/** How every reference starts. */
const MARK = ["$", "{secret:"].join("");

const textOf = (document: unknown) => `${JSON.stringify(document, null, 2)}\n`;

/**
 * The store with references kept in place of values, and the references it knows. Provided below the services
 * that read and write the configuration (services.ts).
 */
export const layerReferring: Layer.Layer<DocumentStore | SecretRefs, never, DocumentStore> =
  Layer.effectContext(
    Effect.gen(function* () {
      const inner = yield* DocumentStore;
      let refs: Record<string, string> = {};
      // References applied before the store held them (a one-box `config-refs.json`): the next write keeps them.
      const legacy = yield* Effect.orElseSucceed(inner.read(LEGACY_REFS_FILE), () => Option.none<string>());
      if (Option.isSome(legacy)) {
        const kept = (parsed(legacy.value)?.refs ?? {}) as Record<string, unknown>;
        for (const [path, template] of Object.entries(kept))
          if (typeof template === "string") refs[path] = template;
      }

      const resolveStored = (name: string, text: string) =>
        Effect.gen(function* () {
          const top = REFERRING[name];
          if (top === undefined || !text.includes(MARK)) return text;
          const document = parsed(text);
          if (document === null) return text;
          const templates = new Map<string, string>();
          mapDocument(document, top, (path, value) => {
            if (referencesIn(value).length > 0) templates.set(path, value);
            return value;
          });
          const { values, issues } = yield* resolveNames(templates, `config-code:stored:${name}`);
          for (const issue of issues)
            yield* Effect.logWarning(
              `${name}: ${issue.field} keeps its reference, unresolved on this node: ${issue.message}`,
            );
          refs = { ...refs, ...Object.fromEntries(templates) };
          return textOf(mapDocument(document, top, (_path, value) => resolveText(value, values)));
        });

      const referStored = (name: string, text: string) =>
        Effect.gen(function* () {
          const top = REFERRING[name];
          if (top === undefined) return text;
          const mine = Object.entries(refs).filter(([path]) => path.startsWith(`${top}.`));
          if (mine.length === 0) return text;
          const document = parsed(text);
          if (document === null) return text;
          const { values } = yield* resolveNames(new Map(mine), `config-code:stored:${name}`);
          let referred = false;
          const written = mapDocument(document, top, (path, value) => {
            const template = refs[path];
            if (template === undefined || resolveText(template, values) !== value) return value;
            referred = true;
            return template;
          });
          return referred ? textOf(written) : text;
        });

      const store = DocumentStore.of({
        ...inner,
        read: (name) =>
          inner
            .read(name)
            .pipe(
              Effect.flatMap((text) =>
                Option.isNone(text)
                  ? Effect.succeed(text)
                  : Effect.map(resolveStored(name, text.value), Option.some),
              ),
            ),
        write: (name, text) => Effect.flatMap(referStored(name, text), (stored) => inner.write(name, stored)),
      });
      const secretRefs = SecretRefs.of({
        current: () => refs,
        replace: (next) => {
          refs = { ...next };
        },
      });
      return Context.make(DocumentStore, store).pipe(Context.add(SecretRefs, secretRefs));
    }),
  );
