/**
 * Never off air (tried as a user would): the service as a real process, one channel with a slate (1 s, an
 * uploaded picture) and four outputs — UDP to a sink, SRT to srt-live-transmit, RTMP to nginx-rtmp, HLS kept in
 * memory — fed a 640×360 H.264 + AAC stream with a SCTE-35 cue every 2 s. The sender sends 6 s, stops for
 * 8 s, and sends the rest with its clock moved on by the time it was away (as an encoder whose input came
 * back does). What the receivers got:
 *   - the UDP output's longest silence is at most after_ms + 100 ms; ffmpeg decodes the whole capture without
 *     an error; the video's PTS go forward across both switches (within a frame); every PID's continuity
 *     counters are valid, or a discontinuity is flagged where they jump;
 *   - the slate's frames are the uploaded picture (PSNR printed);
 *   - back to live at the input's first keyframe, the input's packets byte for byte from there, every cue after
 *     the return as sent;
 *   - nginx saw one publish for the whole run and its recording decodes through the slate; the SRT output never
 *     reconnected; the HLS playlist marks both switches with EXT-X-DISCONTINUITY;
 *   - slate_on (input_lost) and slate_off events, and the slate's seconds in the API and /metrics.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Effect, Exit, Scope } from "effect";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { analyse } from "../support/analyse.ts";
import { eventually, freeUdpPort } from "../support/app.ts";
import { launchChromium, login, newContext } from "../support/browser.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import { encodeTestStream } from "../support/media.ts";
import {
  nginxRtmpServer,
  type RtmpServer,
  type SrtPeer,
  srtListenerPeer,
  type UdpSink,
  udpSink,
} from "../support/peers.ts";
import { videoPes, wholeTags, withCues } from "../support/rtmp-media.ts";
import { chunkTs, DATAGRAM_BYTES, sendPaced } from "../support/sender.ts";
import { type ServiceProcess, servicePort, spawnService } from "../support/service.ts";
import { STREAM_TYPE_AAC } from "../support/ts-generator.ts";
import { adaptation, discontinuity, find, hasPayload, pidAt, slateStart } from "../support/ts-packets.ts";

const TOKEN = "slate-admin-token-0123456789abcdef";
const SECONDS = 16;
const FIRST_SECONDS = 6;
const AWAY_MS = 8_000;
const AFTER_MS = 1000;
const VIDEO_PID = 0x100;
const CUE_PID = 0x1f0;

const scope = Effect.runSync(Scope.make());
let dir = "";
let service: ServiceProcess | undefined;
let nginx: RtmpServer;
let udp: UdpSink;
let srtSink: UdpSink;
let srt: SrtPeer;
let channelId = "";
let source: Buffer;
/** Where the second part starts in `source` (a datagram boundary) and what was sent of it, clock moved on. */
let secondPart: Buffer;
let picture = "";

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${service?.base}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...init.headers },
  });
interface SlateView {
  readonly on: boolean;
  readonly reason: string | null;
  readonly ready: boolean;
  readonly seconds: number;
  readonly format: string | null;
  readonly problem: string | null;
}
const channel = async () =>
  (await (await api(`/api/channels/${channelId}`)).json()) as {
    slate: SlateView | null;
    outputs: ReadonlyArray<{ name: string; id: string; reconnects: number; state: string }>;
  };

// --- TS helpers: the test's own reading of what arrived ---------------------------------------------------
const PACKET = 188;

/** Continuity counter jumps that no discontinuity_indicator flags, per PID (ISO/IEC 13818-1 2.4.3.3). */
const unflaggedCcJumps = (ts: Uint8Array): string[] => {
  const last = new Map<number, number>();
  const problems: string[] = [];
  for (let at = 0; at + PACKET <= ts.length; at += PACKET) {
    const pid = pidAt(ts, at);
    if (pid === 0x1fff) continue;
    const cc = (ts[at + 3] ?? 0) & 0x0f;
    const before = last.get(pid);
    const expected = before === undefined ? cc : hasPayload(ts, at) ? (before + 1) & 0x0f : before;
    if (cc !== expected && !discontinuity(ts, at))
      problems.push(`PID ${pid} at packet ${at / PACKET}: ${before} → ${cc}`);
    last.set(pid, cc);
  }
  return problems;
};

