/**
 * The slate in other formats than the 640×360p25 H.264 of slate.timing.test.ts, tried as a user would: the
 * service as a real process, four channels each with `slate: {after_ms: 600}` and one UDP output to a sink of
 * its own, each fed a stream ffmpeg made (testsrc2 and a sine) paced at the stream's own rate, on PIDs of its
 * own (not ffmpeg's defaults, which are the clip's: a slate left on the clip's PIDs would show):
 *   - HEVC Main 1280×720p50 + AAC 48 kHz stereo, 5 s (and on, up to 12 s, until its slate is ready): the slate is ready before the input stops and goes on
 *     after it; what the sink got after the silence is HEVC Main 1280×720 at 50 fps with AAC 48 kHz stereo on
 *     the input's PIDs, and decodes without an error;
 *   - H.264 High 1920×1080i25, top field first, + AC-3 48 kHz stereo, 5 s (the same way): the same, interlaced top field first;
 *   - MPEG-2 video + MPEG-1 Layer II audio, 5 s: no slate can match it, said in words; when its input stops
 *     the channel does what it does without a slate (nothing more reaches the sink, no slate_on);
 *   - H.264 640×360p25 + AAC, 12 s: an operator puts the channel on its slate while the input still sends (a
 *     viewer may not), the sink gets the slate and none of the input's packets, and back to live the input's
 *     packets come again byte for byte from a keyframe.
 */
import { createSocket } from "node:dgram";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Effect, Exit, Scope } from "effect";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort } from "../support/app.ts";
import { pace } from "../support/pace.ts";
import { type UdpSink, udpSink } from "../support/peers.ts";
import { chunkTs, DATAGRAM_BYTES, sendPaced } from "../support/sender.ts";
import { type ServiceProcess, servicePort, spawnService } from "../support/service.ts";
import { discontinuity, find, hasPayload, pidAt, randomAccess, slateStart } from "../support/ts-packets.ts";

const TOKEN = "slate-formats-admin-token-0123456789";
const AFTER_MS = 600;
/** The HEVC and 1080i inputs send this long at least, and on until their slates are ready. */
const SENT_AT_LEAST_MS = 5000;
/** How long the operator keeps the manual channel on its slate. */
const MANUAL_MS = 2000;
const PACKET = 188;

interface FeedSpec {
  readonly title: string;
  /** How long the stream is: `encoded` seconds encoded, played `seconds / encoded` times over, when given. */
  readonly seconds: number;
  readonly encoded?: number;
  readonly source: string;
  /** ffmpeg's encoder arguments for the video and the audio. */
  readonly codecs: ReadonlyArray<string>;
  readonly pmtPid: number;
  readonly videoPid: number;
  readonly audioPid: number;
}

