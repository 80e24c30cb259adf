/**
 * Secrets by reference checked at the peer (acceptance 3), by real services (bin/distributary serve on
 * 127.0.0.1):
 * - an SRT passphrase, on a two-node fleet (one PostgreSQL): one document, applied through node a, gives a
 *   channel on each node an SRT output whose passphrase is a reference. Node a resolves it from its environment
 *   to the passphrase srt-live-transmit listens with, node b from its secrets directory to another value: the
 *   peer forwards a's stream and refuses b's. The plan, the export, the database's rows, both nodes' logs,
 *   events, output views and pages show the reference and never a value;
 * - an RTMP stream key, on one box: two outputs to nginx-rtmp, whose `on_publish` lets in only the key, one
 *   with the key by reference and one with another reference: the stream is recorded under the key, the other
 *   is refused; nothing the service shows has either value.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json } from "../support/app.ts";
import { ref } from "../support/config-code.ts";
import { FLEET_ADMIN, useFleetNodes } from "../support/fleet-nodes.ts";
import { type HttpReceiver, httpReceiver } from "../support/http-receiver.ts";
import {
  nginxRtmpServer,
  type RtmpServer,
  srtListenerPeer,
  type UdpSink,
  udpSink,
} from "../support/peers.ts";
import { spawnService } from "../support/service.ts";

const PASSPHRASE = "h7-srt-right-pass-4Tq9";
const OTHER_PASSPHRASE = "h7-srt-other-pass-8Wm2";
const KEY = "h7-rtmp-right-key-Jc5r";
const OTHER_KEY = "h7-rtmp-other-key-Ux7n";
const VALUES = [PASSPHRASE, OTHER_PASSPHRASE, KEY, OTHER_KEY];

const dir = mkdtempSync(join(tmpdir(), "h7-config-peers-"));
const secretsDir = join(dir, "secrets");
mkdirSync(secretsDir);
writeFileSync(join(secretsDir, "H7_SRT"), `${OTHER_PASSPHRASE}\n`);
const ENV: Record<string, NodeJS.ProcessEnv> = {
  a: { DISTRIBUTARY_SECRET_H7_SRT: PASSPHRASE },
  b: { DISTRIBUTARY_SECRETS_DIR: secretsDir },
};
const NODES = ["a", "b"] as const;
/** Each node's channel: its input port and its SRT peer's port. */
const PORTS = { a: { input: 27110, srt: 27120 }, b: { input: 27111, srt: 27121 } } as const;
const RTMP_PORT = 27130;
const RTMP_INPUT = 27112;
const BOX_PORT = 27005;

const fleet = useFleetNodes({
  dbPort: 27052,
  ports: { a: 27003, b: 27004 },
  env: { DISTRIBUTARY_THUMBNAILS: "off" },
});
const { api, until } = fleet;

const scope = Effect.runSync(Scope.make());
const inScope = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
  Effect.runPromise(Scope.extend(effect, scope));
const sources: ChildProcess[] = [];
let hook: HttpReceiver;
let nginx: RtmpServer;
const sinks: Partial<Record<(typeof NODES)[number], UdpSink>> = {};

/** Real H.264 and AAC in MPEG-TS, as an encoder sends it, live to a channel's input. */
const liveSource = (port: number) => {
  const child = spawn(
    "ffmpeg",
    [
      ...["-hide_banner", "-loglevel", "error", "-re"],
      ...["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"],
      ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"],
      ...[
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-g",
        "25",
        "-pix_fmt",
        "yuv420p",
      ],
      ...["-b:v", "400k", "-c:a", "aac", "-f", "mpegts", `udp://127.0.0.1:${port}?pkt_size=1316`],
    ],
    { stdio: "ignore" },
  );
  sources.push(child);
};

beforeAll(async () => {
  // nginx-rtmp asks before each publish: only the right key is let in.
  hook = await httpReceiver((_index, request) => ({
    status: new URLSearchParams(request.body).get("name") === KEY ? 200 : 403,
  }));
  nginx = await inScope(nginxRtmpServer({ port: RTMP_PORT, onPublish: `${hook.url}/publish` }));
  for (const node of NODES) {
    const sink = await inScope(udpSink);
    sinks[node] = sink;
    await inScope(srtListenerPeer({ forwardTo: sink.port, passphrase: PASSPHRASE, port: PORTS[node].srt }));
  }
  await Promise.all(NODES.map((node) => fleet.start(node, ENV[node])));
  for (const node of NODES) liveSource(PORTS[node].input);
  // The one box's RTMP channel gets its stream once it exists (an encoder's first frames are its keyframe).
}, 90_000);
afterAll(async () => {
  for (const child of sources) child.kill("SIGKILL");
  await Effect.runPromise(Scope.close(scope, Exit.void));
  await hook?.close();
  rmSync(dir, { recursive: true, force: true });
});