/** 33-bit PTS/DTS at `at` (the 5-byte field). */
const readTime = (ts: Uint8Array, at: number) =>
  ((ts[at] ?? 0) & 0x0e) * 2 ** 29 +
  (ts[at + 1] ?? 0) * 2 ** 22 +
  ((ts[at + 2] ?? 0) >> 1) * 2 ** 15 +
  (ts[at + 3] ?? 0) * 2 ** 7 +
  ((ts[at + 4] ?? 0) >> 1);
const writeTime = (ts: Uint8Array, at: number, value: number) => {
  const v = value % 2 ** 33;
  const marker = (ts[at] ?? 0) & 0xf0;
  ts[at] = marker | ((Math.floor(v / 2 ** 30) & 0x07) << 1) | 1;
  ts[at + 1] = Math.floor(v / 2 ** 22) & 0xff;
  ts[at + 2] = ((Math.floor(v / 2 ** 15) & 0x7f) << 1) | 1;
  ts[at + 3] = Math.floor(v / 2 ** 7) & 0xff;
  ts[at + 4] = ((v & 0x7f) << 1) | 1;
};

/** The stream with its clock (PCR, PTS, DTS) moved on by `ticks` (90 kHz): an encoder that kept counting. */
const clockMovedOn = (ts: Buffer, ticks: number): Buffer => {
  const out = Buffer.from(ts);
  for (let at = 0; at + PACKET <= out.length; at += PACKET) {
    let payload = at + 4;
    if (adaptation(out, at)) {
      payload = at + 5 + (out[at + 4] ?? 0);
      if (((out[at + 5] ?? 0) & 0x10) !== 0) {
        const base =
          (out[at + 6] ?? 0) * 2 ** 25 +
          (out[at + 7] ?? 0) * 2 ** 17 +
          (out[at + 8] ?? 0) * 2 ** 9 +
          (out[at + 9] ?? 0) * 2 +
          ((out[at + 10] ?? 0) >> 7);
        const moved = (base + ticks) % 2 ** 33;
        out[at + 6] = Math.floor(moved / 2 ** 25) & 0xff;
        out[at + 7] = Math.floor(moved / 2 ** 17) & 0xff;
        out[at + 8] = Math.floor(moved / 2 ** 9) & 0xff;
        out[at + 9] = Math.floor(moved / 2) & 0xff;
        out[at + 10] = ((moved & 1) << 7) | ((out[at + 10] ?? 0) & 0x7f);
      }
    } else if ((((out[at + 3] ?? 0) >> 4) & 3) === 2) continue;
    const start = ((out[at + 1] ?? 0) & 0x40) !== 0;
    if (!start || out[payload] !== 0 || out[payload + 1] !== 0 || out[payload + 2] !== 1) continue;
    const streamId = out[payload + 3] ?? 0;
    if (streamId < 0xc0 || streamId > 0xef) continue;
    const flags = (out[payload + 7] ?? 0) >> 6;
    if (flags >= 2) writeTime(out, payload + 9, readTime(out, payload + 9) + ticks);
    if (flags === 3) writeTime(out, payload + 14, readTime(out, payload + 14) + ticks);
  }
  return out;
};

/** The arrivals after the longest silence that came before `afterMs`: where the slate began, and so on. */
const longestSilence = (arrivals: ReadonlyArray<number>) => {
  let gap = 0;
  let index = 0;
  for (let i = 1; i < arrivals.length; i++) {
    const here = (arrivals[i] ?? 0) - (arrivals[i - 1] ?? 0);
    if (here > gap) {
      gap = here;
      index = i;
    }
  }
  return { gap, index };
};

