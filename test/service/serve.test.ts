/**
 * `bin/distributary serve` as a real process with a temp config dir: killed with SIGKILL mid-stream it comes
 * back with the same channels and outputs streaming, with the launcher's malloc settings; SIGTERM stops it with
 * exit 0 and no child left behind.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort, type UdpSink, udpSink, udpSource } from "../support/app.ts";
import { type ServiceProcess, servicePort, spawnService } from "../support/service.ts";

const TOKEN = "serve-test-admin-token-0123456789";

let dir: string;
let httpPort: number;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "distributary-serve-"));
  httpPort = await servicePort();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const startServer = async (): Promise<ServiceProcess> => {
  const server = spawnService({
    port: httpPort,
    after: ["--host", "127.0.0.1", "--config-dir", join(dir, "config")],
    env: { ...process.env, DISTRIBUTARY_ADMIN_TOKEN: TOKEN },
  });
  await server.ready();
  return server;
};

const api = (path: string, init: RequestInit = {}) =>
  fetch(`http://127.0.0.1:${httpPort}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
  });

const childrenOf = async (pid: number): Promise<number[]> => {
  const children: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // Field 4 of /proc/<pid>/stat is the parent pid; the command name before it may hold spaces.
    const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (parent === pid) children.push(Number(entry));
  }
  return children;
};
const alive = async (pid: number) => {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return stat !== "" && !stat.includes(") Z ");
};

describe("serve", () => {
  it("resumes channels and outputs after SIGKILL, and exits cleanly on SIGTERM", async () => {
    const inputPort = await freeUdpPort();
    const sink: UdpSink = await udpSink();
    // An RTSP server that takes the connection and never answers: the RTSP output's ffmpeg stays up waiting,
    // a child for the reaping check (RTMP and SRT outputs run in process and have none).
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const rtspPort = (silent.address() as AddressInfo).port;
    const source = udpSource(inputPort);
    try {
      const first = await startServer();
      const created = (await (
        await api("/api/channels", {
          method: "POST",
          body: JSON.stringify({
            name: "Resumed",
            rtp_ip: "127.0.0.1",
            rtp_port: inputPort,
            outputs: [{ name: "sink", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
          }),
        })
      ).json()) as { id: string };
      expect((await api(`/api/channels/${created.id}/start`, { method: "POST" })).status).toBe(200);
      await eventually("the sink to receive", () => (sink.bytes() > 0 ? true : undefined));

      first.process.kill("SIGKILL");
      await first.exited;
      const afterKill = sink.bytes();

      const second = await startServer();
      await eventually("the sink to receive after the restart", () =>
        sink.bytes() > afterKill ? true : undefined,
      );
      const channel = (await (await api(`/api/channels/${created.id}`)).json()) as {
        status: string;
        outputs: Array<{ name: string }>;
      };
      expect(channel.status).toBe("running");
      expect(channel.outputs.map((output) => output.name)).toEqual(["sink"]);

      // Added only now, as SIGKILL would orphan it.
      const rtsp = await api(`/api/channels/${created.id}/outputs`, {
        method: "POST",
        body: JSON.stringify({ name: "rtsp", protocol: "rtsp", url: `rtsp://127.0.0.1:${rtspPort}/live` }),
      });
      expect(rtsp.status, await rtsp.clone().text()).toBe(201);

      const pid = second.process.pid ?? 0;
      // The launcher's malloc settings (fewer arenas, large blocks unmapped when freed) reach the service.
      const environment = (await readFile(`/proc/${pid}/environ`, "utf8")).split("\0");
      expect(environment).toEqual(
        expect.arrayContaining(["MALLOC_ARENA_MAX=2", "MALLOC_MMAP_THRESHOLD_=131072"]),
      );
      const children = await eventually("ffmpeg to run", async () => {
        const found = await childrenOf(pid);
        return found.length > 0 ? found : undefined;
      });
      const signalled = Date.now();
      second.process.kill("SIGTERM");
      expect(await second.exited).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(5000);
      for (const child of children) expect(await alive(child)).toBe(false);
      // Stopping the service is not stopping the channel: it is still meant to run.
      const stored = JSON.parse(await readFile(join(dir, "config", "channels.json"), "utf8"));
      expect(stored.channels[0].desired).toBe("running");
    } finally {
      await source.close();
      await sink.close();
      silent.close();
    }
  });

  it("records under <config-dir>/recordings unless told otherwise, and nowhere else", async () => {
    const inputPort = await freeUdpPort();
    const source = udpSource(inputPort);
    const server = await startServer();
    try {
      const recordings = join(dir, "config", "recordings");
      const elsewhere = await api("/api/channels", {
        method: "POST",
        body: JSON.stringify({
          name: "Elsewhere",
          rtp_ip: "127.0.0.1",
          rtp_port: inputPort,
          outputs: [{ protocol: "file", url: `file://${dir}/elsewhere` }],
        }),
      });
      expect(elsewhere.status).toBe(400);
      expect(((await elsewhere.json()) as { detail: string }).detail).toContain(
        `outside the recordings directory ${recordings}`,
      );
      const created = (await (
        await api("/api/channels", {
          method: "POST",
          body: JSON.stringify({
            name: "Recorded",
            rtp_ip: "127.0.0.1",
            rtp_port: inputPort,
            outputs: [{ id: "rec", protocol: "file", url: `file://${recordings}/news?rotate=60` }],
          }),
        })
      ).json()) as { id: string };
      expect((await api(`/api/channels/${created.id}/start`, { method: "POST" })).status).toBe(200);
      const listed = await eventually("a recording with bytes in it", async () => {
        const answer = (await (await api(`/api/channels/${created.id}/outputs/rec/recordings`)).json()) as {
          recordings: Array<{ name: string; bytes: number }>;
        };
        return answer.recordings.find((recording) => recording.bytes > 0);
      });
      expect(await readdir(join(recordings, "news"))).toEqual([listed.name]);
      expect((await api(`/api/channels/${created.id}`, { method: "DELETE" })).status).toBe(200);
    } finally {
      server.process.kill("SIGTERM");
      await server.exited;
      await source.close();
    }
  });
});
