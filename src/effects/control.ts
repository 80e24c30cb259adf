/**
 * The control plane's one service: the desired state of every channel and output (kept in the store) joined
 * with the running state (the `Channels` supervisor). Every change takes the write lock, checks the whole new
 * configuration, persists it, then touches only what changed at runtime: a new output starts, a changed
 * output restarts alone, a changed input restarts its channel. On start it resumes every channel whose
 * desired state is running; readiness turns true once that is done.
 */
import { Effect, Either, PubSub, Schedule, Schema, Stream } from "effect";
import {
  type ChannelBody,
  type ChannelConfig,
  type ChannelPatch,
  ConfigDocument,
  ConfigImport,
  emptyConfig,
  type InputSocket,
  inputSockets,
  OriginalConfigFile,
  type OutputBody,
  OutputConfig,
  type OutputPatch,
  socketsCollide,
} from "../domain/channel.ts";
import { ControlError, type FieldIssue, notFound } from "../domain/errors.ts";
import { ChannelId, newChannelId, newOutputId, OutputId } from "../domain/ids.ts";
import { decodeBody, invalid, toFieldIssues } from "../domain/validate.ts";
import type { ChannelStats, ChannelView, OutputView } from "../domain/views.ts";
import type { ChannelRuntimeStatus, ChannelSpec, OutputEntryStatus } from "./channel.ts";
import { Channels } from "./channels.ts";
import { resolveRedundancy } from "./ingest/redundancy.ts";
import { maskUrl } from "./outputs/url.ts";
import { DocumentStore, loadDocument, type StoreError, saveDocument } from "./store.ts";

export const CHANNELS_FILE = "channels.json";

const storeFailed = (error: StoreError) =>
  new ControlError({ reason: "store_failed", message: error.message });

const describeSocket = (socket: InputSocket) =>
  `${socket.ip.includes(":") ? `[${socket.ip}]` : socket.ip}:${socket.port}`;

/** Problems inside one channel's own inputs: the caller fixes the request (400). */
const ownInputProblems = (channel: ChannelConfig): ReadonlyArray<FieldIssue> => {
  if (channel.backup_rtp_ip !== null && channel.backup_rtp_port === null) {
    return [{ field: "backup_rtp_port", message: "is required when backup_rtp_ip is given" }];
  }
  const sockets = inputSockets(channel);
  for (const [index, socket] of sockets.entries()) {
    const earlier = sockets.slice(0, index).find((other) => socketsCollide(other, socket));
    if (earlier !== undefined) {
      return [
        {
          field: socket.what.startsWith("backup") ? "backup_rtp_port" : "rtp_port",
          message: `the ${socket.what} on ${describeSocket(socket)} overlaps the ${earlier.what} of the same channel`,
        },
      ];
    }
  }
  const resolved = resolveRedundancy(channel.redundancy, toSpec(channel));
  return Either.isLeft(resolved) ? resolved.left : [];
};

/** Another channel already listens where this one would (409). */
const inputConflict = (
  channel: ChannelConfig,
  others: ReadonlyArray<ChannelConfig>,
): ControlError | undefined => {
  for (const socket of inputSockets(channel)) {
    for (const other of others) {
      if (other.id === channel.id) continue;
      const taken = inputSockets(other).find((theirs) => socketsCollide(theirs, socket));
      if (taken !== undefined) {
        const field = socket.what.startsWith("backup") ? "backup_rtp_port" : "rtp_port";
        const message = `the ${socket.what} ${describeSocket(socket)} is already used by channel '${other.name}' (${other.id}) as its ${taken.what}`;
        return new ControlError({
          reason: "conflict",
          message: `${field}: ${message}`,
          errors: [{ field, message }],
        });
      }
    }
  }
  return undefined;
};

const checkChannel = (
  channel: ChannelConfig,
  others: ReadonlyArray<ChannelConfig>,
): Effect.Effect<void, ControlError> => {
  const problems = ownInputProblems(channel);
  if (problems.length > 0) return Effect.fail(invalid(problems));
  const conflict = inputConflict(channel, others);
  return conflict === undefined ? Effect.void : Effect.fail(conflict);
};

