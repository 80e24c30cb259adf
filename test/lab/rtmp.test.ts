/**
 * An RTMP destination behind a slow link: nginx-rtmp in its own namespace, reached over a link that `tc tbf`
 * limits to 300 kbit/s for 10 s, far below the stream's ~5 Mbit/s. The RTMP output drops whole frames and counts them,
 * the service's memory stays bounded, the UDP output beside it stays byte for byte, and the RTMP output carries
 * on once the limit lifts.
 *
 *   enc ── svc ── cdn     RTMP to nginx in cdn, through the rate limit
 *          svc ── rx      UDP output (clean)
 */
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Effect } from "effect";
import { expect, it } from "vitest";
import { eventually } from "../support/app.ts";
import {
  bytesArrived,
  connectedOutput,
  outputOf,
  sendStream,
  startedChannel,
} from "../support/lab-channel.ts";
import { encodeTestStream } from "../support/media.ts";
import { describeLab, type Namespace, throughService, useLab } from "../support/netlab.ts";
import { chunkTs } from "../support/sender.ts";

const SECONDS = 30;
const LIMIT_KBIT = 300;
// The output's queue holds 4 MiB: only a stream that outruns the link by more than that in 10 s loses data.
const VIDEO_BITRATE = "5M";

/** The service's resident memory: the largest RSS among the processes in its namespace but ffmpeg. */
const serviceRss = async (svc: Namespace): Promise<number> => {
  let largest = 0;
  for (const pid of (await svc.exec("ip", ["netns", "pids", svc.name]).catch(() => "")).split(/\s+/)) {
    if (pid === "") continue;
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    if (/^Name:\s+ffmpeg/m.test(status)) continue;
    largest = Math.max(largest, Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024);
  }
  return largest;
};

describeLab("an RTMP destination behind a slow link", () => {
  const lab = useLab("rtmp");

  it("a rate limit below the bitrate for 10 s: drops counted, memory bounded, the UDP output exact, then recovery", async () => {
    const source = join(lab.dir, "source.ts");
    await Effect.runPromise(encodeTestStream(source, SECONDS, VIDEO_BITRATE));
    const ts = await readFile(source);
    const datagrams = chunkTs(ts);
    const bitrate = (ts.length * 8) / SECONDS;

    const { enc, svc, service, sink, udpOutput } = await throughService(lab);
    const cdn = await lab.namespace("cdn");
    const input = await lab.link(enc, svc);
    const slow = await lab.link(svc, cdn);

    // nginx with the RTMP module, as test/support/peers.ts runs it, listening in cdn.
    const nginxDir = join(lab.dir, "nginx");
    const recordDir = join(nginxDir, "record");
    await mkdir(recordDir, { recursive: true });
    await writeFile(
      join(nginxDir, "nginx.conf"),
      `daemon off;
master_process off;
pid ${nginxDir}/nginx.pid;
error_log ${nginxDir}/error.log info;
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
events { worker_connections 64; }
rtmp { server { listen ${slow.b.address}:1935;
  application live { live on; record all; record_path ${recordDir}; record_unique on; } } }
`,
    );
    lab.spawn(cdn, "nginx", [
      "-c",
      join(nginxDir, "nginx.conf"),
      "-p",
      nginxDir,
      "-e",
      join(nginxDir, "error.log"),
    ]);
    const recorded = async () => {
      let bytes = 0;
      for (const name of await readdir(recordDir)) bytes += (await stat(join(recordDir, name))).size;
      return bytes;
    };

    const channel = await startedChannel(service, {
      name: "RTMP",
      rtp_ip: input.b.address,
      rtp_port: 5000,
      outputs: [
        { id: "rtmp", name: "rtmp", protocol: "rtmp", url: `rtmp://${slow.b.address}:1935/live/stream` },
        udpOutput,
      ],
    });
    const sender = await sendStream(
      lab,
      enc,
      join(lab.dir, "rtmp"),
      { datagrams, perMs: bitrate / (1316 * 8 * 1000) },
      `${input.b.address}:5000`,
    );
    await connectedOutput(service, channel, "rtmp");
    await eventually(
      "nginx to record",
      async () => ((await recorded()) > 100_000 ? true : undefined),
      20_000,
    );
    const rssBefore = await serviceRss(svc);

    const limit = await lab.rate(slow.a, LIMIT_KBIT);
    const limitedAt = Date.now();
    let rssPeak = rssBefore;
    const before = await outputOf(service, channel, "rtmp");
    const recordedBefore = await recorded();
    while (Date.now() - limitedAt < 10_000) {
      rssPeak = Math.max(rssPeak, await serviceRss(svc));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const during = await outputOf(service, channel, "rtmp");
    const recordedDuring = (await recorded()) - recordedBefore;
    const shaped = await limit.dropped();
    await limit.heal();
    const healedAt = Date.now();

    const afterHeal = await eventually(
      "the RTMP output to carry on at full rate",
      async () => {
        const output = await outputOf(service, channel, "rtmp");
        return output.state === "connected" && output.bytes_sent > during.bytes_sent + 500_000
          ? output
          : undefined;
      },
      15_000,
    );
    const recoveredInMs = Date.now() - healedAt;
    await sender.done;
    await bytesArrived("the UDP output's receiver", sink.totalBytes, ts.length);
    const rssAfter = await serviceRss(svc);
    const dropped = (during.rtmp?.frames_dropped ?? 0) - (before.rtmp?.frames_dropped ?? 0);
    const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
    console.log(
      `RTMP behind ${LIMIT_KBIT} kbit/s for 10 s (stream ${Math.round(bitrate / 1000)} kbit/s): nginx recorded ` +
        `${Math.round((recordedDuring * 8) / 10_000)} kbit/s meanwhile, the output dropped ${dropped} frames, ` +
        `tbf dropped ${shaped}; the service's RSS ${mib(rssBefore)} → ` +
        `peak ${mib(rssPeak)} → ${mib(rssAfter)} MiB; full rate again ${recoveredInMs} ms after the limit lifted ` +
        `(${afterHeal.reconnects} reconnects); the UDP output byte for byte`,
    );
    expect(dropped).toBeGreaterThan(0);
    expect(rssPeak - rssBefore).toBeLessThan(64 * 1024 * 1024);
    expect(sink.bytes().equals(ts), "the UDP output, byte for byte").toBe(true);
  }, 180_000);
});
