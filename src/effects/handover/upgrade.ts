/**
 * A hitless restart or upgrade on one box: `distributary upgrade` (through the control socket in the config
 * directory) or SIGUSR2 starts the code installed now (`bin/distributary serve`, the same arguments and
 * environment) beside the running process and hands it everything:
 *
 * - the HTTP listening socket: the new process gets the same socket as a descriptor it inherits, so both
 *   accept on it until the old one stops; no connection is refused at any moment;
 * - each channel (peer.ts): the new copy's inputs join the old sockets' ports (SO_REUSEPORT) connected to their
 *   senders, the old copy reads what its socket had queued, sends its last datagram and stops, and the new copy
 *   sends from the next, its RTP outputs going on with the old SSRC, sequence and timestamp base;
 * - the control socket and the PID file (for systemd's `PIDFile=`), once every channel is taken.
 *
 * The old process exits when the new one serves; if the new one exits, or has not taken over within
 * DISTRIBUTARY_UPGRADE_TIMEOUT_S (30 s), it is killed and the old one keeps (or starts again) every channel and
 * says why: in its log, an `upgrade` event, and to the CLI (exit code 1 and the words).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server, Socket } from "node:net";
import * as Effect from "effect/Effect";
import * as Runtime from "effect/Runtime";
import type { ChannelId } from "../../domain/base/ids.ts";
import { version } from "../../version.ts";
import type { ChannelError, ChannelSpec } from "../channel/channel-types.ts";
import { Channels } from "../channel/channels.ts";
import { upgradeTimeoutSeconds } from "../config/settings.ts";
import { EventBus } from "../events/event-bus.ts";
import type { RtpState } from "../outputs/rtp.ts";
import { Readiness } from "../status/readiness.ts";
import {
  controlSocketPath,
  type FromNew,
  type FromOld,
  isTakingOver,
  pidFilePath,
  stopTaking,
  UPGRADE_FROM_ENV,
  UPGRADE_LISTEN_FD_ENV,
} from "./peer.ts";
import { reportUpgradeHandovers } from "./report.ts";
import { upgradeDone, upgradeFailed, upgradeStarted, upgradeTo } from "./upgrade-state.ts";

/** Set by bin/distributary: the launcher as it was called (a link to a release resolves to the new one). */
export const LAUNCHER_ENV = "DISTRIBUTARY_LAUNCHER";

/** How long the old process lets requests it accepted finish once the new one serves. */
const DRAIN_MS = 2000;

/** The listening socket's descriptor (libuv's TCP handle has it on Unix). */
const descriptorOf = (server: Server): number | null => {
  const handle = (server as unknown as { _handle?: { fd?: unknown } })._handle;
  return typeof handle?.fd === "number" && handle.fd >= 0 ? handle.fd : null;
};

/** The upgrade's progress for whoever asked: a line each, the last starting "ok:" or "failed:". */
type Report = (line: string) => void;

interface Peer {
  readonly pid: number;
  readonly version: string;
}

/** The HTTP server as the upgrade needs it. */
interface ListeningServer extends Server {
  readonly closeIdleConnections?: () => void;
}

interface Options {
  readonly server: ListeningServer;
  readonly configDir: string;
}

const message = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause));

/** Binds the control socket; a stale file of a process gone is replaced, a live one's is left alone. */
const openControl = (path: string, onUpgrade: (connection: Socket) => void): Promise<Server> =>
  new Promise((resolve, reject) => {
    const listen = () => {
      const server = createServer((connection) => {
        connection.setEncoding("utf8");
        let text = "";
        connection.on("data", (chunk: string) => {
          text += chunk;
          if (!text.includes("\n")) return;
          const command = text.slice(0, text.indexOf("\n")).trim();
          text = "";
          if (command === "upgrade") onUpgrade(connection);
          else
            connection.end(
              `failed: unknown command '${command.slice(0, 40)}' (this service knows: upgrade)\n`,
            );
        });
        connection.on("error", () => {});
      });
      server.once("error", reject);
      // Made with the process's umask (0755 at most: nobody else may write, so nobody else may connect),
      // then only the service's user (and root) may.
      server.listen(path, () => {
        server.off("error", reject);
        try {
          chmodSync(path, 0o600);
        } catch {}
        resolve(server);
      });
    };
    // A file left by a process that is gone answers nothing: it is replaced.
    const check = new Socket();
    check.once("connect", () => {
      check.destroy();
      reject(new Error(`another distributary serves ${path}: one service per config directory`));
    });
    check.once("error", () => {
      try {
        unlinkSync(path);
      } catch {}
      listen();
    });
    check.connect(path);
  });

/**
 * Serves upgrades while the scope is open: the control socket, SIGUSR2 and the PID file; in a process an
 * upgrade started, first the end of the hand-over.
 */
