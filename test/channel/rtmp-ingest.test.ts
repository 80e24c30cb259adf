/**
 * RTMP and RTMPS ingest with real publishers: ffmpeg and GStreamer publish to a channel whose input is an
 * rtmp(s):// listener, the channel's UDP output decodes with no error (ffmpeg), its PMT stays the same across
 * publisher reconnects, a wrong key and a second publisher are refused in words (the publisher's stderr, the
 * channel's status and an event), and the key never shows in the API.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import { execa } from "execa";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { ccAt, PACKET, payloadOffset, pidAt, SectionReader, unitStartAt } from "../../src/core/ts/index.ts";
import {
  ADMIN_TOKEN,
  eventually,
  freeUdpPort,
  json,
  loginSession,
  makeTestApp,
  type TestApp,
} from "../support/app.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import { encodeTestStream } from "../support/media.ts";
import * as peers from "../support/peers.ts";
import { bframeStream, videoPes, withCues } from "../support/rtmp-media.ts";
import { selfSignedCa } from "../support/rtmp-peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { STREAM_TYPE_AAC } from "../support/ts-generator.ts";

const KEY = "cam1-Secret-0042";
let dir = "";
let media = "";
let longer = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "h11-rtmp-ingest-"));
  media = join(dir, "source.ts");
  longer = join(dir, "longer.ts");
  await Effect.runPromise(encodeTestStream(media, 1, "600k", "320x180"));
  await Effect.runPromise(encodeTestStream(longer, 3, "600k", "320x180"));
}, 60_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let app: TestApp | undefined;
let scope: Scope.CloseableScope | undefined;
afterEach(async () => {
  if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void));
  await app?.close();
  app = undefined;
  scope = undefined;
});

const freeTcpPort = () => Effect.runPromise(peers.freeTcpPort);

/** The service with one channel whose primary input is `inputUrl` and whose UDP output goes to a sink. */
const channelWithSink = async (
  id: string,
  inputUrl: string,
  more: Record<string, unknown> = {},
): Promise<{ test: TestApp; sink: peers.UdpSink }> => {
  app = await makeTestApp();
  const open = Effect.runSync(Scope.make());
  scope = open;
  const sink = await Effect.runPromise(Scope.extend(peers.udpSink, open));
  const created = await app.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      id,
      name: id,
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
      input_url: inputUrl,
      outputs: [{ id: "out", name: "out", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
      ...more,
    }),
  });
  expect(created.status, await created.clone().text()).toBe(201);
  const started = await app.request(`/api/channels/${id}/start`, { method: "POST" });
  expect(started.status, await started.clone().text()).toBe(200);
  return { test: app, sink };
};

