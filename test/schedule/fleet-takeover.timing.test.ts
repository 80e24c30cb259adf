/**
 * A scheduled window in a fleet (issue 52, point 3): two real nodes (`bin/distributary serve` on 127.0.0.1)
 * on one real PostgreSQL, a channel listing both, held by a and linked to a MediaLive channel in moto_server
 * (behind a proxy that notes each request), with a one-off window whose T0 is 20 s after its creation (lead
 * 10 s, preroll 5 s, duration 8 s, postroll 3 s). a runs the warm-up and the preroll (StartChannel, the
 * outputs, the slate) and is killed at T0 − 3 s. Then: b takes the channel over, reads the progress a stored,
 * joins the preroll without doing any of it again (no second StartChannel reaches moto) and goes live at
 * T0 ± 1 s; after the postroll it stops MediaLive, once. The output, enabled when the channel was made, belongs
 * to the schedule: both nodes show it off until the window before the warm-up.
 */
import { DescribeChannelCommand } from "@aws-sdk/client-medialive";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeUdpPort, json } from "../support/app.ts";
import { useFleetNodes } from "../support/fleet-nodes.ts";
import { createMediaLiveChannel, type Moto, motoMissing, startMoto } from "../support/moto.ts";
import { type MotoLog, motoLog } from "../support/moto-log.ts";
import { DURATION, kickoffSchedule, POSTROLL, S, t0In } from "./kickoff.ts";

const missing = motoMissing();
const CREDENTIALS = {
  AWS_ACCESS_KEY_ID: "AKIASCHEDULEFLEET",
  AWS_SECRET_ACCESS_KEY: "schedule-fleet-secret",
};

const fleet = useFleetNodes({
  dbPort: 23851,
  ports: { a: 23801, b: 23802 },
  env: { DISTRIBUTARY_THUMBNAILS: "off", ...CREDENTIALS },
});
const { api, fleetOf, until } = fleet;
let moto: Moto;
let log: MotoLog;
let mediaLiveId = "";

beforeAll(async () => {
  if (missing !== null) return;
  moto = await startMoto();
  log = await motoLog(moto.endpoint);
  mediaLiveId = await createMediaLiveChannel(moto.client(), {
    name: "scheduled in a fleet",
    destinations: ["rtp://127.0.0.1:5000"],
  });
}, 60_000);
afterAll(async () => {
  await log?.close();
  await moto?.stop();
});

type Json = Record<string, unknown>;
const phaseEvents = async (node: string) =>
  (
    (await json(await api(node, "/api/events?channel=match&type=schedule_phase&limit=500"))).events as Json[]
  ).sort((a, b) => Number(a.seq) - Number(b.seq));

describe.skipIf(missing !== null)("a scheduled window whose holder is killed at T0 − 3 s", () => {
  it("is taken over by the standby: no second StartChannel, live at T0 ± 1 s, MediaLive stopped once", async () => {
    const env = { DISTRIBUTARY_AWS_ENDPOINT: log.endpoint };
    await fleet.start("a", env);
    await fleet.start("b", env);
    // a's warm-up 5 s after the window is made: this test holds the takeover and T0 to time, not StartChannel.
    const t0 = t0In(20);
    const created = await api("a", "/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "match",
        name: "Saturday match",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        nodes: ["a", "b"],
        slate: { after_ms: 1000 },
        medialive: { channel_id: mediaLiveId, region: "eu-west-1" },
        // Enabled, as the API's default has it: the schedule owns it all the same.
        outputs: [{ id: "out1", protocol: "udp", url: `udp://127.0.0.1:${await freeUdpPort()}` }],
        schedule: kickoffSchedule(t0),
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await api("a", "/api/channels/match/start", { method: "POST" })).status).toBe(200);
    for (const node of ["a", "b"]) {
      const output = ((await json(await api(node, "/api/channels/match"))).outputs as Json[])[0];
      expect(output).toMatchObject({ enabled: false });
      expect(String(output?.schedule)).toMatch(
        /^off until the window kickoff at .* Europe\/Paris \(schedule\)$/,
      );
    }
    await until(
      "b to see a hold the channel",
      async () => (await fleetOf("b", "match"))?.holder === "a",
      20_000,
    );

    // a runs the warm-up and the preroll.
    await until(
      "a to put the window on its preroll",
      async () => (await phaseEvents("a")).some((event) => event.phase === "preroll"),
      40_000,
    );
    expect(log.calls("start", mediaLiveId)).toHaveLength(1);
    const wait = t0 - 3 * S - Date.now();
    expect(wait).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, wait));
    fleet.process("a").process.kill("SIGKILL");
    const killedAt = Date.now();

    await until(
      "b to take the channel over",
      async () => (await fleetOf("b", "match"))?.holder === "b",
      5_000,
    );
    await until(
      "b to go live",
      async () => (await phaseEvents("b")).some((event) => event.phase === "live"),
      10_000,
    );
    const onB = await phaseEvents("b");
    const live = onB.find((event) => event.phase === "live");
    const liveAt = Date.parse(String(live?.at));
    console.log(
      `schedule: a killed ${((t0 - killedAt) / S).toFixed(2)} s before T0; b joined as ${onB.map((event) => `${event.phase} by ${event.by}`).join(", ")}; live ${((liveAt - t0) / S).toFixed(3)} s from T0`,
    );
    expect(onB[0]).toMatchObject({ phase: "preroll", by: "takeover" });
    expect(Math.abs(liveAt - t0)).toBeLessThanOrEqual(S);
    expect(log.calls("start", mediaLiveId)).toHaveLength(1);
    // The live phase is said before its action is done and stored: then what b stored goes on from a's.
    const done = async () =>
      ((await json(await api("b", "/api/channels/match/schedule"))).current as Json | null)?.done as
        | string[]
        | undefined;
    await until("b to take the input on air", async () => (await done())?.includes("go_live") === true);
    expect(await done()).toEqual(["start_medialive", "slate_on", "enable_outputs", "go_live"]);

    // After the postroll, b ends it: MediaLive stopped once, the outputs disabled.
    await until(
      "b to end the window",
      async () => (await phaseEvents("b")).some((event) => event.phase === "idle"),
      (DURATION + POSTROLL + 5) * S,
    );
    expect(log.calls("stop", mediaLiveId)).toHaveLength(1);
    expect(log.calls("start", mediaLiveId)).toHaveLength(1);
    const state = (await moto.client().send(new DescribeChannelCommand({ ChannelId: mediaLiveId }))).State;
    expect(["STOPPING", "IDLE"]).toContain(state);
    const channel = await json(await api("b", "/api/channels/match"));
    expect((channel.outputs as Json[])[0]?.enabled).toBe(false);
  }, 120_000);
});
