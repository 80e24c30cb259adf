/**
 * An upgrade on one box across versions: the service started from the previous release (PREVIOUS_RELEASE,
 * materialised by test/support/previous-release.ts with its own bin/distributary) through a link, `current`, as
 * /opt/distributary would be one; one channel fed a paced RTP stream (H.264 + AAC with a SCTE-35 cue every 2 s)
 * with a UDP and an RTP output. While it streams, `current` is pointed at this tree, as a deployment would, and
 * the operator runs the installed CLI (this tree's `current/bin/distributary upgrade`): the previous release's
 * process starts the installed launcher and hands it everything. Then a second upgrade, this code to this code,
 * shows the process that took over from the old release can hand over in turn. What a user checks:
 *   - the UDP output's bytes are the input's, byte for byte (every TS packet once, in order, every cue); the RTP
 *     output's payloads likewise, under one SSRC with sequence numbers that never skip;
 *   - a client asking /api/health every 10 ms, a new connection each time, is never refused (nor reset);
 *   - the CLI says which process took over; that process runs this tree's code (its command line, and what
 *     only this code tells: the channel's `handover` event and the hand-over metrics), the old one ran the
 *     release's, and the old one exited with 0.
 * Both trees say version 0.1.0 (package.json was not bumped between them): the version string cannot tell
 * them apart, the code each process runs can.
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort } from "../support/app.ts";
import { type UdpSink, udpSink } from "../support/peers.ts";
import { previousRelease, type Release } from "../support/previous-release.ts";
import { asRtp, chunkTs, DATAGRAM_BYTES, sendPaced } from "../support/sender.ts";
import {
  cuesIn,
  healthClient,
  rtpStream,
  serveReady,
  stopServing,
  streamWithCues,
} from "../support/upgrade-box.ts";

const TOKEN = "h8-upgrade-release-admin-token-0123456789";
/**
 * The stream: both upgrades (3.5 s each here, a few seconds more on a loaded machine, with the wait for the
 * outputs before each) must end 1 s before it does; 20 s leaves them twice what they take here.
 */
const SECONDS = 20;
const ROOT = join(import.meta.dirname, "../..");
const baseVersion = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string })
  .version;

const scope = Effect.runSync(Scope.make());
let dir = "";
let configDir = "";
let httpPort = 0;
let source: Buffer;
let cueCount = 0;
let previous: Release;
const started: ChildProcess[] = [];
let output = "";

/** Points `current` (the installed code, as a deployment's link) at `root`. */
const install = async (root: string) => {
  await rm(join(dir, "current"), { force: true });
  await symlink(root, join(dir, "current"));
};
const launcher = () => join(dir, "current/bin/distributary");

