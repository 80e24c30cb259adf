/**
 * "Insert a break now" through the API, with real peers on 127.0.0.1: a real H.264 + AAC stream made with ffmpeg
 * (no SCTE-35 PID) goes to a channel's input in one continuous send; halfway an operator token POSTs a
 * splice_insert to /api/channels/{id}/cues. What each output got is read back:
 * - a plain UDP output: the section on the answer's PID, byte for byte as answered; the PMT gains that PID
 *   (stream_type 0x86, CUEI registration, CRC good; ffprobe lists it as an SCTE-35 data stream); no continuity
 *   error on any PID; every other packet byte-identical to the input's;
 * - an RTMP output (our own decoding receiver, `cues=oncuepoint`): the cue as an AMF0 onCuePoint with its event id
 *   and duration; an RTMP output on nginx-rtmp (`cues=onadcue`) named in the cue log as having sent it
 *   (nginx-rtmp 1.2 records and relays no data messages, so the message itself is read on our receiver);
 * - an HLS output: one EXT-X-DATERANGE whose SCTE35-OUT is the section's bytes;
 * - a UDP output with `policy: {"scte35": "strip"}`: no section on any PID;
 * the cue log (origin, operator, withheld) and the audit event (the token's name). Then the refusals: a stopped
 * channel (409) and bad bodies (400 naming the field).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Either, Exit, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Amf0Value } from "../../src/core/flv/amf0.ts";
import { MESSAGE } from "../../src/core/rtmp/chunks.ts";
import { bytesToHex, decodeSection } from "../../src/core/scte35/index.ts";
import { eventually, freeUdpPort, json, useTestApp } from "../support/app.ts";
import { encodeTestStream, probeMedia } from "../support/media.ts";
import * as peers from "../support/peers.ts";
import { type TestReceiver, testReceiver } from "../support/rtmp-peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import {
  continuityErrors,
  packetsOf,
  parsePmt,
  pidOf,
  pmtPidOf,
  sectionsOf,
} from "../support/ts-sections.ts";

const app = useTestApp();
const scope = Effect.runSync(Scope.make());
const inScope = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
  Effect.runPromise(Scope.extend(effect, scope));

const OPERATOR = "break desk";
const PACKET = 188;
type Json = Record<string, unknown>;

let dir = "";
let operator = "";
let viewer = "";

afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void));
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "distributary-cue-insert-"));
  for (const [role, name] of [
    ["operator", OPERATOR],
    ["viewer", "break viewer"],
  ] as const) {
    const created = await json(
      await app.request("/api/tokens", { method: "POST", body: JSON.stringify({ name, role }) }),
    );
    if (role === "operator") operator = String(created.token);
    else viewer = String(created.token);
  }
});

const post = (path: string, body: unknown, token?: string) =>
  app.request(path, {
    method: "POST",
    body: JSON.stringify(body),
    ...(token === undefined ? {} : { token }),
  });

const dataMessages = (receiver: TestReceiver): ReadonlyArray<ReadonlyArray<Amf0Value>> =>
  receiver.messages
    .filter((message) => message.type === MESSAGE.data && message.values?.[0] !== "@setDataFrame")
    .map((message) => message.values ?? []);

// --- The scenario: one stream, one break inserted halfway ---

interface Run {
  readonly input: Uint8Array;
  readonly plain: Buffer;
  readonly strip: Buffer;
  readonly answer: { status: number; body: Json };
  readonly receiver: TestReceiver;
  readonly nginxRecordings: () => Promise<ReadonlyArray<string>>;
  readonly insertedAtInputPacket: number;
}

const CHANNEL = "breaks";
let running: Promise<Run> | undefined;
/** Run once, on the first test's call; every test reads what it left (a failure fails each of them). */
const scenario = (): Promise<Run> => {
  running ??= play();
  return running;
};
const play = async (): Promise<Run> => {
  const file = join(dir, "in.ts");
  await Effect.runPromise(encodeTestStream(file, 16, "1M"));
  const input = new Uint8Array(await readFile(file));
  const [plainSink, stripSink] = [await inScope(peers.udpSink), await inScope(peers.udpSink)];
  const receiverPort = await Effect.runPromise(peers.freeTcpPort);
  const receiver = await inScope(testReceiver(receiverPort));
  const nginx = await inScope(peers.nginxRtmpServer());
  const inputPort = await freeUdpPort();
  const created = await post("/api/channels", {
    id: CHANNEL,
    name: "Breaks",
    rtp_ip: "127.0.0.1",
    rtp_port: inputPort,
    outputs: [
      { id: "plain", name: "Plain", protocol: "udp", url: `udp://127.0.0.1:${plainSink.port}` },
      {
        id: "strip",
        name: "Partner",
        protocol: "udp",
        url: `udp://127.0.0.1:${stripSink.port}`,
        policy: { scte35: "strip" },
      },
      {
        id: "amf",
        name: "AMF receiver",
        protocol: "rtmp",
        url: `rtmp://127.0.0.1:${receiverPort}/live/amf?cues=oncuepoint`,
      },
      {
        id: "nginx",
        name: "nginx",
        protocol: "rtmp",
        url: `rtmp://127.0.0.1:${nginx.port}/live/breaks?cues=onadcue`,
      },
      { id: "web", name: "Web", protocol: "hls", url: "hls://?target=2&window=30" },
      {
        id: "web-strip",
        name: "Web partner",
        protocol: "hls",
        url: "hls://?target=2&window=30",
        policy: { scte35: "strip" },
      },
    ],
  });
  expect(created.status, JSON.stringify(await created.clone().json())).toBe(201);
  expect((await post(`/api/channels/${CHANNEL}/start`, {})).status).toBe(200);

  // The whole file in one continuous send, about three times as fast as it plays.
  const sending = Effect.runPromise(sendPaced(chunkTs(input), inputPort, 0.3));
  await eventually(
    "both RTMP outputs connected and a quarter of the stream through",
    async () => {
      const outputs = (await json(await app.request(`/api/channels/${CHANNEL}`))).outputs as Json[];
      const connected = outputs.filter((o) => o.protocol === "rtmp" && o.state === "connected").length;
      return connected === 2 && plainSink.totalBytes() >= input.length / 4 ? true : undefined;
    },
    20_000,
  );
  const response = await post(
    `/api/channels/${CHANNEL}/cues`,
    { command: "splice_insert", duration_s: 30 },
    operator,
  );
  const answer = { status: response.status, body: await json(response) };
  const insertedAtInputPacket = Math.floor(plainSink.totalBytes() / PACKET);
  await sending;
  // Everything the input sent, and the packets inserted (a PMT and the cue), at the plain output.
  await eventually("the whole stream at the plain output", () =>
    plainSink.totalBytes() >= input.length + 2 * PACKET ? true : undefined,
  );
  await eventually("the whole stream at the strip output", () =>
    stripSink.totalBytes() >= input.length - 4 * PACKET ? true : undefined,
  );
  writeFileSync(join(dir, "plain.ts"), plainSink.bytes());
  return {
    input,
    plain: plainSink.bytes(),
    strip: stripSink.bytes(),
    answer,
    receiver,
    nginxRecordings: nginx.recordings,
    insertedAtInputPacket,
  };
};

