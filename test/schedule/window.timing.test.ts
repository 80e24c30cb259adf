/**
 * A scheduled window in real time (issue 52, point 2), tried as a user would: the service as a real process,
 * linked to a MediaLive channel in moto_server, one channel with a slate and an SRT output (disabled) received
 * by a real srt-live-transmit, fed a paced H.264 + AAC stream (a GOP of 0.32 s), and a one-off window whose T0 is
 * 20 s after its creation: lead 10 s, preroll 5 s, duration 8 s, postroll 3 s. What happened:
 *   - MediaLive's StartChannel at T0 − lead − preroll (± 1 s: when it reached moto, through a recording proxy),
 *     once, and the `medialive_action` events by `schedule`; StopChannel after the postroll, once;
 *   - the SRT receiver gets nothing before the preroll, then the slate (none of the input's video packets),
 *     then the input from its first IDR within 0.5 s of T0, byte for byte, and nothing after the end;
 *   - the cost guard idle inside the window (no pending stop, no stop of its own), though nothing was sent
 *     for the first 15 s.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DescribeChannelCommand } from "@aws-sdk/client-medialive";
import { Effect, Exit, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeUdpPort } from "../support/app.ts";
import { encodeTestStream } from "../support/media.ts";
import { createMediaLiveChannel, type Moto, motoMissing, startMoto } from "../support/moto.ts";
import { type MotoLog, motoLog } from "../support/moto-log.ts";
import { srtListenerPeer, type UdpSink, udpSink } from "../support/peers.ts";
import { videoPes } from "../support/rtmp-media.ts";
import { chunkTs, DATAGRAM_BYTES, sendPaced } from "../support/sender.ts";
import { type ServiceProcess, servicePort, spawnService } from "../support/service.ts";
import { adaptation } from "../support/ts-packets.ts";
import {
  DURATION,
  inputAt,
  kickoffSchedule,
  LEAD,
  POSTROLL,
  PREROLL,
  S,
  t0In,
  videoPackets,
} from "./kickoff.ts";

const missing = motoMissing();
const TOKEN = "schedule-admin-token-0123456789abcdef";
const CREDENTIALS = {
  AWS_ACCESS_KEY_ID: "AKIASCHEDULEWINDOW",
  AWS_SECRET_ACCESS_KEY: "schedule-window-secret",
};
// The input runs from the window's creation (T0 − 20 s) to past its end (T0 + 11 s) by 6 s at least, so that
// "nothing after the end" is seen while it still flows; the test waits for the whole of it to be sent.
const SECONDS = 38;
const PACKET = 188;

const scope = Effect.runSync(Scope.make());
let dir = "";
let moto: Moto;
let log: MotoLog;
let service: ServiceProcess | undefined;
let sink: UdpSink;
let mediaLiveId = "";
let source: Buffer;
let t0 = 0;
/** The cost guard's pending stop as the API showed it, polled through the window. */
const pendingStops: unknown[] = [];

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${service?.base}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...init.headers },
  });
/** A sink arrival (performance.now()) as wall-clock ms. */
const wall = (arrival: number) => performance.timeOrigin + arrival;
const stateInMoto = async () =>
  (await moto.client().send(new DescribeChannelCommand({ ChannelId: mediaLiveId }))).State;

/** The input's video packets (each one's bytes), to tell the input's packets from the slate's. */
let inputVideo = new Set<string>();
/** Keyframe starts of the input: a video PES start flagged random access. */
let inputKeyframes = new Set<string>();

beforeAll(async () => {
  if (missing !== null) return;
  Object.assign(process.env, CREDENTIALS);
  dir = await mkdtemp(join(tmpdir(), "distributary-schedule-"));
  const encoded = join(dir, "source.ts");
  // moto_server starts while ffmpeg encodes the input.
  const encoding = Effect.runPromise(encodeTestStream(encoded, SECONDS, "1M", "640x360", ["-g", "8"]));
  moto = await startMoto();
  mediaLiveId = await createMediaLiveChannel(moto.client(), {
    name: "scheduled window",
    destinations: ["rtp://127.0.0.1:5000"],
  });
  log = await motoLog(moto.endpoint);
  await encoding;
  source = await readFile(encoded);
  inputVideo = videoPackets(source);
  inputKeyframes = new Set(
    videoPes(source)
      .filter((frame) => {
        const at = frame.packet * PACKET;
        return adaptation(source, at) && ((source[at + 5] ?? 0) & 0x40) !== 0;
      })
      .map((frame) =>
        source.subarray(frame.packet * PACKET, frame.packet * PACKET + PACKET).toString("base64"),
      ),
  );

  sink = await Effect.runPromise(Scope.extend(udpSink, scope));
  const srt = await Effect.runPromise(Scope.extend(srtListenerPeer({ forwardTo: sink.port }), scope));
  service = spawnService({
    port: await servicePort(),
    after: ["--host", "127.0.0.1", "--config-dir", join(dir, "config")],
    env: {
      ...process.env,
      ...CREDENTIALS,
      DISTRIBUTARY_ADMIN_TOKEN: TOKEN,
      DISTRIBUTARY_SLATE_DIR: join(dir, "slates"),
      DISTRIBUTARY_AWS_ENDPOINT: log.endpoint,
    },
  });
  await service.ready(30_000);
  const port = await freeUdpPort();
  t0 = t0In(20);
  const created = await api("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      id: "match",
      name: "Saturday match",
      rtp_ip: "127.0.0.1",
      rtp_port: port,
      slate: { after_ms: 1000 },
      medialive: { channel_id: mediaLiveId, region: "eu-west-1", stop_when_idle: true, idle_minutes: 10 },
      outputs: [
        { id: "srt", protocol: "srt", url: `srt://127.0.0.1:${srt.port}?latency=20`, enabled: false },
      ],
      schedule: kickoffSchedule(t0),
    }),
  });
  expect(created.status, await created.clone().text()).toBe(201);
  expect((await api("/api/channels/match/start", { method: "POST" })).status).toBe(200);
  // The input, paced at its own rate, from now until after the window.
  const perMs = source.length / SECONDS / DATAGRAM_BYTES / 1000;
  const sending = Effect.runPromise(sendPaced(chunkTs(source), port, perMs));
  const end = t0 + (DURATION + POSTROLL) * S;
  while (Date.now() < end + 3 * S) {
    const view = (await (await api("/api/channels/match/medialive")).json()) as { pending_stop: unknown };
    if (Date.now() > t0 - (LEAD + PREROLL) * S && Date.now() < end) pendingStops.push(view.pending_stop);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await sending;
}, 180_000);

