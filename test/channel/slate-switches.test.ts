/**
 * An operator puts a channel on its slate and takes it off again, many times, while the input flows: a real
 * H.264 + AAC stream made by ffmpeg with its SI tables as a DVB multiplex repeats them (SDT and NIT every 2 s,
 * PAT and PMT every 100 ms), in process, a UDP sink on 127.0.0.1. The slate writes the PAT, PMT, video and audio
 * PIDs and keeps the SDT and NIT silent; on each return every PID's first packet follows on from the last one
 * sent, or comes after a flagged discontinuity: a receiver counts no continuity error on any PID, the SI ones
 * included, however far from the return the SDT's next packet falls. In the main project: it asserts no time,
 * and each switch waits for what it needs (the slate on air, its packets, the input back), so files running
 * beside it only make it slower.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Fiber, Scope } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, useTestApp } from "../support/app.ts";
import { encodeTestStream } from "../support/media.ts";
import { udpSink } from "../support/peers.ts";
import { chunkTs, DATAGRAM_BYTES, sendPaced } from "../support/sender.ts";
import { continuityErrors, packetsOf, pidOf } from "../support/ts-sections.ts";

const app = useTestApp();
const scope = Effect.runSync(Scope.make());
const dir = mkdtempSync(join(tmpdir(), "distributary-slate-switches-"));
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void));
  rmSync(dir, { recursive: true, force: true });
});

const SECONDS = 60;
const SWITCHES = 10;
const CHANNEL = "slate-switches";
const SDT = 0x11;
const NIT = 0x10;

const post = (path: string, body: unknown) =>
  app.request(path, { method: "POST", body: JSON.stringify(body) });
const slate = async () =>
  (await json(await app.request(`/api/channels/${CHANNEL}`))).slate as { on: boolean; ready: boolean } | null;

describe("slate switches while the input flows", () => {
  it("leave no unflagged continuity error on any PID, SI included", async () => {
    const file = join(dir, "in.ts");
    await Effect.runPromise(
      encodeTestStream(file, SECONDS, "1M", "640x360", [
        ...["-mpegts_flags", "nit", "-sdt_period", "2", "-nit_period", "2"],
      ]),
    );
    const input = await readFile(file);
    const sink = await Effect.runPromise(Scope.extend(udpSink, scope));
    const inputPort = await freeUdpPort();
    const created = await post("/api/channels", {
      id: CHANNEL,
      name: "Slate switches",
      rtp_ip: "127.0.0.1",
      rtp_port: inputPort,
      slate: { after_ms: 5000 },
      outputs: [{ id: "plain", name: "Plain", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
    });
    expect(created.status, JSON.stringify(await created.clone().json())).toBe(201);
    expect((await post(`/api/channels/${CHANNEL}/start`, {})).status).toBe(200);

    // At the stream's own rate, as an encoder sends, for the whole test.
    const perMs = input.length / SECONDS / DATAGRAM_BYTES / 1000;
    const sending = Effect.runFork(sendPaced(chunkTs(input), inputPort, perMs));
    await eventually("the slate ready", async () => ((await slate())?.ready ? true : undefined), 20_000);

    for (let i = 0; i < SWITCHES; i++) {
      // Asked once, even while the last return is not yet whole (a PID still waits for its bridge): the slate
      // goes on as soon as it is.
      expect((await post(`/api/channels/${CHANNEL}/slate`, { on: true })).status).toBe(200);
      await eventually(
        `the slate on air (${i})`,
        async () => ((await slate())?.on ? true : undefined),
        10_000,
      );
      const on = sink.datagrams.length;
      await eventually(`the slate's packets (${i})`, () =>
        sink.datagrams.length > on + 10 + i * 3 ? true : undefined,
      );
      expect((await post(`/api/channels/${CHANNEL}/slate`, { on: false })).status).toBe(200);
      await eventually(`the input on air again (${i})`, async () =>
        (await slate())?.on === false ? true : undefined,
      );
      // Some live between switches, a little longer each time: the returns fall at every phase of the SDT's 2 s.
      const off = sink.datagrams.length;
      await eventually("some live", () => (sink.datagrams.length > off + 40 + i * 13 ? true : undefined));
    }
    // The switches are done: the rest of the input proves nothing more.
    await Effect.runPromise(Fiber.interrupt(sending));

    const received = sink.bytes();
    const pids = new Set(packetsOf(received).map((packet) => pidOf(packet, 0)));
    expect(pids).toContain(SDT);
    expect(pids).toContain(NIT);
    expect(Object.fromEntries(continuityErrors(received))).toEqual({});
  }, 150_000);
});