const inserted = async () => {
  const { answer } = await scenario();
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return answer.body as { id: string | null; pid: number; event_id: number; section_base64: string };
};

describe("a break inserted from the API, with real peers", () => {
  it("answers 201 with the section it encoded: a splice_insert out, 30 s, on PID 500 (the input has none)", async () => {
    const body = await inserted();
    expect(body.pid).toBe(500);
    expect(typeof body.id).toBe("string");
    const decoded = decodeSection(Buffer.from(body.section_base64, "base64"));
    if (Either.isLeft(decoded))
      throw new Error(`the answer's section does not decode: ${String(decoded.left)}`);
    const cue = decoded.right;
    expect(cue.encrypted_packet).toBe(false);
    if (cue.encrypted_packet || cue.splice_command_type !== 0x05)
      throw new Error("not a clear splice_insert");
    expect(cue.splice_command).toMatchObject({
      splice_event_id: body.event_id,
      out_of_network_indicator: true,
      splice_immediate_flag: true,
      break_duration: { auto_return: true, duration: 30 * 90_000 },
    });
  }, 120_000);

  it("reaches the plain UDP output byte-exact: one section on the answer's PID, equal to section_base64", async () => {
    const body = await inserted();
    const { plain } = await scenario();
    const onPid = sectionsOf(plain).filter((section) => section.pid === body.pid);
    expect(onPid).toHaveLength(1);
    expect(Buffer.from(onPid[0]?.bytes ?? []).toString("base64")).toBe(body.section_base64);
    // And no other SCTE-35 section anywhere.
    expect(sectionsOf(plain).filter((section) => section.bytes[0] === 0xfc)).toHaveLength(1);
  }, 120_000);

  it("reaches the RTMP receiver as an onCuePoint with its event id and duration; the nginx output sent it as onAdCue", async () => {
    const body = await inserted();
    const { receiver, nginxRecordings } = await scenario();
    const messages = await eventually("the cue at the RTMP receiver", () => {
      const found = dataMessages(receiver);
      return found.length > 0 ? found : undefined;
    });
    expect(messages).toHaveLength(1);
    const [name, point] = messages[0] ?? [];
    expect(name).toBe("onCuePoint");
    expect(point).toMatchObject({
      name: "scte35",
      type: "event",
      parameters: {
        messageType: "SpliceInsert",
        splice_command_type: 5,
        splice_event_id: body.event_id,
        out_of_network_indicator: true,
        splice_immediate: true,
        break_duration: 30,
        auto_return: true,
      },
    });
    // The cue log says which RTMP outputs carried it, in which shape.
    const cue = await eventually("the cue log to name both RTMP outputs", async () => {
      const cues = (await json(await app.request(`/api/channels/${CHANNEL}/cues`))).cues as Json[];
      const found = cues.find((c) => c.section_base64 === body.section_base64);
      return ((found?.rtmp as Json[] | undefined)?.length ?? 0) >= 2 ? found : undefined;
    });
    expect(new Set(cue.rtmp as Json[])).toEqual(
      new Set([
        { output: "amf", name: "AMF receiver", format: "oncuepoint" },
        { output: "nginx", name: "nginx", format: "onadcue" },
      ]),
    );
    // nginx-rtmp got the stream itself: its recording holds the video and the audio.
    const recording = await eventually("nginx's recording", async () => (await nginxRecordings())[0]);
    const probed = await eventually("ffprobe to read nginx's recording", () => probeMedia(recording));
    expect(probed.codecs).toEqual(["aac", "h264"]);
  }, 120_000);

  it("reaches the HLS output as one EXT-X-DATERANGE whose SCTE35-OUT is the section", async () => {
    const body = await inserted();
    await scenario();
    const playlist = await eventually("a DATERANGE in the playlist", async () => {
      const response = await app.request(`/hls/${CHANNEL}/web/index.m3u8`);
      const text = response.status === 200 ? await response.text() : "";
      return text.includes("#EXT-X-DATERANGE:") ? text : undefined;
    });
    const ranges = playlist.split("\n").filter((line) => line.startsWith("#EXT-X-DATERANGE:"));
    expect(ranges).toHaveLength(1);
    const hex = bytesToHex(Buffer.from(body.section_base64, "base64"));
    expect(ranges[0]).toContain(`SCTE35-OUT=0x${hex}`);
    expect(ranges[0]).toMatch(/ID="[^"]+",START-DATE="\d{4}-[^"]+Z"/);
    // The HLS output that strips cues cut as many segments of the same stream, and wrote no DATERANGE.
    const stripped = await (await app.request(`/hls/${CHANNEL}/web-strip/index.m3u8`)).text();
    const segments = (text: string) => text.split("\n").filter((line) => line.startsWith("#EXTINF:")).length;
    expect(segments(stripped)).toBeGreaterThan(0);
    expect(Math.abs(segments(stripped) - segments(playlist))).toBeLessThanOrEqual(1);
    expect(stripped).not.toContain("#EXT-X-DATERANGE");
  }, 120_000);

  it('gets nothing to the output with {"scte35": "strip"}: no section on any PID, no packet on the cue PID', async () => {
    const body = await inserted();
    const { strip, input } = await scenario();
    expect(strip.length).toBeGreaterThan(input.length / 2);
    expect(sectionsOf(strip).filter((section) => section.bytes[0] === 0xfc)).toEqual([]);
    expect(packetsOf(strip).filter((packet) => pidOf(packet, 0) === body.pid)).toEqual([]);
  }, 120_000);

  it("is in the cue log with origin operator, the operator's name and the strip output withheld; the audit names the token", async () => {
    const body = await inserted();
    await scenario();
    const cues = (await json(await app.request(`/api/channels/${CHANNEL}/cues`))).cues as Json[];
    const operatorCues = cues.filter((cue) => cue.origin === "operator");
    expect(operatorCues).toHaveLength(1);
    expect(operatorCues[0]).toMatchObject({
      id: body.id,
      pid: body.pid,
      section_base64: body.section_base64,
      origin: "operator",
      by: OPERATOR,
      withheld: [
        { output: "strip", name: "Partner", rule: "strip" },
        { output: "web-strip", name: "Web partner", rule: "strip" },
      ],
    });
    const audit = ((await json(await app.request("/api/events?type=api_change"))).events as Json[]).filter(
      (event) => event.action === "cue.insert",
    );
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: OPERATOR, action: "cue.insert" });
    expect(String(audit[0]?.detail)).toContain(String(body.event_id));
  }, 120_000);
});

