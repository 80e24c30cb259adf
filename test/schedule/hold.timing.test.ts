/**
 * A schedule owns the outputs it names, in real time (issue 63, point 9): two channels with a slate and one UDP
 * output each (enabled, as the API's default has it) received by a real UDP sink, both fed a paced H.264 + AAC
 * stream (a GOP of 0.32 s), and the same short one-off window (T0 18 s after the test begins: preroll 4 s,
 * 3 s of programme, postroll 2 s). One channel is made with its schedule and then started; the other is
 * started first (its output carries the programme) and given its schedule then. For both:
 *   - nothing reaches the sink before the preroll (for the second, from its schedule's save), then the slate
 *     (none of the input's video packets) from the preroll, the input from T0 (± 1 s), and nothing after the
 *     end (+ 1 s);
 *   - before the preroll the API's output status and the channel's page say it is off until the window, because
 *     of the schedule.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, eventually, freeUdpPort, json, loginSession, useTestApp } from "../support/app.ts";
import { encodeTestStream } from "../support/media.ts";
import { type UdpSink, udpSink } from "../support/peers.ts";
import { chunkTs, DATAGRAM_BYTES, sendPaced } from "../support/sender.ts";
import { inputAt, videoPackets } from "./kickoff.ts";

const S = 1000;
const PREROLL = 4;
const DURATION = 3;
const POSTROLL = 2;
/** The input runs from the test's start to past the window's end. */
const SECONDS = 26;

let dir = "";
const app = useTestApp(() => ({ settings: { DISTRIBUTARY_SLATE_DIR: join(dir, "slates") } }));
const scope = Effect.runSync(Scope.make());
let source: Buffer;
/** The input's video packets (each one's bytes), to tell the input's packets from the slate's. */
let inputVideo = new Set<string>();
const sinks: Record<string, UdpSink> = {};
let t0 = 0;
/** When the second channel's schedule was saved (its answer came), wall-clock ms. */
let savedAt = 0;
/** What the API and the page said before the preroll, by channel. */
const said: Record<string, { api: unknown; page: string }> = {};

const wall = (arrival: number) => performance.timeOrigin + arrival;
const window = () => ({
  windows: [
    {
      id: "h6-kickoff",
      start: new Date(t0).toISOString(),
      time_zone: "UTC",
      duration_s: DURATION,
      preroll_s: PREROLL,
      postroll_s: POSTROLL,
    },
  ],
});
const channel = (id: string, port: number, sink: UdpSink) => ({
  id,
  name: `h6 ${id}`,
  rtp_ip: "127.0.0.1",
  rtp_port: port,
  slate: { after_ms: 1000 },
  outputs: [{ id: "out", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
});
const send = (path: string, method: string, body?: unknown) =>
  app.request(path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "distributary-h6-hold-"));
  const encoded = join(dir, "source.ts");
  await Effect.runPromise(encodeTestStream(encoded, SECONDS, "1M", "640x360", ["-g", "8"]));
  source = await readFile(encoded);
  inputVideo = videoPackets(source);
  for (const id of ["h6-saved", "h6-later"])
    sinks[id] = await Effect.runPromise(Scope.extend(udpSink, scope));
  const ports = { saved: await freeUdpPort(), later: await freeUdpPort() };
  t0 = Math.ceil((Date.now() + 18 * S) / S) * S;
  const perMs = source.length / SECONDS / DATAGRAM_BYTES / 1000;

  // Schedule saved, then the channel started.
  const saved = await send("/api/channels", "POST", {
    ...channel("h6-saved", ports.saved, sinks["h6-saved"] as UdpSink),
    schedule: window(),
  });
  expect(saved.status, await saved.clone().text()).toBe(201);
  expect((await send("/api/channels/h6-saved/start", "POST")).status).toBe(200);
  // Channel started (on air), then its schedule saved.
  const later = await send(
    "/api/channels",
    "POST",
    channel("h6-later", ports.later, sinks["h6-later"] as UdpSink),
  );
  expect(later.status, await later.clone().text()).toBe(201);
  expect((await send("/api/channels/h6-later/start", "POST")).status).toBe(200);
  const sending = Promise.all([
    Effect.runPromise(sendPaced(chunkTs(source), ports.saved, perMs)),
    Effect.runPromise(sendPaced(chunkTs(source), ports.later, perMs)),
  ]);
  await eventually("the programme at the second channel's sink", () =>
    (sinks["h6-later"]?.datagrams.length ?? 0) > 100 ? true : undefined,
  );
  const patched = await send("/api/channels/h6-later", "PATCH", { schedule: window() });
  expect(patched.status, await patched.clone().text()).toBe(200);
  savedAt = Date.now();

  const cookie = await loginSession(app, ADMIN_TOKEN);
  for (const id of ["h6-saved", "h6-later"]) {
    const view = await json(await app.request(`/api/channels/${id}`));
    const page = await app.request(`http://127.0.0.1/channels/${id}`, { token: null, headers: { cookie } });
    said[id] = {
      api: (view.outputs as Array<Record<string, unknown>>)[0],
      page: (await page.text()).replace(/\s+/g, " "),
    };
  }
  expect(Date.now()).toBeLessThan(t0 - PREROLL * S);
  await sending;
}, 90_000);

afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void));
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

/** "2026-12-05 19:59:56 UTC": the preroll as the status writes it (seconds left out on a whole minute). */
const prerollWords = () => {
  const iso = new Date(t0 - PREROLL * S).toISOString();
  const time = iso.slice(11, 19);
  return `${iso.slice(0, 10)} ${time.endsWith(":00") ? time.slice(0, 5) : time} UTC`;
};

describe("a schedule's outputs in real time", () => {
  it.each([
    ["h6-saved", "schedule saved, then the channel started"],
    ["h6-later", "channel started, then the schedule saved"],
  ])("%s (%s): nothing before the preroll, the slate, the programme from T0, nothing after the end", (id) => {
    const sink = sinks[id] as UdpSink;
    const prerollAt = t0 - PREROLL * S;
    const endAt = t0 + (DURATION + POSTROLL) * S;
    const arrivals = sink.arrivals.map(wall);
    // The window's own traffic: from the preroll on (the second channel's programme before its save aside).
    const from = id === "h6-later" ? arrivals.findIndex((at) => at > savedAt + 300) : 0;
    expect(from).toBeGreaterThanOrEqual(0);
    const first = arrivals[from] ?? 0;
    console.log(
      `${id}: first datagram ${((first - prerollAt) / S).toFixed(3)} s from the preroll; the last ${(((arrivals.at(-1) ?? 0) - endAt) / S).toFixed(3)} s from the end`,
    );
    expect(first).toBeGreaterThanOrEqual(prerollAt);
    expect(first).toBeLessThanOrEqual(prerollAt + S);
    if (id === "h6-later") {
      // Before the save the output carried the programme; what was on its way when the answer came, no more.
      expect(arrivals.filter((at) => at <= savedAt).length).toBeGreaterThan(100);
      expect(arrivals.filter((at) => at > savedAt + 300 && at < prerollAt)).toEqual([]);
    }
    const datagrams = sink.datagrams.slice(from);
    const back = datagrams.findIndex((datagram) => inputAt(datagram, inputVideo) >= 0);
    expect(back).toBeGreaterThan(0);
    const returnAt = arrivals[from + back] ?? 0;
    // The slate from the preroll until the input's return at T0.
    expect((returnAt - first) / S).toBeGreaterThan(PREROLL - 1);
    expect(Math.abs(returnAt - t0)).toBeLessThanOrEqual(S);
    expect(arrivals.at(-1) ?? 0).toBeLessThanOrEqual(endAt + S);
  });

  it("before the preroll the API and the page say the output is off until the window, because of the schedule", () => {
    const words = `off until the window h6-kickoff at ${prerollWords()} (schedule)`;
    for (const id of ["h6-saved", "h6-later"]) {
      expect(said[id]?.api).toMatchObject({ enabled: false, state: "disabled", schedule: words });
      expect(said[id]?.page).toContain(words);
      expect(said[id]?.page).toContain("The schedule runs every output: off outside its windows");
    }
  });
});
