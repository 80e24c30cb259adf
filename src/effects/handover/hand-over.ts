/**
 * The old process's side of an upgrade (upgrade.ts): it starts the code installed now beside itself, gives each
 * channel the new process asks for (peer.ts's `senders`, then `started`), and once every channel is taken gives
 * it the control socket and stops accepting on the HTTP socket, then ends. If the new process exits, cannot be
 * started, leaves a channel or has not taken over within the bound, it is killed, what it had taken starts again
 * here, and the reason goes to the log, an `upgrade` event and whoever asked.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { Server } from "node:net";
import * as Effect from "effect/Effect";
import type { ChannelId } from "../../domain/base/ids.ts";
import { version } from "../../version.ts";
import type { ChannelError, ChannelSpec } from "../channel/channel-types.ts";
import type { Channels } from "../channel/channels.ts";
import type { EventBus } from "../events/event-bus.ts";
import type { RtpState } from "../outputs/rtp.ts";
import { type FromNew, type FromOld, UPGRADE_FROM_ENV, UPGRADE_LISTEN_FD_ENV } from "./peer.ts";
import { upgradeFailed, upgradeStarted, upgradeTo } from "./upgrade-state.ts";

/** Set by bin/distributary: the launcher as it was called (a link to a release resolves to the new one). */
export const LAUNCHER_ENV = "DISTRIBUTARY_LAUNCHER";

/** How long the old process lets requests it accepted finish once the new one serves. */
const DRAIN_MS = 2000;

/** The upgrade's progress for whoever asked: a line each, the last starting "ok:" or "failed:". */
export type Report = (line: string) => void;

/** The HTTP server as the upgrade needs it. */
export interface ListeningServer extends Server {
  readonly closeIdleConnections?: () => void;
}

interface Peer {
  readonly pid: number;
  readonly version: string;
}

/** What the old process's side needs of the service around it (upgrade.ts). */
export interface HandOverContext {
  readonly channels: Channels;
  readonly bus: EventBus;
  readonly server: ListeningServer;
  readonly timeoutMs: number;
  /** Runs an effect on the service's runtime, not waiting for it. */
  readonly run: (effect: Effect.Effect<unknown>) => void;
  readonly log: (level: "info" | "warning" | "error", text: string) => void;
  /** This node's id in a fleet (PostgreSQL); null on one box. */
  readonly fleetNode: string | null;
  /** Whether an upgrade is under way, and whether this process has handed over and is leaving. */
  readonly state: { upgrading: boolean; leaving: boolean };
  /** After a failed upgrade: the control socket (opened again if it was given) and the PID file, this process's. */
  readonly keepServing: Effect.Effect<void>;
  /** Once every channel is taken: the control socket's path is the new process's from here. */
  readonly giveControl: () => void;
}

export const message = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause));

/** The listening socket's descriptor (libuv's TCP handle has it on Unix). */
const descriptorOf = (server: Server): number | null => {
  const handle = (server as unknown as { _handle?: { fd?: unknown } })._handle;
  return typeof handle?.fd === "number" && handle.fd >= 0 ? handle.fd : null;
};