/** A running channel `id` taking UDP on a port of its own (answered) with one RTMP output to `url`. */
const rtmpSource = async (test: TestApp, id: string, url: string): Promise<number> => {
  const sourcePort = await freeUdpPort();
  const source = await test.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      id,
      name: id,
      rtp_ip: "127.0.0.1",
      rtp_port: sourcePort,
      outputs: [{ id: "rtmp", name: "rtmp", protocol: "rtmp", url }],
    }),
  });
  expect(source.status, await source.clone().text()).toBe(201);
  expect((await test.request(`/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
  return sourcePort;
};

/** ffmpeg publishing the test file once, in real time; resolves with its exit code and stderr. */
const ffmpegPublish = (url: string, inputOptions: ReadonlyArray<string> = [], file = media) =>
  execa(
    "ffmpeg",
    [
      ...["-hide_banner", "-loglevel", "error", ...inputOptions, "-re", "-i", file],
      ...["-c", "copy", "-f", "flv", url],
    ],
    { reject: false, timeout: 20_000 },
  );

/** Every section on `pid` (the PMT's: 0x1000) in `ts`, as hex. */
const sectionsOn = (ts: Buffer, pid = 0x1000): string[] => {
  const found: string[] = [];
  const reader = new SectionReader((section) => found.push(Buffer.from(section).toString("hex")));
  for (let at = 0; at + PACKET <= ts.length; at += PACKET) {
    if (pidAt(ts, at) !== pid) continue;
    const packet = ts.subarray(at, at + PACKET);
    reader.packet(packet, payloadOffset(packet), unitStartAt(packet), ccAt(packet));
  }
  return found;
};

/** What ffmpeg says decoding the whole of `ts` (empty: no error). */
const decodeErrors = async (ts: Buffer): Promise<string> => {
  const path = join(dir, `out-${Date.now()}.ts`);
  await writeFile(path, ts);
  const result = await execa("ffmpeg", ["-v", "error", "-i", path, "-f", "null", "-"], { reject: false });
  return `${result.exitCode === 0 ? "" : `exit ${result.exitCode} `}${result.stderr}`.trim();
};

interface InputView {
  readonly role: string;
  readonly rtmp: {
    readonly publisher: string | null;
    readonly publishes: number;
    readonly refusals: { readonly wrong_key: number; readonly busy: number };
    readonly last_refusal: { readonly reason: string; readonly message: string } | null;
  } | null;
}

const inputsOf = async (test: TestApp, id: string): Promise<ReadonlyArray<InputView>> =>
  ((await json(await test.request(`/api/channels/${id}`))).inputs as ReadonlyArray<InputView>) ?? [];

describe("RTMP ingest", () => {
  it("ffmpeg publishes four times (three reconnects): the UDP output decodes with no error and its PMT never changes", async () => {
    const port = await freeTcpPort();
    const { test, sink } = await channelWithSink("rtmp-in", `rtmp://127.0.0.1:${port}/live/${KEY}`);
    for (let round = 0; round < 4; round++) {
      const published = await ffmpegPublish(`rtmp://127.0.0.1:${port}/live/${KEY}`);
      expect(published.stderr).toBe("");
      expect(published.exitCode).toBe(0);
    }
    const ts = sink.bytes();
    expect(ts.length).toBeGreaterThan(100_000);
    expect(await decodeErrors(ts)).toBe("");
    const pmts = sectionsOn(ts);
    expect(pmts.length).toBeGreaterThan(10);
    expect(new Set(pmts).size).toBe(1);
    const inputs = await inputsOf(test, "rtmp-in");
    expect(inputs[0]?.rtmp?.publishes).toBe(4);
    const channel = JSON.stringify(await json(await test.request("/api/channels/rtmp-in")));
    expect(channel).not.toContain(KEY);
    expect(channel).toContain(`rtmp://127.0.0.1:${port}/live/****`);
  });

  it("a wrong key and a second publisher are refused in words, counted, and told as events", async () => {
    const port = await freeTcpPort();
    const { test } = await channelWithSink("rtmp-refuse", `rtmp://127.0.0.1:${port}/live?key=${KEY}`);
    const wrong = await ffmpegPublish(`rtmp://127.0.0.1:${port}/live/not-the-key`);
    expect(wrong.exitCode).not.toBe(0);
    expect(wrong.stderr).toMatch(/NetStream\.Publish\.BadName|stream key is not valid/);

    const first = ffmpegPublish(`rtmp://127.0.0.1:${port}/live/${KEY}`, ["-stream_loop", "4"]);
    await eventually("the first publisher on the input", async () =>
      (await inputsOf(test, "rtmp-refuse"))[0]?.rtmp?.publisher != null ? true : undefined,
    );
    const second = await ffmpegPublish(`rtmp://127.0.0.1:${port}/live/${KEY}`);
    expect(second.exitCode).not.toBe(0);
    expect(second.stderr).toMatch(/already in use/);
    first.kill("SIGKILL");
    await first;

    const rtmp = await eventually("both refusals in the status", async () => {
      const view = (await inputsOf(test, "rtmp-refuse"))[0]?.rtmp;
      return view?.refusals.busy === 1 ? view : undefined;
    });
    expect(rtmp.refusals).toEqual({ wrong_key: 1, busy: 1 });
    expect(rtmp.last_refusal?.message).toMatch(/already in use: another publisher/);
    const events = JSON.stringify(await json(await test.request("/api/events?channel=rtmp-refuse")));
    expect(events).toContain("rtmp_publish_refused");
    expect(events).toMatch(/the stream key is not valid for the application 'live'/);
    expect(events).not.toContain(KEY);
    expect(test.logs.join("")).not.toContain(KEY);
    const metrics = await (await test.request("/metrics")).text();
    expect(metrics).toContain(
      'distributary_rtmp_publish_refusals_total{channel="rtmp-refuse",input="primary",reason="busy"} 1',
    );
    expect(metrics).toContain(
      'distributary_rtmp_publish_refusals_total{channel="rtmp-refuse",input="primary",reason="wrong_key"} 1',
    );
    // The channel page says it too.
    const cookie = await loginSession(test, ADMIN_TOKEN);
    const page = await (
      await test.request("http://127.0.0.1/channels/rtmp-refuse", { token: null, headers: { cookie } })
    ).text();
    expect(page).toContain("RTMP inputs");
    expect(page).toMatch(/refused 127\.0\.0\.1:\d+ at [^:]+:[^:]+:[^:]+: the stream key is already in use/);
    expect(page).not.toContain(KEY);
  });

  it("RTMPS with a certificate from files: ffmpeg publishes over TLS, the output decodes, a plain RTMP client is turned away", async () => {
    const port = await freeTcpPort();
    const tls = selfSignedCa(dir);
    const { test, sink } = await channelWithSink(
      "rtmps-in",
      `rtmps://127.0.0.1:${port}/live?key=${KEY}&cert=${tls.cert}&certkey=${tls.key}`,
    );
    const published = await ffmpegPublish(`rtmps://127.0.0.1:${port}/live/${KEY}`);
    expect(published.stderr).toBe("");
    expect(published.exitCode).toBe(0);
    const ts = sink.bytes();
    expect(ts.length).toBeGreaterThan(30_000);
    expect(await decodeErrors(ts)).toBe("");
    const plain = await ffmpegPublish(`rtmp://127.0.0.1:${port}/live/${KEY}`, ["-rw_timeout", "3000000"]);
    expect(plain.exitCode).not.toBe(0);
    const channel = JSON.stringify(await json(await test.request("/api/channels/rtmps-in")));
    expect(channel).not.toContain(KEY);
    expect(channel).toContain(`rtmps://127.0.0.1:${port}/live?key=****&cert=${tls.cert}`);
  });

  it("GStreamer (rtmp2sink, then rtmpsink) publishes: the output decodes with no error", async () => {
    const port = await freeTcpPort();
    const { test, sink } = await channelWithSink("rtmp-gst", `rtmp://127.0.0.1:${port}/live/${KEY}`);
    const gst = await execa(
      "gst-launch-1.0",
      [
        ...["-q", "filesrc", `location=${media}`, "!", "tsdemux", "name=d"],
        ...["d.", "!", "queue", "!", "h264parse", "!", "flvmux", "name=m", "streamable=true"],
        ...["!", "rtmp2sink", `location=rtmp://127.0.0.1:${port}/live/${KEY}`],
        ...["d.", "!", "queue", "!", "aacparse", "!", "m."],
      ],
      { reject: false, timeout: 20_000 },
    );
    expect(gst.exitCode, gst.stderr).toBe(0);
    // And rtmpsink (librtmp), the older element.
    const legacy = await execa(
      "gst-launch-1.0",
      [
        ...["-q", "filesrc", `location=${media}`, "!", "tsdemux", "name=d"],
        ...["d.", "!", "queue", "!", "h264parse", "!", "flvmux", "name=m", "streamable=true"],
        ...["!", "rtmpsink", `location=rtmp://127.0.0.1:${port}/live/${KEY} live=1`],
        ...["d.", "!", "queue", "!", "aacparse", "!", "m."],
      ],
      { reject: false, timeout: 20_000 },
    );
    expect(legacy.exitCode, legacy.stderr).toBe(0);
    await eventually("the stream at the output", () => (sink.bytes().length > 60_000 ? true : undefined));
    expect(await decodeErrors(sink.bytes())).toBe("");
    const inputs = await inputsOf(test, "rtmp-gst");
    expect(inputs[0]?.rtmp?.publishes).toBe(2);
  });

  it("our own RTMP output publishing to our own RTMP input carries 5 cues back as SCTE-35, byte for byte", async () => {
    const port = await freeTcpPort();
    const { test, sink } = await channelWithSink("rtmp-cues-in", `rtmp://127.0.0.1:${port}/live/${KEY}`);
    const sourcePort = await rtmpSource(
      test,
      "rtmp-cues-out",
      `rtmp://127.0.0.1:${port}/live/${KEY}?cues=onadcue`,
    );

    const ts = readFileSync(longer);
    const pes = videoPes(ts);
    expect(pes.length).toBeGreaterThan(60);
    const sections = [1, 2, 3, 4, 5].map((id) => encodeSection(immediateSpliceOut(1000 + id)));
    const cued = withCues(
      ts,
      STREAM_TYPE_AAC,
      sections.map((section, i) => ({ before: (pes[10 + i * 8] ?? { packet: 0 }).packet, section })),
    );
    // A first pass connects the output; the second pass's cues are the test's.
    await Effect.runPromise(sendPaced(chunkTs(withCues(ts, STREAM_TYPE_AAC, [])), sourcePort));
    await eventually("our RTMP output publishing to our input", async () =>
      (await inputsOf(test, "rtmp-cues-in"))[0]?.rtmp?.publisher != null ? true : undefined,
    );
    await Effect.runPromise(sendPaced(chunkTs(cued), sourcePort));
    const expected = sections.map((section) => Buffer.from(section).toString("hex"));
    const got = await eventually(
      "5 cues at the output",
      () => {
        const found = sectionsOn(sink.bytes(), 0x1f4);
        return found.length >= 5 ? found : undefined;
      },
      15_000,
    );
    expect(got).toEqual(expected);
  });

  it("a publisher that goes is an input lost: failover to the backup publisher, the slate when both went, back live with a new one", async () => {
    const port = await freeTcpPort();
    const { test, sink } = await channelWithSink("rtmp-failover", `rtmp://127.0.0.1:${port}/live/${KEY}`, {
      backup_rtp_port: await freeUdpPort(),
      backup_input_url: `rtmp://127.0.0.1:${port}/live/${KEY}-backup`,
      redundancy: { failover_after_ms: 300, revert_after_ms: 0 },
      slate: { after_ms: 600 },
    });
    const view = async () => json(await test.request("/api/channels/rtmp-failover"));
    const publishing = async (role: string) =>
      ((await view()).inputs as ReadonlyArray<InputView>).find((input) => input.role === role)?.rtmp
        ?.publisher != null;
    const forever = ["-stream_loop", "-1"];
    const primary = ffmpegPublish(`rtmp://127.0.0.1:${port}/live/${KEY}`, forever);
    const backup = ffmpegPublish(`rtmp://127.0.0.1:${port}/live/${KEY}-backup`, forever);
    const events = async () =>
      ((await json(await test.request("/api/events?channel=rtmp-failover&limit=1000"))).events ??
        []) as ReadonlyArray<{
        type: string;
        to?: string;
        reason?: string;
      }>;
    try {
      await eventually("both publishers on", async () =>
        (await publishing("primary")) && (await publishing("backup")) ? true : undefined,
      );
      await eventually("the slate ready", async () =>
        ((await view()).slate as { ready: boolean } | null)?.ready ? true : undefined,
      );
      primary.kill("SIGKILL");
      await eventually("a switch to the backup publisher", async () =>
        (await events()).some((event) => event.type === "input_switched" && event.to === "backup")
          ? true
          : undefined,
      );
      backup.kill("SIGKILL");
      await eventually("the slate on air", async () =>
        ((await view()).slate as { on: boolean } | null)?.on ? true : undefined,
      );
      const atSlate = sink.bytes().length;
      const again = ffmpegPublish(`rtmp://127.0.0.1:${port}/live/${KEY}`, forever);
      try {
        await eventually("back live", async () =>
          (await events()).some((event) => event.type === "slate_off") ? true : undefined,
        );
        await eventually("the new publisher's stream at the output", () =>
          sink.bytes().length > atSlate + 30_000 ? true : undefined,
        );
      } finally {
        again.kill("SIGKILL");
        await again;
      }
    } finally {
      primary.kill("SIGKILL");
      backup.kill("SIGKILL");
      await Promise.all([primary, backup]);
    }
    const seen = (await events()).map((event) => [event.type, event.reason ?? event.to ?? null]);
    expect(seen).toEqual(
      expect.arrayContaining([
        ["input_switched", "silence"],
        ["slate_on", "input_lost"],
        ["slate_off", null],
      ]),
    );
  });

  it("two channels on one port, told apart by key: each output carries its own publisher's stream", async () => {
    const port = await freeTcpPort();
    const { test, sink } = await channelWithSink("rtmp-one", `rtmp://127.0.0.1:${port}/live/${KEY}`);
    const other = await Effect.runPromise(Scope.extend(peers.udpSink, scope as Scope.CloseableScope));
    const created = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "rtmp-two",
        name: "rtmp-two",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        input_url: `rtmp://127.0.0.1:${port}/live?key=${KEY}-two`,
        outputs: [{ id: "out", name: "out", protocol: "udp", url: `udp://127.0.0.1:${other.port}` }],
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await test.request("/api/channels/rtmp-two/start", { method: "POST" })).status).toBe(200);
    // A 1 s stream to the first, a 3 s one to the second, at once.
    const [one, two] = await Promise.all([
      ffmpegPublish(`rtmp://127.0.0.1:${port}/live/${KEY}`),
      ffmpegPublish(`rtmp://127.0.0.1:${port}/live/${KEY}-two`, [], longer),
    ]);
    expect([one.exitCode, two.exitCode]).toEqual([0, 0]);
    const seconds = async (ts: Buffer) => {
      const path = join(dir, `len-${Date.now()}.ts`);
      await writeFile(path, ts);
      const probe = await execa("ffprobe", [
        "-v",
        "error",
        "-show_entries",
        "format=duration",
        "-of",
        "csv=p=0",
        path,
      ]);
      return Number(probe.stdout);
    };
    expect(await seconds(sink.bytes())).toBeLessThan(2);
    expect(await seconds(other.bytes())).toBeGreaterThan(2.5);
    expect(await decodeErrors(other.bytes())).toBe("");
  });

  it("HEVC from our own RTMP output (Enhanced RTMP, hevc=1) arrives as H.265 in the PMT and decodes", async () => {
    const port = await freeTcpPort();
    const { test, sink } = await channelWithSink("rtmp-hevc-in", `rtmp://127.0.0.1:${port}/live/${KEY}`);
    const sourcePort = await rtmpSource(test, "rtmp-hevc-out", `rtmp://127.0.0.1:${port}/live/${KEY}?hevc=1`);
    const path = join(dir, "hevc.ts");
    bframeStream(path, 2, "libx265");
    const ts = readFileSync(path);
    await Effect.runPromise(sendPaced(chunkTs(ts), sourcePort, 0.2));
    await eventually("our RTMP output publishing to our input", async () =>
      (await inputsOf(test, "rtmp-hevc-in"))[0]?.rtmp?.publisher != null ? true : undefined,
    );
    await Effect.runPromise(sendPaced(chunkTs(ts), sourcePort, 0.2));
    await eventually("HEVC frames at the output", () => (sink.bytes().length > 20_000 ? true : undefined));
    const pmt = sectionsOn(sink.bytes())[0] ?? "";
    // stream_type 0x24 on PID 0x100.
    expect(pmt).toContain("24e100");
    const probe = join(dir, "hevc-out.ts");
    await writeFile(probe, sink.bytes());
    const codecs = await execa("ffprobe", [
      "-v",
      "error",
      "-show_entries",
      "stream=codec_name",
      "-of",
      "csv=p=0",
      probe,
    ]);
    expect([...new Set(codecs.stdout.split("\n").filter((line) => line !== ""))].sort()).toEqual([
      "aac",
      "hevc",
      "scte_35",
    ]);
    expect(await decodeErrors(sink.bytes())).toBe("");
  });

  it("the API refuses a broken RTMP input URL in words, keeps the key when the masked URL comes back, and a start says why it cannot listen", async () => {
    app = await makeTestApp();
    const bad = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        name: "bad",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        input_url: "rtmps://0.0.0.0:1936/live/abc",
      }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/an rtmps:\/\/ input needs its certificate: cert=/);
    const port = await freeTcpPort();
    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "rtmp-mask",
        name: "rtmp-mask",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        input_url: `rtmp://127.0.0.1:${port}/live?key=${KEY}`,
      }),
    });
    expect(created.status).toBe(201);
    const shown = (await json(await app.request("/api/channels/rtmp-mask"))).input_url;
    expect(shown).toBe(`rtmp://127.0.0.1:${port}/live?key=****`);
    const patched = await app.request("/api/channels/rtmp-mask", {
      method: "PATCH",
      body: JSON.stringify({ name: "renamed", input_url: shown }),
    });
    expect(patched.status, await patched.clone().text()).toBe(200);
    expect(await app.storeText()).toContain(`rtmp://127.0.0.1:${port}/live?key=${KEY}`);

    // Starting: the same app and key on a port another channel listens on, then RTMPS with no such files.
    expect((await app.request("/api/channels/rtmp-mask/start", { method: "POST" })).status).toBe(200);
    const twin = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "rtmp-twin",
        name: "rtmp-twin",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        input_url: `rtmp://127.0.0.1:${port}/live/${KEY}`,
      }),
    });
    expect(twin.status).toBe(201);
    const twinStart = await app.request("/api/channels/rtmp-twin/start", { method: "POST" });
    const twinWords = await twinStart.text();
    expect(twinWords).toMatch(
      /another channel takes the application 'live' with this stream key on port \d+/,
    );
    expect(twinWords).not.toContain(KEY);
    const tls = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "rtmps-nofile",
        name: "rtmps-nofile",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        input_url: `rtmps://127.0.0.1:${await freeTcpPort()}/live?key=${KEY}&cert=/nonexistent/a.pem&certkey=/nonexistent/a.key`,
      }),
    });
    expect(tls.status).toBe(201);
    const tlsWords = await (await app.request("/api/channels/rtmps-nofile/start", { method: "POST" })).text();
    expect(tlsWords).toMatch(
      /cannot use the certificate \/nonexistent\/a\.pem and its key \/nonexistent\/a\.key/,
    );
    expect(tlsWords).not.toContain(KEY);
  });
});