export const serveUpgrades = (options: Options) =>
  Effect.gen(function* () {
    const channels = yield* Channels;
    const bus = yield* EventBus;
    const readiness = yield* Readiness;
    const timeoutMs = (yield* Effect.orDie(upgradeTimeoutSeconds)) * 1000;
    const runtime = yield* Effect.runtime<never>();
    const run = Runtime.runFork(runtime);
    const log = (level: "info" | "warning" | "error", text: string) =>
      run(
        level === "info"
          ? Effect.logInfo(text)
          : level === "warning"
            ? Effect.logWarning(text)
            : Effect.logError(text),
      );
    const socketPath = controlSocketPath(options.configDir);
    const pidPath = pidFilePath(options.configDir);
    let control: Server | null = null;
    let upgrading = false;
    let leaving = false;

    /** The PID file, for systemd and scripts; a node whose directory cannot hold it runs on without one. */
    const writePid = () => {
      try {
        writeFileSync(pidPath, `${process.pid}\n`);
      } catch (cause) {
        log("warning", `no PID file (${pidPath}): ${message(cause)}`);
      }
    };

    /** The old process: starts the new one and hands it everything; `report` hears how it goes. */
    const upgrade = (report: Report) => {
      if (upgrading) return report("failed: an upgrade is already under way");
      if (leaving) return report("failed: this process has handed over and is leaving");
      const launcher = process.env[LAUNCHER_ENV];
      if (launcher === undefined || launcher === "")
        return report(
          "failed: this service was not started by bin/distributary, so there is no installed code to start",
        );
      const fd = descriptorOf(options.server);
      if (fd === null) return report("failed: the HTTP listening socket has no descriptor to hand over");
      upgrading = true;
      upgradeStarted(version);
      const startedAt = Date.now();
      const from: Peer = { pid: process.pid, version };
      const say = (line: string) => {
        log("info", `upgrade: ${line}`);
        report(line);
      };
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
        upgrading = false;
        upgradeFailed(version, null, 0, message(cause));
        return report(`failed: cannot start ${launcher}: ${message(cause)}`);
      }
      say(`started ${launcher} serve as pid ${child.pid ?? "?"}; handing over`);
      /** Channels handed off: if the upgrade fails now, they start again here. */
      const given = new Map<ChannelId, ChannelSpec>();
      const letGos = new Map<ChannelId, Effect.Effect<Record<string, RtpState>, ChannelError>>();
      const cuts: Array<{ channel: string; packets_at_cut: number }> = [];
      /** When the new process asked for each channel, then how long its hand-over took. */
      const asked = new Map<string, number>();
      const durations: Record<string, number> = {};
      let to: Peer | null = null;
      let over = false;

      const fail = (reason: string) => {
        if (over) return;
        over = true;
        clearTimeout(timer);
        child.removeAllListeners("exit");
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        const restart = [...given.values()];
        run(
          Effect.gen(function* () {
            // The new process is gone (SIGKILL: at once): what it had taken runs here again.
            for (const spec of restart)
              yield* channels.start(spec).pipe(Effect.catchAll((error) => Effect.logError(error.message)));
            if (control === null)
              control = yield* Effect.promise(() =>
                openControl(socketPath, (connection) => upgrade(toConnection(connection))).catch(() => null),
              );
            writePid();
            const kept = `pid ${process.pid} (${version}) keeps every channel`;
            log("error", `upgrade failed: ${reason}; ${kept}`);
            upgradeFailed(version, to?.version ?? null, Date.now() - startedAt, reason);
            bus.emit({
              type: "upgrade",
              outcome: "failed",
              from,
              to,
              channels: [],
              duration_ms: Date.now() - startedAt,
              reason,
            });
            report(
              `failed: ${reason}; ${kept}${restart.length > 0 ? ` (${restart.length} started again)` : ""}`,
            );
            upgrading = false;
          }),
        );
      };
      const timer = setTimeout(
        () => fail(`the new process did not take over within ${timeoutMs / 1000} s`),
        timeoutMs,
      );
      child.once("error", (error) => fail(`cannot start ${launcher}: ${error.message}`));
      child.once("exit", (code, signal) =>
        fail(
          `the new process exited (${signal === null ? `code ${code}` : signal}) before it took over; its log says why`,
        ),
      );
      const reply = (answer: FromOld) => {
        if (child.connected) child.send(answer);
      };
      child.on("message", (received: FromNew) => {
        if (over || typeof received !== "object" || received === null) return;
        switch (received.t) {
          case "senders": {
            const id = received.channel;
            run(
              Effect.gen(function* () {
                if (!channels.running().includes(id))
                  return reply({ t: "reply", n: received.n, value: null });
                asked.set(id, performance.now());
                const status = yield* channels.status(id);
                const handOff = yield* channels.handOff(id);
                letGos.set(id, handOff.letGo);
                const active = status?.inputs.find((input) => input.active) ?? status?.inputs[0];
                cuts.push({ channel: id, packets_at_cut: Math.floor((active?.core.bytes ?? 0) / 188) });
                given.set(id, handOff.spec);
                reply({ t: "reply", n: received.n, value: handOff.senders });
              }).pipe(
                Effect.catchAll((error) =>
                  Effect.sync(() => reply({ t: "reply", n: received.n, error: error.message })),
                ),
              ),
            );
            return;
          }
          case "started": {
            const letGo = letGos.get(received.channel);
            if (letGo === undefined)
              return reply({
                t: "reply",
                n: received.n,
                error: `channel ${received.channel} was not handed off`,
              });
            letGos.delete(received.channel);
            run(
              letGo.pipe(
                Effect.match({
                  onFailure: (error) => reply({ t: "reply", n: received.n, error: error.message }),
                  onSuccess: (rtp) => {
                    durations[received.channel] = performance.now() - (asked.get(received.channel) ?? 0);
                    reply({ t: "reply", n: received.n, value: rtp });
                  },
                }),
              ),
            );
            return;
          }
          case "abandon":
            log(
              "warning",
              `upgrade: the new process could not start channel ${received.channel}; it runs here`,
            );
            return;
          case "taken": {
            to = { pid: received.pid, version: received.version };
            upgradeTo(received.version);
            const left = channels.running();
            if (received.failed.length > 0 || left.length > 0)
              return fail(
                `the new process did not take ${[...new Set([...received.failed, ...left])].join(", ")}`,
              );
            say(`pid ${received.pid} (${received.version}) took ${given.size} channels`);
            // The control socket's path is the new process's from here.
            // (closing a Unix socket server removes its file at once; the connection asking stays open).
            control?.close();
            control = null;
            return reply({
              t: "yours",
              event: {
                type: "upgrade",
                outcome: "done",
                from,
                to,
                channels: cuts,
                duration_ms: Date.now() - startedAt,
                reason: null,
              },
              durations,
            });
          }
          case "serving": {
            over = true;
            leaving = true;
            clearTimeout(timer);
            child.removeAllListeners("exit");
            const took = Date.now() - startedAt;
            report(
              `ok: pid ${process.pid} (${version}) handed ${given.size} channels to pid ${to?.pid} (${to?.version}) in ${took} ms`,
            );
            // Accepting stops here; the new process accepts on the same socket. Then this process ends.
            options.server.close();
            options.server.closeIdleConnections?.();
            const done = () => {
              child.disconnect();
              child.unref();
              process.kill(process.pid, "SIGTERM");
            };
            let waited = 0;
            let ended = false;
            const drain = setInterval(() => {
              waited += 20;
              options.server.getConnections((_, count) => {
                if (ended || (count > 0 && waited < DRAIN_MS)) return;
                ended = true;
                clearInterval(drain);
                done();
              });
            }, 20);
            return;
          }
        }
      });
    };

    const toConnection =
      (connection: Socket): Report =>
      (line) => {
        if (connection.writable) connection.write(`${line}\n`);
        if (line.startsWith("ok:") || line.startsWith("failed:")) connection.end();
      };

    /** The new process, once its resume has started (and so taken) every channel. */
    const finishTakeOver = Effect.gen(function* () {
      while (!readiness.ready()) yield* Effect.sleep("10 millis");
      stopTaking();
      const send = (message: FromNew) => process.send?.(message);
      const handedOver = yield* Effect.async<Extract<FromOld, { readonly t: "yours" }>>((resume) => {
        const onMessage = (received: unknown) => {
          if (typeof received !== "object" || received === null || (received as FromOld).t !== "yours")
            return;
          process.off("message", onMessage);
          resume(Effect.succeed(received as Extract<FromOld, { readonly t: "yours" }>));
        };
        process.on("message", onMessage);
        send({
          t: "taken",
          pid: process.pid,
          version,
          channels: channels.running(),
          failed: readiness.notResumed().map((channel) => channel.id),
        });
      });
      control = yield* Effect.promise(() =>
        openControl(socketPath, (connection) => upgrade(toConnection(connection))),
      );
      writePid();
      send({ t: "serving" });
      bus.emit(handedOver.event);
      reportUpgradeHandovers(bus, handedOver.event, handedOver.durations);
      upgradeDone(handedOver.event);
      yield* Effect.logInfo(
        `upgrade: took over from pid ${process.env[UPGRADE_FROM_ENV]?.split(" ")[0] ?? "?"}; serving`,
      );
    });

    // A fleet node keeps its configuration in the database: its directory may not exist yet.
    yield* Effect.sync(() => mkdirSync(options.configDir, { recursive: true, mode: 0o700 })).pipe(
      Effect.catchAllDefect(() => Effect.void),
    );
    if (isTakingOver()) yield* Effect.forkScoped(finishTakeOver);
    else {
      control = yield* Effect.tryPromise(() =>
        openControl(socketPath, (connection) => upgrade(toConnection(connection))),
      ).pipe(
        Effect.catchAll((error) =>
          Effect.as(
            Effect.logWarning(
              `no control socket (distributary upgrade will not reach this process): ${message(error.error)}`,
            ),
            null,
          ),
        ),
      );
      writePid();
    }

    const onSignal = () =>
      upgrade((line) => {
        if (line.startsWith("failed:")) log("error", `upgrade (SIGUSR2) ${line}`);
      });
    process.on("SIGUSR2", onSignal);
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        process.off("SIGUSR2", onSignal);
        control?.close();
        // The PID file is the next process's once it has taken over.
        try {
          if (readFileSync(pidPath, "utf8").trim() === String(process.pid)) rmSync(pidPath);
        } catch {}
      }),
    );
  });