const duplicateOutputIds = (
  outputs: ReadonlyArray<{ readonly id: string }>,
  field = "outputs",
): ControlError | undefined => {
  const seen = new Set<string>();
  for (const [index, output] of outputs.entries()) {
    if (seen.has(output.id)) {
      const message = `output id '${output.id}' is used twice`;
      return new ControlError({
        reason: "conflict",
        message: `${field}[${index}].id: ${message}`,
        errors: [{ field: `${field}[${index}].id`, message }],
      });
    }
    seen.add(output.id);
  }
  return undefined;
};

const generatedName = (taken: ReadonlyArray<{ readonly name: string }>) => {
  const names = new Set(taken.map((output) => output.name));
  let n = taken.length + 1;
  while (names.has(`Output ${n}`)) n += 1;
  return `Output ${n}`;
};

/** A masked URL in an import is accepted only where it stands for the URL this server already keeps. */
const unmask = (
  url: string,
  existing: OutputConfig | undefined,
  field: string,
): Either.Either<string, FieldIssue> => {
  if (!url.includes("****")) return Either.right(url);
  if (existing !== undefined && maskUrl(existing.url) === url) return Either.right(existing.url);
  return Either.left({
    field,
    message: "is masked (****); give the full URL, or import onto the server it was exported from",
  });
};

const toSpec = (channel: ChannelConfig): ChannelSpec => ({
  id: channel.id,
  name: channel.name,
  primary: { ip: channel.rtp_ip, port: channel.rtp_port },
  backup:
    channel.backup_rtp_ip === null || channel.backup_rtp_port === null
      ? null
      : { ip: channel.backup_rtp_ip, port: channel.backup_rtp_port },
  redundancy: channel.redundancy,
  outputs: channel.outputs.map(({ id, name, url, enabled }) => ({ id, name, url, enabled })),
});

const inputChanged = (before: ChannelConfig, after: ChannelConfig) =>
  before.rtp_ip !== after.rtp_ip ||
  before.rtp_port !== after.rtp_port ||
  before.backup_rtp_ip !== after.backup_rtp_ip ||
  before.backup_rtp_port !== after.backup_rtp_port ||
  JSON.stringify(before.redundancy) !== JSON.stringify(after.redundancy);

const outputStatus = (output: OutputConfig, runtime: OutputEntryStatus | undefined): OutputView["status"] => {
  if (!output.enabled) return "disabled";
  if (runtime === undefined) return "stopped";
  switch (runtime.state) {
    case "stopped":
      return "stopped";
    case "connected":
      return "running";
    default:
      return runtime.state;
  }
};

interface Rate {
  bytes: number;
  at: number;
  bps: number;
}