describe("the operator's cue limit", () => {
  it("takes 10 cues a minute on a channel, then answers 429 with Retry-After, in words, and inserts nothing", async () => {
    await inserted();
    const logged = async () =>
      ((await json(await app.request(`/api/channels/${CHANNEL}/cues`))).cues as Json[]).filter(
        (cue) => cue.origin === "operator",
      ).length;
    // The scenario's cue was the first of the minute: nine more go.
    for (let n = 0; n < 9; n++) {
      const response = await post(`/api/channels/${CHANNEL}/cues`, { command: "time_signal" }, operator);
      expect(response.status, JSON.stringify(await json(response.clone()))).toBe(201);
    }
    expect(await logged()).toBe(10);
    const refused = await post(`/api/channels/${CHANNEL}/cues`, { command: "time_signal" }, operator);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    const wait = Number(refused.headers.get("retry-after"));
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(60);
    expect(String((await json(refused)).detail)).toMatch(
      new RegExp(
        `has had 10 operator cues in the last minute, .*nothing was inserted: the next may go in ${wait} s`,
      ),
    );
    expect(await logged()).toBe(10);
  }, 120_000);
});

describe("a policy that names the running stream's PMT", () => {
  it("is refused in words on its field, dropped or remapped, and the output keeps its policy", async () => {
    const { input } = await scenario();
    const pmt = pmtPidOf(input);
    const patch = (policy: unknown) =>
      app.request(`/api/channels/${CHANNEL}/outputs/plain`, {
        method: "PATCH",
        body: JSON.stringify({ policy }),
        token: operator,
      });
    const dropped = await patch({ pids: { drop: [pmt] } });
    expect(dropped.status).toBe(400);
    expect((await json(dropped)).errors).toEqual([
      {
        field: "policy.pids.drop[0]",
        message: `PID ${pmt} is programme 1's PMT, which always stays: drop its streams, or keep another programme with "program"`,
      },
    ]);
    const remapped = await patch({ remap: { [String(pmt)]: 7000 } });
    expect(remapped.status).toBe(400);
    expect((await json(remapped)).errors).toEqual([
      {
        field: "policy.remap",
        message: `PID ${pmt} is programme 1's PMT, which is never remapped: remap its streams instead`,
      },
    ]);
    const plain = ((await json(await app.request(`/api/channels/${CHANNEL}`))).outputs as Json[]).find(
      (output) => output.id === "plain",
    );
    expect(plain?.policy).toBeNull();
  }, 120_000);
});