const channel = (node: "a" | "b") => `  on-${node}:
    name: On ${node}
    desired: running
    nodes: [${node}]
    rtp_ip: 127.0.0.1
    rtp_port: ${PORTS[node].input}
    outputs:
      srt:
        name: SRT peer
        protocol: srt
        url: "srt://127.0.0.1:${PORTS[node].srt}?mode=caller&passphrase=${ref("H7_SRT")}"
`;
const DOCUMENT = `version: 1\nchannels:\n${channel("a")}${channel("b")}`;

/** One box's channel with two RTMP outputs: the key by one reference, and by another. */
const RTMP_DOCUMENT = `version: 1
channels:
  rtmp-out:
    name: RTMP out
    desired: running
    rtp_ip: 127.0.0.1
    rtp_port: ${RTMP_INPUT}
    outputs:
      right: { name: Right key, protocol: rtmp, url: "rtmp://127.0.0.1:${RTMP_PORT}/live/${ref("H7_RTMP")}" }
      other: { name: Other key, protocol: rtmp, url: "rtmp://127.0.0.1:${RTMP_PORT}/live/${ref("H7_RTMP_OTHER")}" }
`;

interface OutputView {
  state: string;
  last_error: string | null;
  bytes_sent: number;
}
const outputOf = async (node: string, path: string) =>
  (await json(await api(node, `/api/channels/${path}`))) as unknown as OutputView;
const publishedNames = () => hook.received.map((request) => new URLSearchParams(request.body).get("name"));

