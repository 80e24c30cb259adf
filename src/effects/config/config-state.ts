/**
 * The desired configuration of every channel and output as the store holds it, in memory: the control
 * plane's commands change it (always through `commit`, which persists first), the read model reads it. One
 * writer at a time: commands run under `locked`, and a shutdown waits for a write in progress, so the file on
 * disk is the last acknowledged state.
 */
import { randomUUID } from "node:crypto";
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Option from "effect/Option";
import * as Schema from "effect/Schema";
import { ControlError, notFound } from "../../domain/base/errors.ts";
import type { ChannelId } from "../../domain/base/ids.ts";
import { ChannelConfig, ConfigDocument, emptyConfig } from "../../domain/channel/channel.ts";
import { newReads } from "../../domain/channel/config-reads.ts";
import { srpFilePlaceProblem, srpFilesOf } from "../../domain/url/rist.ts";
import { FleetReads } from "./fleet-reads.ts";
import { CurrentNodeRole } from "./node-role.ts";
import { holdSecretsOf, secretsOfUrl } from "./secrets.ts";
import { ristSrpDir } from "./settings.ts";
import { DocumentStore, loadDocument, type StoreError, saveDocument } from "./store.ts";

export const CHANNELS_FILE = "channels.json";

/** What an API answer says while the shared database cannot be reached (503). */
const DATABASE_UNREACHABLE =
  "the database cannot be reached: changes are refused until it is back; reads keep working";

/**
 * A failed write, for the caller: what happened in words and a reference to find the details (file paths,
 * the system's error) in the service log, where they are written — not in the answer. Another node's change
 * to the same rows is a conflict the person resolves; an unreachable database is a wait.
 */
export const storeFailed = (error: StoreError) =>
  Effect.gen(function* () {
    if (error.reason === "conflict") return new ControlError({ reason: "conflict", message: error.message });
    const reference = randomUUID().slice(0, 8);
    yield* Effect.logError(`configuration write failed (reference ${reference}): ${error.message}`);
    if (error.reason === "unconfirmed")
      return new ControlError({
        reason: "store_unconfirmed",
        message: `the database stopped answering while the change was being committed, so it may or may not have been saved: reload to see which before trying again (reference ${reference} in the service log)`,
      });
    return new ControlError({
      reason: "store_failed",
      message:
        error.reason === "unavailable"
          ? `${DATABASE_UNREACHABLE} (reference ${reference} in the service log)`
          : `the configuration could not be saved, so nothing was changed (reference ${reference} in the service log)`,
    });
  });

const decodeChannel = Schema.decodeUnknownEither(ChannelConfig);

const indexes = new WeakMap<ReadonlyArray<ChannelConfig>, ReadonlyMap<string, ChannelConfig>>();
/** A document's channels by id, made once per channel list: lookups, never scans inside loops over channels. */
const byId = (document: ConfigDocument): ReadonlyMap<string, ChannelConfig> => {
  let index = indexes.get(document.channels);
  if (index === undefined) {
    index = new Map(document.channels.map((channel) => [channel.id, channel]));
    indexes.set(document.channels, index);
  }
  return index;
};

/**
 * Refuses a change that names an srpfile a channel did not name before (a RIST listener's, input or output):
 * only the node's admin may (CurrentNodeRole), and only a path under DISTRIBUTARY_RIST_SRP_DIR (`dir`), in the
 * one wording that never tells whether a file exists. The file itself is read where the listener starts, off
 * the control plane's lock (runtime/links/rist-srp.ts). Paths a channel already names are left as they are.
 */