describe("into an input with no SCTE-35 PID", () => {
  it("the output's PMT gains the PID (stream_type 0x86, CUEI registration, CRC good) before the cue, and ffprobe lists it", async () => {
    const body = await inserted();
    const { plain, input } = await scenario();
    const pmtPid = pmtPidOf(plain);
    expect(pmtPid).toBe(pmtPidOf(input));
    // The input's PMT: no SCTE-35 entry, no registration.
    const inputPmts = sectionsOf(input).filter((s) => s.pid === pmtPid && s.bytes[0] === 0x02);
    expect(inputPmts.length).toBeGreaterThan(0);
    for (const section of inputPmts)
      expect(parsePmt(section.bytes).streams.map((s) => s.type)).not.toContain(0x86);

    const pmts = sectionsOf(plain).filter((s) => s.pid === pmtPid && s.bytes[0] === 0x02);
    const changed = pmts.filter((s) => parsePmt(s.bytes).streams.some((stream) => stream.type === 0x86));
    expect(changed.length).toBeGreaterThan(1);
    // From the first changed PMT on, every PMT is the changed one.
    const first = pmts.findIndex((s) => parsePmt(s.bytes).streams.some((stream) => stream.type === 0x86));
    expect(pmts.slice(first)).toEqual(changed);
    const before = parsePmt(inputPmts[0]?.bytes ?? new Uint8Array());
    for (const section of changed) {
      const pmt = parsePmt(section.bytes);
      expect(pmt.crcOk).toBe(true);
      expect(pmt.streams).toEqual([...before.streams, { type: 0x86, pid: body.pid }]);
      expect(
        pmt.descriptors.some((d) => d.tag === 0x05 && Buffer.from(d.body).toString("latin1") === "CUEI"),
      ).toBe(true);
      expect(pmt.version).not.toBe(before.version);
    }
    // The receiver learns the PID before the cue arrives on it.
    const cue = sectionsOf(plain).find((s) => s.pid === body.pid);
    expect(cue).toBeDefined();
    expect(changed[0]?.packet ?? Number.POSITIVE_INFINITY).toBeLessThan(cue?.packet ?? -1);

    const probe = execFileSync(
      "ffprobe",
      [
        "-v",
        "error",
        "-probesize",
        "100M",
        "-analyzeduration",
        "100M",
        "-show_streams",
        "-of",
        "json",
        join(dir, "plain.ts"),
      ],
      { encoding: "utf8" },
    );
    const streams = (JSON.parse(probe) as { streams: Json[] }).streams;
    const data = streams.find((stream) => stream.id === `0x${body.pid.toString(16)}`);
    expect(data, JSON.stringify(streams)).toBeDefined();
    expect(data?.codec_type).toBe("data");
    expect(data?.codec_tag === "0x0086" || data?.codec_name === "scte_35", JSON.stringify(data)).toBe(true);
  }, 120_000);

  it("no continuity error on any PID at the receiver, and every packet not on the PMT PID is the input's, byte for byte", async () => {
    const body = await inserted();
    const { plain, input, insertedAtInputPacket } = await scenario();
    expect([...continuityErrors(input)]).toEqual([]);
    expect([...continuityErrors(plain)]).toEqual([]);
    const pmtPid = pmtPidOf(input);
    const others = (ts: Uint8Array) =>
      packetsOf(ts).filter((packet) => pidOf(packet, 0) !== pmtPid && pidOf(packet, 0) !== body.pid);
    const sent = others(input);
    const got = others(plain);
    expect(got.length).toBe(sent.length);
    const firstDifferent = got.findIndex(
      (packet, i) => Buffer.compare(packet, sent[i] ?? new Uint8Array()) !== 0,
    );
    expect(firstDifferent).toBe(-1);
    // The input's PMT packets (the changed PMT still fits in as many) and the one sent ahead of the cue; on the
    // cue's PID, the cue's one packet: nothing else was added or lost.
    const pmtCount = (ts: Uint8Array) => packetsOf(ts).filter((packet) => pidOf(packet, 0) === pmtPid).length;
    expect(pmtCount(plain)).toBe(pmtCount(input) + 1);
    expect(packetsOf(plain).filter((packet) => pidOf(packet, 0) === body.pid)).toHaveLength(1);
    expect(plain.length).toBe(input.length + 2 * PACKET);
    // The insert came mid-stream: input packets went out both before and after it.
    expect(insertedAtInputPacket).toBeGreaterThan(0);
    expect(insertedAtInputPacket).toBeLessThan(input.length / PACKET);
  }, 120_000);
});

