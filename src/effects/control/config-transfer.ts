/**
 * The whole configuration in and out: `export` (secrets masked, safe to hand out, restorable onto this
 * server; or with secrets, for backups) and `import` (our own export format, or the original project's
 * `channels.json`), which merges into the configuration (or replaces it, when asked), with a dry run that
 * tells what would change. One writer at a time, like every command.
 */
import { createHash } from "node:crypto";
import * as Clock from "effect/Clock";
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Schema from "effect/Schema";
import { readSlateImage } from "../../core/slate/image.ts";
import { ControlError, type FieldIssue } from "../../domain/base/errors.ts";
import { ChannelId } from "../../domain/base/ids.ts";
import { sameValue } from "../../domain/base/same.ts";
import { decodeLenient, decodeLenientEither, invalid } from "../../domain/base/validate.ts";
import {
  type ChannelConfig,
  ChannelImport,
  type ConfigDocument,
  ConfigImport,
  OriginalChannel,
  OriginalOutput,
} from "../../domain/channel/channel.ts";
import { checkChannel } from "../../domain/channel/channel-checks.ts";
import { loopingOutputs } from "../../domain/channel/loops.ts";
import { buildChannel, fromOriginal, prefixed } from "../../domain/channel/rules.ts";
import { checkChannelSchedule } from "../../domain/schedule/schedule-rules.ts";
import { maskUrl } from "../../domain/url/url.ts";
import { Channels } from "../channel/channels.ts";
import { ConfigState } from "../config/config-state.ts";
import { recordingOutputsError, recordingsRoot } from "../outputs/recordings.ts";
import { localAddresses } from "../runtime/sockets/own-ports.ts";
import { Resume } from "./resume.ts";
import { controlShared } from "./shared.ts";

type ImportMode = "merge" | "replace";

/** What an original channel became in an import: taken or not, how many outputs, and why not. */
interface ChannelReport {
  /** The key of the original file, which becomes the channel id. */
  readonly id: string;
  readonly taken: boolean;
  readonly outputs_taken: number;
  /** What was not taken (the channel, or some of its outputs) and why. */
  readonly not_taken: ReadonlyArray<FieldIssue>;
  /** What was ignored: unknown fields, empty optional fields. */
  readonly warnings: ReadonlyArray<FieldIssue>;
}

/** What an import did, or would do in a dry run: channel ids by fate. */
interface ImportPlan {
  readonly mode: ImportMode;
  readonly dry_run: boolean;
  readonly created: ReadonlyArray<string>;
  readonly changed: ReadonlyArray<string>;
  readonly unchanged: ReadonlyArray<string>;
  readonly deleted: ReadonlyArray<string>;
  /** Channels in the configuration afterwards. */
  readonly channels: number;
  /** Our format: what was ignored (unknown fields, empty optional fields); absent when nothing was. */
  readonly warnings?: ReadonlyArray<FieldIssue>;
  /** The original project's file: channel by channel, what was taken and what was not. */
  readonly report?: ReadonlyArray<ChannelReport>;
}

const expected =
  'send our export ({"version": 1, "channels": [...]}) or the original project\'s channels.json ({"<id>": {"config": {...}}})';

interface Incoming {
  readonly mode: ImportMode | undefined;
  readonly dryRun: boolean | undefined;
  readonly channels: ReadonlyArray<ChannelImport>;
  readonly warnings: ReadonlyArray<FieldIssue>;
  /** Present for the original project's file, one entry per channel of `channels` and per refused one. */
  readonly report: Array<ReportLine> | undefined;
  /** The original file's index of each output taken, by channel id: what the report names. */
  readonly originalIndex: ReadonlyMap<string, ReadonlyArray<number>>;
}

