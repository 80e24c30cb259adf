/**
 * The one end-to-end test, on each runtime the service runs on (Node.js 24, Bun, Deno, all from npm):
 * `bin/distributary --runtime R serve` as a real process with two forwarding worker threads; a channel with a
 * UDP and an SRT output (libsrt in process, through koffi) made through the REST API and moved to the other
 * worker (refused on Deno, with the reason); plain UDP TS with SCTE-35 splice_inserts streamed to it; both
 * destinations get the bytes sent, byte for byte; the cue history, the WebSocket feed and /metrics count the
 * cues and bytes; the overview page, in a real Chromium, shows the channel running; SIGTERM ends it with 0.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { eventually, freeUdpPort } from "../support/app.ts";
import { launchChromium, login, newContext, screenshot } from "../support/browser.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import * as peers from "../support/peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { type ServiceProcess, servicePort, spawnService } from "../support/service.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const TOKEN = "runtimes-test-admin-token-0123456789";
const RUNTIMES = ["node", "bun", "deno"] as const;

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

const startService = async (runtime: string, configDir: string): Promise<ServiceProcess> => {
  const service = spawnService({
    port: await servicePort(),
    before: ["--runtime", runtime],
    after: ["--host", "127.0.0.1", "--config-dir", configDir],
    // Two forwarding worker threads: the channel runs off the main thread, as in production, and can move.
    env: { ...process.env, DISTRIBUTARY_ADMIN_TOKEN: TOKEN, DISTRIBUTARY_WORKERS: "2" },
  });
  await service.ready(30_000);
  return service;
};

interface OutputView {
  readonly name: string;
  readonly state: string;
  readonly bytes_sent: number;
  readonly last_error: string | null;
}

describe.each(RUNTIMES)("the service on %s", (runtime) => {
  it("forwards UDP TS with SCTE-35 to UDP and SRT byte for byte, counts cues and bytes, shows the overview", async () => {
    const dir = await mkdtemp(join(tmpdir(), `distributary-${runtime}-`));
    const scope = Effect.runSync(Scope.make());
    let service: ServiceProcess | undefined;
    try {
      const udpSink = await Effect.runPromise(Scope.extend(peers.udpSink, scope));
      const srtSink = await Effect.runPromise(Scope.extend(peers.udpSink, scope));
      const srtPeer = await Effect.runPromise(
        Scope.extend(peers.srtListenerPeer({ forwardTo: srtSink.port }), scope),
      );
      const inputPort = await freeUdpPort();
      service = await startService(runtime, join(dir, "config"));
      const { base } = service;
      const api = (path: string, init: RequestInit = {}) =>
        fetch(`${base}${path}`, {
          ...init,
          headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        });

      const health = (await (await api("/api/health")).json()) as { runtime?: string };
      expect(health.runtime).toBe(runtime);

      const createdResponse = await api("/api/channels", {
        method: "POST",
        body: JSON.stringify({
          name: `On ${runtime}`,
          rtp_ip: "127.0.0.1",
          rtp_port: inputPort,
          outputs: [
            { name: "udp", protocol: "udp", url: `udp://127.0.0.1:${udpSink.port}` },
            { name: "srt", protocol: "srt", url: `srt://127.0.0.1:${srtPeer.port}?latency=200` },
          ],
        }),
      });
      expect(createdResponse.status).toBe(201);
      const created = (await createdResponse.json()) as { id: string };
      const id = created.id;
      expect((await api(`/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
      const channel = async () =>
        (await (await api(`/api/channels/${id}`)).json()) as {
          status: string;
          worker: number | null;
          outputs: ReadonlyArray<OutputView>;
        };
      const connected = () =>
        eventually(
          "both outputs to connect",
          async () => {
            const outputs = (await channel()).outputs;
            return outputs.every((output) => output.state === "connected") ? true : undefined;
          },
          20_000,
        );
      await connected();
      expect((await channel()).worker, JSON.stringify(await channel())).toBe(0);

      // A move to the other worker: done on Node.js and Bun; refused on Deno, in words (docs/runtimes.md).
      const moved = await api(`/api/channels/${id}/move`, {
        method: "POST",
        body: JSON.stringify({ worker: 1 }),
      });
      if (runtime === "deno") {
        expect(moved.status).toBe(501);
        expect(((await moved.json()) as { detail: string }).detail).toContain(
          "not available on Deno: Deno's node:dgram does not set SO_REUSEPORT",
        );
      } else {
        expect(moved.status).toBe(200);
        expect((await channel()).worker).toBe(1);
        await connected();
      }

      // 3 s of a 2 Mbit/s TS with an immediate splice_insert every half second, paced as an encoder sends it.
      const generator = new TsGenerator({ seed: 15, bitrate: 2_000_000 });
      const cueIds: number[] = [];
      for (let at = 250; at < 3000; at += 500) {
        cueIds.push(1500 + at);
        generator.insertScte35(encodeSection(immediateSpliceOut(1500 + at)), at);
      }
      const datagrams = chunkTs(generator.packets(Math.round((3 * 2_000_000) / 8 / 188 / 7) * 7));
      const sent = Buffer.concat(datagrams);
      await Effect.runPromise(sendPaced(datagrams, inputPort, 0.25));

      await eventually(`${sent.length} bytes at both sinks`, () =>
        udpSink.totalBytes() >= sent.length && srtSink.totalBytes() >= sent.length ? true : undefined,
      ).catch(async (error: Error) => {
        const got = udpSink.bytes();
        const firstAt = sent.indexOf(got.subarray(0, 1316));
        const now = `first received datagram is #${firstAt / 1316} of ${datagrams.length}`;
        throw new Error(`${error.message}: udp ${udpSink.totalBytes()}, srt ${srtSink.totalBytes()}; ${now}`);
      });
      expect(udpSink.bytes().equals(sent)).toBe(true);
      expect(srtSink.bytes().equals(sent)).toBe(true);

      const cues = await eventually("every cue in the history", async () => {
        const answer = (await (await api(`/api/channels/${id}/cues`)).json()) as {
          cues: ReadonlyArray<{ summary: string }>;
        };
        return answer.cues.length >= cueIds.length ? answer.cues : undefined;
      });
      expect(cues.length).toBe(cueIds.length);
      for (const cue of cues) expect(cue.summary).toMatch(/splice_insert/);

      // The WebSocket feed (the pages' transport) answers on this runtime too.
      const ws = new WebSocket(`${base.replace("http", "ws")}/ws`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const first = await new Promise<string>((resolve, reject) => {
        ws.onmessage = (message) => resolve(String(message.data));
        ws.onerror = () => reject(new Error("the WebSocket failed"));
      });
      ws.close();
      expect((JSON.parse(first) as { channels: Array<{ id: string }> }).channels.map((c) => c.id)).toEqual([
        id,
      ]);

      const metric = (text: string, name: string, labels: string) =>
        text
          .split("\n")
          .filter((line) => line.startsWith(`${name}{`) && labels.split(",").every((l) => line.includes(l)))
          .map((line) => Number(line.slice(line.lastIndexOf(" ") + 1)))
          .reduce((sum, value) => sum + value, 0);
      const outputsNow = (await channel()).outputs;
      await eventually("/metrics to count the cues and bytes", async () => {
        const text = await (await api("/metrics")).text();
        const counted =
          metric(text, "distributary_channel_scte35_cues_total", `channel="${id}"`) === cueIds.length &&
          outputsNow.every(
            (_, index) =>
              metric(
                text,
                "distributary_output_sent_bytes_total",
                `channel="${id}",output="${(outputsNow[index] as { id?: string }).id}"`,
              ) === sent.length,
          ) &&
          metric(text, "distributary_build_info", `runtime="${runtime}"`) === 1;
        return counted ? true : undefined;
      });
      // The channel's view is the read model's latest snapshot (once a second): it catches up.
      await eventually("every output's bytes_sent to count what was sent", async () =>
        (await channel()).outputs.every((output) => output.bytes_sent === sent.length) ? true : undefined,
      );

      const { context, offsite } = await newContext(browser);
      const page = await context.newPage();
      await login(page, base, TOKEN);
      const tile = page.locator(`#tile-${id}`);
      await tile.waitFor();
      expect(await tile.locator("h2").textContent()).toBe(`On ${runtime}`);
      await expect.poll(() => tile.textContent(), { timeout: 10_000 }).toMatch(/running/i);
      await screenshot(page, `runtime-${runtime}-overview`);
      await context.close();
      expect(offsite).toEqual([]);

      const stopping = Date.now();
      service.process.kill("SIGTERM");
      const end = { code: await service.exited, signal: await service.signal };
      expect(end, service.output().slice(-3000)).toEqual({ code: 0, signal: null });
      expect(Date.now() - stopping).toBeLessThan(5000);
      service = undefined;
    } finally {
      if (service !== undefined) {
        service.process.kill("SIGKILL");
        await service.exited;
      }
      await Effect.runPromise(Scope.close(scope, Exit.void));
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
