import { readdir, readFile } from "node:fs/promises";
import { it } from "@effect/vitest";
import { Effect, Exit, Scope } from "effect";
import { execa } from "execa";
import { describe, expect } from "vitest";
import { makeOutput } from "../../src/effects/outputs/writer.ts";
import { spawnChild } from "../../src/effects/runtime/process/child-process.ts";
import {
  childProcesses,
  eventually,
  freeTcpPort,
  freeUdpPort,
  srtCallerPeer,
  srtListenerPeer,
  udpSink,
} from "../support/peers.ts";
import { TsGenerator } from "../support/ts-generator.ts";

// The kernel keeps only the first 15 characters of a command name.
const childNamed = (command: string) => async () => {
  const found = (await childProcesses()).find(
    (child) => child.command === command.slice(0, 15) && child.state !== "Z",
  );
  return found;
};

describe("output child processes", () => {
  it.live("a SIGKILLed child is restarted and counted; after the scope closes no child of ours remains", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make();
      // Nothing listens here: ffmpeg stays alive waiting for input to probe, which is all this test needs.
      const rtspPort = yield* freeTcpPort;
      const rtsp = yield* makeOutput(`rtsp://127.0.0.1:${rtspPort}/live/key`);
      yield* Effect.forkIn(rtsp.run, scope);

      const first = yield* eventually("ffmpeg to start", childNamed("ffmpeg"));
      process.kill(first.pid, "SIGKILL");
      const second = yield* eventually("a new ffmpeg", async () => {
        const found = await childNamed("ffmpeg")();
        return found !== undefined && found.pid !== first.pid ? found : undefined;
      });
      expect(second.pid).not.toBe(first.pid);
      expect(rtsp.status()).toMatchObject({ reconnects: 1 });
      expect(rtsp.status().lastError).toMatch(/SIGKILL/);

      yield* Scope.close(scope, Exit.void);
      expect(rtsp.status().state).toBe("stopped");
      // Reaped as well as ended: not even a zombie is left.
      const left = yield* Effect.promise(() => childProcesses());
      expect(left).toEqual([]);
    }),
  );

  it.scopedLive(
    "SRT outputs stream without any child process, and their passphrase is in no /proc/*/cmdline or environ",
    () =>
      Effect.gen(function* () {
        const passphrase = "only-in-process-memory-4821";
        const sink = yield* udpSink;
        const peer = yield* srtListenerPeer({ forwardTo: sink.port, passphrase });
        const listenerPort = yield* freeUdpPort;
        const caller = yield* makeOutput(`srt://127.0.0.1:${peer.port}?passphrase=${passphrase}`);
        const listener = yield* makeOutput(
          `srt://127.0.0.1:${listenerPort}?mode=listener&passphrase=${passphrase}`,
        );
        yield* Effect.forkScoped(caller.run);
        yield* Effect.forkScoped(listener.run);
        yield* srtCallerPeer({ port: listenerPort, forwardTo: sink.port, passphrase });
        yield* eventually("both SRT outputs connected", () =>
          caller.status().state === "connected" && listener.status().state === "connected" ? true : undefined,
        );
        const generator = new TsGenerator({ seed: 31 });
        for (let i = 0; i < 20; i++) {
          const chunk = generator.datagram();
          caller.offer(chunk);
          listener.offer(chunk);
        }
        yield* eventually("data through both", () => (sink.totalBytes() >= 2 * 20 * 1316 ? true : undefined));

        // Our only children are the two test peers (srt-live-transmit as peer, started by the test).
        const ours = yield* Effect.promise(() => childProcesses());
        const others = ours.filter((child) => child.command !== "srt-live-transm");
        expect(others).toEqual([]);
        expect(ours.filter((child) => child.command === "srt-live-transm")).toHaveLength(2);

        // The test's peers carry the passphrase in their argv (srt-live-transmit has no other way); nothing
        // else on this machine, this process included, has it in its command line or environment.
        const found: Array<string> = [];
        for (const entry of yield* Effect.promise(() => readdir("/proc"))) {
          if (!/^\d+$/.test(entry)) continue;
          const pid = Number(entry);
          if (ours.some((child) => child.pid === pid && child.command === "srt-live-transm")) continue;
          for (const file of ["cmdline", "environ"]) {
            const text = yield* Effect.promise(() =>
              readFile(`/proc/${pid}/${file}`, "latin1").catch(() => ""),
            );
            if (text.includes(passphrase)) found.push(`/proc/${pid}/${file}`);
          }
        }
        expect(found).toEqual([]);
      }),
  );
});

describe("a child outlives nothing", () => {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it.live("when the service is killed with SIGKILL, its children die with it", () =>
    Effect.gen(function* () {
      const holder = execa(process.execPath, ["test/support/spawn-and-hold.ts", "sleep", "600"], {
        reject: false,
      });
      const childPid = yield* Effect.promise(
        () =>
          new Promise<number>((resolve) =>
            holder.stdout?.once("data", (chunk: Buffer) => resolve(Number(chunk))),
          ),
      );
      expect(alive(childPid)).toBe(true);
      holder.kill("SIGKILL");
      yield* Effect.promise(() => holder);
      yield* eventually("the orphaned child to be gone", () => (alive(childPid) ? undefined : true));
    }),
  );

  it.scoped("a tool that is not installed is reported as such, not as a crash", () =>
    Effect.gen(function* () {
      const child = yield* spawnChild({ command: "distributary-no-such-tool", args: [] });
      const exit = yield* child.exit;
      expect(exit.spawnFailed).toBe(true);
    }),
  );
});

describe("what a child sees of the service", () => {
  it.live("output children get PATH and a locale, never the service's environment (no admin token)", () =>
    Effect.gen(function* () {
      const planted = "planted-admin-token-in-the-environment-123456";
      const before = process.env.DISTRIBUTARY_ADMIN_TOKEN;
      process.env.DISTRIBUTARY_ADMIN_TOKEN = planted;
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          if (before === undefined) delete process.env.DISTRIBUTARY_ADMIN_TOKEN;
          else process.env.DISTRIBUTARY_ADMIN_TOKEN = before;
        }),
      );
      const rtsp = yield* makeOutput(`rtsp://127.0.0.1:${yield* freeTcpPort}/live/key`);
      yield* Effect.forkScoped(rtsp.run);
      for (const command of ["ffmpeg"]) {
        const child = yield* eventually(`${command} to start`, childNamed(command));
        const environ = yield* Effect.promise(() =>
          import("node:fs/promises").then((fs) => fs.readFile(`/proc/${child.pid}/environ`, "utf8")),
        );
        const names = environ
          .split("\0")
          .filter((entry) => entry !== "")
          .map((entry) => entry.split("=")[0]);
        expect(names.sort(), command).toEqual(["LC_ALL", "PATH"]);
        expect(environ).not.toContain(planted);
      }
    }).pipe(Effect.scoped),
  );
});