/** The datagrams the slate sent while the sender was away: from the first silence to the return. */
const slateDatagrams = (sink: UdpSink, keyframe: Uint8Array) => {
  const start = slateStart(sink.arrivals);
  const end = sink.datagrams.findIndex((datagram, i) => i > start && find(datagram, keyframe) >= 0);
  return sink.datagrams.slice(start, end);
};

/** The first keyframe of what the sender sent after it came back (a video PES start flagged random access). */
const firstKeyframe = () => {
  const first = videoPes(secondPart).find((frame) => {
    const at = frame.packet * PACKET;
    return adaptation(secondPart, at) && ((secondPart[at + 5] ?? 0) & 0x40) !== 0;
  });
  if (first === undefined) throw new Error("the second part has no keyframe");
  return first;
};
const returnKeyframe = () => {
  const at = firstKeyframe().packet * PACKET;
  return secondPart.subarray(at, at + PACKET);
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "distributary-slate-"));
  // The service starts while ffmpeg makes the stream and the picture and the receivers start.
  service = spawnService({
    port: await servicePort(),
    after: ["--host", "127.0.0.1", "--config-dir", join(dir, "config")],
    env: { ...process.env, DISTRIBUTARY_ADMIN_TOKEN: TOKEN, DISTRIBUTARY_SLATE_DIR: join(dir, "slates") },
  });
  const ready = service.ready(30_000);
  const encoded = join(dir, "source.ts");
  // The uploaded picture: colour bars, which an encoder keeps sharp.
  picture = join(dir, "slate.png");
  await Promise.all([
    Effect.runPromise(encodeTestStream(encoded, SECONDS, "1M", "640x360")),
    execa("ffmpeg", [
      ...["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "smptehdbars=s=1280x720"],
      ...["-frames:v", "1", picture],
    ]),
  ]);
  const plain = await readFile(encoded);
  const cues = videoPes(plain)
    .filter((_, index) => index > 0 && index % 50 === 0)
    .map((frame, index) => ({
      before: frame.packet,
      section: encodeSection(immediateSpliceOut(9100 + index)),
    }));
  source = withCues(plain, STREAM_TYPE_AAC, cues);

  nginx = await Effect.runPromise(Scope.extend(nginxRtmpServer(), scope));
  udp = await Effect.runPromise(Scope.extend(udpSink, scope));
  srtSink = await Effect.runPromise(Scope.extend(udpSink, scope));
  srt = await Effect.runPromise(Scope.extend(srtListenerPeer({ forwardTo: srtSink.port }), scope));
  const port = await freeUdpPort();
  await ready;
  const created = await api("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      name: "Slate news",
      rtp_ip: "127.0.0.1",
      rtp_port: port,
      slate: { after_ms: AFTER_MS },
      outputs: [
        { name: "udp", protocol: "udp", url: `udp://127.0.0.1:${udp.port}` },
        { name: "srt", protocol: "srt", url: `srt://127.0.0.1:${srt.port}?latency=120` },
        { name: "rtmp", protocol: "rtmp", url: `rtmp://127.0.0.1:${nginx.port}/live/slate` },
        { name: "hls", protocol: "hls", url: "hls://?target=2&window=40" },
      ],
    }),
  });
  expect(created.status, await created.clone().text()).toBe(201);
  channelId = ((await created.json()) as { id: string }).id;
  const uploaded = await api(`/api/channels/${channelId}/slate/image`, {
    method: "PUT",
    headers: { "content-type": "image/png" },
    body: await readFile(picture),
  });
  expect(uploaded.status, await uploaded.clone().text()).toBe(200);
  expect((await api(`/api/channels/${channelId}/start`, { method: "POST" })).status).toBe(200);

  // The sender stops between two pictures (an input that stops mid-picture leaves a broken picture that is the
  // input's, not the slate's).
  const pictures = videoPes(source);
  const stopAt =
    (pictures.find((frame) => frame.packet * PACKET >= (source.length * FIRST_SECONDS) / SECONDS)?.packet ??
      0) * PACKET;
  // Paced at the stream's own rate, so that its clock runs with the wall clock, as an encoder's does.
  const perMs = source.length / SECONDS / DATAGRAM_BYTES / 1000;
  await Effect.runPromise(sendPaced(chunkTs(source.subarray(0, stopAt)), port, perMs));
  // The slate was prepared while the input ran: ready before the input goes.
  await eventually(
    "the slate to be ready before the input stops",
    async () => ((await channel()).slate?.ready ? true : undefined),
    5_000,
  );
  // The scenario itself: the sender is away for 8 s.
  const away = performance.now();
  await sleep(AWAY_MS);
  const awayTicks = Math.round((performance.now() - away) * 90);
  secondPart = clockMovedOn(Buffer.from(source.subarray(stopAt)), awayTicks);
  await Effect.runPromise(sendPaced(chunkTs(secondPart), port, perMs));
  // Once the sender has sent everything, the channel goes on the slate again.
  await eventually(
    "the outputs to have carried the end of the input, and the slate to be on again",
    async () => {
      const view = await channel();
      const last = secondPart.subarray(secondPart.length - PACKET);
      return view.slate?.on === true && find(udp.bytes(), last) >= 0 ? true : undefined;
    },
    10_000,
  );
  // A few seconds of that slate, for the recording to go on through it.
  const onAgain = performance.now();
  await eventually(
    "3 s of the slate after the input ended",
    async () => ((udp.arrivals.at(-1) ?? 0) > onAgain + 3000 ? true : undefined),
    10_000,
  );
}, 180_000);