/** The pages, events, output views and log of a service, each as text, for a search for values. */
const everywhere = async (
  where: string,
  base: string,
  log: string,
  views: ReadonlyArray<string>,
  pages: ReadonlyArray<string>,
): Promise<Array<[string, string]>> => {
  const request = (path: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${FLEET_ADMIN}`, ...(init.headers as Record<string, string>) },
    });
  const login = await fetch(`${base}/login`, {
    method: "POST",
    headers: { origin: base, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: FLEET_ADMIN, next: "/" }).toString(),
    redirect: "manual",
  });
  expect(login.status).toBe(303);
  const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  const shown: Array<[string, string]> = [[`${where}'s log`, log]];
  for (const page of pages) {
    const response = await fetch(`${base}${page}`, { headers: { cookie } });
    expect(response.status, `${where} ${page}`).toBe(200);
    shown.push([`${where}'s page ${page}`, await response.text()]);
  }
  shown.push([`${where}'s events`, await (await request("/api/events?limit=1000")).text()]);
  for (const view of views) shown.push([`${where}'s ${view}`, await (await request(view)).text()]);
  return shown;
};
const expectNoValue = (shown: ReadonlyArray<[string, string]>) => {
  for (const [where, text] of shown) for (const value of VALUES) expect(text, where).not.toContain(value);
};

describe("secrets by reference, checked at the peer", () => {
  it("an SRT passphrase: srt-live-transmit takes a's value, refuses b's; no value is shown anywhere", async () => {
    const planned = await api("a", "/api/config/plan", {
      method: "POST",
      body: JSON.stringify({ document: DOCUMENT, file: "peers.yaml" }),
    });
    expect(planned.status).toBe(200);
    const plan = await planned.text();
    expect(plan).toContain(`passphrase=${ref("H7_SRT")}`);
    const applied = await api("a", "/api/config/apply", {
      method: "POST",
      body: JSON.stringify({ plan_id: (JSON.parse(plan) as { plan_id: string }).plan_id }),
    });
    expect(applied.status, await applied.clone().text()).toBe(200);

    // Node a's value is the peer's: the stream arrives. Node b's is not: the peer refuses it, nothing arrives.
    await until(
      "srt-live-transmit to forward a's stream",
      async () => (sinks.a?.totalBytes() ?? 0) > 188 * 500,
      20_000,
    );
    expect((await outputOf("a", "on-a/outputs/srt")).state).toBe("connected");
    await until(
      "b's output to be refused",
      async () => (await outputOf("b", "on-b/outputs/srt")).last_error !== null,
      20_000,
    );
    expect((await outputOf("b", "on-b/outputs/srt")).last_error).toBe(
      `the SRT peer at 127.0.0.1:${PORTS.b.srt} rejected the passphrase`,
    );
    expect(sinks.b?.totalBytes()).toBe(0);

    const exported = await (await api("b", "/api/config/document?format=yaml")).text();
    expect(exported).toContain(`passphrase=${ref("H7_SRT")}`);
    const rows = (await fleet.pg().admin<{ body: string }>("select body::text as body from channels"))
      .map((row) => row.body)
      .join("\n");
    expect(rows).toContain(ref("H7_SRT"));
    const shown: Array<[string, string]> = [
      ["the plan", plan],
      ["the export", exported],
      ["the database's rows", rows],
    ];
    for (const node of NODES)
      shown.push(
        ...(await everywhere(
          node,
          fleet.base(node),
          fleet.process(node).output(),
          ["/api/channels/on-a/outputs/srt", "/api/channels/on-b/outputs/srt", "/api/config"],
          [
            "/",
            "/channels/on-a",
            "/channels/on-b",
            "/channels/on-a/edit",
            "/channels/on-b/edit",
            "/settings",
          ],
        )),
      );
    expectNoValue(shown);
  });

  it("an RTMP stream key: nginx-rtmp records the stream under the key only when the value is right", async () => {
    const box = spawnService({
      port: BOX_PORT,
      after: ["--host", "127.0.0.1", "--config-dir", join(dir, "box")],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DISTRIBUTARY_ADMIN_TOKEN: FLEET_ADMIN,
        DISTRIBUTARY_WORKERS: "0",
        DISTRIBUTARY_THUMBNAILS: "off",
        DISTRIBUTARY_SECRET_H7_RTMP: KEY,
        DISTRIBUTARY_SECRET_H7_RTMP_OTHER: OTHER_KEY,
      },
    });
    try {
      await box.ready(30_000);
      const request = (path: string, body?: unknown) =>
        fetch(`${box.base}${path}`, {
          method: body === undefined ? "GET" : "POST",
          headers: { authorization: `Bearer ${FLEET_ADMIN}`, "content-type": "application/json" },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      const planned = await request("/api/config/plan", { document: RTMP_DOCUMENT, file: "rtmp.yaml" });
      expect(planned.status).toBe(200);
      const plan = await planned.text();
      expect(plan).toContain(`/live/${ref("H7_RTMP")}`);
      const applied = await request("/api/config/apply", {
        plan_id: (JSON.parse(plan) as { plan_id: string }).plan_id,
      });
      expect(applied.status, await applied.clone().text()).toBe(200);
      liveSource(RTMP_INPUT);
      const view = async (output: string) =>
        (await (await request(`/api/channels/rtmp-out/outputs/${output}`)).json()) as OutputView;

      await until(
        "nginx-rtmp to record the stream under the key",
        async () =>
          (await nginx.recordings()).some(
            (file) => basename(file).startsWith(`${KEY}-`) && statSync(file).size > 20_000,
          ),
        30_000,
      );
      await until(
        "the other key's output to be refused",
        async () => (await view("other")).last_error !== null,
        30_000,
      );
      expect((await view("other")).last_error).toContain("the server refused the stream key");
      expect(publishedNames()).toContain(OTHER_KEY);
      expect((await nginx.recordings()).some((file) => basename(file).startsWith(OTHER_KEY))).toBe(false);
      expect((await view("right")).state).toBe("connected");

      const exported = await (await request("/api/config/document?format=yaml")).text();
      expect(exported).toContain(`/live/${ref("H7_RTMP")}`);
      expect(exported).toContain(`/live/${ref("H7_RTMP_OTHER")}`);
      expectNoValue([
        ["the plan", plan],
        ["the export", exported],
        ...(await everywhere(
          "the box",
          box.base,
          box.output(),
          ["/api/channels/rtmp-out/outputs/right", "/api/channels/rtmp-out/outputs/other", "/api/config"],
          ["/", "/channels/rtmp-out", "/channels/rtmp-out/edit", "/settings"],
        )),
      ]);
    } finally {
      box.process.kill("SIGKILL");
      await box.exited;
    }
  });
});