const api = (path: string, init: RequestInit = {}) =>
  fetch(`http://127.0.0.1:${httpPort}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...init.headers },
  });

const servingPid = async () => Number((await readFile(join(configDir, "distributary.pid"), "utf8")).trim());
/** What a process runs: its command line (the launcher execs node on `<root>/src/cli/start.mjs`). */
const commandLine = async (pid: number) =>
  (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").join(" ");

/** A TCP port in this test's block (28000–28499) that nothing listens on now. */
const httpPortFree = async () => {
  for (let port = 28_000 + (process.pid % 400); port < 28_500; port++) {
    const free = await new Promise<boolean>((answer) => {
      const server = createServer();
      server.once("error", () => answer(false));
      server.listen(port, "0.0.0.0", () => server.close(() => answer(true)));
    });
    if (free) return port;
  }
  throw new Error("no free TCP port in 28000–28499");
};

beforeAll(async () => {
  previous = await previousRelease();
  dir = await mkdtemp(join(tmpdir(), "h8-upgrade-release-"));
  configDir = join(dir, "config");
  httpPort = await httpPortFree();
  ({ bytes: source, cues: cueCount } = await streamWithCues(join(dir, "source.ts"), SECONDS));
  await install(previous.root);
}, 300_000);

afterAll(async () => {
  // The process serving now is no child of this one after an upgrade: it is stopped by its PID file's pid.
  await stopServing(await servingPid().catch(() => 0), started);
  await Effect.runPromise(Scope.close(scope, Exit.void));
  if (dir !== "") await rm(dir, { recursive: true, force: true });
}, 30_000);

/** `current/bin/distributary serve`, dying with this test process; its output (and its successors') kept. */
const serve = () =>
  serveReady({
    launcher: launcher(),
    port: httpPort,
    configDir,
    env: { ...process.env, DISTRIBUTARY_ADMIN_TOKEN: TOKEN, DISTRIBUTARY_UPGRADE_TIMEOUT_S: "20" },
    started,
    print: (text) => {
      output += text;
    },
    printed: () => output,
  });

const outputsConnected = (channelId: string) => async () => {
  const view = (await (await api(`/api/channels/${channelId}`)).json()) as {
    outputs?: Array<{ state: string }>;
  };
  const states = view.outputs?.map((entry) => entry.state) ?? [];
  return states.length === 2 && states.every((state) => state === "connected") ? true : undefined;
};

describe("upgrade on one box from the previous release", () => {
  it("hands the channel from the previous release's process to this code's, then on again, losing and repeating nothing", async () => {
    const first = await serve();
    const firstPid = first.pid ?? 0;
    expect(await commandLine(firstPid)).toContain(join(previous.root, "src/cli/start.mjs"));
    const udp: UdpSink = await Effect.runPromise(Scope.extend(udpSink, scope));
    const rtp: UdpSink = await Effect.runPromise(Scope.extend(udpSink, scope));
    const inputPort = await freeUdpPort();
    const created = await api("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        name: "Across versions",
        rtp_ip: "127.0.0.1",
        rtp_port: inputPort,
        outputs: [
          { name: "udp", protocol: "udp", url: `udp://127.0.0.1:${udp.port}` },
          { name: "rtp", protocol: "rtp", url: `rtp://127.0.0.1:${rtp.port}` },
        ],
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const channelId = ((await created.json()) as { id: string }).id;
    expect((await api(`/api/channels/${channelId}/start`, { method: "POST" })).status).toBe(200);

    const perMs = source.length / SECONDS / DATAGRAM_BYTES / 1000;
    const sending = Effect.runPromise(sendPaced(asRtp(chunkTs(source), 0), inputPort, perMs));
    await eventually("both outputs to connect", outputsConnected(channelId), 10_000);
    // A second of the stream out before the first upgrade.
    await eventually("a second of the stream at the UDP output", () =>
      udp.totalBytes() >= source.length / SECONDS ? true : undefined,
    );
    const health = healthClient(httpPort);

    // The deployment: `current` now points at this tree; the operator runs the installed CLI.
    await install(ROOT);
    const upgrades: Array<{ ms: number; done: number; stdout: string; pid: number }> = [];
    const handovers: Array<Record<string, unknown>> = [];
    for (const round of [1, 2]) {
      await eventually(`both outputs connected before upgrade ${round}`, outputsConnected(channelId), 10_000);
      const at = performance.now();
      const result = await execa(launcher(), ["upgrade", "--config-dir", configDir], { reject: false });
      expect(result.exitCode, `${result.stdout}\n${result.stderr}\n${output.slice(-4000)}`).toBe(0);
      expect(result.stdout).toMatch(/ok: pid \d+ \(.+\) handed 1 channels to pid \d+ \(.+\) in \d+ ms/);
      const fromPid = upgrades.at(-1)?.pid ?? firstPid;
      upgrades.push({
        ms: performance.now() - at,
        done: performance.now(),
        stdout: result.stdout,
        pid: await servingPid(),
      });
      // The new process finished its take-over: it says it serves, and tells the channel's hand-over in its
      // event log (which lives in that process: the next upgrade's successor starts its own).
      const handover = await eventually(
        `upgrade ${round}'s take-over to finish`,
        async () => {
          if (!output.includes(`upgrade: took over from pid ${fromPid}; serving`)) return undefined;
          const { events } = (await (await api("/api/events?limit=500")).json()) as {
            events: Array<Record<string, unknown>>;
          };
          return events.find((event) => event.type === "handover");
        },
        5_000,
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}; the service said:\n${output.slice(-3000)}`);
      });
      handovers.push(handover);
    }
    await sending;
    const endedAt = performance.now();
    const { asked, failures } = await health.stop();
    await eventually(`the UDP and RTP outputs to carry as many bytes as the input (${source.length})`, () =>
      udp.totalBytes() >= source.length && rtpStream(rtp.datagrams).payload.length >= source.length
        ? true
        : undefined,
    );

    // The previous release's process handed over and ended with 0; the CLI named it and its successor.
    expect(
      await new Promise((done) =>
        first.exitCode !== null ? done(first.exitCode) : first.once("exit", done),
      ),
    ).toBe(0);
    const [toNew, toNext] = upgrades;
    expect(toNew?.stdout).toMatch(
      new RegExp(`ok: pid ${firstPid} \\(${previous.version}\\) handed 1 channels to pid ${toNew?.pid} \\(`),
    );
    expect(toNext?.stdout).toMatch(
      new RegExp(`ok: pid ${toNew?.pid} \\(.+\\) handed 1 channels to pid ${toNext?.pid}`),
    );
    // The process serving now runs this tree's code.
    expect(await commandLine(toNext?.pid ?? 0)).toContain(join(ROOT, "src/cli/start.mjs"));
    expect(
      upgrades.at(-1)?.done ?? Infinity,
      "every hand-over happened while the stream flowed",
    ).toBeLessThan(endedAt - 1000);

    // Every TS packet once, in order, every cue: the UDP output is the input.
    const udpBytes = udp.bytes();
    expect(udpBytes.length, "UDP output bytes").toBe(source.length);
    expect(udpBytes.equals(source)).toBe(true);
    expect(cuesIn(udpBytes)).toBe(cueCount);
    // The RTP output: the same bytes, one SSRC, no sequence number skipped or repeated across both cuts.
    const rtpOut = rtpStream(rtp.datagrams);
    expect(rtpOut.skips).toEqual([]);
    expect(rtpOut.ssrcs.size).toBe(1);
    expect(rtpOut.payload.equals(source)).toBe(true);

    // Never refused: every request on a new connection was answered 200.
    expect(asked).toBeGreaterThan(300);
    expect(failures).toEqual([]);

    // The channel's hand-overs, told by the process that took it (an event only this code has): from pid to
    // pid, nothing lost or repeated.
    expect(handovers).toMatchObject([
      {
        kind: "upgrade",
        mode: "socket",
        from: `pid ${firstPid} (${previous.version})`,
        to: `pid ${toNew?.pid} (${baseVersion})`,
        lost: 0,
        repeated: 0,
      },
      {
        kind: "upgrade",
        mode: "socket",
        from: `pid ${toNew?.pid} (${baseVersion})`,
        to: `pid ${toNext?.pid} (${baseVersion})`,
        lost: 0,
        repeated: 0,
      },
    ]);
    const metrics = await (await api("/metrics")).text();
    expect(metrics).toContain('distributary_handover_packets_total{kind="upgrade",result="lost"} 0');
    console.log(
      `upgrade from ${previous.commit.slice(0, 7)}: ${upgrades.map((entry) => `${Math.round(entry.ms)} ms`).join(", ")}; ${asked} health requests, none refused; ${udpBytes.length} bytes, ${cueCount} cues through UDP and RTP`,
    );
  }, 180_000);
});