const srpFilesAllowed = (before: ConfigDocument, next: ConfigDocument, dir: string | null) =>
  Effect.gen(function* () {
    const stored = byId(before);
    for (const channel of next.channels) {
      const old = stored.get(channel.id);
      const known = new Set(
        old === undefined
          ? []
          : [old.input_url, old.backup_input_url, ...old.outputs.map((output) => output.url)].flatMap(
              srpFilesOf,
            ),
      );
      const fields: ReadonlyArray<readonly [string, string | null | undefined]> = [
        ["input_url", channel.input_url],
        ["backup_input_url", channel.backup_input_url],
        ...channel.outputs.map((output, index) => [`outputs[${index}].url`, output.url] as const),
      ];
      for (const [field, url] of fields) {
        const path = srpFilesOf(url).find((named) => !known.has(named));
        if (path === undefined) continue;
        const role = yield* CurrentNodeRole;
        const problem =
          role !== "admin"
            ? `srpfile names a file on this node's disk, so only the node's admin (the admin role over every channel) may set or change it; ${role === null ? "the caller's grants reach only some channels" : `the caller is ${role} over every channel`}`
            : srpFilePlaceProblem(path, dir);
        if (problem === null) continue;
        return yield* new ControlError({
          reason: role !== "admin" ? "forbidden" : "invalid",
          message: `${field}: ${problem}`,
          errors: [{ field, message: problem }],
        });
      }
    }
  });