/** One upgrade under way: the new process and what it has been given. */
interface Session {
  readonly ctx: HandOverContext;
  readonly child: ChildProcess;
  readonly report: Report;
  readonly from: Peer;
  readonly startedAt: number;
  /** Channels handed off: if the upgrade fails now, they start again here. */
  readonly given: Map<ChannelId, ChannelSpec>;
  readonly letGos: Map<ChannelId, Effect.Effect<Record<string, RtpState>, ChannelError>>;
  readonly cuts: Array<{ channel: string; packets_at_cut: number }>;
  /** When the new process asked for each channel, then how long its hand-over took. */
  readonly asked: Map<string, number>;
  readonly durations: Record<string, number>;
  to: Peer | null;
  over: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const reply = (session: Session, answer: FromOld) => {
  if (session.child.connected) session.child.send(answer);
};

/** The upgrade failed: the new process is killed and this one keeps (or starts again) every channel. */
const fail = (session: Session, reason: string) => {
  if (session.over) return;
  session.over = true;
  const { ctx, child, given, from, startedAt } = session;
  clearTimeout(session.timer);
  child.removeAllListeners("exit");
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  const restart = [...given.values()];
  ctx.run(
    Effect.gen(function* () {
      // The new process is gone (SIGKILL: at once): what it had taken runs here again.
      for (const spec of restart)
        yield* ctx.channels.start(spec).pipe(Effect.catchAll((error) => Effect.logError(error.message)));
      yield* ctx.keepServing;
      const kept = `pid ${process.pid} (${version}) keeps every channel`;
      ctx.log("error", `upgrade failed: ${reason}; ${kept}`);
      upgradeFailed(version, session.to?.version ?? null, Date.now() - startedAt, reason);
      ctx.bus.emit({
        type: "upgrade",
        outcome: "failed",
        from,
        to: session.to,
        channels: [],
        duration_ms: Date.now() - startedAt,
        reason,
      });
      session.report(
        `failed: ${reason}; ${kept}${restart.length > 0 ? ` (${restart.length} started again)` : ""}`,
      );
      ctx.state.upgrading = false;
    }),
  );
};

/** The new process asks for a channel's senders: the channel is handed off, still sending here. */
const giveSenders = (session: Session, received: Extract<FromNew, { readonly t: "senders" }>) => {
  const { channels } = session.ctx;
  const id = received.channel;
  session.ctx.run(
    Effect.gen(function* () {
      if (!channels.running().includes(id)) return reply(session, { t: "reply", n: received.n, value: null });
      session.asked.set(id, performance.now());
      const status = yield* channels.status(id);
      const handOff = yield* channels.handOff(id);
      session.letGos.set(id, handOff.letGo);
      const active = status?.inputs.find((input) => input.active) ?? status?.inputs[0];
      session.cuts.push({ channel: id, packets_at_cut: Math.floor((active?.core.bytes ?? 0) / 188) });
      session.given.set(id, handOff.spec);
      reply(session, { t: "reply", n: received.n, value: handOff.senders });
    }).pipe(
      Effect.catchAll((error) =>
        Effect.sync(() => reply(session, { t: "reply", n: received.n, error: error.message })),
      ),
    ),
  );
};

/** The new copy of a channel has started: the old one sends its last datagram and stops. */
const letGo = (session: Session, received: Extract<FromNew, { readonly t: "started" }>) => {
  const stop = session.letGos.get(received.channel);
  if (stop === undefined)
    return reply(session, {
      t: "reply",
      n: received.n,
      error: `channel ${received.channel} was not handed off`,
    });
  session.letGos.delete(received.channel);
  session.ctx.run(
    stop.pipe(
      Effect.match({
        onFailure: (error) => reply(session, { t: "reply", n: received.n, error: error.message }),
        onSuccess: (rtp) => {
          session.durations[received.channel] =
            performance.now() - (session.asked.get(received.channel) ?? 0);
          reply(session, { t: "reply", n: received.n, value: rtp });
        },
      }),
    ),
  );
};

/** The new process has taken what it could: all of it, or the upgrade fails. */
const taken = (session: Session, received: Extract<FromNew, { readonly t: "taken" }>) => {
  const { ctx, given } = session;
  const to = { pid: received.pid, version: received.version };
  session.to = to;
  upgradeTo(received.version);
  const left = ctx.channels.running();
  if (received.failed.length > 0 || left.length > 0)
    return fail(
      session,
      `the new process did not take ${[...new Set([...received.failed, ...left])].join(", ")}`,
    );
  ctx.log("info", `upgrade: pid ${received.pid} (${received.version}) took ${given.size} channels`);
  session.report(`pid ${received.pid} (${received.version}) took ${given.size} channels`);
  ctx.giveControl();
  reply(session, {
    t: "yours",
    event: {
      type: "upgrade",
      outcome: "done",
      from: session.from,
      to,
      channels: session.cuts,
      duration_ms: Date.now() - session.startedAt,
      reason: null,
    },
    durations: session.durations,
  });
};

/** The new process serves: accepting stops here, requests accepted finish (DRAIN_MS at most), then this ends. */
const leave = (session: Session) => {
  const { ctx, child } = session;
  session.over = true;
  ctx.state.leaving = true;
  clearTimeout(session.timer);
  child.removeAllListeners("exit");
  const took = Date.now() - session.startedAt;
  session.report(
    `ok: pid ${process.pid} (${version}) handed ${session.given.size} channels to pid ${session.to?.pid} (${session.to?.version}) in ${took} ms`,
  );
  // Accepting stops here; the new process accepts on the same socket. Then this process ends.
  ctx.server.close();
  ctx.server.closeIdleConnections?.();
  const done = () => {
    child.disconnect();
    child.unref();
    process.kill(process.pid, "SIGTERM");
  };
  let waited = 0;
  let ended = false;
  const drain = setInterval(() => {
    waited += 20;
    ctx.server.getConnections((_, count) => {
      if (ended || (count > 0 && waited < DRAIN_MS)) return;
      ended = true;
      clearInterval(drain);
      done();
    });
  }, 20);
};

/**
 * A fleet node is not upgraded beside itself: the node's lock in the database (config/postgres/node-lock.ts) and
 * its leases are this process's, and a new process of the same node would find them held. Refused before
 * anything starts, in words that say what to do instead; the node keeps every channel.
 */
const refuseInFleet = (ctx: HandOverContext, node: string, report: Report) => {
  const reason = `node ${node} is part of a fleet, whose nodes are upgraded one at a time, not beside themselves (a second process cannot run as node ${node} while this one holds its lock and leases): move its channels to an upgraded node or drain it, stop it, install the new code and start it (docs/upgrades.md)`;
  upgradeFailed(version, null, 0, reason);
  ctx.log("error", `upgrade refused: ${reason}`);
  report(`failed: ${reason}; pid ${process.pid} (${version}) keeps every channel`);
};

/** Starts the code installed now beside this process and hands it everything; `report` hears how it goes. */
export const handOver = (ctx: HandOverContext, report: Report) => {
  if (ctx.state.upgrading) return report("failed: an upgrade is already under way");
  if (ctx.state.leaving) return report("failed: this process has handed over and is leaving");
  if (ctx.fleetNode !== null) return refuseInFleet(ctx, ctx.fleetNode, report);
  const launcher = process.env[LAUNCHER_ENV];
  if (launcher === undefined || launcher === "")
    return report(
      "failed: this service was not started by bin/distributary, so there is no installed code to start",
    );
  const fd = descriptorOf(ctx.server);
  if (fd === null) return report("failed: the HTTP listening socket has no descriptor to hand over");
  ctx.state.upgrading = true;
  upgradeStarted(version);
  const startedAt = Date.now();
  let child: ChildProcess;
  try {
    child = spawn(launcher, ["serve", ...process.argv.slice(3)], {
      stdio: ["inherit", "inherit", "inherit", "ipc", fd],
      env: {
        ...process.env,
        [UPGRADE_FROM_ENV]: `${process.pid} ${version}`,
        [UPGRADE_LISTEN_FD_ENV]: "4",
      },
    });
  } catch (cause) {
    ctx.state.upgrading = false;
    upgradeFailed(version, null, 0, message(cause));
    return report(`failed: cannot start ${launcher}: ${message(cause)}`);
  }
  const started = `started ${launcher} serve as pid ${child.pid ?? "?"}; handing over`;
  ctx.log("info", `upgrade: ${started}`);
  report(started);
  const session: Session = {
    ctx,
    child,
    report,
    from: { pid: process.pid, version },
    startedAt,
    given: new Map(),
    letGos: new Map(),
    cuts: [],
    asked: new Map(),
    durations: {},
    to: null,
    over: false,
    timer: undefined,
  };
  session.timer = setTimeout(
    () => fail(session, `the new process did not take over within ${ctx.timeoutMs / 1000} s`),
    ctx.timeoutMs,
  );
  child.once("error", (error) => fail(session, `cannot start ${launcher}: ${error.message}`));
  child.once("exit", (code, signal) =>
    fail(
      session,
      `the new process exited (${signal === null ? `code ${code}` : signal}) before it took over; its log says why`,
    ),
  );
  child.on("message", (received: FromNew) => {
    if (session.over || typeof received !== "object" || received === null) return;
    switch (received.t) {
      case "senders":
        return giveSenders(session, received);
      case "started":
        return letGo(session, received);
      case "abandon":
        return ctx.log(
          "warning",
          `upgrade: the new process could not start channel ${received.channel}; it runs here`,
        );
      case "taken":
        return taken(session, received);
      case "serving":
        return leave(session);
    }
  });
};