export class Control extends Effect.Service<Control>()("distributary/Control", {
  scoped: Effect.gen(function* () {
    const channels = yield* Channels;
    const store = yield* DocumentStore;
    const persist = (next: ConfigDocument) =>
      saveDocument(CHANNELS_FILE, ConfigDocument, next).pipe(
        Effect.provideService(DocumentStore, store),
        Effect.mapError(storeFailed),
      );

    let config: ConfigDocument = yield* loadDocument(CHANNELS_FILE, ConfigDocument, emptyConfig);
    let ready = false;
    const writeLock = yield* Effect.makeSemaphore(1);
    const changes = yield* PubSub.sliding<void>(1);
    // A shutdown waits for a write in progress, so the file on disk is the last acknowledged state.
    yield* Effect.addFinalizer(() => writeLock.withPermits(1)(Effect.void));

    const rates = new Map<string, Rate>();
    const sampleRate = (key: string, bytes: number, now: number) => {
      const previous = rates.get(key);
      const bps =
        previous === undefined || now <= previous.at
          ? 0
          : Math.max(0, Math.round(((bytes - previous.bytes) * 8 * 1000) / (now - previous.at)));
      rates.set(key, { bytes, at: now, bps });
    };
    const bitrate = (key: string) => rates.get(key)?.bps ?? 0;

    const sampleRates = Effect.sync(() => {
      const now = Date.now();
      const live = new Set<string>();
      for (const id of channels.running()) {
        const status = channels.status(id);
        if (status === null) continue;
        for (const input of status.inputs) {
          const key = `${id}/input/${input.role}`;
          live.add(key);
          sampleRate(key, input.core.bytes, now);
        }
        for (const output of status.outputs) {
          const key = `${id}/output/${output.id}`;
          live.add(key);
          sampleRate(key, output.bytesSent, now);
        }
      }
      for (const key of rates.keys()) if (!live.has(key)) rates.delete(key);
    });
    yield* Effect.forkScoped(Effect.repeat(sampleRates, Schedule.spaced("1 second")));

    const find = (id: string) => {
      const channel = config.channels.find((candidate) => candidate.id === id);
      return channel === undefined ? Effect.fail(notFound("channel", id)) : Effect.succeed(channel);
    };
    const findOutput = (channel: ChannelConfig, outputId: string) => {
      const output = channel.outputs.find((candidate) => candidate.id === outputId);
      return output === undefined
        ? Effect.fail(notFound("output", `${channel.id}/${outputId}`))
        : Effect.succeed(output);
    };

    const commit = (next: ConfigDocument) =>
      Effect.gen(function* () {
        yield* persist(next);
        config = next;
        yield* PubSub.publish(changes, undefined);
      });
    const replaceChannel = (channel: ChannelConfig) =>
      commit({ ...config, channels: config.channels.map((c) => (c.id === channel.id ? channel : c)) });
    const locked = writeLock.withPermits(1);

    const viewOutput = (
      channelId: string,
      output: OutputConfig,
      runtime: ChannelRuntimeStatus | null,
    ): OutputView => {
      const live = runtime?.outputs.find((candidate) => candidate.id === output.id);
      const status = outputStatus(output, live);
      return {
        id: output.id,
        name: output.name,
        protocol: output.protocol,
        url: maskUrl(output.url),
        enabled: output.enabled,
        status,
        uptime: live === undefined ? 0 : Math.round(live.uptimeMs / 100) / 10,
        error_count: live === undefined ? 0 : live.reconnects + (live.state === "error" ? 1 : 0),
        last_error: live?.lastError ?? null,
        bytes_sent: live?.bytesSent ?? 0,
        bitrate_bps: bitrate(`${channelId}/output/${output.id}`),
        reconnects: live?.reconnects ?? 0,
        queue_drops: live?.queueDrops ?? 0,
        srt:
          live?.srt == null
            ? null
            : {
                rtt_ms: live.srt.rttMs,
                retransmits: live.srt.retransmits,
                loss_packets: live.srt.lossPackets,
                send_rate_mbps: live.srt.sendRateMbps,
              },
      };
    };

    const lastSwitch = (runtime: ChannelRuntimeStatus | null): ChannelView["last_switch"] => {
      const event = runtime?.redundancy.events.findLast((candidate) => candidate.type === "switch");
      if (event?.type !== "switch") return null;
      return { at: new Date(event.at).toISOString(), from: event.from, to: event.to, reason: event.reason };
    };

    const view = (channel: ChannelConfig): ChannelView => {
      const runtime = channels.status(channel.id);
      return {
        id: channel.id,
        name: channel.name,
        rtp_ip: channel.rtp_ip,
        rtp_port: channel.rtp_port,
        backup_rtp_ip: channel.backup_rtp_ip,
        backup_rtp_port: channel.backup_rtp_port,
        redundancy: Either.getOrElse(resolveRedundancy(channel.redundancy, toSpec(channel)), () => null),
        status: channels.state(channel.id),
        desired: channel.desired,
        uptime: runtime === null ? 0 : Math.round((Date.now() - runtime.startedAt) / 100) / 10,
        error: channels.lastError(channel.id),
        active_input: runtime?.inputs.find((input) => input.active)?.role ?? null,
        input: runtime?.input ?? null,
        failovers: runtime?.redundancy.failovers ?? 0,
        last_switch: lastSwitch(runtime),
        created_at: channel.created_at,
        outputs: channel.outputs.map((output) => viewOutput(channel.id, output, runtime)),
      };
    };

    const startRuntime = (channel: ChannelConfig) =>
      channels.start(toSpec(channel)).pipe(
        Effect.mapError(
          (error) =>
            new ControlError({
              reason: "start_failed",
              message: `channel '${channel.name}' could not start: ${error.message}`,
            }),
        ),
      );
    const isRunning = (id: string) => channels.state(id) === "running";
    /** Runtime changes after the store has accepted them; a failure shows in the output's status. */
    const applyRuntime = (effect: Effect.Effect<void, { readonly message: string }>) =>
      effect.pipe(
        Effect.catchAll((error) => Effect.logWarning(`could not apply a change: ${error.message}`)),
      );

    const buildOutput = (
      body: OutputBody,
      siblings: ReadonlyArray<OutputConfig>,
      previous?: OutputConfig,
    ): OutputConfig => ({
      id: previous?.id ?? body.id ?? newOutputId(),
      name:
        body.name !== undefined && body.name.trim() !== ""
          ? body.name
          : (previous?.name ?? generatedName(siblings)),
      protocol: body.protocol,
      url: body.url,
      enabled: body.enabled ?? previous?.enabled ?? true,
    });

    const buildChannel = (
      body: ChannelBody,
      base: { readonly desired: "running" | "stopped"; readonly created_at: string },
      existing?: ChannelConfig,
    ) =>
      Effect.gen(function* () {
        const outputs: OutputConfig[] = [];
        const issues: FieldIssue[] = [];
        for (const [index, outputBody] of (body.outputs ?? []).entries()) {
          const previous = existing?.outputs.find((output) => output.id === outputBody.id);
          const url = unmask(outputBody.url, previous, `outputs[${index}].url`);
          if (Either.isLeft(url)) issues.push(url.left);
          else outputs.push(buildOutput({ ...outputBody, url: url.right }, outputs));
        }
        if (issues.length > 0) return yield* Effect.fail(invalid(issues));
        const duplicate = duplicateOutputIds(outputs);
        if (duplicate !== undefined) return yield* Effect.fail(duplicate);
        const backupIp = body.backup_rtp_ip ?? null;
        const backupPort = body.backup_rtp_port ?? null;
        const channel: ChannelConfig = {
          id: body.id ?? newChannelId(),
          name: body.name,
          rtp_ip: body.rtp_ip,
          rtp_port: body.rtp_port,
          // A backup port alone means the same address as the primary, as MediaLive's two pipelines often use.
          backup_rtp_ip: backupIp ?? (backupPort === null ? null : body.rtp_ip),
          backup_rtp_port: backupPort,
          redundancy: body.redundancy ?? {},
          desired: base.desired,
          created_at: base.created_at,
          outputs,
        };
        return channel;
      });

    const create = Effect.fn("Control.create")(function* (body: ChannelBody) {
      return yield* locked(
        Effect.gen(function* () {
          if (body.id !== undefined && config.channels.some((channel) => channel.id === body.id)) {
            return yield* new ControlError({
              reason: "conflict",
              message: `id: channel '${body.id}' already exists`,
            });
          }
          const channel = yield* buildChannel(body, {
            desired: "stopped",
            created_at: new Date().toISOString(),
          });
          yield* checkChannel(channel, config.channels);
          yield* commit({ ...config, channels: [...config.channels, channel] });
          yield* Effect.logInfo(`channel ${channel.id} (${channel.name}) created`);
          return view(channel);
        }),
      );
    });

    const remove = Effect.fn("Control.remove")(function* (id: string) {
      yield* locked(
        Effect.gen(function* () {
          const channel = yield* find(id);
          yield* channels.stop(channel.id);
          yield* commit({ ...config, channels: config.channels.filter((c) => c.id !== id) });
          yield* Effect.logInfo(`channel ${id} deleted`);
        }),
      );
    });

    const start = Effect.fn("Control.start")(function* (id: string) {
      return yield* locked(
        Effect.gen(function* () {
          const channel = yield* find(id);
          yield* startRuntime(channel);
          const next: ChannelConfig = { ...channel, desired: "running" };
          yield* replaceChannel(next).pipe(Effect.tapError(() => channels.stop(id)));
          return view(next);
        }),
      );
    });

    const stop = Effect.fn("Control.stop")(function* (id: string) {
      return yield* locked(
        Effect.gen(function* () {
          const channel = yield* find(id);
          const next: ChannelConfig = { ...channel, desired: "stopped" };
          yield* replaceChannel(next);
          yield* channels.stop(id);
          return view(next);
        }),
      );
    });

    const patch = Effect.fn("Control.patch")(function* (id: string, changes: ChannelPatch) {
      return yield* locked(
        Effect.gen(function* () {
          const channel = yield* find(id);
          const rtpIp = changes.rtp_ip ?? channel.rtp_ip;
          // Clearing either half of the backup removes it; a backup port alone shares the primary's address.
          const dropBackup = changes.backup_rtp_ip === null || changes.backup_rtp_port === null;
          const backupPort = dropBackup ? null : (changes.backup_rtp_port ?? channel.backup_rtp_port);
          const backupIp = dropBackup
            ? null
            : (changes.backup_rtp_ip ?? channel.backup_rtp_ip ?? (backupPort === null ? null : rtpIp));
          const next: ChannelConfig = {
            ...channel,
            name: changes.name ?? channel.name,
            rtp_ip: rtpIp,
            rtp_port: changes.rtp_port ?? channel.rtp_port,
            backup_rtp_ip: backupIp,
            backup_rtp_port: backupPort,
            redundancy: { ...channel.redundancy, ...changes.redundancy },
          };
          yield* checkChannel(next, config.channels);
          yield* replaceChannel(next);
          if (isRunning(id) && inputChanged(channel, next)) {
            yield* channels.stop(id);
            yield* startRuntime(next);
          }
          return view(next);
        }),
      );
    });

    /** Stores the channel with one output added or replaced, then applies it to the running channel. */
    const putOutput = (channel: ChannelConfig, output: OutputConfig) =>
      Effect.gen(function* () {
        const exists = channel.outputs.some((candidate) => candidate.id === output.id);
        const next: ChannelConfig = {
          ...channel,
          outputs: exists
            ? channel.outputs.map((candidate) => (candidate.id === output.id ? output : candidate))
            : [...channel.outputs, output],
        };
        yield* replaceChannel(next);
        if (isRunning(channel.id)) yield* applyRuntime(channels.applyOutput(channel.id, output));
        return viewOutput(channel.id, output, channels.status(channel.id));
      });

    const addOutput = Effect.fn("Control.addOutput")(function* (id: string, body: OutputBody) {
      return yield* locked(
        Effect.gen(function* () {
          const channel = yield* find(id);
          if (body.id !== undefined && channel.outputs.some((output) => output.id === body.id)) {
            return yield* new ControlError({
              reason: "conflict",
              message: `id: output '${body.id}' already exists in channel '${channel.name}'`,
              errors: [{ field: "id", message: `output '${body.id}' already exists` }],
            });
          }
          return yield* putOutput(channel, buildOutput(body, channel.outputs));
        }),
      );
    });

    const replaceOutput = Effect.fn("Control.replaceOutput")(function* (
      id: string,
      outputId: string,
      body: OutputBody,
    ) {
      return yield* locked(
        Effect.gen(function* () {
          const channel = yield* find(id);
          const previous = yield* findOutput(channel, outputId);
          if (body.id !== undefined && body.id !== outputId) {
            return yield* Effect.fail(
              invalid([
                { field: "id", message: `must be '${outputId}' (the output in the path) or left out` },
              ]),
            );
          }
          return yield* putOutput(channel, buildOutput(body, channel.outputs, previous));
        }),
      );
    });

    const patchOutput = Effect.fn("Control.patchOutput")(function* (
      id: string,
      outputId: string,
      changes: OutputPatch,
    ) {
      return yield* locked(
        Effect.gen(function* () {
          const channel = yield* find(id);
          const previous = yield* findOutput(channel, outputId);
          const merged = {
            id: previous.id,
            name: changes.name ?? previous.name,
            protocol: changes.protocol ?? previous.protocol,
            url: changes.url ?? previous.url,
            enabled: changes.enabled ?? previous.enabled,
          };
          // The merged output is checked whole: a new protocol must match the URL it now goes with.
          const output = yield* Schema.decodeUnknown(OutputConfig, { errors: "all" })(merged).pipe(
            Effect.mapError((error) => invalid(toFieldIssues(error))),
          );
          return yield* putOutput(channel, output);
        }),
      );
    });

    const removeOutput = Effect.fn("Control.removeOutput")(function* (id: string, outputId: string) {
      yield* locked(
        Effect.gen(function* () {
          const channel = yield* find(id);
          yield* findOutput(channel, outputId);
          yield* replaceChannel({
            ...channel,
            outputs: channel.outputs.filter((output) => output.id !== outputId),
          });
          if (isRunning(id)) yield* applyRuntime(channels.removeOutput(id, outputId));
        }),
      );
    });

    const switchInput = Effect.fn("Control.switchInput")(function* (
      id: string,
      active: "primary" | "backup",
    ) {
      const channel = yield* find(id);
      if (!isRunning(id)) {
        return yield* new ControlError({
          reason: "conflict",
          message: `channel '${channel.name}' is not running; start it before switching inputs`,
        });
      }
      yield* channels
        .switchInput(id, active)
        .pipe(Effect.mapError((error) => new ControlError({ reason: "conflict", message: error.message })));
      yield* Effect.logInfo(`channel ${id}: operator switched to the ${active} input`);
      yield* PubSub.publish(changes, undefined);
      return view(channel);
    });

    const stats = Effect.fn("Control.stats")(function* (id: string) {
      const channel = yield* find(id);
      const runtime = channels.status(id);
      const result: ChannelStats = {
        id: channel.id,
        status: channels.state(id),
        uptime: view(channel).uptime,
        inputs: (runtime?.inputs ?? []).map((input) => ({
          role: input.role,
          ip: input.endpoint.ip,
          port: input.endpoint.port,
          active: input.active,
          last_packet_age_ms: input.lastPacketAgeMs,
          bitrate_bps: bitrate(`${id}/input/${input.role}`),
          input_kind: input.core.inputKind,
          datagrams: input.core.datagrams,
          packets: input.core.packets,
          bytes: input.core.bytes,
          malformed: input.core.malformed,
          rtp: {
            payload_type: input.core.rtp.payloadType,
            ssrc: input.core.rtp.ssrc,
            lost: input.core.rtp.lost,
            duplicate: input.core.rtp.duplicate,
            reordered: input.core.rtp.reordered,
          },
          continuity_errors: input.core.tr101290.ccErrors,
          tr101290: { ...input.core.tr101290 },
          programs: input.core.programs.map((program) => ({
            program: program.program,
            pmt_pid: program.pmtPid,
            pcr_pid: program.pcrPid,
          })),
          pids: input.core.pids.map((pid) => ({
            pid: pid.pid,
            stream_type: pid.streamType,
            packets: pid.packets,
            bytes: pid.bytes,
            continuity_errors: pid.ccErrors,
            scte35: pid.scte35,
          })),
        })),
        outputs: channel.outputs.map((output) => viewOutput(id, output, runtime)),
        redundancy_events: channels.events(id),
      };
      return result;
    });

    const cues = Effect.fn("Control.cues")(function* (id: string) {
      yield* find(id);
      return channels.cues(id).map((cue) => ({ ...cue, at: new Date(cue.at).toISOString() }));
    });

    /** The whole configuration with every secret masked: safe to hand out, restorable onto this server. */
    const exportConfig = Effect.sync(
      (): ConfigDocument => ({
        ...config,
        channels: config.channels.map((channel) => ({
          ...channel,
          outputs: channel.outputs.map((output) => ({ ...output, url: maskUrl(output.url) })),
        })),
      }),
    );

    const fromOriginal = (file: OriginalConfigFile): ConfigImport => ({
      version: 1,
      channels: Object.entries(file).map(([id, entry]) => ({
        id: ChannelId.make(id),
        name: entry.config.name,
        rtp_ip: entry.config.rtp_ip,
        rtp_port: entry.config.rtp_port,
        backup_rtp_ip: entry.config.backup_rtp_ip ?? null,
        backup_rtp_port: entry.config.backup_rtp_port ?? null,
        outputs: (entry.config.outputs ?? []).map((output) => ({
          ...(output.id === undefined ? {} : { id: OutputId.make(output.id) }),
          name: output.name ?? "",
          protocol: output.protocol,
          url: output.url,
        })),
        ...(entry.created_at === undefined ? {} : { created_at: entry.created_at }),
      })),
    });

    const decodeImport = (body: unknown) =>
      typeof body === "object" && body !== null && "version" in body
        ? decodeBody(ConfigImport)(body)
        : decodeBody(OriginalConfigFile)(body).pipe(
            Effect.map(fromOriginal),
            // Ids of the original file are its keys; re-check them as ours.
            Effect.flatMap(decodeBody(ConfigImport)),
          );

    const importConfig = Effect.fn("Control.importConfig")(function* (body: unknown) {
      return yield* locked(
        Effect.gen(function* () {
          const incoming = yield* decodeImport(body);
          const next: ChannelConfig[] = [];
          for (const [index, item] of incoming.channels.entries()) {
            const existing = config.channels.find((channel) => channel.id === item.id);
            const channel = yield* buildChannel(
              item,
              { desired: item.desired ?? "stopped", created_at: item.created_at ?? new Date().toISOString() },
              existing,
            ).pipe(Effect.mapError((error) => prefixed(error, `channels[${index}].`)));
            if (next.some((other) => other.id === channel.id)) {
              return yield* new ControlError({
                reason: "conflict",
                message: `channels[${index}].id: channel id '${channel.id}' is used twice`,
              });
            }
            yield* checkChannel(channel, next).pipe(
              Effect.mapError((error) => prefixed(error, `channels[${index}].`)),
            );
            next.push(channel);
          }
          const document: ConfigDocument = { version: 1, channels: next };
          for (const id of channels.running()) yield* channels.stop(id);
          yield* commit(document);
          yield* resume;
          yield* Effect.logInfo(`configuration imported: ${document.channels.length} channels`);
          return { channels: document.channels.length };
        }),
      );
    });

    const resume = Effect.suspend(() =>
      Effect.forEach(
        config.channels.filter((channel) => channel.desired === "running"),
        (channel) => startRuntime(channel).pipe(Effect.catchAll((error) => Effect.logError(error.message))),
        { discard: true },
      ),
    );

    yield* Effect.forkScoped(
      locked(
        Effect.gen(function* () {
          yield* resume;
          ready = true;
          yield* Effect.logInfo(`store loaded, ${channels.running().length} channels resumed`);
        }),
      ),
    );

    return {
      list: Effect.sync(() => config.channels.map(view)),
      get: (id: string) => Effect.map(find(id), view),
      getOutput: (id: string, outputId: string) =>
        Effect.flatMap(find(id), (channel) =>
          Effect.map(findOutput(channel, outputId), (output) => viewOutput(id, output, channels.status(id))),
        ),
      create,
      remove,
      start,
      stop,
      patch,
      addOutput,
      replaceOutput,
      patchOutput,
      removeOutput,
      switchInput,
      stats,
      cues,
      exportConfig,
      importConfig,
      /**
       * One element per stored change and per redundancy event (a failover, the loss of every input), so
       * WebSocket clients hear of those at once rather than at the next tick; a slow reader sees the latest only.
       */
      changes: Stream.merge(
        Stream.fromPubSub(changes),
        Stream.async<void>(
          (emit) => {
            const unsubscribe = channels.subscribe(() => {
              emit.single(undefined);
            });
            return Effect.sync(unsubscribe);
          },
          { bufferSize: 1, strategy: "sliding" },
        ),
      ),
      ready: () => ready,
    } as const;
  }),
}) {}

const prefixed = (error: ControlError, prefix: string) =>
  new ControlError({
    reason: error.reason,
    message:
      error.errors === undefined
        ? error.message
        : error.errors.map((i) => `${prefix}${i.field}: ${i.message}`).join("; "),
    errors: error.errors?.map((issue) => ({ field: `${prefix}${issue.field}`, message: issue.message })),
  });
