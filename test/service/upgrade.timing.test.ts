/**
 * A hitless upgrade on one box, as an operator runs it: `bin/distributary serve` as a real process, one channel
 * fed a paced RTP stream (H.264 + AAC with a SCTE-35 cue every 2 s) with UDP, RTP, SRT (srt-live-transmit) and
 * RTMP (nginx-rtmp) outputs, and `bin/distributary upgrade` three times while it streams, each once the last
 * is over and every output is back: to the same code, to another commit's code, and back. The service is started through a link, `current`, as /opt/distributary
 * would be one to a release: the "other commit" is a copy of the tree in a temp dir (bin/, src/, views/,
 * package.json; node_modules and build/ linked) whose src/version.ts says another version, and `current` is
 * pointed at it before the second upgrade, as a deployment would. What a user checks:
 *   - the UDP output's bytes are the input's, byte for byte (every TS packet once, in order, every cue); the RTP
 *     output's payloads likewise, under one SSRC with sequence numbers that never skip;
 *   - a client asking /api/health every 10 ms, a new connection each time, is never refused (nor reset);
 *   - SRT and RTMP are back within 1 s of each hand-over;
 *   - each upgrade's CLI says which process and version took over, and the new process's events say so too.
 * Then upgrades that fail, the new code made to throw at start and to hang: the old process keeps the channel
 * on air with nothing lost, and says why (the CLI's exit code and words, the log, an `upgrade` event).
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort } from "../support/app.ts";
import {
  nginxRtmpServer,
  type RtmpServer,
  type SrtPeer,
  srtListenerPeer,
  type UdpSink,
  udpSink,
} from "../support/peers.ts";
import { asRtp, chunkTs, DATAGRAM_BYTES, sendPaced } from "../support/sender.ts";
import { servicePort } from "../support/service.ts";
import {
  cuesIn,
  healthClient,
  longestSilence,
  rtpStream,
  serveReady,
  stopServing,
  streamWithCues,
} from "../support/upgrade-box.ts";

const TOKEN = "h9-upgrade-admin-token-0123456789abcdef";
/**
 * The stream of the first test: its three upgrades (2 s or so each, up to 7 s on a loaded machine, with the
 * waits between them) must all end 1 s before it does; the second sends its first AGAIN_SECONDS.
 */
const SECONDS = 40;
/** The second test's share of the stream: its failed start and 12 s hang, 20 s on a loaded machine, and 8 s more. */
const AGAIN_SECONDS = 28;
const ROOT = join(import.meta.dirname, "../..");
/** How long an upgrade may take before the old process gives up on the new one (a hanging new code's cost). */
const UPGRADE_TIMEOUT_S = 12;
const baseVersion = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string })
  .version;

const scope = Effect.runSync(Scope.make());
let dir = "";
let configDir = "";
let httpPort = 0;
let source: Buffer;
let cueCount = 0;
const started: ChildProcess[] = [];
let output = "";
/** What the first test leaves running for the second: the channel's sinks and input. */
let sinks: Sinks;
let inputPort = 0;
/** The first test's input, sent to its end whether the test passed or not: the second sends only after it. */
let firstSending: Promise<unknown> = Promise.resolve();

/** A copy of the tree whose src/version.ts is `versionTs`: another commit's code, sharing the build. */
const release = async (name: string, versionTs: string) => {
  const root = join(dir, name);
  await mkdir(root);
  for (const part of ["bin", "src", "views"])
    await cp(join(ROOT, part), join(root, part), { recursive: true });
  await cp(join(ROOT, "package.json"), join(root, "package.json"));
  await symlink(join(ROOT, "node_modules"), join(root, "node_modules"));
  await symlink(join(ROOT, "build"), join(root, "build"));
  await writeFile(join(root, "src/version.ts"), versionTs);
  return root;
};

/** Points `current` (the installed code, as a deployment's link) at `root`. */
const install = async (root: string) => {
  await rm(join(dir, "current"), { force: true });
  await symlink(root, join(dir, "current"));
};

const launcher = () => join(dir, "current/bin/distributary");

/** `distributary upgrade` with the installed launcher, or another (the broken code's CLI cannot start either). */
const upgrade = (cli = launcher()) =>
  execa(cli, ["upgrade", "--config-dir", configDir], { reject: false, env: { ...process.env } });