const SPECS = {
  hevc: {
    title: "HEVC 720p50",
    seconds: 12,
    encoded: 4,
    source: "testsrc2=size=1280x720:rate=50",
    codecs: [
      ...["-c:v", "libx265", "-preset", "ultrafast", "-profile:v", "main", "-pix_fmt", "yuv420p"],
      ...["-x265-params", "keyint=50:repeat-headers=1:log-level=error", "-b:v", "1500k"],
      ...["-c:a", "aac", "-ar", "48000", "-ac", "2"],
    ],
    pmtPid: 0x1200,
    videoPid: 0x321,
    audioPid: 0x322,
  },
  interlaced: {
    title: "H.264 1080i25",
    seconds: 12,
    encoded: 4,
    source: "testsrc2=size=1920x1080:rate=25",
    codecs: [
      ...["-vf", "setfield=tff", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
      ...["-profile:v", "high", "-level", "4.0", "-flags", "+ildct+ilme"],
      ...[
        "-x264-params",
        "tff=1:keyint=25:cabac=1:8x8dct=1",
        "-b:v",
        "2M",
        "-maxrate",
        "2M",
        "-bufsize",
        "2M",
      ],
      ...["-c:a", "ac3", "-ar", "48000", "-ac", "2"],
    ],
    pmtPid: 0x1300,
    videoPid: 0x421,
    audioPid: 0x422,
  },
  mpeg2: {
    title: "MPEG-2 576p25",
    seconds: 5,
    source: "testsrc2=size=720x576:rate=25",
    codecs: [
      ...["-c:v", "mpeg2video", "-b:v", "2M", "-pix_fmt", "yuv420p"],
      ...["-c:a", "mp2", "-ar", "48000", "-ac", "2"],
    ],
    pmtPid: 0x1400,
    videoPid: 0x621,
    audioPid: 0x622,
  },
  manual: {
    title: "H.264 360p25 (manual)",
    seconds: 12,
    source: "testsrc2=size=640x360:rate=25",
    codecs: [
      ...["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"],
      ...["-b:v", "1M", "-maxrate", "1M", "-bufsize", "1M"],
      ...["-c:a", "aac", "-ar", "48000", "-ac", "2"],
    ],
    pmtPid: 0x1500,
    videoPid: 0x521,
    audioPid: 0x522,
  },
} as const satisfies Record<string, FeedSpec>;
type Key = keyof typeof SPECS;
const KEYS = Object.keys(SPECS) as ReadonlyArray<Key>;

interface SlateView {
  readonly on: boolean;
  readonly reason: string | null;
  readonly ready: boolean;
  readonly format: string | null;
  readonly problem: string | null;
}

interface Feed {
  readonly spec: FeedSpec;
  readonly ts: Buffer;
  readonly sink: UdpSink;
  readonly id: string;
  /** performance.now() when its sender started and when it stopped (its last datagram sent). */
  started: number;
  ended: number;
  /** How much of `ts` was sent (all of it, but for the channels whose senders stop once their slate is ready). */
  sent: number;
  /** The channel's slate as the API said it, every 100 ms or so from the start of the sending. */
  readonly history: Array<{ readonly at: number; readonly slate: SlateView }>;
}

const scope = Effect.runSync(Scope.make());
let dir = "";
let service: ServiceProcess | undefined;
const feeds = {} as Record<Key, Feed>;
const tokens = { operator: "", viewer: "" };
/** The manual channel's scenario, as it went. */
const manual = {
  ready: 0,
  viewerStatus: 0,
  onStatus: 0,
  offStatus: 0,
  onAsked: 0,
  offAsked: 0,
  during: null as SlateView | null,
};
/** The MPEG-2 channel two seconds after its input stopped. */
let refusedAfter: {
  readonly received: Buffer;
  readonly lastArrival: number;
  readonly slate: SlateView | null;
};

const api = (path: string, init: RequestInit = {}, token = TOKEN) =>
  fetch(`${service?.base}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...init.headers },
  });
const slateOf = async (feed: Feed) =>
  ((await (await api(`/api/channels/${feed.id}`)).json()) as { slate: SlateView | null }).slate;
const switchSlate = (feed: Feed, on: boolean, token: string) =>
  api(`/api/channels/${feed.id}/slate`, { method: "POST", body: JSON.stringify({ on }) }, token);
const eventsOf = async (feed: Feed) =>
  (
    (await (await api(`/api/events?channel=${feed.id}&limit=1000`)).json()) as {
      events: ReadonlyArray<{ type: string; reason?: string }>;
    }
  ).events.filter((event) => event.type === "slate_on" || event.type === "slate_off");

/**
 * The stream ffmpeg makes for a feed. One that the sender may play for long (until its slate is ready) is
 * encoded for `encoded` seconds and played over by ffmpeg without re-encoding (`-stream_loop`, its clock going
 * on): each round starts with the encoder's first keyframe, and HEVC costs seconds of CPU for each second.
 */
const encode = async (spec: FeedSpec, path: string) => {
  const pids = [
    ...["-streamid", `0:${spec.videoPid}`, "-streamid", `1:${spec.audioPid}`],
    ...["-mpegts_pmt_start_pid", String(spec.pmtPid), "-f", "mpegts"],
  ];
  const once = spec.encoded === undefined ? path : `${path}.once.ts`;
  await execa("ffmpeg", [
    ...["-hide_banner", "-loglevel", "error", "-y"],
    ...["-f", "lavfi", "-i", spec.source, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"],
    ...["-t", String(spec.encoded ?? spec.seconds), ...spec.codecs, ...pids, once],
  ]);
  if (spec.encoded !== undefined) {
    const rounds = Math.round(spec.seconds / spec.encoded);
    await execa("ffmpeg", [
      ...["-hide_banner", "-loglevel", "error", "-y", "-stream_loop", String(rounds - 1), "-i", once],
      ...["-map", "0", "-c", "copy", ...pids, path],
    ]);
  }
  return readFile(path);
};

const send = async (feed: Feed, port: number) => {
  const perMs = feed.ts.length / feed.spec.seconds / DATAGRAM_BYTES / 1000;
  feed.started = performance.now();
  await Effect.runPromise(sendPaced(chunkTs(feed.ts), port, perMs));
  feed.sent = feed.ts.length;
  feed.ended = performance.now();
};

/**
 * Sends `SENT_AT_LEAST_MS` of the stream and on until its channel's slate is ready (the clip's making takes
 * seconds more on a busy machine), and stops between two pictures: the stream in pieces of about half a
 * second, each ending before a picture, paced as one stream from one socket (the input takes one sender).
 */
const sendUntilReady = (feed: Feed, port: number) =>
  new Promise<void>((resolve) => {
    const { ts } = feed;
    const perMs = ts.length / feed.spec.seconds / DATAGRAM_BYTES / 1000;
    const pictures: number[] = [];
    for (let at = 0; at + PACKET <= ts.length; at += PACKET)
      if (pidAt(ts, at) === feed.spec.videoPid && ((ts[at + 1] ?? 0) & 0x40) !== 0) pictures.push(at);
    const step = ts.length / feed.spec.seconds / 2;
    const datagrams: Uint8Array[] = [];
    const pieces = new Set<number>();
    for (let from = 0; from < ts.length; ) {
      const to = pictures.find((at) => at >= from + step) ?? ts.length;
      pieces.add(datagrams.length);
      datagrams.push(...chunkTs(ts.subarray(from, to)));
      from = to;
    }
    const enough = () =>
      performance.now() - feed.started >= SENT_AT_LEAST_MS &&
      feed.history.some((record) => record.slate.ready);
    const socket = createSocket("udp4");
    let stopped = false;
    feed.started = performance.now();
    pace(
      datagrams.length,
      perMs,
      (index, sent) => {
        if (!stopped && pieces.has(index) && enough()) {
          stopped = true;
          feed.ended = performance.now();
        }
        const datagram = datagrams[index];
        if (stopped || datagram === undefined) return 0;
        socket.send(datagram, port, "127.0.0.1", sent);
        feed.sent += datagram.length;
        return 1;
      },
      () => {
        if (!stopped) feed.ended = performance.now();
        socket.close(() => resolve());
      },
    );
  });

/** Keeps each channel's slate status until `stop` says so. */
const watch = async (feed: Feed, stop: () => boolean) => {
  while (!stop()) {
    const slate = await slateOf(feed);
    if (slate !== null) feed.history.push({ at: performance.now(), slate });
    await sleep(100);
  }
};

/** The manual channel: on its slate by hand once ready, for `MANUAL_MS`, then off, while its input still sends. */
const manualScenario = async (feed: Feed) => {
  await eventually("the manual channel's slate to be ready", async () =>
    (await slateOf(feed))?.ready ? true : undefined,
  );
  manual.ready = performance.now();
  manual.viewerStatus = (await switchSlate(feed, true, tokens.viewer)).status;
  manual.onAsked = performance.now();
  manual.onStatus = (await switchSlate(feed, true, tokens.operator)).status;
  await sleep(MANUAL_MS / 2);
  manual.during = await slateOf(feed);
  await sleep(MANUAL_MS / 2);
  manual.offAsked = performance.now();
  manual.offStatus = (await switchSlate(feed, false, tokens.operator)).status;
  await eventually(
    "the manual channel to be live again",
    async () => ((await slateOf(feed))?.on === false ? true : undefined),
    3000,
  );
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "distributary-slate-formats-"));
  service = spawnService({
    port: await servicePort(),
    after: ["--host", "127.0.0.1", "--config-dir", join(dir, "config")],
    env: { ...process.env, DISTRIBUTARY_ADMIN_TOKEN: TOKEN, DISTRIBUTARY_SLATE_DIR: join(dir, "slates") },
  });
  const encoded = await Promise.all(KEYS.map((key) => encode(SPECS[key], join(dir, `${key}.ts`))));
  await service.ready(30_000);
  for (const role of ["operator", "viewer"] as const) {
    const created = await api("/api/tokens", {
      method: "POST",
      body: JSON.stringify({ name: `slate-formats-${role}`, role }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    tokens[role] = ((await created.json()) as { token: string }).token;
  }

  const ports: Partial<Record<Key, number>> = {};
  for (const [index, key] of KEYS.entries()) {
    const sink = await Effect.runPromise(Scope.extend(udpSink, scope));
    const port = await freeUdpPort();
    const created = await api("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        name: `Slate ${SPECS[key].title}`,
        rtp_ip: "127.0.0.1",
        rtp_port: port,
        slate: { after_ms: AFTER_MS },
        outputs: [{ name: "udp", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const id = ((await created.json()) as { id: string }).id;
    expect((await api(`/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
    ports[key] = port;
    feeds[key] = {
      spec: SPECS[key],
      ts: encoded[index] ?? Buffer.alloc(0),
      sink,
      id,
      started: 0,
      ended: 0,
      sent: 0,
      history: [],
    };
  }

  // Each sender paced at its stream's own rate, the channels' slates watched all along. The HEVC channel's
  // clip costs the most: the others that need a clip start once it is made (or its input ended), as on a
  // machine of two CPUs, busy with other tests, clips made at once can come too late for the inputs.
  let watching = true;
  const watchers = KEYS.map((key) => watch(feeds[key], () => !watching));
  const made = async (feed: Feed) => {
    while (feed.ended === 0 && !feed.history.some((record) => record.slate.ready)) await sleep(100);
  };
  try {
    await Promise.all([
      sendUntilReady(feeds.hevc, ports.hevc ?? 0),
      (async () => {
        await send(feeds.mpeg2, ports.mpeg2 ?? 0);
        // The scenario itself: two seconds after the input stopped, what had the sink got?
        await sleep(2000);
        const sink = feeds.mpeg2.sink;
        refusedAfter = {
          received: sink.bytes(),
          lastArrival: sink.arrivals.at(-1) ?? 0,
          slate: await slateOf(feeds.mpeg2),
        };
      })(),
      (async () => {
        await made(feeds.hevc);
        await sendUntilReady(feeds.interlaced, ports.interlaced ?? 0);
      })(),
      (async () => {
        await made(feeds.hevc);
        await Promise.all([send(feeds.manual, ports.manual ?? 0), manualScenario(feeds.manual)]);
        // Its input gone too, the manual channel goes on its slate again, for the input's loss.
        await eventually("the manual channel on its slate again after its input stopped", async () => {
          const slate = await slateOf(feeds.manual);
          return slate?.on === true && slate.reason === "input_lost" ? true : undefined;
        });
      })(),
    ]);
    // The HEVC and 1080i channels are on their slates by now (their inputs stopped long before); a little more
    // of it if not yet (the tests say what did not happen).
    await eventually(
      "the HEVC and 1080i channels on their slates",
      async () =>
        (await slateOf(feeds.hevc))?.on === true && (await slateOf(feeds.interlaced))?.on === true
          ? true
          : undefined,
      3000,
    ).catch(() => undefined);
  } finally {
    watching = false;
    await Promise.all(watchers);
  }
}, 150_000);

