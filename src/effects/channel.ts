/**
 * One running channel: the fiber tree of DESIGN.md. Receivers (one per input) push datagrams through their own
 * packet core; the selector picks which input feeds the fan-out; the fan-out offers each datagram's TS bytes,
 * untouched, to every enabled output's queue; each output's writer runs as its own FiberMap entry, so changing
 * one output restarts only that output. Closing the channel's scope interrupts every fiber and reaps every
 * child process.
 *
 * The per-datagram path (socket callback → core.push → offer) is plain synchronous code: it allocates nothing
 * beyond the subarray it forwards and never waits on an output.
 */
import { Data, Effect, FiberMap, type Scope } from "effect";
import { type CoreEvent, type CoreSnapshot, PacketCore } from "../core/packet-core.ts";
import type { OutputError } from "./errors.ts";
import { bindInput, type InputEndpoint, type InputError } from "./ingest/udp-receiver.ts";
import { makeOutput, type Output, type OutputOptions, type OutputStatus } from "./outputs/writer.ts";
import { makeScte35Watcher, type Scte35Watcher } from "./scte35-watcher.ts";

export interface OutputSpec {
  readonly id: string;
  readonly name: string;
  readonly url: string;
  /** A disabled output exists, validated, without streaming ("ready" destination). */
  readonly enabled: boolean;
}

export interface ChannelSpec {
  readonly id: string;
  readonly name: string;
  readonly primary: InputEndpoint;
  readonly backup: InputEndpoint | null;
  readonly outputs: ReadonlyArray<OutputSpec>;
}

export class ChannelError extends Data.TaggedError("ChannelError")<{
  readonly reason: "not_running" | "unknown_output" | "input_failed" | "invalid_output";
  readonly message: string;
}> {}

export type InputRole = "primary" | "backup";

export interface InputStatus {
  readonly role: InputRole;
  readonly endpoint: InputEndpoint;
  readonly active: boolean;
  /** ms since the last datagram; null before the first. */
  readonly lastPacketAgeMs: number | null;
  readonly core: CoreSnapshot;
}

export interface OutputEntryStatus extends OutputStatus {
  readonly id: string;
  readonly name: string;
  readonly enabled: boolean;
}

export interface ChannelRuntimeStatus {
  readonly id: string;
  readonly name: string;
  readonly startedAt: number;
  readonly inputs: ReadonlyArray<InputStatus>;
  readonly outputs: ReadonlyArray<OutputEntryStatus>;
}

interface InputRuntime {
  readonly role: InputRole;
  readonly endpoint: InputEndpoint;
  readonly core: PacketCore;
  lastPacketAt: number | null;
}

interface OutputEntry {
  readonly spec: OutputSpec;
  /** Made (URL validated) even while disabled; only enabled outputs are fed and run. */
  readonly output: Output;
}

export interface RunningChannel {
  readonly spec: () => ChannelSpec;
  readonly status: () => ChannelRuntimeStatus;
  readonly watcher: Scte35Watcher;
  readonly applyOutput: (spec: OutputSpec) => Effect.Effect<void, ChannelError>;
  readonly removeOutput: (outputId: string) => Effect.Effect<void>;
  /** Which input feeds the outputs; the redundancy selector changes it. */
  readonly activeInput: () => InputRole;
}

/**
 * Builds and runs a channel in the current scope; returns once every input listens and every enabled output
 * has started. The outputs and their child processes live until the scope closes.
 */
