/**
 * The two processes of an upgrade on one box (upgrade.ts), as the channel supervisors see them. The old
 * process started the new one with an IPC channel (Node's `process.send`); over it, the new one's supervisor
 * takes each channel the old one runs, as a move between threads does (runtime/threads/move-word.ts), only across
 * processes: it asks where the old copy's inputs hear their senders, starts its copy with its inputs joined to
 * those ports and connected to those senders (the kernel gives it every datagram from then on; what the old
 * socket had queued, the old copy still reads), holds what it forwards, says it started; the old copy closes
 * its inputs, sends its last datagrams and stops, and answers with where its RTP outputs' streams stand; the
 * new copy goes on with those (outputs/rtp.ts) and sends what it held. Every TS packet leaves once, in order.
 *
 * This module is the new process's side of that conversation and the messages both sides speak; upgrade.ts
 * answers in the old process. It holds no Effect service: the supervisors (channel/workers/pool.ts,
 * channel/channels.ts) ask `adoptionFor` at each start, which answers null outside an upgrade.
 */
import { join } from "node:path";
import * as Effect from "effect/Effect";
import type { ChannelId } from "../../domain/base/ids.ts";
import type { NewEvent } from "../../domain/events/events.ts";
import { ChannelError, type ChannelSpec, type Handover, type OutputSpec } from "../channel/channel-types.ts";
import type { RtpState } from "../outputs/rtp.ts";

/** Set by the old process for the new one: it is taking over (the IPC channel is the old process). */
export const UPGRADE_FROM_ENV = "DISTRIBUTARY_UPGRADE_FROM";
/** The descriptor the new process finds the HTTP listening socket at. */
export const UPGRADE_LISTEN_FD_ENV = "DISTRIBUTARY_UPGRADE_LISTEN_FD";

/** The control socket `distributary upgrade` speaks to, in the config directory (only its owner may connect). */
export const controlSocketPath = (configDir: string): string => join(configDir, "distributary.sock");
/** The running process's id, for systemd's `PIDFile=` (it follows an upgrade to the new process). */
export const pidFilePath = (configDir: string): string => join(configDir, "distributary.pid");

/** New process → old process. */
export type FromNew =
  | { readonly t: "senders"; readonly n: number; readonly channel: ChannelId }
  | { readonly t: "started"; readonly n: number; readonly channel: ChannelId }
  | { readonly t: "abandon"; readonly n: number; readonly channel: ChannelId }
  /** Every channel that should run was taken (or started here); `pid` and `version` are the new process's. */
  | {
      readonly t: "taken";
      readonly pid: number;
      readonly version: string;
      readonly channels: ReadonlyArray<string>;
      readonly failed: ReadonlyArray<string>;
    }
  /** The new process serves the control socket and wrote the PID file: the old one may go. */
  | { readonly t: "serving" };

/** Old process → new process. */
export type FromOld =
  | { readonly t: "reply"; readonly n: number; readonly value: unknown }
  | { readonly t: "reply"; readonly n: number; readonly error: string }
  /**
   * The old process closed its control socket: the new one takes it and the PID file, and puts the hand-over
   * in its event log (the old one's ends with it).
   */
  | {
      readonly t: "yours";
      readonly event: Extract<NewEvent, { readonly type: "upgrade" }>;
      /**
       * Each channel's hand-over in ms, from the new process asking for it to the old copy letting go. An old
       * process of a release before it (a886bbe) sends none: each channel then counts the whole upgrade's.
       */
      readonly durations?: Readonly<Record<string, number>>;
    };

/** What the old copy's hand-off gives the new one. */
export interface HandOff {
  /** Where each of its UDP inputs hears its sender. */
  readonly senders: Handover;
  /** The old copy has sent its last datagram and stopped; where its RTP outputs' streams stand. */
  readonly released: Record<string, RtpState>;
}

/** A channel the new process takes from the old one. */
export interface Adoption {
  readonly senders: Handover;
  /** The new copy runs: the old one lets go. Resolves with its RTP outputs' states after its last send. */
  readonly started: () => Promise<Record<string, RtpState>>;
  /** The new copy could not start: the old one forwards on. */
  readonly abandon: () => void;
}

/** Tells the old process the new copy of `id` runs, and waits for it to let go (its RTP outputs' states). */
export const letGo = (
  adoption: Adoption,
  id: ChannelId,
): Effect.Effect<Record<string, RtpState>, ChannelError> =>
  Effect.tryPromise({
    try: adoption.started,
    catch: (cause) =>
      new ChannelError({
        reason: "input_failed",
        message: `the old process did not let go of channel ${id}: ${cause instanceof Error ? cause.message : String(cause)}`,
      }),
  });

const upgrading = (): boolean => process.env[UPGRADE_FROM_ENV] !== undefined && process.send !== undefined;

let taking = upgrading();
let next = 0;
const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
let listening = false;

const onMessage = (message: unknown) => {
  if (typeof message !== "object" || message === null || !("t" in message)) return;
  const reply = message as FromOld;
  if (reply.t !== "reply") return;
  const entry = waiting.get(reply.n);
  if (entry === undefined) return;
  waiting.delete(reply.n);
  if ("error" in reply) entry.reject(new Error(reply.error));
  else entry.resolve(reply.value);
};

const ask = <A>(t: "senders" | "started", channel: ChannelId): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    if (!listening) {
      listening = true;
      process.on("message", onMessage);
      process.once("disconnect", () => {
        taking = false;
        for (const entry of waiting.values()) entry.reject(new Error("the old process went away"));
        waiting.clear();
      });
    }
    next += 1;
    waiting.set(next, { resolve: resolve as (value: unknown) => void, reject });
    process.send?.({ t, n: next, channel } satisfies FromNew);
  });

/**
 * For a supervisor starting a channel: during an upgrade, how to take it from the old process (null: start it
 * as usual, the old process does not run it, or this is no upgrade).
 */
export const adoptionFor = async (channel: ChannelId): Promise<Adoption | null> => {
  if (!taking) return null;
  const senders = await ask<Handover | null>("senders", channel).catch(() => null);
  if (senders === null) return null;
  return {
    senders,
    started: () => ask<Record<string, RtpState>>("started", channel),
    abandon: () => {
      next += 1;
      process.send?.({ t: "abandon", n: next, channel } satisfies FromNew);
    },
  };
};

/** The hand-over is over: later starts are this process's own. */
export const stopTaking = (): void => {
  taking = false;
  if (listening) process.off("message", onMessage);
  listening = false;
};

/** Whether this process was started by an upgrade and is taking channels over. */
export const isTakingOver = (): boolean => taking;

/**
 * What the new copy starts with: its UDP and RTP outputs, which go on where the old copy's stopped. The others
 * (SRT, RIST, RTMP, RTSP, HLS, files) hold a session or a file of their own that cannot move between
 * processes: they start once the old copy has closed theirs, so that a listener taking one caller at a time,
 * or an RTMP server taking one publisher a stream, takes the new one at once.
 */
export const splitForHandOver = (
  spec: ChannelSpec,
): { readonly now: ChannelSpec; readonly after: ReadonlyArray<OutputSpec> } => {
  const moves = (output: OutputSpec) => /^(udp|rtp):/i.test(output.url);
  return {
    now: { ...spec, outputs: spec.outputs.filter(moves) },
    after: spec.outputs.filter((output) => !moves(output)),
  };
};