afterAll(async () => {
  if (service !== undefined && service.process.exitCode === null) {
    service.process.kill("SIGTERM");
    await service.exited;
  }
  await Effect.runPromise(Scope.close(scope, Exit.void));
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

describe("a channel with a slate whose input goes away for 8 s", () => {
  it("the UDP output is silent for at most after_ms + 100 ms, and ffmpeg decodes all it sent without an error", async () => {
    const silence = longestSilence(udp.arrivals);
    console.log(`slate: the UDP output's longest silence was ${silence.gap.toFixed(0)} ms`);
    expect(silence.gap).toBeLessThanOrEqual(AFTER_MS + 100);
    const captured = join(dir, "udp.ts");
    await writeFile(captured, udp.bytes());
    const decoded = await execa("ffmpeg", ["-v", "error", "-i", captured, "-f", "null", "-"], {
      reject: false,
    });
    expect(decoded.stderr.trim()).toBe("");
    expect(decoded.exitCode).toBe(0);
  });

  it("every PID's continuity counters follow on, or a discontinuity is flagged where they jump", () => {
    expect(unflaggedCcJumps(udp.bytes())).toEqual([]);
    expect(unflaggedCcJumps(srtSink.bytes())).toEqual([]);
  });

  it("the video's PTS go forward across both switches, within a frame", async () => {
    const captured = join(dir, "udp-pts.ts");
    await writeFile(captured, udp.bytes());
    const { stdout } = await execa("ffprobe", [
      ...["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts", "-of", "csv=p=0", captured],
    ]);
    const pts = stdout
      .split("\n")
      .map((line) => Number(line.replace(",", "").trim()))
      .filter((value) => Number.isFinite(value) && value > 0);
    expect(pts.length).toBeGreaterThan(25 * (SECONDS - 2));
    // Decode order is PTS order but for B-frames: a step back of more than a frame's reordering is a splice gone wrong.
    const FRAME = 3600;
    let worst = 0;
    for (let i = 1; i < pts.length; i++) worst = Math.min(worst, (pts[i] ?? 0) - (pts[i - 1] ?? 0));
    expect(worst).toBeGreaterThanOrEqual(-3 * FRAME);
    const span = ((pts.at(-1) ?? 0) - (pts[0] ?? 0)) / 90_000;
    // The whole run on one clock: the input's seconds and the time away.
    expect(span).toBeGreaterThan(SECONDS + AWAY_MS / 1000 - 2);
  });

  it("the slate's frames are the uploaded picture", async () => {
    const slateBytes = Buffer.concat(slateDatagrams(udp, returnKeyframe()));
    expect(slateBytes.length).toBeGreaterThan(0);
    const slateFile = join(dir, "slate-part.ts");
    await writeFile(slateFile, slateBytes);
    const frame = join(dir, "slate-frame.png");
    await execa("ffmpeg", [
      ...["-hide_banner", "-loglevel", "error", "-y", "-i", slateFile],
      ...["-vf", "select=gte(n\\,10)", "-frames:v", "1", frame],
    ]);
    const { stderr } = await execa("ffmpeg", [
      ...["-hide_banner", "-i", frame, "-i", picture],
      ...["-filter_complex", "[1:v]scale=640:360[ref];[0:v][ref]psnr", "-f", "null", "-"],
    ]);
    const psnr = Number(/average:([\d.]+|inf)/.exec(stderr)?.[1]?.replace("inf", "100"));
    console.log(`slate: PSNR of a slate frame against the uploaded picture: ${psnr.toFixed(1)} dB`);
    expect(psnr).toBeGreaterThan(30);
  });

  it("back to live at the input's first keyframe, byte for byte from there, every cue after it as sent", () => {
    const received = udp.bytes();
    const first = firstKeyframe();
    // Within one GOP (25 pictures) of its return.
    expect(videoPes(secondPart).findIndex((frame) => frame.packet === first.packet)).toBeLessThanOrEqual(25);
    const firstAt = first.packet * PACKET;
    const at = find(received, returnKeyframe());
    expect(at).toBeGreaterThan(0);
    // From the keyframe on, every packet of the input, in order, with only flagged bridges between them.
    const live = received.subarray(at);
    const sent = secondPart.subarray(firstAt);
    let matched = 0;
    for (let r = 0; r + PACKET <= live.length && matched * PACKET < sent.length; r += PACKET) {
      const packet = live.subarray(r, r + PACKET);
      if (packet.equals(sent.subarray(matched * PACKET, matched * PACKET + PACKET))) matched++;
      else expect(discontinuity(live, r) && !hasPayload(live, r)).toBe(true);
    }
    expect(matched * PACKET).toBe(sent.length);
    // The cues after the return are the ones sent, byte for byte.
    const sentCues = analyse(sent).sections;
    expect(sentCues.length).toBeGreaterThan(3);
    expect(analyse(live).sections).toEqual(sentCues);
    // Nothing but the input's own PIDs went out, and the cue PID said nothing while the slate played.
    const slatePart = Buffer.concat(slateDatagrams(udp, returnKeyframe()));
    expect(slatePart.length).toBeGreaterThan(0);
    expect(analyse(slatePart).sections).toEqual([]);
    expect(
      analyse(slatePart).pids.every((pid) =>
        [0, 0x1000, VIDEO_PID, 0x101, CUE_PID].includes(Number(pid.split(":")[0])),
      ),
    ).toBe(true);
  });

  it("nginx saw one publish for the whole run, and its recording decodes through the slate", async () => {
    const recordings = await nginx.recordings();
    expect(recordings).toHaveLength(1);
    // The publish goes on (the slate): nginx is still writing the file, so what is read is its whole tags.
    const recording = join(dir, "recording.flv");
    await writeFile(recording, wholeTags(await readFile(recordings[0] ?? "")));
    const decoded = await execa("ffmpeg", ["-v", "error", "-i", recording, "-f", "null", "-"], {
      reject: false,
    });
    expect(decoded.stderr.trim()).toBe("");
    const { stdout } = await execa("ffprobe", [
      ...["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", recording],
    ]);
    expect(Number(stdout)).toBeGreaterThan(SECONDS + AWAY_MS / 1000 - 4);
  });

  it("the SRT output never reconnected and its receiver got the slate too", async () => {
    const view = await channel();
    const output = view.outputs.find((candidate) => candidate.name === "srt");
    expect(output?.reconnects).toBe(0);
    expect(output?.state).toBe("connected");
    expect(longestSilence(srtSink.arrivals).gap).toBeLessThan(AFTER_MS + 500);
    expect(srt.tail().filter((line) => /accepted/i.test(line)).length).toBeLessThanOrEqual(1);
  });

  it("the HLS playlist marks both switches with EXT-X-DISCONTINUITY (and the third, when the input ended), and a player plays through them", async () => {
    const view = await channel();
    const hls = view.outputs.find((candidate) => candidate.name === "hls");
    const playlist = await (await api(`/hls/${channelId}/${hls?.id}/index.m3u8`)).text();
    expect(playlist.match(/#EXT-X-DISCONTINUITY\n/g)?.length).toBe(3);
    // A player: ffmpeg's HLS reader, with a viewer token in the URL as a player is given one, reads every
    // segment of the playlist (live, slate, live, slate) and decodes them without an error. As long as the
    // segments listed now add up to: past them, the slate goes on live, and ffmpeg would wait for it in real time.
    const listed = [...playlist.matchAll(/#EXTINF:([0-9.]+)/g)].reduce(
      (sum, match) => sum + Number(match[1]),
      0,
    );
    expect(listed).toBeGreaterThan(SECONDS);
    const token = (
      (await (
        await api("/api/tokens", { method: "POST", body: JSON.stringify({ name: "player", role: "viewer" }) })
      ).json()) as { token: string }
    ).token;
    const played = await execa(
      "ffmpeg",
      [
        ...["-v", "error", "-live_start_index", "0", "-i"],
        `${service?.base}/hls/${channelId}/${hls?.id}/index.m3u8?token=${token}`,
        ...["-t", listed.toFixed(3), "-f", "null", "-"],
      ],
      { reject: false },
    );
    expect(played.stderr.trim()).toBe("");
    expect(played.exitCode).toBe(0);
  });

  it("events say when it went on and off, and the API and /metrics count its seconds", async () => {
    const events = (await (await api(`/api/events?channel=${channelId}&limit=1000`)).json()) as {
      events: ReadonlyArray<{ type: string; reason?: string; seconds?: number }>;
    };
    const on = events.events.filter((event) => event.type === "slate_on");
    const off = events.events.filter((event) => event.type === "slate_off");
    // On when the sender went away, off when it came back, and on again once it had sent all it had.
    expect(on.map((event) => event.reason)).toEqual(["input_lost", "input_lost"]);
    expect(off).toHaveLength(1);
    expect(off[0]?.seconds ?? 0).toBeGreaterThan(AWAY_MS / 1000 - 2);
    const view = await channel();
    expect(view.slate?.on).toBe(true);
    expect(view.slate?.format).toMatch(/^H\.264 .* 640×360p25; AAC 48 kHz/);
    const metrics = await (await api("/metrics")).text();
    const seconds = Number(
      new RegExp(`distributary_channel_slate_seconds_total\\{channel="${channelId}"[^}]*\\} ([\\d.]+)`).exec(
        metrics,
      )?.[1],
    );
    expect(seconds).toBeGreaterThan(AWAY_MS / 1000 - 2);
  });
  it("hls.js in Chromium reads the playlist's discontinuities, and plays through them where it can decode H.264", async () => {
    const view = await channel();
    const hls = view.outputs.find((candidate) => candidate.name === "hls");
    const browser = await launchChromium();
    try {
      const { context } = await newContext(browser);
      const page = await context.newPage();
      await login(page, service?.base ?? "", TOKEN);
      await page.goto(`${service?.base}/channels/${channelId}`);
      await page.addScriptTag({ url: "/assets/hls.min.js" });
      /** hls.js plays the playlist from `from` s until past `until` s (or for 20 s): what it read and did. */
      const play = async (from: number, until: number) =>
        (await page.evaluate(
          `new Promise((resolve) => {
            const seen = { sequences: [], loaded: [], fatal: [], time: 0 };
            const video = document.createElement("video");
            video.muted = true;
            document.body.append(video);
            const player = new Hls({ startPosition: ${from} });
            player.on(Hls.Events.LEVEL_LOADED, (_, data) => {
              seen.sequences = data.details.fragments.map((fragment) => fragment.cc);
            });
            player.on(Hls.Events.FRAG_LOADED, (_, data) => seen.loaded.push(data.frag.cc));
            player.on(Hls.Events.ERROR, (_, data) => { if (data.fatal) seen.fatal.push(data.details); });
            player.loadSource("/hls/${channelId}/${hls?.id}/index.m3u8");
            player.attachMedia(video);
            video.play().catch(() => {});
            const started = Date.now();
            const check = setInterval(() => {
              if (video.currentTime < ${until} && Date.now() - started < 20000) return;
              clearInterval(check);
              seen.time = video.currentTime;
              player.destroy();
              video.remove();
              resolve(seen);
            }, 100);
          })`,
        )) as { sequences: number[]; loaded: number[]; fatal: string[]; time: number };
      // From the start through the first switch (the slate begins FIRST_SECONDS in), and from before the return
      // (the input's first part, the time away and the slate's second) through it.
      const returnAt = FIRST_SECONDS + (AWAY_MS + AFTER_MS) / 1000;
      // Two players at once, each with its own video element: they share nothing but the playlist.
      const [seen, back] = await Promise.all([
        play(0, FIRST_SECONDS + 2.5),
        play(returnAt - 3, returnAt + 2.5),
      ]);
      const h264 = await page.evaluate(`MediaSource.isTypeSupported('video/mp4; codecs="avc1.42c01e"')`);
      console.log(
        `slate: hls.js (H.264 ${h264 ? "decodable" : "not decodable"} here): ${JSON.stringify({ ...seen, sequences: [...new Set(seen.sequences)] })}; from ${returnAt - 3} s: ${JSON.stringify({ ...back, sequences: undefined })}`,
      );
      // The playlist as hls.js reads it: live (0), slate (1), live (2), the slate again (3).
      expect([...new Set(seen.sequences)]).toEqual([0, 1, 2, 3]);
      expect(seen.loaded.length).toBeGreaterThan(0);
      if (h264) {
        // It plays from the start through the first switch, without an error.
        expect(seen.fatal).toEqual([]);
        expect(seen.loaded).toContain(1);
        expect(seen.time).toBeGreaterThan(FIRST_SECONDS + 2);
        // And through the return to live.
        expect(back.fatal).toEqual([]);
        expect(back.loaded).toContain(2);
        expect(back.time).toBeGreaterThan(returnAt + 2);
      }
      await context.close();
    } finally {
      await browser.close();
    }
  });

  it("a move to another forwarding thread while on the slate keeps it on the slate (the new copy knows the format)", async () => {
    const before = udp.arrivals.length;
    const moved = await api(`/api/channels/${channelId}/move`, {
      method: "POST",
      body: JSON.stringify({ worker: 1 }),
    });
    expect(moved.status, await moved.clone().text()).toBe(200);
    await eventually(
      "the moved channel to carry its slate again",
      async () =>
        (await channel()).slate?.on === true && udp.arrivals.length > before + 50 ? true : undefined,
      10_000,
    );
    const after = udp.arrivals.slice(before);
    console.log(`slate: the longest silence around the move was ${longestSilence(after).gap.toFixed(0)} ms`);
    expect(longestSilence(after).gap).toBeLessThan(AFTER_MS + 1000);
  });
});