export const startChannel = (
  initial: ChannelSpec,
  outputOptions: OutputOptions = {},
): Effect.Effect<RunningChannel, ChannelError, Scope.Scope> =>
  Effect.gen(function* () {
    let spec = initial;
    const startedAt = Date.now();
    const watcher = makeScte35Watcher();
    const writers = yield* FiberMap.make<string, never, OutputError>();
    const entries = new Map<string, OutputEntry>();
    // The fan-out reads a plain array: cheaper per datagram than iterating a Map.
    let offers: ReadonlyArray<(chunk: Uint8Array) => void> = [];
    const rebuildFanOut = () => {
      offers = [...entries.values()].flatMap((entry) => (entry.spec.enabled ? [entry.output.offer] : []));
    };

    const active: InputRole = "primary";
    const onEvent = (event: CoreEvent) => {
      if (event.type === "scte35") watcher.onSection(event.pid, event.pcr, event.section);
    };
    const ignoreEvent = () => {};

    const inputs: InputRuntime[] = [];
    const listen = (role: InputRole, endpoint: InputEndpoint) =>
      Effect.gen(function* () {
        const input: InputRuntime = { role, endpoint, core: PacketCore.load(), lastPacketAt: null };
        inputs.push(input);
        yield* bindInput(endpoint, (datagram) => {
          const now = performance.now();
          input.lastPacketAt = now;
          const packets = input.core.push(datagram, now);
          const forwarding = active === role;
          if (packets > 0 && forwarding) {
            const chunk = datagram.subarray(
              input.core.payloadOffset,
              input.core.payloadOffset + input.core.payloadLength,
            );
            for (let i = 0; i < offers.length; i++) offers[i]?.(chunk);
          }
          // The standby input's events are drained too, so its ring never overflows, but its cues are not the
          // channel's: they reach the watcher only from the input being forwarded.
          input.core.drainEvents(forwarding ? onEvent : ignoreEvent);
        });
      }).pipe(
        Effect.mapError(
          (error: InputError) =>
            new ChannelError({ reason: "input_failed", message: `${role} input: ${error.message}` }),
        ),
      );

    const removeOutput = (outputId: string) =>
      Effect.gen(function* () {
        const entry = entries.get(outputId);
        if (entry === undefined) return;
        entries.delete(outputId);
        rebuildFanOut();
        // Waits for the writer to finish: its socket or child process is released before this returns.
        yield* FiberMap.remove(writers, outputId);
      });

    const applyOutput = (next: OutputSpec) =>
      Effect.gen(function* () {
        const current = entries.get(next.id);
        if (current !== undefined && current.spec.url === next.url && current.spec.enabled === next.enabled) {
          entries.set(next.id, { ...current, spec: next });
          return;
        }
        const output = yield* makeOutput(next.url, outputOptions).pipe(
          Effect.mapError((error) => new ChannelError({ reason: "invalid_output", message: error.message })),
        );
        yield* removeOutput(next.id);
        entries.set(next.id, { spec: next, output });
        if (!next.enabled) return;
        rebuildFanOut();
        yield* FiberMap.run(writers, next.id, output.run);
      });

    yield* listen("primary", spec.primary);
    if (spec.backup !== null) yield* listen("backup", spec.backup);
    for (const output of spec.outputs) yield* applyOutput(output);

    const status = (): ChannelRuntimeStatus => {
      const now = performance.now();
      return {
        id: spec.id,
        name: spec.name,
        startedAt,
        inputs: inputs.map((input) => ({
          role: input.role,
          endpoint: input.endpoint,
          active: input.role === active,
          lastPacketAgeMs: input.lastPacketAt === null ? null : Math.round(now - input.lastPacketAt),
          core: input.core.snapshot(),
        })),
        outputs: [...entries.values()].map((entry) => ({
          ...entry.output.status(),
          id: entry.spec.id,
          name: entry.spec.name,
          enabled: entry.spec.enabled,
        })),
      };
    };

    return {
      spec: () => spec,
      status,
      watcher,
      activeInput: () => active,
      applyOutput: (next) =>
        Effect.tap(applyOutput(next), () => {
          spec = { ...spec, outputs: [...spec.outputs.filter((o) => o.id !== next.id), next] };
        }),
      removeOutput: (outputId) =>
        Effect.tap(removeOutput(outputId), () => {
          spec = { ...spec, outputs: spec.outputs.filter((o) => o.id !== outputId) };
        }),
    } satisfies RunningChannel;
  });
