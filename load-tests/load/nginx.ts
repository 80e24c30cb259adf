/**
 * The RTMP side of a load run: one nginx-rtmp that takes every publish and keeps nothing, what it says it
 * receives, and what the service's RTMP outputs say they sent and dropped.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { started, work } from "./children.ts";
import { eventually, type Service } from "./contenders.ts";
import { RTMP_PORT, RTMP_STAT_PORT } from "./options.ts";

/** nginx-rtmp taking every publish to `live` on RTMP_PORT, with its statistics page on RTMP_STAT_PORT. */
export const startNginx = async () => {
  const dir = join(work, "nginx");
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "nginx.conf"),
    `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
events { worker_connections 1024; }
rtmp { server { listen 127.0.0.1:${RTMP_PORT}; application live { live on; } } }
http { access_log off; server { listen 127.0.0.1:${RTMP_STAT_PORT}; location /stat { rtmp_stat all; } } }
`,
  );
  const nginx = started("nginx", ["-c", join(dir, "nginx.conf"), "-p", dir, "-e", join(dir, "error.log")]);
  await eventually(
    `nginx to answer (${nginx.tail()})`,
    async () => (await fetch(`http://127.0.0.1:${RTMP_STAT_PORT}/stat`).catch(() => null))?.ok === true,
  );
  return nginx;
};

export interface NginxStat {
  /** streams publishing now */
  readonly publishing: number;
  /** bytes those streams brought in so far */
  readonly bytesIn: number;
}
/** What nginx says it receives, from its statistics page. */
export const nginxStat = async (): Promise<NginxStat> => {
  const xml = await (await fetch(`http://127.0.0.1:${RTMP_STAT_PORT}/stat`)).text();
  const streams = [...xml.matchAll(/<stream>([\s\S]*?)<\/stream>/g)].map((match) => match[1] ?? "");
  const publishing = streams.filter((stream) => stream.includes("<publishing/>"));
  const bytesIn = publishing.reduce(
    (sum, stream) => sum + Number(/<bytes_in>(\d+)</.exec(stream)?.[1] ?? 0),
    0,
  );
  return { publishing: publishing.length, bytesIn };
};

/** The frames the service's RTMP outputs sent and dropped, and the cues they sent (null when it has none). */
export const rtmpFrames = async (
  service: Service,
): Promise<{ readonly sent: number; readonly dropped: number; readonly cues: number } | null> => {
  const answer = (await (
    await fetch(`${service.base}/api/channels`, {
      headers: { authorization: `Bearer ${service.admin}` },
    })
  ).json()) as {
    channels: ReadonlyArray<{
      outputs: ReadonlyArray<{
        rtmp?: { frames_sent: number; frames_dropped: number; cues_sent: number } | null;
      }>;
    }>;
  };
  const outputs = answer.channels.flatMap((channel) => channel.outputs).filter((output) => output.rtmp);
  if (outputs.length === 0) return null;
  return {
    sent: outputs.reduce((sum, output) => sum + (output.rtmp?.frames_sent ?? 0), 0),
    dropped: outputs.reduce((sum, output) => sum + (output.rtmp?.frames_dropped ?? 0), 0),
    cues: outputs.reduce((sum, output) => sum + (output.rtmp?.cues_sent ?? 0), 0),
  };
};

/** How many of the service's RTMP outputs are connected (publishing) now. */
export const rtmpConnected = async (service: Service): Promise<number> => {
  const answer = (await (
    await fetch(`${service.base}/api/channels`, {
      headers: { authorization: `Bearer ${service.admin}` },
    })
  ).json()) as { channels: ReadonlyArray<{ outputs: ReadonlyArray<{ state: string; rtmp?: unknown }> }> };
  return answer.channels
    .flatMap((channel) => channel.outputs)
    .filter((output) => output.rtmp != null && output.state === "connected").length;
};