export class ConfigState extends Effect.Service<ConfigState>()("distributary/ConfigState", {
  scoped: Effect.gen(function* () {
    const store = yield* DocumentStore;
    /**
     * Each stored channel as last decoded, by its stored text: a reading after another node's change decodes
     * only the channels whose text changed, and an unchanged channel keeps its object, so what is worked out
     * once per stored object (the runtime's comparisons, the read model's) stays worked out.
     */
    let decodedByText = new Map<string, ChannelConfig>();
    const reusing = (text: string): ConfigDocument | undefined => {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        return undefined;
      }
      if (typeof raw !== "object" || raw === null) return undefined;
      const { version, channels } = raw as { version?: unknown; channels?: unknown };
      if (version !== 1 || !Array.isArray(channels)) return undefined;
      const next = new Map<string, ChannelConfig>();
      const list: ChannelConfig[] = [];
      for (const item of channels) {
        const key = JSON.stringify(item);
        let channel = decodedByText.get(key) ?? next.get(key);
        if (channel === undefined) {
          const decoded = decodeChannel(item);
          if (Either.isLeft(decoded)) return undefined;
          channel = decoded.right;
        }
        next.set(key, channel);
        list.push(channel);
      }
      decodedByText = next;
      return { version: 1, channels: list };
    };
    /** The stored document; anything unusual (none, a channel that does not decode) is read the long way. */
    const readStored = Effect.gen(function* () {
      const text = yield* store.read(CHANNELS_FILE);
      const reused = Option.isSome(text) ? reusing(text.value) : undefined;
      if (reused !== undefined) return reused;
      return yield* loadDocument(CHANNELS_FILE, ConfigDocument, emptyConfig).pipe(
        Effect.provideService(DocumentStore, store),
      );
    });
    let config: ConfigDocument = yield* readStored;
    /**
     * Every secret the stored outputs and inputs carry is known to the masker before any text could repeat
     * it, each held by its output (or its channel's inputs): what a change or a deletion took away is
     * released, and a key two outputs share stays while one of them keeps it.
     */
    const learnSecrets = (document: ConfigDocument) => {
      const byOwner = new Map<string, ReadonlyArray<string>>();
      for (const channel of document.channels) {
        for (const output of channel.outputs) {
          byOwner.set(`config:${channel.id}/output/${output.id}`, secretsOfUrl(output.url));
        }
        byOwner.set(
          `config:${channel.id}/inputs`,
          [channel.input_url, channel.backup_input_url].flatMap((url) =>
            url == null ? [] : secretsOfUrl(url),
          ),
        );
      }
      holdSecretsOf("config:", byOwner);
    };
    learnSecrets(config);
    /** The configuration before the latest change: a deleted output's last events still find its name. */
    let previous: ConfigDocument = config;
    const channelIn = (document: ConfigDocument, id: string | null) =>
      id === null ? undefined : byId(document).get(id);
    const outputName = (document: ConfigDocument, channelId: string | null, outputId: string | null) =>
      channelIn(document, channelId)?.outputs.find((candidate) => candidate.id === outputId)?.name;
    const writeLock = yield* Effect.makeSemaphore(1);
    yield* Effect.addFinalizer(() => writeLock.withPermits(1)(Effect.void));

    const srpDir = Option.getOrNull(yield* Effect.orDie(ristSrpDir));
    const fleetReads = yield* Effect.serviceOption(FleetReads);
    /**
     * In a fleet, what only this release reads is not written while a live node of an older release would
     * stop applying every change for it (src/domain/channel/config-reads.ts, docs/upgrades.md).
     */
    const readableByFleet = (before: ConfigDocument, next: ConfigDocument) =>
      Effect.gen(function* () {
        if (Option.isNone(fleetReads)) return;
        const added = newReads(before.channels, next.channels);
        if (added.length === 0) return;
        const unable = yield* fleetReads.value.unable([...new Set(added.map((use) => use.read))]);
        if (unable.length === 0) return;
        return yield* new ControlError({
          reason: "conflict",
          message:
            `node ${unable.join(", ")} of the fleet runs an older release, which cannot read ${added[0]?.what}: ` +
            "it would stop applying every change until it is upgraded. Upgrade every node first " +
            "(docs/upgrades.md), then make this change",
        });
      });

    /** Persists `next`, then makes it the current configuration; on a failed write nothing changes. */
    const commit = (next: ConfigDocument) =>
      Effect.zipRight(
        Effect.zipRight(srpFilesAllowed(config, next, srpDir), readableByFleet(config, next)),
        saveDocument(CHANNELS_FILE, ConfigDocument, next).pipe(
          Effect.provideService(DocumentStore, store),
          Effect.catchAll((error) => Effect.flatMap(storeFailed(error), Effect.fail)),
          Effect.tap(() =>
            Effect.sync(() => {
              previous = config;
              config = next;
              learnSecrets(next);
            }),
          ),
        ),
      );

    const find = (id: string): Effect.Effect<ChannelConfig, ControlError> => {
      const channel = byId(config).get(id);
      return channel === undefined ? Effect.fail(notFound("channel", id)) : Effect.succeed(channel);
    };

    return {
      current: (): ConfigDocument => config,
      channel: (id: ChannelId): ChannelConfig | undefined => byId(config).get(id),
      byId,
      find,
      findOutput: (channel: ChannelConfig, outputId: string) => {
        const output = channel.outputs.find((candidate) => candidate.id === outputId);
        return output === undefined
          ? Effect.fail(notFound("output", `${channel.id}/${outputId}`))
          : Effect.succeed(output);
      },
      commit,
      /**
       * The names of a channel and an output as configured now, or before the latest change (so a deleted
       * output's last events still find its name); for the event bus.
       */
      names: (channelId: string | null, outputId: string | null) => ({
        channel_name: (channelIn(config, channelId) ?? channelIn(previous, channelId))?.name ?? null,
        output_name:
          outputId === null
            ? null
            : (outputName(config, channelId, outputId) ?? outputName(previous, channelId, outputId) ?? null),
      }),
      /** The channel list with `channel` in place of the one with its id. */
      replacing: (channel: ChannelConfig): ConfigDocument => ({
        ...config,
        channels: config.channels.map((c) => (c.id === channel.id ? channel : c)),
      }),
      /** Runs `effect` as the only writer. */
      locked: writeLock.withPermits(1),
      /**
       * Reads the document again and takes it as current (another node changed it): its secrets are learnt and
       * released as on a commit. Returns the configuration before and after. The caller holds `locked`, so
       * that what it then applies to the runtime is what it read.
       */
      reload: Effect.suspend(() =>
        Effect.gen(function* () {
          const next = yield* readStored;
          const before = config;
          previous = config;
          config = next;
          learnSecrets(next);
          return { previous: before, current: next } as const;
        }),
      ),
    } as const;
  }),
}) {}