describe("refusals in words", () => {
  it("a stopped channel: 409 saying it is not running", async () => {
    const created = await post("/api/channels", {
      id: "idle",
      name: "Idle",
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
    });
    expect(created.status).toBe(201);
    const refused = await post(
      "/api/channels/idle/cues",
      { command: "splice_insert", duration_s: 30 },
      operator,
    );
    expect(refused.status).toBe(409);
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    expect(String((await json(refused)).detail)).toContain("not running");
    const cues = (await json(await app.request("/api/channels/idle/cues"))).cues as Json[];
    expect(cues).toEqual([]);
    const audit = ((await json(await app.request("/api/events?type=api_change"))).events as Json[]).filter(
      (event) => event.action === "cue.insert" && String(event.detail).includes("channel idle"),
    );
    expect(audit).toEqual([]);
  });

  it("a bad body: 400 problem+json naming the field", async () => {
    const cases: ReadonlyArray<{ body: Json; field: string; says?: string }> = [
      { body: { command: "splice_insert", duration_s: 0 }, field: "duration_s", says: "0.1" },
      { body: { command: "splice_insert", duration_s: 90_000 }, field: "duration_s", says: "86400" },
      { body: { command: "time_signal", duration_s: 60, out: false }, field: "out", says: "splice_insert" },
      { body: { command: "splice_insert", segmentation_type: 52 }, field: "segmentation_type" },
      { body: { command: "splice_null" }, field: "command" },
      { body: { command: "splice_insert", colour: "red" }, field: "colour" },
    ];
    for (const { body, field, says } of cases) {
      const response = await post("/api/channels/idle/cues", body, operator);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      const problem = await json(response);
      const errors = (problem.errors ?? []) as Array<{ field: string; message: string }>;
      const named = errors.find((issue) => issue.field === field);
      expect(named, `${JSON.stringify(body)}: ${JSON.stringify(problem)}`).toBeDefined();
      if (says !== undefined) expect(named?.message).toContain(says);
    }
  });

  it("a viewer may not insert one", async () => {
    const refused = await post(
      "/api/channels/idle/cues",
      { command: "splice_insert", duration_s: 30 },
      viewer,
    );
    expect(refused.status).toBe(403);
  });
});
