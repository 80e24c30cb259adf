/**
 * AV1 over Enhanced RTMP into a channel: a publisher of our own (test/support/av1-media.ts: ffmpeg 5.1 cannot
 * publish AV1 over RTMP) sends what SVT-AV1 encoded as `av01` tags to the channel's rtmp:// input, twice (a
 * reconnect), and the channel's UDP output is read back with the project's TS kit:
 * (a) every temporal unit, byte for byte the encoder's, one PES each, in order, across both publishers;
 * (b) ffmpeg decodes the IVF rebuilt from them (libdav1d) with no error;
 * (c) the PMT says what AOM's "Carriage of AV1 in MPEG-2 TS" says: stream_type 0x06, the registration
 *     descriptor `AV01` first, then the AV1 video descriptor of the stream's profile, level and chroma;
 * (d) the reconnect leaves the PMT as it was: one section, byte for byte, throughout.
 * And the other way: a channel whose TS carries AV1 so (as the RTMP input makes it) publishes it with its RTMP
 * output marked `av1=1` as Enhanced RTMP `av01` to our own RTMP input, whose output carries the encoder's
 * temporal units again, byte for byte, from a key frame on; an output not so marked is told why not.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import { execa } from "execa";
import { afterEach, describe, expect, it } from "vitest";
import { readAv1C, startsKeyFrame } from "../../src/core/flv/av1.ts";
import { FlvTsMux, RTMP_TS } from "../../src/core/flv/ts-mux.ts";
import {
  ccAt,
  PACKET,
  payloadOffset,
  pidAt,
  readPmt,
  SectionReader,
  unitStartAt,
} from "../../src/core/ts/index.ts";
import { mediaDir } from "../core/flv/media.ts";
import { eventually, freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";
import { av1Tags, encodeAv1, publishAv1, temporalUnitsIn, writeIvf } from "../support/av1-media.ts";
import * as peers from "../support/peers.ts";
import { sendPaced } from "../support/sender.ts";

const KEY = "av1-Secret-0067";
const dir = mediaDir("h5-rtmp-av1-");

let app: TestApp | undefined;
let scope: Scope.CloseableScope | undefined;
afterEach(async () => {
  if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void));
  await app?.close();
  app = undefined;
  scope = undefined;
});

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** Every section on `pid` in `ts`, as hex. */
const sectionsOn = (ts: Uint8Array, pid: number): string[] => {
  const found: string[] = [];
  const reader = new SectionReader((section) => found.push(hex(section)));
  for (let at = 0; at + PACKET <= ts.length; at += PACKET) {
    if (pidAt(ts, at) !== pid) continue;
    const packet = ts.subarray(at, at + PACKET);
    reader.packet(packet, payloadOffset(packet), unitStartAt(packet), ccAt(packet));
  }
  return found;
};

interface RtmpInputView {
  readonly rtmp: {
    readonly publishes: number;
    readonly publisher: string | null;
    readonly dropped_tags: number;
  };
}

