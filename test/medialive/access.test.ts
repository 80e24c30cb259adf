/**
 * AWS's refusals in words, with moto enforcing IAM: credentials whose policy allows the link to describe a
 * MediaLive channel but not to start it get a 502 that names the missing action, and the refusal is an event.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";
import { createMediaLiveChannel, iamUser, type Moto, motoMissing, startMoto } from "../support/moto.ts";

const missing = motoMissing();
let moto: Moto;
let app: TestApp;
let medialiveId = "";

beforeAll(async () => {
  if (missing !== null) return;
  // The three IAM calls that make the user go unchecked; everything after is checked.
  moto = await startMoto({ INITIAL_NO_AUTH_ACTION_COUNT: "3" });
  const keys = await iamUser(moto, "link", [
    "medialive:CreateChannel",
    "medialive:DescribeChannel",
    "medialive:ListChannels",
  ]);
  medialiveId = await createMediaLiveChannel(moto.client("eu-west-1", keys), {
    name: "denied",
    destinations: ["rtp://127.0.0.1:5000"],
  });
  // The service finds the user's key where the SDK's standard chain looks first.
  process.env.AWS_ACCESS_KEY_ID = keys.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = keys.secretAccessKey;
  app = await makeTestApp(undefined, undefined, { DISTRIBUTARY_AWS_ENDPOINT: moto.endpoint });
}, 60_000);

afterAll(async () => {
  delete process.env.AWS_ACCESS_KEY_ID;
  delete process.env.AWS_SECRET_ACCESS_KEY;
  await app?.close();
  await moto?.stop();
});

describe.skipIf(missing !== null)("IAM refusals (moto enforcing IAM)", () => {
  it("a start the policy does not allow names medialive:StartChannel, and is an event", async () => {
    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "denied",
        name: "denied",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        medialive: { channel_id: medialiveId, region: "eu-west-1" },
      }),
    });
    expect(created.status).toBe(201);
    await eventually("the channel to be described", async () => {
      const view = await json(await app.request("/api/channels/denied/medialive"));
      return view.state === "IDLE" ? true : undefined;
    });
    const start = await app.request("/api/channels/denied/medialive/start", { method: "POST" });
    expect(start.status).toBe(502);
    expect((await json(start)).detail).toBe(
      `AWS refused medialive:StartChannel on channel '${medialiveId}' in eu-west-1: the IAM policy of these credentials must allow medialive:StartChannel`,
    );
    const events = (await json(await app.request("/api/channels/denied/events"))).events as Array<
      Record<string, unknown>
    >;
    expect(events.find((event) => event.type === "medialive_action")).toMatchObject({
      action: "start",
      by: "operator",
      ok: false,
    });
    expect(app.logs.join("\n")).not.toContain(String(process.env.AWS_SECRET_ACCESS_KEY));
  });
});
