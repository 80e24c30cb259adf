/**
 * Child processes tied to a Scope. Started with an argument array (never a shell); closing the scope sends
 * SIGTERM, then SIGKILL after a grace period, and waits until the process has been reaped, so no zombie or
 * orphan outlives its output.
 *
 * Arguments may hold secrets (an SRT passphrase, an RTMP stream key), so they are never logged, and the
 * stderr tail kept for error messages has every secret masked.
 */

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import type { Writable } from "node:stream";
import * as Effect from "effect/Effect";
import * as Redacted from "effect/Redacted";
import type * as Scope from "effect/Scope";
import { maskKnownSecrets } from "../../config/secrets.ts";

interface ChildSpec {
  readonly command: string;
  readonly args: ReadonlyArray<string>;
  /** Masked in the stderr tail, as given and as URL-encoded. */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>>;
  /** Open a pipe to the child's stdin. */
  readonly stdin?: boolean;
  /** Called for every stderr line, already masked. */
  readonly onStderrLine?: (line: string) => void;
  /** What of a (masked) stderr line the tail keeps; null keeps nothing. Default: the whole line. */
  readonly tailLine?: (line: string) => string | null;
  /**
   * Read the child's stdout by line (for machine-readable reports such as stats); ignored when absent.
   * stdout rather than an extra fd: Node's pipes are socket pairs, which a tool cannot reopen as /dev/fd/N.
   */
  readonly onStdoutLine?: (line: string) => void;
  /** Read the child's stdout as it comes, bytes as they are (an image, say); not with `onStdoutLine`. */
  readonly onStdoutData?: (chunk: Buffer) => void;
  readonly killGraceMs?: number;
  readonly tailLines?: number;
}

export interface ChildExit {
  /** The exit code, or null when a signal ended it or it never started. */
  readonly code: number | null;
  readonly signal: string | null;
  /** The executable could not be started (not installed, not executable). */
  readonly spawnFailed: boolean;
  /** The last stderr lines, masked. */
  readonly tail: ReadonlyArray<string>;
}

interface Child {
  readonly pid: number | undefined;
  /** Present when `stdin: true`; write errors are absorbed here and surface as the child's exit. */
  readonly stdin: Writable | null;
  readonly tail: () => ReadonlyArray<string>;
  /** Completes when the process has ended and been reaped. */
  readonly exit: Effect.Effect<ChildExit>;
}

const maxLineLength = 300;

const masker = (secrets: ReadonlyArray<Redacted.Redacted<string>>) => {
  const forms = secrets
    .map((secret) => Redacted.value(secret))
    .filter((secret) => secret.length > 0)
    .flatMap((secret) => [secret, encodeURIComponent(secret)])
    .sort((a, b) => b.length - a.length);
  return (line: string): string =>
    maskKnownSecrets(forms.reduce((masked, secret) => masked.split(secret).join("****"), line));
};

// A child must not outlive the service even when the service is killed outright (SIGKILL, OOM): util-linux's
// setpriv asks the kernel to SIGKILL the child when its parent dies, then execs the tool in the same process.
const setpriv = "/usr/bin/setpriv";
const dieWithParent = existsSync(setpriv);
const setprivCouldNotExec = /^setpriv: failed to execute /;

/** What a child process gets of the environment: PATH and a fixed locale, nothing else. */
const childEnvironment = (): Record<string, string> => ({
  PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
  LC_ALL: "C",
});

const readLines = (
  stream: NodeJS.ReadableStream | null | undefined,
  onLine: (line: string) => void,
): void => {
  if (stream === null || stream === undefined) return;
  createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on("line", onLine);
};