afterAll(async () => {
  for (const name of Object.keys(CREDENTIALS)) delete process.env[name];
  if (service !== undefined && service.process.exitCode === null) {
    service.process.kill("SIGTERM");
    await service.exited;
  }
  await Effect.runPromise(Scope.close(scope, Exit.void));
  await log?.close();
  await moto?.stop();
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

const events = async (type: string) =>
  (
    (await (await api(`/api/events?channel=match&type=${type}&limit=500`)).json()) as {
      events: Array<Record<string, unknown>>;
    }
  ).events;

describe.skipIf(missing !== null)("a scheduled window in real time (moto, SRT)", () => {
  it("starts MediaLive at T0 − lead − preroll (± 1 s) and stops it after the postroll; the cost guard stays idle", async () => {
    const actions = (await events("medialive_action")).sort((a, b) => Number(a.seq) - Number(b.seq));
    expect(actions.map((event) => `${event.action} by ${event.by} ${event.ok}`)).toEqual([
      "start by schedule true",
      "stop by schedule true",
    ]);
    const starts = log.calls("start", mediaLiveId);
    const stops = log.calls("stop", mediaLiveId);
    expect(starts).toHaveLength(1);
    expect(stops).toHaveLength(1);
    const startedAt = starts[0]?.at ?? 0;
    const stoppedAt = stops[0]?.at ?? 0;
    console.log(
      `schedule: StartChannel ${((startedAt - (t0 - (LEAD + PREROLL) * S)) / S).toFixed(3)} s from T0 − lead − preroll; StopChannel ${((stoppedAt - (t0 + (DURATION + POSTROLL) * S)) / S).toFixed(3)} s after the postroll`,
    );
    expect(Math.abs(startedAt - (t0 - (LEAD + PREROLL) * S))).toBeLessThanOrEqual(S);
    expect(stoppedAt).toBeGreaterThanOrEqual(t0 + (DURATION + POSTROLL) * S);
    expect(stoppedAt).toBeLessThanOrEqual(t0 + (DURATION + POSTROLL + 1) * S);
    expect(["STOPPING", "IDLE"]).toContain(await stateInMoto());
    expect(pendingStops.length).toBeGreaterThan(20);
    expect(pendingStops.every((stop) => stop === null)).toBe(true);
  });

  it("the SRT receiver gets the slate from the preroll, the input's first IDR within 0.5 s of T0, nothing after the end", async () => {
    const arrivals = sink.arrivals.map(wall);
    expect(arrivals.length).toBeGreaterThan(0);
    const first = arrivals[0] ?? 0;
    const prerollAt = t0 - PREROLL * S;
    // The output is enabled at the preroll: it connects, and the slate is what it sends.
    expect(first).toBeGreaterThanOrEqual(prerollAt);
    expect(first).toBeLessThanOrEqual(prerollAt + S);
    /** The first datagram carrying a video packet of the input: the return. */
    const isInput = (datagram: Buffer) => inputAt(datagram, inputVideo);
    const back = sink.datagrams.findIndex((datagram) => isInput(datagram) >= 0);
    expect(back).toBeGreaterThan(0);
    const returned = sink.datagrams[back] as Buffer;
    const at = isInput(returned);
    // The return begins with a keyframe of the input, and the datagrams before it carried the slate.
    expect(inputKeyframes.has(returned.subarray(at, at + PACKET).toString("base64"))).toBe(true);
    const slateSeconds = ((arrivals[back] ?? 0) - first) / S;
    const idrAfterT0 = ((arrivals[back] ?? 0) - t0) / S;
    console.log(
      `schedule: the slate for ${slateSeconds.toFixed(2)} s from the preroll (${back} datagrams), the input's first IDR ${idrAfterT0.toFixed(3)} s from T0`,
    );
    expect(slateSeconds).toBeGreaterThan(PREROLL - 1);
    expect(Math.abs(idrAfterT0)).toBeLessThanOrEqual(0.5);
    // The outputs are disabled at the end of the postroll.
    const last = arrivals.at(-1) ?? 0;
    expect(last).toBeLessThanOrEqual(t0 + (DURATION + POSTROLL) * S + S);
    const phases = (await events("schedule_phase"))
      .sort((a, b) => Number(a.seq) - Number(b.seq))
      .map((event) => event.phase);
    expect(phases).toEqual(["warming", "preroll", "live", "postroll", "ending", "idle"]);
  });
});
