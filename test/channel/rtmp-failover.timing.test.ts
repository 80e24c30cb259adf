/**
 * A publisher that goes is an input lost, timed on the wire: two ffmpeg publishers feed a channel's primary and
 * backup RTMP inputs (one port, two keys); the primary's process is killed, and the UDP output's longest
 * silence is the failover time and a little more, as with RTP.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, makeTestApp } from "../support/app.ts";
import { encodeTestStream } from "../support/media.ts";
import * as peers from "../support/peers.ts";

const KEY = "timing-Key-0042";
const FAILOVER_MS = 300;
let dir = "";
afterAll(async () => {
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

describe("an RTMP publisher killed", () => {
  it(`the output is silent at most ${FAILOVER_MS} ms and a little more before the backup publisher's stream`, async () => {
    dir = await mkdtemp(join(tmpdir(), "h11-rtmp-timing-"));
    const media = join(dir, "source.ts");
    await Effect.runPromise(encodeTestStream(media, 1, "600k", "320x180"));
    const app = await makeTestApp();
    const scope = Effect.runSync(Scope.make());
    try {
      const sink = await Effect.runPromise(Scope.extend(peers.udpSink, scope));
      const port = await Effect.runPromise(peers.freeTcpPort);
      const created = await app.request("/api/channels", {
        method: "POST",
        body: JSON.stringify({
          id: "rtmp-timing",
          name: "rtmp-timing",
          rtp_ip: "127.0.0.1",
          rtp_port: await freeUdpPort(),
          input_url: `rtmp://127.0.0.1:${port}/live/${KEY}`,
          backup_rtp_port: await freeUdpPort(),
          backup_input_url: `rtmp://127.0.0.1:${port}/live/${KEY}-b`,
          redundancy: { failover_after_ms: FAILOVER_MS },
          outputs: [{ id: "out", name: "out", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
        }),
      });
      expect(created.status, await created.clone().text()).toBe(201);
      expect((await app.request("/api/channels/rtmp-timing/start", { method: "POST" })).status).toBe(200);
      const publish = (key: string) =>
        execa(
          "ffmpeg",
          [
            ...["-hide_banner", "-loglevel", "error", "-stream_loop", "-1", "-re", "-i", media],
            ...["-c", "copy", "-f", "flv", `rtmp://127.0.0.1:${port}/live/${key}`],
          ],
          { reject: false },
        );
      const primary = publish(KEY);
      const backup = publish(`${KEY}-b`);
      try {
        await eventually("both publishers on", async () => {
          const inputs = (await json(await app.request("/api/channels/rtmp-timing")))
            .inputs as ReadonlyArray<{
            rtmp: { publisher: string | null } | null;
          }>;
          return inputs.length === 2 && inputs.every((input) => input.rtmp?.publisher != null)
            ? true
            : undefined;
        });
        // A second of the primary's stream, then its process ends.
        const from = sink.arrivals.length;
        await eventually("a second of output", () =>
          (sink.arrivals.at(-1) ?? 0) - (sink.arrivals[from] ?? Number.POSITIVE_INFINITY) > 1000
            ? true
            : undefined,
        );
        const killedAt = performance.now();
        primary.kill("SIGKILL");
        await eventually("a second of the backup's stream", () =>
          (sink.arrivals.at(-1) ?? 0) - killedAt > FAILOVER_MS + 1000 ? true : undefined,
        );
        const after = sink.arrivals.filter((at) => at >= killedAt - 100);
        const gaps = after.slice(1).map((at, i) => at - (after[i] as number));
        const longest = Math.max(...gaps);
        const said = `the output's longest silence after the kill: ${longest.toFixed(0)} ms`;
        expect(longest, said).toBeGreaterThanOrEqual(FAILOVER_MS - 100);
        expect(longest, said).toBeLessThanOrEqual(FAILOVER_MS + 300);
      } finally {
        primary.kill("SIGKILL");
        backup.kill("SIGKILL");
        await Promise.all([primary, backup]);
      }
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void));
      await app.close();
    }
  });
});
