import { it } from "@effect/vitest";
import { Effect, Exit, Scope } from "effect";
import { execa } from "execa";
import { describe, expect } from "vitest";
import { spawnChild } from "../../src/effects/child-process.ts";
import { makeOutput } from "../../src/effects/outputs/writer.ts";
import { childProcesses, eventually, freeTcpPort, freeUdpPort } from "../support/peers.ts";

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
      const srtPort = yield* freeUdpPort;
      // Nothing listens here: ffmpeg stays alive waiting for input to probe, which is all this test needs.
      const rtmpPort = yield* freeTcpPort;
      const srt = yield* makeOutput(`srt://127.0.0.1:${srtPort}?mode=listener`);
      const rtmp = yield* makeOutput(`rtmp://127.0.0.1:${rtmpPort}/live/key`);
      yield* Effect.forkIn(srt.run, scope);
      yield* Effect.forkIn(rtmp.run, scope);

      const first = yield* eventually("srt-live-transmit to start", childNamed("srt-live-transmit"));
      yield* eventually("ffmpeg to start", childNamed("ffmpeg"));
      process.kill(first.pid, "SIGKILL");
      const second = yield* eventually("a new srt-live-transmit", async () => {
        const found = await childNamed("srt-live-transmit")();
        return found !== undefined && found.pid !== first.pid ? found : undefined;
      });
      expect(second.pid).not.toBe(first.pid);
      expect(srt.status()).toMatchObject({
        reconnects: 1,
        lastErrorReason: "child_exited",
        lastError: "srt-live-transmit was killed by SIGKILL",
      });

      yield* Scope.close(scope, Exit.void);
      expect(srt.status().state).toBe("stopped");
      expect(rtmp.status().state).toBe("stopped");
      // Reaped as well as ended: not even a zombie is left.
      const left = yield* Effect.promise(() => childProcesses());
      expect(left).toEqual([]);
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
      const srt = yield* makeOutput(`srt://127.0.0.1:${yield* freeUdpPort}?mode=listener`);
      const rtmp = yield* makeOutput(`rtmp://127.0.0.1:${yield* freeTcpPort}/live/key`);
      yield* Effect.forkScoped(srt.run);
      yield* Effect.forkScoped(rtmp.run);
      for (const command of ["srt-live-transmit", "ffmpeg"]) {
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
