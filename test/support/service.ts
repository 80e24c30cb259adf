/**
 * `bin/distributary … serve` as a real process for tests: its stdout and stderr kept, its exit awaited, and
 * ready once `GET /api/ready` answers 200 (failing at once, with the output, if it exits first).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { eventually } from "./app.ts";

export const bin = join(import.meta.dirname, "../../bin/distributary");

/**
 * A TCP port for a service under test, free now and below the kernel's ephemeral range (32768 and up), so no
 * socket elsewhere in the run is handed it between this check and the service's listen, nor between two
 * services started on it in turn. Each test process takes its numbers from its own block.
 */
let taken = -1;
export const servicePort = async (): Promise<number> => {
  const block = 20_000 + (Number(process.env.VITEST_POOL_ID ?? process.pid) % 24) * 500;
  for (let tries = 0; tries < 500; tries++) {
    taken = (taken + 1) % 500;
    const port = block + taken;
    if (await listenable(port)) return port;
  }
  throw new Error(`no free TCP port in ${block}–${block + 499}`);
};

const listenable = (port: number): Promise<boolean> =>
  new Promise((answer) => {
    const server = createServer();
    server.once("error", () => answer(false));
    server.listen(port, "0.0.0.0", () => server.close(() => answer(true)));
  });

export interface ServiceProcess {
  readonly process: ChildProcess;
  /** The exit code (null after a signal). */
  readonly exited: Promise<number | null>;
  readonly signal: Promise<NodeJS.Signals | null>;
  readonly output: () => string;
  readonly base: string;
  readonly ready: (timeoutMs?: number) => Promise<void>;
}

/**
 * Starts `bin/distributary [...before] serve --port P [...after]` with exactly `env` as its environment, under
 * `wrapper` (a command and its arguments, such as `setpriv …`) if given.
 */
export const spawnService = (options: {
  readonly port: number;
  readonly wrapper?: ReadonlyArray<string>;
  readonly before?: ReadonlyArray<string>;
  readonly after?: ReadonlyArray<string>;
  readonly env: NodeJS.ProcessEnv;
  /** Another tree's launcher (another release's `bin/distributary`); this tree's by default. */
  readonly bin?: string;
}): ServiceProcess => {
  // The service dies with the test process (setpriv execs it: the same pid), so a test that fails before its
  // own stop, or a test process the runner ends, leaves no service behind.
  const command = [
    "/usr/bin/setpriv",
    "--pdeathsig",
    "KILL",
    ...(options.wrapper ?? []),
    options.bin ?? bin,
    ...(options.before ?? []),
    "serve",
    "--port",
    String(options.port),
    ...(options.after ?? []),
  ];
  const child = spawn(command[0] ?? bin, command.slice(1), {
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: unknown) => {
    output += String(chunk);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const base = `http://127.0.0.1:${options.port}`;
  return {
    process: child,
    exited: ended.then((end) => end.code),
    signal: ended.then((end) => end.signal),
    output: () => output,
    base,
    ready: async (timeoutMs = 20_000) => {
      await eventually(
        "the service to be ready",
        async () => {
          if (child.exitCode !== null) throw new Error(`serve exited: ${output}`);
          const ready = await fetch(`${base}/api/ready`).catch(() => undefined);
          return ready?.status === 200 ? true : undefined;
        },
        timeoutMs,
      );
    },
  };
};
