/**
 * A corrupt frame never takes a channel off air (tried as a user would): the service as a real process with
 * one forwarding worker, three channels on it, each fed 20 s of a 7 Mbit/s H.264 + AAC stream with SCTE-35 as
 * RTP, each with a UDP output and an RTMP output to nginx-rtmp:
 *   - "light": 0.2 % of the video and audio TS packets with their payloads rewritten (random bytes, PES
 *     headers whose lengths lie, start codes, an SPS of 0xff, ADTS headers with impossible lengths), their TS
 *     headers, PIDs and continuity counters left valid;
 *   - "heavy": 5 % of them;
 *   - "faulty": the clean stream, its remux made to throw on every chunk (DISTRIBUTARY_TEST_REMUX_FAULT, a
 *     test-only hook), as a remux with a bug would.
 * No channel restarts; every UDP output carries its input byte for byte; nginx sees one publish session of
 * "light" and of "heavy", whose frames it records, and none of "faulty", whose fault is counted; the remux's
 * drops are counted by reason in the output's status, in /metrics, as rate-limited events and on the channel
 * page (screenshots: test-results/screenshots/channel-corrupt-*).
 */
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { eventually, freeUdpPort } from "../support/app.ts";
import { launchChromium, login, newContext, screenshot } from "../support/browser.ts";
import { CORRUPTIONS, type Corrupted, corruptMedia } from "../support/corrupt.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import { encodeTestStream } from "../support/media.ts";
import { nginxRtmpServer, type RtmpServer, type UdpSink, udpSink } from "../support/peers.ts";
import { videoPes, withCues } from "../support/rtmp-media.ts";
import { asRtp, chunkTs, DATAGRAM_BYTES, sendPaced } from "../support/sender.ts";
import { type ServiceProcess, servicePort, spawnService } from "../support/service.ts";
import { STREAM_TYPE_AAC } from "../support/ts-generator.ts";

const TOKEN = "corrupt-frames-admin-token-0123456789";
const SECONDS = 20;
const BITRATE = 7_000_000;
/** ffmpeg's video and audio PIDs in the streams it makes. */
const MEDIA_PIDS = [0x100, 0x101];

interface Feed {
  readonly name: "light" | "heavy" | "faulty";
  readonly corrupted: Corrupted | null;
  readonly ts: Buffer;
  readonly port: number;
  readonly sink: UdpSink;
  id: string;
}

interface OutputView {
  readonly id: string;
  readonly name: string;
  readonly state: string;
  readonly reconnects: number;
  readonly rtmp: {
    readonly frames_sent: number;
    readonly cues_sent: number;
    readonly remux_dropped: Readonly<Record<string, number>>;
    readonly remux_last_drop: string | null;
  } | null;
}

interface ChannelView {
  readonly status: string;
  readonly outputs: ReadonlyArray<OutputView>;
}

const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const sum = (counts: Readonly<Record<string, number>>) => Object.values(counts).reduce((a, b) => a + b, 0);

const scope = Effect.runSync(Scope.make());
let dir = "";
let service: ServiceProcess | undefined;
let nginx: RtmpServer;
const feeds: Feed[] = [];

