/**
 * SCTE-35 cue history survives a restart: cues seen by a running channel are written (batched, atomically) to
 * the config directory, into cues-recent.json each second and now and then into the whole, cues.json, and
 * served by /api/channels/{id}/cues after the service starts again.
 */
import { createSocket } from "node:dgram";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { layerFile } from "../../src/effects/config/store.ts";
import { eventually, freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import { chunkTs } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

let dir: string;
let app: TestApp | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "distributary-cues-"));
});
afterEach(async () => {
  await app?.close();
  app = undefined;
  await rm(dir, { recursive: true, force: true });
});

interface Cue {
  readonly at: string;
  readonly section_base64: string;
  readonly summary: string;
}

const cuesOf = async (test: TestApp, id: string) =>
  (await json(await test.request(`/api/channels/${id}/cues`))).cues as ReadonlyArray<Cue>;

describe("cue history", () => {
  it("is kept in the config directory and served again after a restart", async () => {
    const port = await freeUdpPort();
    app = await makeTestApp(layerFile(dir));
    const first = app;
    const created = await first.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ id: "cued", name: "Cued", rtp_ip: "127.0.0.1", rtp_port: port }),
    });
    expect(created.status).toBe(201);
    expect((await first.request("/api/channels/cued/start", { method: "POST" })).status).toBe(200);

    const generator = new TsGenerator({ seed: 7, bitrate: 2_000_000 });
    for (const n of [1, 2, 3]) generator.insertScte35(encodeSection(immediateSpliceOut(500 + n)), n * 100);
    const datagrams = chunkTs(generator.packets(7 * 200));
    const socket = createSocket("udp4");
    for (const datagram of datagrams) {
      await new Promise<void>((resolve) => socket.send(datagram, port, "127.0.0.1", () => resolve()));
    }
    socket.close();
    const seen = await eventually("three cues", async () => {
      const cues = await cuesOf(first, "cued");
      return cues.length === 3 ? cues : undefined;
    });
    // Written by the history's own fiber, not by the request: wait for the file. Three cues are far from the
    // size at which the whole history is written again: they are in the recent document alone.
    await eventually("cues-recent.json to hold the three cues", async () => {
      const text = await readFile(join(dir, "cues-recent.json"), "utf8").catch(() => "");
      return text.includes(seen[2]?.section_base64 ?? "?") ? true : undefined;
    });
    expect((await stat(join(dir, "cues-recent.json"))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, "cues.json"), "utf8").catch(() => "none")).toBe("none");
    await first.close();

    app = await makeTestApp(layerFile(dir));
    const again = await cuesOf(app, "cued");
    expect(again).toEqual(seen);
    expect(again.map((cue) => cue.summary)).toEqual(seen.map((cue) => cue.summary));
  });

  it("keeps the last 100 cues of a channel", async () => {
    const port = await freeUdpPort();
    app = await makeTestApp(layerFile(dir));
    const test = app;
    await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ id: "many", name: "Many", rtp_ip: "127.0.0.1", rtp_port: port }),
    });
    await test.request("/api/channels/many/start", { method: "POST" });
    const generator = new TsGenerator({ seed: 8, bitrate: 8_000_000 });
    for (let n = 0; n < 130; n += 1) generator.insertScte35(encodeSection(immediateSpliceOut(n)), 10 + n * 5);
    const socket = createSocket("udp4");
    for (const datagram of chunkTs(generator.packets(7 * 600))) {
      await new Promise<void>((resolve) => socket.send(datagram, port, "127.0.0.1", () => resolve()));
      await new Promise((resolve) => setImmediate(resolve));
    }
    socket.close();
    const total = await eventually("130 cues counted", async () => {
      const channel = await json(await test.request("/api/channels/many"));
      const cues = channel.cues as { total: number };
      return cues.total >= 130 ? cues.total : undefined;
    });
    expect(total).toBe(130);
    const kept = await cuesOf(test, "many");
    expect(kept).toHaveLength(100);

    // 130 cues of about 1 KB passed 64 KiB: the whole history was written, and what came after it is in the
    // recent document, which stays smaller than the whole.
    await eventually("cues.json to be written", async () =>
      (await readFile(join(dir, "cues.json"), "utf8").catch(() => "")).includes('"many"') ? true : undefined,
    );
    await test.close();
    app = undefined;
    const recent = (await stat(join(dir, "cues-recent.json"))).size;
    expect(recent).toBeLessThan(64 * 1024);
    expect((await stat(join(dir, "cues.json"))).mode & 0o777).toBe(0o600);
    app = await makeTestApp(layerFile(dir));
    expect(await cuesOf(app, "many")).toEqual(kept);
  });

  it("a stop between writing the whole history and emptying the recent one loads the same cues", async () => {
    const cue = (n: number) => ({
      id: `cue-${n}`,
      at: 1_000 + n,
      section_base64: `s${n}`,
      summary: `cue ${n}`,
    });
    const first = await makeTestApp(layerFile(dir));
    const channel = { id: "kept", name: "Kept", rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort() };
    const created = await first.request("/api/channels", { method: "POST", body: JSON.stringify(channel) });
    expect(created.status).toBe(201);
    await first.close();
    // The whole already holds cues 3–102 (100 kept); the recent document still holds cues 1–102, as it did
    // before the whole was written, with a channel deleted in between.
    const whole = Array.from({ length: 100 }, (_, index) => cue(index + 3));
    await writeFile(join(dir, "cues.json"), JSON.stringify({ version: 1, channels: { kept: whole } }));
    const entries = [
      ...Array.from({ length: 102 }, (_, index) => ({ channel: "kept", cue: cue(index + 1) })),
      { channel: "gone", cue: cue(500) },
      { forget: "gone" },
    ];
    await writeFile(join(dir, "cues-recent.json"), JSON.stringify({ version: 1, entries }));
    app = await makeTestApp(layerFile(dir));
    const loaded = await cuesOf(app, "kept");
    expect(loaded.map((one) => one.summary)).toEqual(whole.map((one) => one.summary));
  });

  it("a cues.json that cannot be read starts an empty history with a warning, and the service starts", async () => {
    await writeFile(join(dir, "cues.json"), "{not json", { mode: 0o600 });
    app = await makeTestApp(layerFile(dir));
    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "fresh",
        name: "Fresh",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
      }),
    });
    expect(created.status).toBe(201);
    expect(await cuesOf(app, "fresh")).toEqual([]);
    expect(app.logs.join("")).toContain("is not a cue history");
  });
});
