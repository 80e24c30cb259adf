/**
 * An RTMP output on a fleet node publishes, as on one box: a channel made by plain POST with `nodes: [a]` on a
 * fleet node (one PostgreSQL, `bin/distributary serve` on 127.0.0.1), and the same channel on a box without a
 * fleet, each with an RTMP output to nginx-rtmp (a stream key of its own) and a UDP output, fed the same
 * H.264 and AAC stream as RTP. On both, the RTMP output connects and nginx-rtmp records video frames, the UDP
 * output carries the stream. An RTMP output given a new URL while it runs publishes there too. (An output
 * replaced once left the channel's shared TS → FLV remux unfed: the RTMP writer never saw the PMT and stayed
 * `connecting`. A fleet node replaces its outputs whenever it takes a channel's lease, idle ones made enabled
 * (control/resume.ts `hold`): at its start, and on the new holder of every hand-over.)
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FLEET_ADMIN, useFleetNodes } from "../support/fleet-nodes.ts";
import { nginxRtmpServer, type RtmpServer, type UdpSink, udpSink } from "../support/peers.ts";
import { bframeStream, recordingWith } from "../support/rtmp-media.ts";
import { asRtp, chunkTs, sendPaced } from "../support/sender.ts";
import { type ServiceProcess, spawnService } from "../support/service.ts";

const NODE_PORT = 31003;
const BOX_PORT = 31005;
const DB_PORT = 31052;
const RTMP_PORT = 31130;
const INPUT = { fleet: 31110, box: 31111 } as const;
const SECONDS = 15;
const FRAMES = 50;

const dir = mkdtempSync(join(tmpdir(), "h11-fleet-rtmp-"));
const fleet = useFleetNodes({
  dbPort: DB_PORT,
  ports: { a: NODE_PORT },
  env: { DISTRIBUTARY_THUMBNAILS: "off" },
});

const scope = Effect.runSync(Scope.make());
const inScope = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
  Effect.runPromise(Scope.extend(effect, scope));
let nginx: RtmpServer;
let box: ServiceProcess;
let datagrams: Uint8Array[] = [];
const sinks: Partial<Record<keyof typeof INPUT, UdpSink>> = {};

beforeAll(async () => {
  const ts = join(dir, "input.ts");
  bframeStream(ts, SECONDS);
  datagrams = asRtp(chunkTs(readFileSync(ts)));
  nginx = await inScope(nginxRtmpServer({ port: RTMP_PORT }));
  sinks.fleet = await inScope(udpSink);
  sinks.box = await inScope(udpSink);
  await fleet.start("a");
  box = spawnService({
    port: BOX_PORT,
    after: ["--host", "127.0.0.1", "--config-dir", join(dir, "box")],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DISTRIBUTARY_ADMIN_TOKEN: FLEET_ADMIN,
      DISTRIBUTARY_WORKERS: "0",
      DISTRIBUTARY_THUMBNAILS: "off",
    },
  });
  await box.ready(30_000);
}, 90_000);
afterAll(async () => {
  box?.process.kill("SIGKILL");
  await box?.exited;
  await Effect.runPromise(Scope.close(scope, Exit.void));
  rmSync(dir, { recursive: true, force: true });
});

/** A request to the fleet node's API or the box's, as admin. */
const call = (where: keyof typeof INPUT, path: string, body?: unknown) =>
  where === "fleet"
    ? fleet.api("a", path, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) })
    : fetch(`${box.base}${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { authorization: `Bearer ${FLEET_ADMIN}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });

interface OutputView {
  readonly state: string;
  readonly last_error: string | null;
}

/** The channel `rtmp-<where>`: RTMP to nginx-rtmp under the key `where`, and UDP to its sink; started. */
const channelOn = async (where: keyof typeof INPUT) => {
  const id = `rtmp-${where}`;
  const made = await call(where, "/api/channels", {
    id,
    name: `RTMP ${where}`,
    rtp_ip: "127.0.0.1",
    rtp_port: INPUT[where],
    ...(where === "fleet" ? { nodes: ["a"] } : {}),
  });
  expect(made.status, await made.clone().text()).toBe(201);
  const outputs = [
    { id: "rtmp", name: "nginx-rtmp", protocol: "rtmp", url: `rtmp://127.0.0.1:${RTMP_PORT}/live/${where}` },
    { id: "udp", name: "UDP", protocol: "udp", url: `udp://127.0.0.1:${sinks[where]?.port}` },
  ];
  for (const output of outputs) {
    const added = await call(where, `/api/channels/${id}/outputs`, output);
    expect(added.status, await added.clone().text()).toBe(201);
  }
  const started = await call(where, `/api/channels/${id}/start`, {});
  expect(started.status, await started.clone().text()).toBe(200);
  return id;
};

describe("an RTMP output on a fleet node", () => {
  it("connects and publishes video frames, as on one box, while its UDP output carries the stream", async () => {
    const ids = { fleet: await channelOn("fleet"), box: await channelOn("box") };
    await fleet.until(
      "node a to hold its channel",
      async () => (await fleet.fleetOf("a", ids.fleet))?.holder === "a",
    );
    const perMs = datagrams.length / (SECONDS * 1000);
    const sending = Effect.runPromise(
      Effect.all([sendPaced(datagrams, INPUT.fleet, perMs), sendPaced(datagrams, INPUT.box, perMs)], {
        concurrency: "unbounded",
      }),
    );
    try {
      for (const where of ["fleet", "box"] as const) {
        const recorded = () =>
          nginx.recordings().then((files) => files.filter((file) => basename(file).startsWith(`${where}-`)));
        const file = await Effect.runPromise(recordingWith(recorded, FRAMES));
        expect(basename(file), where).toMatch(new RegExp(`^${where}-`));
        const view = (await (
          await call(where, `/api/channels/${ids[where]}/outputs/rtmp`)
        ).json()) as OutputView;
        expect(view.state, `${where}: ${view.last_error}`).toBe("connected");
        expect(sinks[where]?.totalBytes() ?? 0, where).toBeGreaterThan(188 * 100);
      }
      // An RTMP output changed while it runs (a new URL: a new output in its place) is fed the same way.
      const moved = await fetch(`${box.base}/api/channels/${ids.box}/outputs/rtmp`, {
        method: "PUT",
        headers: { authorization: `Bearer ${FLEET_ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify({
          name: "nginx-rtmp",
          protocol: "rtmp",
          url: `rtmp://127.0.0.1:${RTMP_PORT}/live/moved`,
        }),
      });
      expect(moved.status, await moved.clone().text()).toBe(200);
      const movedTo = () =>
        nginx.recordings().then((files) => files.filter((file) => basename(file).startsWith("moved-")));
      await Effect.runPromise(recordingWith(movedTo, FRAMES));
    } finally {
      await sending;
    }
  }, 60_000);
});