export const spawnChild = (spec: ChildSpec): Effect.Effect<Child, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const mask = masker(spec.secrets ?? []);
      const tailLimit = spec.tailLines ?? 20;
      const tail: Array<string> = [];
      const [command, args] = dieWithParent
        ? [setpriv, ["--pdeathsig", "KILL", "--", spec.command, ...spec.args]]
        : [spec.command, [...spec.args]];
      // node:child_process, which Node, Bun and Deno all carry, in workers too (execa reads process.channel,
      // which Deno refuses in a worker).
      const subprocess = spawn(command, args, {
        stdio: [
          spec.stdin === true ? "pipe" : "ignore",
          spec.onStdoutLine === undefined && spec.onStdoutData === undefined ? "ignore" : "pipe",
          "pipe",
        ],
        shell: false,
        // A minimal environment: the tools need a PATH and a locale, and nothing of the service's own
        // (DISTRIBUTARY_ADMIN_TOKEN and the like stay out of /proc/<child>/environ).
        env: childEnvironment(),
      });
      let spawnError = false;
      const ended = new Promise<ChildExit>((resolve) => {
        let done = false;
        const settle = (code: number | null, signal: string | null) => {
          if (done) return;
          done = true;
          resolve({
            code,
            signal,
            spawnFailed:
              spawnError ||
              (dieWithParent && code === 127 && tail.some((line) => setprivCouldNotExec.test(line))),
            tail: [...tail],
          });
        };
        subprocess.once("error", () => {
          // Only a spawn that failed leaves no pid; a kill that failed is not an end.
          if (subprocess.pid === undefined) {
            spawnError = true;
            settle(null, null);
          }
        });
        // "close": exited and reaped, and its stderr read to the end (so the tail is whole).
        subprocess.once("close", (code, signal) => settle(code, signal));
      });
      readLines(subprocess.stderr, (raw) => {
        // Masked first, cut after: a secret cut in half would no longer be recognised.
        const masked = mask(raw);
        const line = masked.length > maxLineLength ? `${masked.slice(0, maxLineLength)}…` : masked;
        const kept = spec.tailLine === undefined ? line : spec.tailLine(line);
        if (kept !== null) {
          tail.push(kept);
          if (tail.length > tailLimit) tail.shift();
        }
        spec.onStderrLine?.(line);
      });
      const onStdoutLine = spec.onStdoutLine;
      if (onStdoutLine !== undefined) readLines(subprocess.stdout, onStdoutLine);
      const onStdoutData = spec.onStdoutData;
      if (onStdoutData !== undefined) subprocess.stdout?.on("data", onStdoutData);
      const stdin = spec.stdin === true ? subprocess.stdin : null;
      // EPIPE after the child died must not crash the service; the exit tells the story.
      stdin?.on("error", () => {});
      subprocess.once("exit", () => stdin?.destroy());
      return {
        subprocess,
        ended,
        child: {
          pid: subprocess.pid,
          stdin,
          tail: () => [...tail],
          exit: Effect.promise(() => ended),
        } satisfies Child,
      };
    }),
    ({ subprocess, ended }) =>
      Effect.promise(() => {
        if (subprocess.exitCode !== null || subprocess.signalCode !== null || subprocess.pid === undefined)
          return ended;
        subprocess.kill("SIGTERM");
        // SIGKILL after the grace period if SIGTERM was not enough.
        const force = setTimeout(() => subprocess.kill("SIGKILL"), spec.killGraceMs ?? 2_000);
        return ended.finally(() => clearTimeout(force));
      }),
  ).pipe(Effect.map(({ child }) => child));

/** The generic description of an exit, for when a tool-specific reading finds nothing better. */
export const describeExit = (name: string, exit: ChildExit): string => {
  const lastLine = exit.tail.findLast((line) => line.trim() !== "");
  if (exit.spawnFailed) return `${name} could not be started (is it installed and on PATH?)`;
  // Killed from outside, the child's last words are not the reason.
  if (exit.signal !== null) return `${name} was killed by ${exit.signal}`;
  const how = `exited with code ${exit.code ?? "?"}`;
  return lastLine === undefined ? `${name} ${how}` : `${name} ${how}: ${lastLine}`;
};