const api = async (path: string, init: RequestInit = {}) =>
  fetch(`${service?.base}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
  });
const channelView = async (feed: Feed) =>
  (await (await api(`/api/channels/${feed.id}`)).json()) as ChannelView;
const rtmpOf = (view: ChannelView) => view.outputs.find((output) => output.name === "rtmp") as OutputView;
const eventsOf = async (feed: Feed, type: string) =>
  (
    (await (await api(`/api/events?channel=${feed.id}&type=${type}&limit=1000`)).json()) as {
      events: ReadonlyArray<Record<string, unknown>>;
    }
  ).events;
/** nginx records each publish to a file of its own (record_unique): the publishes of one stream key. */
const publishes = async (feed: Feed) =>
  (await readdir(nginx.recordDir)).filter(
    (file) => file.startsWith(`${feed.name}-`) && file.endsWith(".flv"),
  );

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "distributary-corrupt-"));
  // The service starts while ffmpeg makes the stream and nginx starts (as slate-formats.timing does).
  service = spawnService({
    port: await servicePort(),
    after: ["--host", "127.0.0.1", "--config-dir", join(dir, "config")],
    // One forwarding worker: the three channels share its thread, as the fault must not reach the others.
    env: {
      ...process.env,
      DISTRIBUTARY_ADMIN_TOKEN: TOKEN,
      DISTRIBUTARY_WORKERS: "1",
      DISTRIBUTARY_TEST_REMUX_FAULT: "faulty",
    },
  });
  const ready = service.ready(30_000);
  const source = join(dir, "source.ts");
  await Effect.runPromise(encodeTestStream(source, SECONDS, "7M", "960x540"));
  const encoded = await readFile(source);
  // A splice_insert every 5 s of video, on a PID of its own (never corrupted: the TS layer stays valid).
  const pes = videoPes(encoded);
  const cues = pes
    .filter((_, index) => index > 0 && index % 125 === 0)
    .map((frame, index) => ({
      before: frame.packet,
      section: encodeSection(immediateSpliceOut(7000 + index)),
    }));
  const clean = withCues(encoded, STREAM_TYPE_AAC, cues);
  nginx = await Effect.runPromise(Scope.extend(nginxRtmpServer(), scope));
  const make = async (name: Feed["name"], fraction: number, seed: number): Promise<Feed> => {
    const corrupted = fraction > 0 ? corruptMedia(clean, { pids: MEDIA_PIDS, fraction, seed }) : null;
    return {
      name,
      corrupted,
      ts: corrupted?.ts ?? clean,
      port: await freeUdpPort(),
      sink: await Effect.runPromise(Scope.extend(udpSink, scope)),
      id: "",
    };
  };
  feeds.push(await make("light", 0.002, 41), await make("heavy", 0.05, 42), await make("faulty", 0, 0));

  await ready;
  for (const feed of feeds) {
    const created = await api("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        name: feed.name,
        rtp_ip: "127.0.0.1",
        rtp_port: feed.port,
        outputs: [
          { name: "udp", protocol: "udp", url: `udp://127.0.0.1:${feed.sink.port}` },
          {
            name: "rtmp",
            protocol: "rtmp",
            url: `rtmp://127.0.0.1:${nginx.port}/live/${feed.name}?cues=oncuepoint`,
          },
        ],
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    feed.id = ((await created.json()) as { id: string }).id;
    expect((await api(`/api/channels/${feed.id}/start`, { method: "POST" })).status).toBe(200);
  }

  // The three streams at once, each to its channel, paced as its encoder sends it (7 Mbit/s), for SECONDS.
  const perMs = BITRATE / 8 / DATAGRAM_BYTES / 1000;
  await Effect.runPromise(
    Effect.all(
      feeds.map((feed) => sendPaced(asRtp(chunkTs(feed.ts)), feed.port, perMs)),
      { concurrency: "unbounded", discard: true },
    ),
  );
  // What is still on its way; a shortfall is the byte-for-byte test's to report.
  await eventually(
    "every UDP output to have carried its whole input",
    () => (feeds.every((feed) => feed.sink.totalBytes() >= feed.ts.length) ? true : undefined),
    10_000,
  ).catch(() => undefined);
  // The read model samples the outputs' counters once a second: the views and events catch up.
  await eventually(
    "the views to show every frame the RTMP outputs sent",
    async () => {
      const before = await Promise.all(
        feeds.map(async (feed) => rtmpOf(await channelView(feed)).rtmp?.frames_sent),
      );
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const after = await Promise.all(
        feeds.map(async (feed) => rtmpOf(await channelView(feed)).rtmp?.frames_sent),
      );
      return JSON.stringify(before) === JSON.stringify(after) ? true : undefined;
    },
    10_000,
  );
}, 300_000);

