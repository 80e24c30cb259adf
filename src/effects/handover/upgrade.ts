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
 *
 * The old process's side is hand-over.ts, the new one's take-over.ts; this file serves the control socket,
 * SIGUSR2 and the PID file. A fleet node refuses, in words: a fleet is upgraded one node at a time
 * (docs/upgrades.md).
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server, Socket } from "node:net";
import * as Effect from "effect/Effect";
import * as Runtime from "effect/Runtime";
import { Channels } from "../channel/channels.ts";
import { Placement } from "../config/placement.ts";
import { upgradeTimeoutSeconds } from "../config/settings.ts";
import { EventBus } from "../events/event-bus.ts";
import { Readiness } from "../status/readiness.ts";
import { type HandOverContext, handOver, type ListeningServer, message, type Report } from "./hand-over.ts";
import { controlSocketPath, isTakingOver, pidFilePath } from "./peer.ts";
import { finishTakeOver } from "./take-over.ts";

export { LAUNCHER_ENV } from "./hand-over.ts";

interface Options {
  readonly server: ListeningServer;
  readonly configDir: string;
}

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
    const placement = yield* Placement;
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

    /** The PID file, for systemd and scripts; a node whose directory cannot hold it runs on without one. */
    const writePid = () => {
      try {
        writeFileSync(pidPath, `${process.pid}\n`);
      } catch (cause) {
        log("warning", `no PID file (${pidPath}): ${message(cause)}`);
      }
    };

    const toConnection =
      (connection: Socket): Report =>
      (line) => {
        if (connection.writable) connection.write(`${line}\n`);
        if (line.startsWith("ok:") || line.startsWith("failed:")) connection.end();
      };
    const listenControl = () =>
      openControl(socketPath, (connection) => handOver(context, toConnection(connection)));

    const context: HandOverContext = {
      channels,
      bus,
      server: options.server,
      timeoutMs,
      run: (effect) => run(effect),
      log,
      fleetNode: placement.node(),
      state: { upgrading: false, leaving: false },
      keepServing: Effect.gen(function* () {
        if (control === null) control = yield* Effect.promise(() => listenControl().catch(() => null));
        writePid();
      }),
      giveControl: () => {
        // (closing a Unix socket server removes its file at once; the connection asking stays open).
        control?.close();
        control = null;
      },
    };

    // A fleet node keeps its configuration in the database: its directory may not exist yet.
    yield* Effect.sync(() => mkdirSync(options.configDir, { recursive: true, mode: 0o700 })).pipe(
      Effect.catchAllDefect(() => Effect.void),
    );
    if (isTakingOver())
      yield* Effect.forkScoped(
        finishTakeOver({
          channels,
          bus,
          readiness,
          claim: Effect.gen(function* () {
            control = yield* Effect.promise(listenControl);
            writePid();
          }),
        }).pipe(
          // Its own fiber: a failure would otherwise end it without a word, the channels on air but the
          // hand-over never reported nor the upgrade marked done.
          Effect.catchAllCause((cause) =>
            Effect.logError(
              "upgrade: this process took the channels but could not finish the take-over",
              cause,
            ),
          ),
        ),
      );
    else {
      control = yield* Effect.tryPromise(listenControl).pipe(
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
      handOver(context, (line) => {
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