describe("RTMP ingest of AV1 (Enhanced RTMP av01)", () => {
  it("two publishes: every temporal unit byte for byte, a clean decode, the AV1 PMT the spec says, kept across the reconnect", async () => {
    const stream = encodeAv1(dir, "source", 2);
    const tags = av1Tags(stream);
    app = await makeTestApp();
    const test = app;
    const open = Effect.runSync(Scope.make());
    scope = open;
    const sink = await Effect.runPromise(Scope.extend(peers.udpSink, open));
    const port = await Effect.runPromise(peers.freeTcpPort);
    const url = `rtmp://127.0.0.1:${port}/live/${KEY}`;
    const created = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "av1-in",
        name: "av1-in",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        input_url: url,
        outputs: [{ id: "out", name: "out", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await test.request("/api/channels/av1-in/start", { method: "POST" })).status).toBe(200);

    const inputs = async () =>
      ((await json(await test.request("/api/channels/av1-in"))).inputs as ReadonlyArray<RtmpInputView>)[0]
        ?.rtmp;
    for (let round = 1; round <= 2; round++) {
      await Effect.runPromise(publishAv1(url, tags));
      await eventually(`publisher ${round} gone`, async () => {
        const rtmp = await inputs();
        return rtmp?.publishes === round && rtmp.publisher === null ? true : undefined;
      });
    }
    const expected = [...stream.units, ...stream.units];
    const ts = await eventually("every temporal unit at the output", async () => {
      const bytes = sink.bytes();
      return temporalUnitsIn(bytes).length >= expected.length ? bytes : undefined;
    });

    // (a) The encoder's temporal units, in order, byte for byte.
    const carried = temporalUnitsIn(ts);
    expect(carried.map((unit) => hex(unit.unit))).toEqual(expected.map(hex));
    expect(new Set(carried.map((unit) => unit.streamId))).toEqual(new Set([0xbd]));
    expect((await inputs())?.dropped_tags).toBe(0);

    // (b) ffmpeg's AV1 decoder (libdav1d) takes them with no error.
    const ivf = join(dir, "rebuilt.ivf");
    writeIvf(
      ivf,
      stream.ivfHeader,
      carried.map((unit) => unit.unit),
    );
    const decoded = await execa(
      "ffmpeg",
      ["-v", "error", "-c:v", "libdav1d", "-i", ivf, "-f", "framemd5", "-"],
      { reject: false },
    );
    expect(decoded.stderr).toBe("");
    expect(decoded.exitCode).toBe(0);
    expect(decoded.stdout.split("\n").filter((line) => /^0,/.test(line)).length).toBe(expected.length);

    // (c) and (d): one PMT throughout, AV1 as the carriage says.
    const pmts = new Set(sectionsOn(ts, RTMP_TS.pmtPid));
    expect(pmts.size).toBe(1);
    const pmt = Buffer.from([...pmts][0] as string, "hex");
    const video = readPmt(pmt)?.streams.find((entry) => entry.pid === RTMP_TS.videoPid);
    expect(video?.streamType).toBe(0x06);
    const head = readAv1C(stream.av1C)?.head as Uint8Array;
    const av1Descriptor = Uint8Array.of(
      0x80,
      4,
      0x81,
      head[1] ?? 0,
      head[2] ?? 0,
      0xc0 | ((head[3] ?? 0) & 0x1f),
    );
    expect(hex(pmt.subarray((video?.start ?? 0) + 5, video?.end))).toBe(`050441563031${hex(av1Descriptor)}`);
    await writeFile(join(dir, "output.ts"), ts);
  }, 60_000);

  it("our RTMP output (av1=1) publishes a channel's AV1 to our RTMP input: the units again byte for byte; without av1=1 it says why not", async () => {
    const stream = encodeAv1(dir, "loop", 2);
    // The source channel's TS: AV1 as the RTMP input carries it (ts-mux.ts).
    const datagrams: Uint8Array[] = [];
    const mux = new FlvTsMux((datagram) => datagrams.push(Uint8Array.from(datagram)));
    mux.join(0);
    for (const tag of av1Tags(stream)) mux.tag(9, tag.timestamp, tag.body, tag.timestamp);
    app = await makeTestApp();
    const test = app;
    const open = Effect.runSync(Scope.make());
    scope = open;
    const sink = await Effect.runPromise(Scope.extend(peers.udpSink, open));
    const port = await Effect.runPromise(peers.freeTcpPort);
    const sourcePort = await freeUdpPort();
    const channel = async (body: Record<string, unknown>) => {
      const created = await test.request("/api/channels", { method: "POST", body: JSON.stringify(body) });
      expect(created.status, await created.clone().text()).toBe(201);
      expect((await test.request(`/api/channels/${body.id}/start`, { method: "POST" })).status).toBe(200);
    };
    await channel({
      id: "av1-back",
      name: "av1-back",
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
      input_url: `rtmp://127.0.0.1:${port}/live/${KEY}`,
      outputs: [{ id: "out", name: "out", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
    });
    await channel({
      id: "av1-source",
      name: "av1-source",
      rtp_ip: "127.0.0.1",
      rtp_port: sourcePort,
      outputs: [
        { id: "av1", name: "av1", protocol: "rtmp", url: `rtmp://127.0.0.1:${port}/live/${KEY}?av1=1` },
        { id: "plain", name: "plain", protocol: "rtmp", url: `rtmp://127.0.0.1:${port}/live/other` },
      ],
    });
    const back = async () =>
      ((await json(await test.request("/api/channels/av1-back"))).inputs as ReadonlyArray<RtmpInputView>)[0]
        ?.rtmp;
    // In real time: the stream's datagrams over its two seconds. A first pass connects the output.
    const perMs = datagrams.length / 2000;
    await Effect.runPromise(sendPaced(datagrams, sourcePort, perMs));
    await eventually("our RTMP output publishing to our input", async () =>
      (await back())?.publisher != null ? true : undefined,
    );
    await Effect.runPromise(sendPaced(datagrams, sourcePort, perMs));
    const last = hex(stream.units.at(-1) as Uint8Array);
    const carried = await eventually("the second pass at the output", async () => {
      const units = temporalUnitsIn(sink.bytes());
      return units.length > stream.units.length && hex(units.at(-1)?.unit ?? new Uint8Array(0)) === last
        ? units
        : undefined;
    });
    // The first pass from the key frame the output started at, then the whole second pass: the encoder's
    // units, in order, byte for byte.
    const from = 2 * stream.units.length - carried.length;
    expect(from).toBeGreaterThanOrEqual(0);
    expect(startsKeyFrame(stream.units[from] as Uint8Array)).toBe(true);
    expect(carried.map((unit) => hex(unit.unit))).toEqual(
      [...stream.units.slice(from), ...stream.units].map(hex),
    );
    expect((await back())?.dropped_tags).toBe(0);

    const source = JSON.stringify(await json(await test.request("/api/channels/av1-source")));
    expect(source).toContain("the channel's video is AV1, which needs Enhanced RTMP: add av1=1");
  }, 60_000);
});