afterAll(async () => {
  if (service !== undefined && service.process.exitCode === null) {
    service.process.kill("SIGTERM");
    await service.exited;
  }
  await Effect.runPromise(Scope.close(scope, Exit.void));
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

describe("corrupt frames in a channel's input", () => {
  it("the corruption is what the issue describes: 0.2 % and 5 % of video and audio packets, every kind", () => {
    const [light, heavy] = feeds as [Feed, Feed, Feed];
    for (const [feed, fraction] of [
      [light, 0.002],
      [heavy, 0.05],
    ] as const) {
      const corrupted = feed.corrupted as Corrupted;
      const rewritten = sum(corrupted.counts);
      expect(rewritten / corrupted.mediaPackets).toBeGreaterThan(fraction * 0.8);
      expect(rewritten / corrupted.mediaPackets).toBeLessThan(fraction * 1.2);
      for (const kind of CORRUPTIONS) expect(corrupted.counts[kind], kind).toBeGreaterThan(0);
    }
  });

  it("no channel restarts: each started once, none failed, all running", async () => {
    for (const feed of feeds) {
      expect(await eventsOf(feed, "channel_failed"), feed.name).toEqual([]);
      expect((await eventsOf(feed, "channel_started")).length, feed.name).toBe(1);
      expect((await channelView(feed)).status, feed.name).toBe("running");
    }
  });

  it("every UDP output carries its input byte for byte, corrupt frames and all", () => {
    for (const feed of feeds) {
      expect(feed.sink.totalBytes(), feed.name).toBe(feed.ts.length);
      expect(sha(feed.sink.bytes()), feed.name).toBe(sha(feed.ts));
    }
  });

  it("nginx sees one publish session of each corrupted channel, with the frames that could be read", async () => {
    for (const feed of feeds.slice(0, 2)) {
      const output = rtmpOf(await channelView(feed));
      expect(output.state, feed.name).toBe("connected");
      expect(output.reconnects, feed.name).toBe(0);
      const files = await publishes(feed);
      expect(files, feed.name).toHaveLength(1);
      const { stdout } = await execa("ffprobe", [
        ...["-v", "error", "-count_packets", "-select_streams", "v"],
        ...[
          "-show_entries",
          "stream=nb_read_packets",
          "-of",
          "csv=p=0",
          join(nginx.recordDir, files[0] ?? ""),
        ],
      ]);
      const recorded = Number(stdout.trim());
      // 25 frames a second for SECONDS: the output starts at the first keyframe and loses what it cannot read
      // (light: most of them recorded; heavy: some).
      const frames = SECONDS * 25;
      expect(recorded, `${feed.name}: video frames nginx recorded`).toBeGreaterThan(
        feed.name === "light" ? (frames * 2) / 3 : frames / 30,
      );
      expect(output.rtmp?.frames_sent ?? 0, feed.name).toBeGreaterThan(recorded * 0.9);
      expect(output.rtmp?.cues_sent ?? 0, `${feed.name}: cues sent as AMF0`).toBeGreaterThan(0);
    }
  });

  it("the remux's drops are counted by reason in the output's status, /metrics and the event log", async () => {
    const metrics = await (await api("/metrics")).text();
    for (const feed of feeds) {
      const output = rtmpOf(await channelView(feed));
      const dropped = output.rtmp?.remux_dropped ?? {};
      const reasons = Object.entries(dropped).filter(([, frames]) => frames > 0);
      // A damaged frame goes as a decoder of the TS would read it: light damage may leave nothing to drop.
      // Whatever was dropped is counted and told the same way.
      if (feed.name === "light" && reasons.length === 0) continue;
      expect(reasons.length, `${feed.name}: ${JSON.stringify(dropped)}`).toBeGreaterThan(0);
      expect(output.rtmp?.remux_last_drop, feed.name).toEqual(expect.any(String));
      for (const [reason, frames] of reasons) {
        const line = metrics
          .split("\n")
          .find(
            (candidate) =>
              candidate.startsWith("distributary_remux_frames_dropped_total{") &&
              candidate.includes(`channel="${feed.id}"`) &&
              candidate.includes(`reason="${reason}"`),
          );
        expect(
          Number(line?.slice(line.lastIndexOf(" ") + 1)),
          `${feed.name} ${reason}`,
        ).toBeGreaterThanOrEqual(frames * 0.5);
      }
      // Told at most once per output every 10 s: about twice in 20 s, not once a frame.
      const told = await eventsOf(feed, "remux_frames_dropped");
      expect(told.length, feed.name).toBeGreaterThan(0);
      expect(told.length, feed.name).toBeLessThanOrEqual(SECONDS / 10 + 2);
      expect(told.every((event) => event.output === output.id)).toBe(true);
    }
    // What reads inside the frames checks what it reads: the corrupt streams' frames are dropped by named
    // checks, and only the injected fault is an internal error.
    const [light, heavy, faulty] = feeds as [Feed, Feed, Feed];
    for (const feed of [light, heavy]) {
      const dropped = rtmpOf(await channelView(feed)).rtmp?.remux_dropped ?? {};
      expect(dropped.internal_error, feed.name).toBe(0);
    }
    expect(rtmpOf(await channelView(faulty)).rtmp?.remux_dropped.internal_error ?? 0).toBeGreaterThan(1000);
  });

  it("the channel page says how many frames the RTMP output skipped, and why", async () => {
    const heavy = feeds[1] as Feed;
    const browser = await launchChromium();
    try {
      for (const [width, dark] of [
        [1280, false],
        [1280, true],
        [390, false],
        [390, true],
      ] as const) {
        const { context, offsite } = await newContext(browser, { width, dark });
        const page = await context.newPage();
        await login(page, service?.base ?? "", TOKEN);
        await page.goto(`${service?.base}/channels/${heavy.id}`);
        const drops = page.locator(`#out-${rtmpOf(await channelView(heavy)).id} .remux-drops`);
        await expect.poll(() => drops.textContent()).toMatch(/^\d+ left out \(\d+ bad_/);
        await screenshot(page, `channel-corrupt-${dark ? "dark" : "light"}-${width}`);
        expect(offsite).toEqual([]);
        await context.close();
      }
    } finally {
      await browser.close();
    }
  });

  it("a fault in one channel's remux stops neither its UDP output nor the other channels on its worker", async () => {
    const faulty = feeds[2] as Feed;
    const view = await channelView(faulty);
    expect(view.status).toBe("running");
    expect(rtmpOf(view).rtmp?.frames_sent ?? 0).toBe(0);
    expect(await publishes(faulty)).toEqual([]);
    expect(rtmpOf(view).rtmp?.remux_last_drop).toContain("DISTRIBUTARY_TEST_REMUX_FAULT");
    // Its UDP output and the other two channels (same worker) carried everything: the tests above.
    expect(faulty.sink.totalBytes()).toBe(faulty.ts.length);
  });
});