/** A ChannelReport while the import fills it in. */
interface ReportLine {
  readonly id: string;
  taken: boolean;
  outputs_taken: number;
  readonly not_taken: FieldIssue[];
  readonly warnings: FieldIssue[];
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const under = (prefix: string, issues: ReadonlyArray<FieldIssue>): ReadonlyArray<FieldIssue> =>
  issues.map((issue) => ({ field: `${prefix}${issue.field}`, message: issue.message }));

/**
 * The original file, channel by channel and output by output: a channel whose own fields are wrong is not
 * taken; an output that is wrong is left out of its channel; each says why.
 */
const readOriginal = (file: Record<string, unknown>): Incoming => {
  const channels: ChannelImport[] = [];
  const report: NonNullable<Incoming["report"]> = [];
  const originalIndex = new Map<string, ReadonlyArray<number>>();
  for (const [key, entry] of Object.entries(file)) {
    const line: ReportLine = { id: key, taken: false, outputs_taken: 0, not_taken: [], warnings: [] };
    report.push(line);
    // The original file's keys are channel ids: a key that cannot be one (such as "__proto__") is named.
    if (!Schema.is(ChannelId)(key)) {
      line.not_taken.push({
        field: "id",
        message: "is not a channel id (1–64 letters, digits, '-' or '_', starting with a letter or digit)",
      });
      continue;
    }
    const config = isRecord(entry) && isRecord(entry.config) ? entry.config : undefined;
    const { outputs: rawOutputs, ...configFields } = config ?? {};
    const shell = decodeLenientEither(OriginalChannel)(
      isRecord(entry) && config !== undefined ? { ...entry, config: configFields } : entry,
    );
    if (Either.isLeft(shell)) {
      line.not_taken.push(...(shell.left.errors ?? [{ field: "(channel)", message: shell.left.message }]));
      continue;
    }
    line.warnings.push(...shell.right.warnings);
    const outputs: OriginalOutput[] = [];
    const indices: number[] = [];
    const list = rawOutputs === undefined || rawOutputs === null ? [] : rawOutputs;
    if (!Array.isArray(list)) {
      line.not_taken.push({ field: "config.outputs", message: "is not a list; no output taken" });
    } else {
      for (const [index, raw] of list.entries()) {
        const output = decodeLenientEither(OriginalOutput)(raw);
        const prefix = `config.outputs[${index}].`;
        if (Either.isLeft(output)) line.not_taken.push(...under(prefix, output.left.errors ?? []));
        else {
          outputs.push(output.right.value);
          indices.push(index);
          line.warnings.push(...under(prefix, output.right.warnings));
        }
      }
    }
    // Ids and limits are checked again as ours (an output id the original allowed may not be one).
    const ours = decodeLenientEither(ChannelImport)(
      fromOriginal(ChannelId.make(key), shell.right.value, outputs),
    );
    if (Either.isLeft(ours)) {
      line.not_taken.push(...(ours.left.errors ?? [{ field: "(channel)", message: ours.left.message }]));
      continue;
    }
    channels.push(ours.right.value);
    originalIndex.set(key, indices);
  }
  return { mode: undefined, dryRun: undefined, channels, warnings: [], report, originalIndex };
};

/** Base64 as an export writes it, or wrapped over lines; `null` when it is not base64. */
const fromBase64 = (text: string): Buffer | null => {
  const compact = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return null;
  const bytes = Buffer.from(compact, "base64");
  // Buffer skips what it cannot read: the bytes must encode back to the same text.
  return bytes.toString("base64").replace(/=+$/, "") === compact.replace(/=+$/, "") ? bytes : null;
};

/**
 * An imported slate picture is checked as an upload is (`readSlateImage`): its `data` must be a whole PNG or
 * JPEG within the limits. Its type, width, height, length and hash are then taken from the data, overwriting
 * what the document says of them (a hand-edited export may change one without the other; the data is what
 * the slate shows), and the data is stored as the canonical base64 of its bytes.
 */
const checkedSlateImage = (item: ChannelImport): Either.Either<ChannelImport, ControlError> => {
  const slate = item.slate;
  const image = slate?.image;
  if (slate == null || image == null) return Either.right(item);
  const refused = (message: string) =>
    Either.left(
      invalid([
        {
          field: "slate.image",
          message: `${message}; export the channel again, or upload the picture with PUT /api/channels/${item.id ?? "{id}"}/slate/image after the import`,
        },
      ]),
    );
  const bytes = fromBase64(image.data);
  if (bytes === null) return refused("data is not base64");
  const read = readSlateImage(new Uint8Array(bytes));
  if ("problem" in read) return refused(`data is not a slate picture: ${read.problem}`);
  return Either.right({
    ...item,
    slate: {
      ...slate,
      image: {
        type: read.type,
        width: read.width,
        height: read.height,
        bytes: bytes.length,
        sha256: createHash("sha256").update(bytes).digest("hex"),
        data: bytes.toString("base64"),
      },
    },
  });
};

const decodeImport = (body: unknown): Effect.Effect<Incoming, ControlError> => {
  if (!isRecord(body)) {
    return Effect.fail(
      invalid([{ field: "(body)", message: `is not a configuration document; ${expected}` }]),
    );
  }
  if ("version" in body) {
    return Effect.map(decodeLenient(ConfigImport)(body), ({ value, warnings }) => ({
      mode: value.mode,
      dryRun: value.dry_run,
      channels: value.channels,
      warnings,
      report: undefined,
      originalIndex: new Map(),
    }));
  }
  if (Object.keys(body).length === 0) {
    return Effect.fail(invalid([{ field: "(body)", message: `is empty: nothing to import; ${expected}` }]));
  }
  const incoming = readOriginal(body);
  if (incoming.channels.length > 0) return Effect.succeed(incoming);
  // Nothing could be taken: a 400 that names every reason.
  return Effect.fail(
    invalid((incoming.report ?? []).flatMap((line) => under(`${JSON.stringify(line.id)}.`, line.not_taken))),
  );
};

export class ConfigTransfer extends Effect.Service<ConfigTransfer>()("distributary/ConfigTransfer", {
  effect: Effect.gen(function* () {
    const configs = yield* ConfigState;
    const channels = yield* Channels;
    const { resume } = yield* Resume;
    const { done } = yield* controlShared;
    const recordings = yield* recordingsRoot;

    /**
     * The whole configuration: with every secret masked (to share; it restores onto this server, which keeps
     * the secrets), or, for a backup, as stored, secrets included — an audited event, since it hands them out.
     */
    const exportConfig = Effect.fn("ConfigTransfer.export")(function* (
      options: { readonly secrets?: boolean } = {},
    ) {
      const document = configs.current();
      if (options.secrets === true) {
        yield* done(
          "config.export",
          `configuration exported with secrets (backup): ${document.channels.length} channels`,
        );
        return document;
      }
      return {
        ...document,
        channels: document.channels.map((channel) => ({
          ...channel,
          ...(channel.input_url == null ? {} : { input_url: maskUrl(channel.input_url) }),
          ...(channel.backup_input_url == null
            ? {}
            : { backup_input_url: maskUrl(channel.backup_input_url) }),
          outputs: channel.outputs.map((output) => ({ ...output, url: maskUrl(output.url) })),
        })),
      } satisfies ConfigDocument;
    });

    /**
     * Imports `body`. `merge` (the default) adds or replaces the channels the document names and keeps the
     * others; `replace` also deletes every channel it does not name. A dry run answers what would happen and
     * touches nothing. The new configuration is persisted first; only then do channels stop and start, so a
     * failed write changes nothing at runtime.
     */
    const importConfig = Effect.fn("ConfigTransfer.import")(function* (
      body: unknown,
      options: { readonly mode?: ImportMode; readonly dryRun?: boolean } = {},
    ) {
      return yield* configs.locked(
        Effect.gen(function* () {
          const incoming = yield* decodeImport(body);
          const mode = options.mode ?? incoming.mode ?? "merge";
          const dryRun = options.dryRun ?? incoming.dryRun ?? false;
          const report = incoming.report;
          const current = configs.current().channels;
          const here = localAddresses();
          const now = yield* Clock.currentTimeMillis;
          /** An original channel that cannot be taken is reported; a channel of our own format fails all. */
          const refuse = (item: ChannelImport, index: number, error: ControlError) => {
            const line = report?.find((candidate) => candidate.id === item.id);
            if (line === undefined) return Effect.fail(prefixed(error, `channels[${index}].`));
            line.not_taken.push(...(error.errors ?? [{ field: "(channel)", message: error.message }]));
            return Effect.void;
          };
          const built: ChannelConfig[] = [];
          for (const [index, given] of incoming.channels.entries()) {
            const checked = checkedSlateImage(given);
            if (Either.isLeft(checked)) {
              yield* refuse(given, index, checked.left);
              continue;
            }
            const item = checked.right;
            const existing = current.find((channel) => channel.id === item.id);
            const channel = buildChannel(
              item,
              {
                desired: item.desired ?? existing?.desired ?? "stopped",
                created_at: item.created_at ?? existing?.created_at ?? new Date().toISOString(),
              },
              existing,
            );
            if (Either.isLeft(channel)) {
              yield* refuse(item, index, channel.left);
              continue;
            }
            if (built.some((other) => other.id === channel.right.id)) {
              return yield* new ControlError({
                reason: "conflict",
                message: `channels[${index}].id: channel id '${channel.right.id}' is used twice`,
              });
            }
            built.push(channel.right);
          }
          // Each channel's inputs against the channels that stay and those taken before it: of two original
          // channels on one port, the first is taken.
          const builtIds = new Set<string>(built.map((channel) => channel.id));
          const staying = mode === "merge" ? current.filter((channel) => !builtIds.has(channel.id)) : [];
          // An original output aimed at an input of this host (of any channel that may be kept or taken) is
          // left out of its channel and reported, so that the rest of the channel is taken.
          if (report !== undefined) {
            const listening = [...staying, ...built];
            for (const [index, channel] of built.entries()) {
              const line = report.find((candidate) => candidate.id === channel.id);
              const original = incoming.originalIndex.get(channel.id) ?? [];
              const looping = loopingOutputs(
                channel,
                listening,
                here,
                (i) => `config.outputs[${original[i] ?? i}].url`,
              );
              if (looping.length === 0 || line === undefined) continue;
              for (const { error } of looping) line.not_taken.push(...(error.errors ?? []));
              const left = new Set(looping.map(({ index: i }) => i));
              built[index] = { ...channel, outputs: channel.outputs.filter((_, i) => !left.has(i)) };
            }
          }
          const imported: ChannelConfig[] = [];
          const places = new Map<string, Promise<string | null>>();
          for (const [index, channel] of built.entries()) {
            const problem =
              checkChannel(channel, [...staying, ...imported], here) ??
              checkChannelSchedule(channel, now) ??
              (yield* recordingOutputsError(
                channel.outputs,
                recordings,
                (i) => `outputs[${i}].url`,
                [...staying, ...imported].flatMap((other) => other.outputs),
                places,
              ));
            if (problem === undefined) imported.push(channel);
            else yield* refuse(channel, index, problem);
          }
          const kept = () => {
            const importedIds = new Set<string>(imported.map((channel) => channel.id));
            return mode === "merge" ? current.filter((channel) => !importedIds.has(channel.id)) : [];
          };
          // An original channel not taken keeps its stored version (merge), which may use what another took.
          for (let clash = true; clash; ) {
            clash = false;
            for (const channel of imported) {
              const problem = checkChannel(channel, [...kept(), ...imported], here);
              if (problem === undefined) continue;
              yield* refuse(channel, built.indexOf(channel), problem);
              imported.splice(imported.indexOf(channel), 1);
              clash = true;
              break;
            }
          }
          if (report !== undefined) {
            for (const line of report) {
              const channel = imported.find((candidate) => candidate.id === line.id);
              line.taken = channel !== undefined;
              line.outputs_taken = channel?.outputs.length ?? 0;
            }
            if (imported.length === 0) {
              return yield* Effect.fail(
                invalid(report.flatMap((line) => under(`${JSON.stringify(line.id)}.`, line.not_taken))),
              );
            }
          }
          const next = [...kept(), ...imported];
          const plan: ImportPlan = {
            mode,
            dry_run: dryRun,
            created: imported.filter((channel) => !current.some((c) => c.id === channel.id)).map((c) => c.id),
            changed: imported
              .filter((channel) => {
                const before = current.find((c) => c.id === channel.id);
                return before !== undefined && !sameValue(before, channel);
              })
              .map((c) => c.id),
            unchanged: imported
              .filter((channel) => {
                const before = current.find((c) => c.id === channel.id);
                return before !== undefined && sameValue(before, channel);
              })
              .map((c) => c.id),
            deleted: current.filter((channel) => !next.some((c) => c.id === channel.id)).map((c) => c.id),
            channels: next.length,
            ...(incoming.warnings.length === 0 ? {} : { warnings: incoming.warnings }),
            ...(report === undefined ? {} : { report }),
          };
          if (dryRun) return plan;
          yield* configs.commit({ version: 1, channels: next });
          // Persisted: now the running state follows. Deleted and changed channels stop; what should run starts.
          const touched = new Set<string>([...plan.deleted, ...plan.changed]);
          for (const id of channels.running()) if (touched.has(id)) yield* channels.stop(id);
          yield* resume;
          yield* done(
            "config.import",
            `configuration imported (${mode}): ${plan.created.length} created, ${plan.changed.length} changed, ` +
              `${plan.deleted.length} deleted`,
          );
          return plan;
        }),
      );
    });

    return { exportConfig, importConfig } as const;
  }),
}) {}
