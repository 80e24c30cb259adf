/**
 * A break inserted while the channel is on its slate (its input lost: the moment an operator most often calls
 * a break), in process with a real H.264 + AAC stream made by ffmpeg (no SCTE-35 PID) and a UDP sink on
 * 127.0.0.1. The input plays 8 s, stops; once the slate is on air an operator POSTs a splice_insert; the slate
 * plays on, then the input comes back and a second break is inserted live. At the sink:
 *   - the first cue arrives once, on the answer's PID (500), byte for byte as answered, while the slate plays;
 *   - every PMT after it, the slate's and the input's after the return, lists that PID as 0x86 with a good CRC;
 *   - no continuity error on any PID that no discontinuity flag excuses: the PMT's counters go on from the
 *     slate's, not from the input's it replaced;
 *   - the second cue goes on the same PID, once.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, useTestApp } from "../support/app.ts";
import { encodeTestStream } from "../support/media.ts";
import { udpSink } from "../support/peers.ts";
import { chunkTs, DATAGRAM_BYTES, sendPaced } from "../support/sender.ts";
import { continuityErrors, packetsOf, parsePmt, pidOf, sectionsOf } from "../support/ts-sections.ts";

const app = useTestApp();
const scope = Effect.runSync(Scope.make());
const dir = mkdtempSync(join(tmpdir(), "distributary-cue-slate-"));
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void));
  rmSync(dir, { recursive: true, force: true });
});

const SECONDS = 14;
const FIRST_SECONDS = 8;
const PACKET = 188;
const CHANNEL = "slate-breaks";

const post = (path: string, body: unknown) =>
  app.request(path, { method: "POST", body: JSON.stringify(body) });
const slateOn = async () =>
  ((await json(await app.request(`/api/channels/${CHANNEL}`))).slate as { on: boolean } | null)?.on;

interface Answer {
  readonly pid: number;
  readonly section_base64: string;
}

describe("a break inserted while the slate is on air", () => {
  it("reaches the output on the slate and after the return, the PMT lists its PID throughout, every counter follows on", async () => {
    const file = join(dir, "in.ts");
    await Effect.runPromise(encodeTestStream(file, SECONDS, "1M"));
    const input = await readFile(file);
    const sink = await Effect.runPromise(Scope.extend(udpSink, scope));
    const inputPort = await freeUdpPort();
    const created = await post("/api/channels", {
      id: CHANNEL,
      name: "Breaks on the slate",
      rtp_ip: "127.0.0.1",
      rtp_port: inputPort,
      slate: { after_ms: 600 },
      outputs: [{ id: "plain", name: "Plain", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
    });
    expect(created.status, JSON.stringify(await created.clone().json())).toBe(201);
    expect((await post(`/api/channels/${CHANNEL}/start`, {})).status).toBe(200);

    // At the stream's own rate, as an encoder sends: the slate reads the format and prepares its clip meanwhile.
    const perMs = input.length / SECONDS / DATAGRAM_BYTES / 1000;
    const split = Math.floor((input.length * FIRST_SECONDS) / SECONDS / DATAGRAM_BYTES) * DATAGRAM_BYTES;
    await Effect.runPromise(sendPaced(chunkTs(input.subarray(0, split)), inputPort, perMs));
    await eventually(
      "the slate on air after the input stopped",
      async () => ((await slateOn()) ? true : undefined),
      30_000,
    );
    const slateSeen = sink.datagrams.length;
    await eventually("half a second of the slate at the sink", () =>
      sink.datagrams.length > slateSeen + 20 ? true : undefined,
    );

    const askedAt = sink.datagrams.length;
    const first = await post(`/api/channels/${CHANNEL}/cues`, { command: "splice_insert", duration_s: 60 });
    const firstBody = await json(first);
    expect(first.status, JSON.stringify(firstBody)).toBe(201);
    const answer = firstBody as unknown as Answer;
    expect(answer.pid).toBe(500);
    const insertedAt = sink.datagrams.length;
    await eventually("a second more of the slate", () =>
      sink.datagrams.length > insertedAt + 40 ? true : undefined,
    );
    expect(await slateOn()).toBe(true);
    const returnedFrom = sink.datagrams.length;

    // The input comes back; the channel returns to it at its next keyframe.
    await Effect.runPromise(sendPaced(chunkTs(input.subarray(split)), inputPort, perMs));
    await eventually("the slate off again", async () => ((await slateOn()) === false ? true : undefined));
    const second = await post(`/api/channels/${CHANNEL}/cues`, { command: "splice_insert", out: false });
    const secondBody = await json(second);
    expect(second.status, JSON.stringify(secondBody)).toBe(201);
    const again = secondBody as unknown as Answer;
    // The first cue is on the same PID: wait for two (under load the second came after one was seen).
    await eventually("the second cue at the sink", () =>
      sectionsOf(sink.bytes()).filter((s) => s.pid === again.pid && s.bytes[0] === 0xfc).length >= 2
        ? true
        : undefined,
    );

    const received = sink.bytes();
    const packetIndexOf = (datagram: number) =>
      sink.datagrams.slice(0, datagram).reduce((n, d) => n + d.length / PACKET, 0);
    const sections = sectionsOf(received);
    const cues = sections.filter((s) => s.bytes[0] === 0xfc);
    // Both cues, once each, on the answer's PID, byte for byte as answered; the first while the slate played.
    expect(cues.map((s) => s.pid)).toEqual([500, 500]);
    expect(again.pid).toBe(500);
    expect(Buffer.from(cues[0]?.bytes ?? []).toString("base64")).toBe(answer.section_base64);
    expect(Buffer.from(cues[1]?.bytes ?? []).toString("base64")).toBe(again.section_base64);
    expect(cues[0]?.packet).toBeGreaterThanOrEqual(packetIndexOf(askedAt));
    expect(cues[0]?.packet).toBeLessThan(packetIndexOf(returnedFrom));

    // Every PMT from the first cue on lists PID 500 as SCTE-35, CRC good: the slate's, and the input's after.
    const pmts = sections.filter((s) => s.bytes[0] === 0x02 && s.packet > (cues[0]?.packet ?? 0));
    const onSlate = pmts.filter((s) => s.packet < packetIndexOf(returnedFrom));
    const afterReturn = pmts.filter((s) => s.packet >= packetIndexOf(returnedFrom));
    expect(onSlate.length).toBeGreaterThan(2);
    expect(afterReturn.length).toBeGreaterThan(2);
    for (const pmt of pmts) {
      const read = parsePmt(pmt.bytes);
      expect(read.crcOk).toBe(true);
      expect(read.streams).toContainEqual({ type: 0x86, pid: 500 });
    }
    // Only the cues on PID 500.
    expect(packetsOf(received).filter((packet) => pidOf(packet, 0) === 500)).toHaveLength(2);

    // No counter jumps a receiver would count, on any PID, through the slate, both cues and the return.
    expect([...continuityErrors(received)]).toEqual([]);
  });
});