const api = (path: string, init: RequestInit = {}) =>
  fetch(`http://127.0.0.1:${httpPort}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...init.headers },
  });

const servingPid = async () => Number((await readFile(join(configDir, "distributary.pid"), "utf8")).trim());

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "h9-upgrade-"));
  configDir = join(dir, "config");
  httpPort = await servicePort();
  ({ bytes: source, cues: cueCount } = await streamWithCues(join(dir, "source.ts"), SECONDS));
  await install(ROOT);
}, 60_000);

afterAll(async () => {
  // The process serving now is no child of this one after an upgrade: it is stopped by its PID file's pid.
  await stopServing(await servingPid().catch(() => 0), started);
  await Effect.runPromise(Scope.close(scope, Exit.void));
  await rm(dir, { recursive: true, force: true });
}, 30_000);

/** `current/bin/distributary serve`, dying with this test process; its output (and its successors') kept. */
const serve = (env: NodeJS.ProcessEnv = {}) =>
  serveReady({
    launcher: launcher(),
    port: httpPort,
    configDir,
    env: {
      ...process.env,
      DISTRIBUTARY_ADMIN_TOKEN: TOKEN,
      DISTRIBUTARY_UPGRADE_TIMEOUT_S: String(UPGRADE_TIMEOUT_S),
      ...env,
    },
    started,
    print: (text) => {
      output += text;
    },
    printed: () => output,
  });

/** The input, paced at its own rate, as RTP whose sequence numbers start at `sequence`. */
const paced = (port: number, ts: Uint8Array, sequence: number) => {
  const perMs = source.length / SECONDS / DATAGRAM_BYTES / 1000;
  return Effect.runPromise(sendPaced(asRtp(chunkTs(ts), sequence), port, perMs));
};

interface Sinks {
  readonly udp: UdpSink;
  readonly rtp: UdpSink;
  readonly srtSink: UdpSink;
  readonly srt: SrtPeer;
  readonly nginx: RtmpServer;
}

const createChannel = async (inputPort: number, sinks: Sinks) => {
  const created = await api("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      name: "Upgraded",
      rtp_ip: "127.0.0.1",
      rtp_port: inputPort,
      outputs: [
        { name: "udp", protocol: "udp", url: `udp://127.0.0.1:${sinks.udp.port}` },
        { name: "rtp", protocol: "rtp", url: `rtp://127.0.0.1:${sinks.rtp.port}` },
        { name: "srt", protocol: "srt", url: `srt://127.0.0.1:${sinks.srt.port}?latency=120` },
        { name: "rtmp", protocol: "rtmp", url: `rtmp://127.0.0.1:${sinks.nginx.port}/live/h9` },
      ],
    }),
  });
  expect(created.status, await created.clone().text()).toBe(201);
  const id = ((await created.json()) as { id: string }).id;
  expect((await api(`/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
  return id;
};

const makeSinks = async (): Promise<Sinks> => {
  const udp = await Effect.runPromise(Scope.extend(udpSink, scope));
  const rtp = await Effect.runPromise(Scope.extend(udpSink, scope));
  const srtSink = await Effect.runPromise(Scope.extend(udpSink, scope));
  const srt = await Effect.runPromise(Scope.extend(srtListenerPeer({ forwardTo: srtSink.port }), scope));
  const nginx = await Effect.runPromise(Scope.extend(nginxRtmpServer(), scope));
  return { udp, rtp, srtSink, srt, nginx };
};

/**
 * nginx's recordings (one per publish, made as it starts) watched every 20 ms: when each appeared, when it first
 * held media (more than its header and metadata: the first key frame on) and when it last grew.
 */
const watchRecordings = (nginx: RtmpServer) => {
  const seen = new Map<
    string,
    { size: number; published: number; firstMedia: number | null; lastGrowth: number }
  >();
  const timer = setInterval(async () => {
    for (const file of await nginx.recordings().catch(() => [])) {
      const size = await stat(file).then(
        (info) => info.size,
        () => 0,
      );
      const now = performance.now();
      const entry = seen.get(file) ?? { size: 0, published: now, firstMedia: null, lastGrowth: now };
      if (size !== entry.size) entry.lastGrowth = now;
      if (entry.firstMedia === null && size > 2000) entry.firstMedia = now;
      entry.size = size;
      seen.set(file, entry);
    }
  }, 20);
  const entries = () => [...seen.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, entry]) => entry);
  return {
    /** The recordings so far, oldest first. */
    entries,
    stop: () => {
      clearInterval(timer);
      return entries();
    },
  };
};

describe("upgrade on one box", () => {
  it("hands the channel over three times, to the same code and to another commit's, losing and repeating nothing", async () => {
    const other = await release(
      "other",
      `/** Another commit: the same release with a trivially different version string. */\nexport const version: string = ${JSON.stringify(`${baseVersion}-h9-other`)};\n`,
    );
    const first = await serve();
    sinks = await makeSinks();
    inputPort = await freeUdpPort();
    const channelId = await createChannel(inputPort, sinks);
    const sending = paced(inputPort, source, 0);
    firstSending = sending.catch(() => undefined);
    const startedAt = performance.now();
    await eventually(
      "every output to connect (RTMP once the stream's first key frame came)",
      async () => {
        const view = (await (await api(`/api/channels/${channelId}`)).json()) as {
          outputs?: Array<{ state: string }>;
        };
        const states = view.outputs?.map((entry) => entry.state) ?? [];
        return states.length === 4 && states.every((state) => state === "connected") ? true : undefined;
      },
      10_000,
    );
    const health = healthClient(httpPort);
    const recordingsWatch = watchRecordings(sinks.nginx);
    const upgrades: Array<{ at: number; done: number; stdout: string }> = [];
    const versions: string[] = [];
    for (const target of [ROOT, other, ROOT]) {
      // Each upgrade once the last is over and the channel is whole again: every output connected, and the
      // RTMP publish of the process that serves now (one per process) recording media.
      // What was seen last, said if the wait times out.
      let last = "nothing yet";
      await eventually(
        `the channel back on air, every output, after ${upgrades.length} upgrades`,
        async () => {
          const view = (await (await api(`/api/channels/${channelId}`)).json()) as {
            outputs?: Array<{ name: string; state: string }>;
          };
          const states = view.outputs?.map((entry) => entry.state) ?? [];
          const recordings = recordingsWatch.entries();
          last = `outputs ${view.outputs?.map((entry) => `${entry.name} ${entry.state}`).join(", ")}; ${recordings.length} RTMP recordings, the last ${recordings.at(-1)?.firstMedia == null ? "without" : "with"} media`;
          return states.length === 4 &&
            states.every((state) => state === "connected") &&
            recordings.length === upgrades.length + 1 &&
            recordings.at(-1)?.firstMedia !== null
            ? true
            : undefined;
        },
        10_000,
        () => `${last}; the service's log:\n${output.slice(-3000)}`,
      );
      await install(target);
      const at = performance.now();
      const result = await upgrade();
      expect(result.exitCode, `${result.stdout}\n${result.stderr}\n${output.slice(-4000)}`).toBe(0);
      expect(result.stdout).toMatch(/ok: pid \d+ \(.+\) handed 1 channels to pid \d+ \(.+\) in \d+ ms/);
      upgrades.push({ at, done: performance.now(), stdout: result.stdout });
      versions.push(/to pid \d+ \(([^)]+)\)/.exec(result.stdout)?.[1] ?? "");
    }
    await sending;
    const endedAt = performance.now();
    // Every hand-over happened while the stream flowed.
    expect(upgrades.at(-1)?.done ?? Infinity).toBeLessThan(endedAt - 1000);
    const { asked, failures } = await health.stop();
    // The stream's tail through the UDP and RTP outputs (as many bytes as the input, or the time-out).
    await eventually(`the UDP and RTP outputs to carry as many bytes as the input (${source.length})`, () =>
      sinks.udp.totalBytes() >= source.length &&
      rtpStream(sinks.rtp.datagrams).payload.length >= source.length
        ? true
        : undefined,
    );

    // The first process ended once it handed over, with 0; the one serving now says the first version again.
    expect(
      await new Promise((done) =>
        first.exitCode !== null ? done(first.exitCode) : first.once("exit", done),
      ),
    ).toBe(0);
    expect(versions[1]).toMatch(/-h9-other$/);
    expect(versions[0]).toBe(versions[2]);
    expect(versions[0]).not.toMatch(/-h9-other$/);

    // Every TS packet once, in order, every cue: the UDP output is the input.
    const udp = sinks.udp.bytes();
    expect(udp.length, "UDP output bytes").toBe(source.length);
    expect(udp.equals(source)).toBe(true);
    expect(cuesIn(udp)).toBe(cueCount);
    // The RTP output: the same bytes, one SSRC, no sequence number skipped or repeated across the cuts.
    const rtp = rtpStream(sinks.rtp.datagrams);
    expect(rtp.skips).toEqual([]);
    expect(rtp.ssrcs.size).toBe(1);
    expect(rtp.payload.equals(source)).toBe(true);

    // Never refused: every request on a new connection was answered 200.
    expect(asked).toBeGreaterThan(500);
    expect(failures).toEqual([]);

    // SRT back within 1 s of each hand-over: srt-live-transmit's forward never fell silent that long.
    const srtSilence = longestSilence(sinks.srtSink.arrivals, startedAt + 1000, endedAt - 500);
    // (The UDP output's, which a hand-over never silences, tells a stalled observer or machine from SRT.)
    const udpSilence = longestSilence(sinks.udp.arrivals, startedAt + 1000, endedAt - 500);
    expect(
      srtSilence,
      `the SRT output's longest silence (ms); the UDP output's: ${Math.round(udpSilence)} ms`,
    ).toBeLessThan(1000);
    // RTMP: a new publish per process, each recording grown (the first key frame on) within 1 s of its cut.
    const recordings = recordingsWatch.stop();
    expect(recordings).toHaveLength(4);
    // RTMP: each new publish within 1 s of the old one's last bytes, its media from the next key frame (the
    // stream has one a second: within 1 s more).
    const rtmpGaps = recordings
      .slice(1)
      .map((next, index) => next.published - (recordings[index]?.lastGrowth ?? 0));
    const rtmpMedia = recordings.slice(1).map((next) => (next.firstMedia ?? Infinity) - next.published);
    for (const gap of rtmpGaps)
      expect(gap, "from the old publish's last bytes to the new publish (ms)").toBeLessThan(1000);
    for (const wait of rtmpMedia)
      expect(wait, "from the new publish to its first key frame (ms)").toBeLessThan(1000);

    // The serving process's event log tells the last hand-over.
    const events = (await (await api("/api/events?limit=500")).json()) as
      | Array<Record<string, unknown>>
      | { events: Array<Record<string, unknown>> };
    const list = Array.isArray(events) ? events : events.events;
    const handover = list.find((event) => event.type === "upgrade");
    expect(handover).toMatchObject({ outcome: "done", to: { pid: await servingPid() }, reason: null });
    // And the channel's own hand-over (handover/report.ts): from the old process to this one, nothing lost or
    // repeated, the packets at the cut as the upgrade event counts them; and the metrics say the same.
    const channelHandover = list.find((event) => event.type === "handover");
    expect(channelHandover).toMatchObject({
      kind: "upgrade",
      mode: "socket",
      to: expect.stringContaining(`pid ${await servingPid()} (`),
      lost: 0,
      repeated: 0,
      packets_at_cut: ((handover?.channels ?? []) as Array<{ packets_at_cut: number }>)[0]?.packets_at_cut,
    });
    const metrics = await (await api("/metrics")).text();
    expect(metrics).toContain('distributary_handovers_total{kind="upgrade",mode="socket"} 1');
    expect(metrics).toContain('distributary_handover_packets_total{kind="upgrade",result="lost"} 0');
    console.log(
      `upgrade: ${upgrades.map((entry) => `${Math.round(entry.done - entry.at)} ms`).join(", ")}; ${asked} health requests; SRT longest silence ${Math.round(srtSilence)} ms (UDP ${Math.round(udpSilence)} ms); RTMP republished after ${rtmpGaps.map(Math.round).join(", ")} ms, media ${rtmpMedia.map(Math.round).join(", ")} ms later`,
    );
  }, 120_000);

  it("keeps the channel on air, losing nothing, when the new code fails at start or hangs, and says why", async () => {
    const failing = await release(
      "failing",
      'throw new Error("h9: this build cannot start");\nexport const version: string = "never";\n',
    );
    const hanging = await release(
      "hanging",
      'setInterval(() => {}, 1000);\nawait new Promise(() => {});\nexport const version: string = "never";\n',
    );
    await firstSending;
    const servingBefore = await servingPid();
    const udpBefore = sinks.udp.datagrams.length;
    const rtpBefore = sinks.rtp.datagrams.length;
    // The input again, its RTP sequence going on from the first run's: its first AGAIN_SECONDS (whole datagrams),
    // as long as the failed start and the hang (UPGRADE_TIMEOUT_S) need, which must end while it flows; on a
    // loaded machine the two took 20 s. What this test checks of it (every byte once, in order) needs no more.
    const again = source.subarray(
      0,
      Math.floor((source.length * AGAIN_SECONDS) / SECONDS / DATAGRAM_BYTES) * DATAGRAM_BYTES,
    );
    const health = healthClient(httpPort);
    const sending = paced(inputPort, again, chunkTs(source).length);
    // On air again (a second of it at the UDP output) before the first upgrade.
    const aSecond = source.length / SECONDS;
    await eventually("a second of the stream again at the UDP output", () =>
      Buffer.concat(sinks.udp.datagrams.slice(udpBefore)).length >= aSecond ? true : undefined,
    );

    await install(failing);
    // The installed code cannot even run its CLI: the running version's asks (SIGUSR2 would do the same).
    const failed = await upgrade(join(ROOT, "bin/distributary"));
    expect(failed.exitCode, failed.stdout).toBe(1);
    expect(failed.stderr).toMatch(
      new RegExp(
        `failed: the new process exited \\(code 1\\) before it took over; its log says why; pid ${servingBefore} \\(.+\\) keeps every channel`,
      ),
    );
    expect(output).toContain("h9: this build cannot start");

    await install(hanging);
    const hung = await upgrade(join(ROOT, "bin/distributary"));
    expect(hung.exitCode, hung.stdout).toBe(1);
    expect(hung.stderr).toContain(
      `failed: the new process did not take over within ${UPGRADE_TIMEOUT_S} s; pid ${servingBefore}`,
    );
    const hungAt = performance.now();
    await sending;
    expect(hungAt, "the hanging upgrade ended while the stream flowed").toBeLessThan(
      performance.now() - 1000,
    );
    await eventually(`the UDP and RTP outputs to carry as many bytes as the input (${again.length})`, () =>
      Buffer.concat(sinks.udp.datagrams.slice(udpBefore)).length >= again.length &&
      rtpStream(sinks.rtp.datagrams.slice(rtpBefore)).payload.length >= again.length
        ? true
        : undefined,
    );
    const { failures } = await health.stop();
    await install(ROOT);

    // The same process serves, and the outputs carried every packet once, in order.
    expect(await servingPid()).toBe(servingBefore);
    expect(Buffer.concat(sinks.udp.datagrams.slice(udpBefore)).equals(again)).toBe(true);
    const rtp = rtpStream(sinks.rtp.datagrams);
    expect(rtp.skips).toEqual([]);
    expect(rtp.ssrcs.size).toBe(1);
    expect(rtpStream(sinks.rtp.datagrams.slice(rtpBefore)).payload.equals(again)).toBe(true);
    expect(failures).toEqual([]);

    // Said in words: the log and the event log.
    expect(output).toMatch(/upgrade failed: the new process exited \(code 1\) before it took over/);
    expect(output).toMatch(
      new RegExp(`upgrade failed: the new process did not take over within ${UPGRADE_TIMEOUT_S} s`),
    );
    const events = (await (await api("/api/events?limit=1000")).json()) as {
      events: Array<Record<string, unknown>>;
    };
    const upgrades = events.events.filter((event) => event.type === "upgrade" && event.outcome === "failed");
    expect(upgrades.map((event) => event.reason)).toEqual([
      "the new process exited (code 1) before it took over; its log says why",
      `the new process did not take over within ${UPGRADE_TIMEOUT_S} s`,
    ]);
  }, 120_000);
});