afterAll(async () => {
  if (service !== undefined && service.process.exitCode === null) {
    service.process.kill("SIGTERM");
    await service.exited;
  }
  await Effect.runPromise(Scope.close(scope, Exit.void));
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

// --- what the sinks got ---------------------------------------------------------------------------------------
interface ProbedStream {
  readonly id: string;
  readonly codec_type: string;
  readonly codec_name: string;
  readonly profile?: string;
  readonly width?: number;
  readonly height?: number;
  readonly r_frame_rate?: string;
  readonly field_order?: string;
  readonly sample_rate?: string;
  readonly channels?: number;
}

const hex = (pid: number) => `0x${pid.toString(16)}`;

const probeStreams = async (file: string): Promise<ReadonlyArray<ProbedStream>> => {
  const { stdout } = await execa("ffprobe", [
    ...["-v", "error", "-of", "json", "-show_entries"],
    "stream=id,codec_type,codec_name,profile,width,height,r_frame_rate,field_order,sample_rate,channels",
    file,
  ]);
  return (JSON.parse(stdout) as { streams: ReadonlyArray<ProbedStream> }).streams;
};

/** One line of what ffprobe said, for the log. */
const said = (streams: ReadonlyArray<ProbedStream>) =>
  streams
    .map((s) =>
      s.codec_type === "video"
        ? `${s.id} ${s.codec_name} ${s.profile} ${s.width}×${s.height} ${s.r_frame_rate} fps, field order ${s.field_order}`
        : `${s.id} ${s.codec_name} ${s.sample_rate} Hz ${s.channels} channels`,
    )
    .join("; ");

/** What `ffmpeg -v error` says decoding the file (nothing when it decodes clean), and its exit code. */
const decodeErrors = async (file: string) => {
  const decoded = await execa("ffmpeg", ["-v", "error", "-i", file, "-f", "null", "-"], { reject: false });
  return { stderr: decoded.stderr.trim(), exitCode: decoded.exitCode };
};

const pidsOf = (ts: Uint8Array) => {
  const pids = new Set<number>();
  for (let at = 0; at + PACKET <= ts.length; at += PACKET) pids.add(pidAt(ts, at));
  return [...pids].sort((a, b) => a - b);
};

/** What the slate sent: the datagrams after the first silence of over 400 ms, written to a file. */
const slatePart = async (feed: Feed, name: string) => {
  const { arrivals, datagrams } = feed.sink;
  const start = slateStart(arrivals, 400);
  const bytes = Buffer.concat(datagrams.slice(start));
  const file = join(dir, `${name}-slate.ts`);
  await writeFile(file, bytes);
  return {
    start,
    bytes,
    file,
    firstAt: arrivals[start] ?? 0,
    silence: (arrivals[start] ?? 0) - (arrivals[start - 1] ?? 0),
  };
};

/** Ready while the input ran (format in words), on only after it stopped, for the input's loss. */
const expectSlateMatched = async (feed: Feed, format: RegExp) => {
  const ready = feed.history.find((record) => record.slate.ready);
  const read = feed.history.find((record) => record.slate.format !== null);
  const into = (at?: number) => (at === undefined ? "never" : `${((at - feed.started) / 1000).toFixed(1)} s`);
  const readiness = `format read ${into(read?.at)} and ready ${into(ready?.at)} into the input, which stopped after ${into(feed.ended)}`;
  expect(ready, readiness).toBeDefined();
  expect(ready?.at ?? Number.POSITIVE_INFINITY, readiness).toBeLessThan(feed.ended);
  expect(ready?.slate.format).toMatch(format);
  expect(ready?.slate.problem).toBeNull();
  const on = feed.history.filter((record) => record.slate.on);
  expect(on.length).toBeGreaterThan(0);
  expect(on.every((record) => record.at > feed.ended)).toBe(true);
  expect(await slateOf(feed)).toMatchObject({ on: true, reason: "input_lost", ready: true, problem: null });
  expect((await eventsOf(feed)).map((event) => `${event.type}:${event.reason}`)).toEqual([
    "slate_on:input_lost",
  ]);
  return readiness;
};

/** The slate part is on the input's own PIDs only, and carries both of its streams. */
const expectInputPids = (feed: Feed, slate: Buffer) => {
  const own = pidsOf(feed.ts);
  const pids = pidsOf(slate);
  expect(pids).toEqual(expect.arrayContaining([0, feed.spec.pmtPid, feed.spec.videoPid, feed.spec.audioPid]));
  expect(pids.filter((pid) => !own.includes(pid)).map(hex)).toEqual([]);
};

describe("a channel's slate in the input's own format", () => {
  it("HEVC Main 1280×720p50 + AAC: ready while the input ran, on after it stopped, HEVC 720p50 on the input's PIDs, decodes clean", async () => {
    const feed = feeds.hevc;
    const readiness = await expectSlateMatched(feed, /^HEVC Main \d\.\d, 1280×720p50; AAC 48 kHz stereo$/);
    const part = await slatePart(feed, "hevc");
    expect(part.start).toBeGreaterThan(0);
    expect(part.firstAt).toBeGreaterThan(feed.ended);
    // Seconds of slate, not a stray datagram.
    expect(part.bytes.length).toBeGreaterThan(100 * PACKET);
    const streams = await probeStreams(part.file);
    console.log(
      `slate ${feed.spec.title} (${readiness}, on after ${part.silence.toFixed(0)} ms of silence): ${said(streams)}`,
    );
    expect(streams).toMatchObject([
      {
        id: hex(feed.spec.videoPid),
        codec_name: "hevc",
        profile: "Main",
        width: 1280,
        height: 720,
        r_frame_rate: "50/1",
      },
      { id: hex(feed.spec.audioPid), codec_name: "aac", sample_rate: "48000", channels: 2 },
    ]);
    expectInputPids(feed, part.bytes);
    expect(await decodeErrors(part.file)).toEqual({ stderr: "", exitCode: 0 });
  });

  it("H.264 High 1920×1080i25 top field first + AC-3: ready, on after the input stopped, interlaced top field first, decodes clean", async () => {
    const feed = feeds.interlaced;
    const readiness = await expectSlateMatched(
      feed,
      /^H\.264 High 4\.0, 1920×1080i25 \(top field first\); AC-3 48 kHz stereo$/,
    );
    const part = await slatePart(feed, "interlaced");
    expect(part.start).toBeGreaterThan(0);
    expect(part.firstAt).toBeGreaterThan(feed.ended);
    expect(part.bytes.length).toBeGreaterThan(100 * PACKET);
    const streams = await probeStreams(part.file);
    console.log(
      `slate ${feed.spec.title} (${readiness}, on after ${part.silence.toFixed(0)} ms of silence): ${said(streams)}`,
    );
    expect(streams).toMatchObject([
      {
        id: hex(feed.spec.videoPid),
        codec_name: "h264",
        profile: "High",
        width: 1920,
        height: 1080,
        field_order: "tt",
      },
      { id: hex(feed.spec.audioPid), codec_name: "ac3", sample_rate: "48000", channels: 2 },
    ]);
    // Its pictures are coded interlaced, top field first.
    const { stdout } = await execa("ffprobe", [
      ...["-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#8", "-of", "json"],
      ...["-show_frames", "-show_entries", "frame=interlaced_frame,top_field_first", part.file],
    ]);
    const frames = (JSON.parse(stdout) as { frames: ReadonlyArray<Record<string, number>> }).frames;
    expect(frames.length).toBeGreaterThanOrEqual(8);
    expect(frames.every((frame) => frame.interlaced_frame === 1 && frame.top_field_first === 1)).toBe(true);
    expectInputPids(feed, part.bytes);
    expect(await decodeErrors(part.file)).toEqual({ stderr: "", exitCode: 0 });
  });

  it("MPEG-2 video + MP2: refused in words; when its input stops the channel does what it does without a slate", async () => {
    const feed = feeds.mpeg2;
    // Said while the input ran.
    const refusal = feed.history.find((record) => record.at < feed.ended && record.slate.problem !== null);
    console.log(`slate ${feed.spec.title}: ${refusal?.slate.problem}`);
    expect(refusal?.slate.problem).toMatch(/H\.264 and HEVC/);
    expect(refusal?.slate.problem).toMatch(/MPEG-2/);
    expect(feed.history.some((record) => record.slate.ready || record.slate.on)).toBe(false);
    // Two seconds after the input's last datagram: the input's last packet was the last thing the sink got.
    const last = feed.ts.subarray(feed.ts.length - PACKET);
    expect(find(refusedAfter.received, last)).toBe(refusedAfter.received.length - PACKET);
    expect(refusedAfter.lastArrival).toBeLessThan(feed.ended + 500);
    expect(refusedAfter.slate).toMatchObject({ on: false, ready: false });
    // And nothing since then either.
    expect(feed.sink.totalBytes()).toBe(refusedAfter.received.length);
    expect(await eventsOf(feed)).toEqual([]);
    expect(await slateOf(feed)).toMatchObject({ on: false, ready: false });
  });
});

/** Where, in what the manual channel's sink got, the input's packets stopped and came back. */
const manualSplice = () => {
  const feed = feeds.manual;
  const { videoPid, audioPid } = feed.spec;
  const media = (ts: Buffer, at: number) => pidAt(ts, at) === videoPid || pidAt(ts, at) === audioPid;
  const key = (ts: Buffer, at: number) => ts.toString("latin1", at, at + PACKET);
  /** Each media packet of the input → its byte offsets in the input (a stream may carry a packet twice). */
  const sentAt = new Map<string, number[]>();
  for (let at = 0; at + PACKET <= feed.ts.length; at += PACKET)
    if (media(feed.ts, at)) sentAt.set(key(feed.ts, at), [...(sentAt.get(key(feed.ts, at)) ?? []), at]);
  const received = feed.sink.bytes();
  const arrivals = feed.sink.datagrams.flatMap((datagram, i) =>
    Array.from({ length: datagram.length / PACKET }, () => feed.sink.arrivals[i] ?? 0),
  );
  const arrivalAt = (at: number) => arrivals[at / PACKET] ?? 0;
  let lastLive = -1;
  let lastLiveSent = -1;
  let firstSlate = -1;
  let back = -1;
  let backSent = -1;
  for (let at = 0; at + PACKET <= received.length; at += PACKET) {
    if (!media(received, at)) continue;
    const sent = sentAt.get(key(received, at));
    if (firstSlate < 0) {
      if (sent === undefined) firstSlate = at;
      else [lastLive, lastLiveSent] = [at, sent.includes(at) ? at : (sent[0] ?? -1)];
    } else if (sent !== undefined) {
      [back, backSent] = [at, sent.find((offset) => offset > lastLiveSent) ?? sent[0] ?? -1];
      break;
    }
  }
  /** The input's media packets sent between the last before the slate and the return. */
  let dropped = 0;
  for (let at = lastLiveSent + PACKET; at < backSent; at += PACKET) if (media(feed.ts, at)) dropped++;
  return { received, arrivalAt, lastLive, lastLiveSent, firstSlate, back, backSent, dropped };
};

describe("an operator's slate while the input still sends", () => {
  it("a viewer may not; an operator's POST puts the channel on its slate (reason manual) and takes it off", () => {
    expect(manual.viewerStatus).toBe(403);
    expect(manual.onStatus).toBe(200);
    expect(manual.during).toMatchObject({ on: true, reason: "manual" });
    expect(manual.offStatus).toBe(200);
    // All of it while the input was sending.
    expect(manual.offAsked).toBeLessThan(feeds.manual.ended);
  });

  it("the sink gets the slate, none of the input's packets, until it is taken off", async () => {
    const feed = feeds.manual;
    const splice = manualSplice();
    expect(splice.firstSlate).toBeGreaterThan(0);
    expect(splice.back).toBeGreaterThan(splice.firstSlate);
    const slateFrom = splice.arrivalAt(splice.firstSlate);
    const liveFrom = splice.arrivalAt(splice.back);
    // The slate came when the operator asked, the input again only once taken off, before the input ended.
    expect(slateFrom).toBeGreaterThan(manual.onAsked);
    expect(slateFrom).toBeLessThan(manual.offAsked);
    expect(liveFrom).toBeGreaterThan(manual.offAsked);
    expect(liveFrom).toBeLessThan(feed.ended);
    expect(liveFrom - slateFrom).toBeGreaterThan(MANUAL_MS - 300);
    // What the input sent meanwhile (more than the time on the slate, less a second for the keyframe) never
    // reached the sink.
    const perSecond = feed.ts.length / feed.spec.seconds;
    const away = (splice.backSent - splice.lastLiveSent) / perSecond;
    expect(away).toBeGreaterThan((MANUAL_MS - 500) / 1000);
    expect(splice.dropped).toBeGreaterThan(100);
    // None of them reached it before the slate: what it got until then is the input from its start, every
    // packet in place (compared in place: a stream may carry the same packet twice). From the return on, the
    // next test checks the same.
    const live = splice.lastLive + PACKET;
    expect(splice.lastLive).toBe(splice.lastLiveSent);
    expect(splice.received.subarray(0, live).equals(feed.ts.subarray(0, live))).toBe(true);
    // What went out meanwhile: the slate, in the input's format on its PIDs.
    const slate = splice.received.subarray(splice.lastLive + PACKET, splice.back);
    const file = join(dir, "manual-slate.ts");
    await writeFile(file, slate);
    const streams = await probeStreams(file);
    const videoBytes = (ts: Buffer) =>
      pidsOf(ts).includes(feed.spec.videoPid)
        ? Array.from({ length: ts.length / PACKET }, (_, i) => i * PACKET).filter(
            (at) => pidAt(ts, at) === feed.spec.videoPid,
          ).length * PACKET
        : 0;
    const slateRate = (videoBytes(slate) * 8) / ((liveFrom - slateFrom) / 1000);
    const inputRate = (videoBytes(feed.ts) * 8) / feed.spec.seconds;
    console.log(
      `slate ${feed.spec.title} (ready ${((manual.ready - feed.started) / 1000).toFixed(1)} s into its ${feed.spec.seconds} s input) by hand for ${(liveFrom - slateFrom).toFixed(0)} ms: ${said(streams)}; video ${(slateRate / 1000).toFixed(0)} kbit/s against the input's ${(inputRate / 1000).toFixed(0)}`,
    );
    expect(streams).toMatchObject([
      { id: hex(feed.spec.videoPid), codec_name: "h264", width: 640, height: 360, r_frame_rate: "25/1" },
      { id: hex(feed.spec.audioPid), codec_name: "aac", sample_rate: "48000", channels: 2 },
    ]);
    expectInputPids(feed, slate);
    expect(await decodeErrors(file)).toEqual({ stderr: "", exitCode: 0 });
  });

  it("back to live at an input keyframe, the input's packets byte for byte from there; slate_on (manual) and slate_off", async () => {
    const feed = feeds.manual;
    const splice = manualSplice();
    expect(splice.back).toBeGreaterThan(0);
    const { received, back } = splice;
    // The first packet of the input again is a keyframe's first.
    expect(pidAt(received, back)).toBe(feed.spec.videoPid);
    expect(((received[back + 1] ?? 0) & 0x40) !== 0).toBe(true);
    expect(randomAccess(received, back)).toBe(true);
    // From there every packet of the input, in order, with only flagged bridges (no payload) between them.
    const sent = feed.ts.subarray(splice.backSent);
    const live = received.subarray(back);
    let matched = 0;
    const strays: number[] = [];
    for (let r = 0; r + PACKET <= live.length && matched * PACKET < sent.length; r += PACKET) {
      if (live.subarray(r, r + PACKET).equals(sent.subarray(matched * PACKET, (matched + 1) * PACKET)))
        matched++;
      else if (!(discontinuity(live, r) && !hasPayload(live, r))) strays.push(r / PACKET);
    }
    expect(strays).toEqual([]);
    expect(matched * PACKET).toBe(sent.length);
    const events = (await eventsOf(feed)).map((event) => `${event.type}:${event.reason}`);
    expect(events).toEqual(["slate_on:manual", "slate_off:undefined", "slate_on:input_lost"]);
  });
});
