/**
 * The list of secrets masked by value follows the configuration: a URL's secrets leave it with the URL (but
 * stay while another output still carries them), a value that is a token's name or a word of the service's
 * own texts never joins it, and structured log fields (actor, ids, event type) are never masked by value. A
 * secret still configured stays masked in any text, the admin token from the environment among them.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type ChannelEvent, EVENT_TYPES } from "../../src/domain/events/events.ts";
import { holdSecrets, maskKnownSecrets, releaseSecrets } from "../../src/effects/config/secrets.ts";
import { describeEvent } from "../../src/effects/events/event-log.ts";
import { maskSecrets } from "../../src/effects/events/logging.ts";
import { ADMIN_TOKEN, eventually, json, makeTestApp, type TestApp } from "../support/app.ts";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** Creates a channel from `body`, its input on 127.0.0.1 unless `body` says otherwise. */
const createChannel = async (test: TestApp, body: Record<string, unknown>, token?: string) => {
  const response = await test.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({ rtp_ip: "127.0.0.1", ...body }),
    ...(token === undefined ? {} : { token }),
  });
  expect(response.status).toBe(201);
  return (await json(response)) as { id: string; outputs: Array<{ id: string }> };
};

const linesWith = (test: TestApp, text: string) => test.logs.filter((line) => line.includes(text));

describe("the mask list", () => {
  it("an RTMP key equal to the operator token's name leaves that name in every later audit line", async () => {
    app = await makeTestApp();
    const test = app;
    const name = "nightly-publisher";
    const created = await test.request("/api/tokens", {
      method: "POST",
      body: JSON.stringify({ name, role: "admin" }),
    });
    expect(created.status).toBe(201);
    const token = String((await json(created)).token);
    await createChannel(
      test,
      {
        id: "by-name",
        name: "By name",
        rtp_port: 5910,
        outputs: [{ name: "Tube", protocol: "rtmp", url: `rtmp://a.rtmp.example.com/live2/${name}` }],
      },
      token,
    );
    await createChannel(test, { id: "after", name: "After", rtp_port: 5912 }, token);
    const line = await eventually("the audit line of the second channel", () =>
      linesWith(test, '"action":"channel.create"').find((candidate) => candidate.includes("channel after")),
    );
    expect(line).toContain(`"actor":"${name}"`);
    expect(line).toContain(`(by ${name})`);
    expect(line).not.toContain("****");
    // The URL's shape still hides the key where the URL is shown.
    const shown = JSON.stringify(await json(await test.request("/api/channels/by-name")));
    expect(shown).toContain("rtmp://a.rtmp.example.com/live2/****");
  });

  it('a deleted RTSP output with a "?listen" query leaves "listener" whole', async () => {
    app = await makeTestApp();
    const test = app;
    const channel = await createChannel(test, {
      id: "rtsp-listen",
      name: "RTSP",
      rtp_port: 5914,
      outputs: [{ name: "Camera", protocol: "rtsp", url: "rtsp://127.0.0.1:8554/live?listen" }],
    });
    const output = channel.outputs[0]?.id;
    expect(
      (await test.request(`/api/channels/rtsp-listen/outputs/${output}`, { method: "DELETE" })).status,
    ).toBe(200);
    await createChannel(test, {
      id: "named",
      name: "the listener feed",
      rtp_port: 5916,
    });
    const line = await eventually("the audit line of the named channel", () =>
      linesWith(test, "channel named (").at(0),
    );
    expect(line).toContain("the listener feed");
    expect(maskSecrets("an SRT listener connected")).toBe("an SRT listener connected");
  });

  it("a key leaves the list with the last output that carries it, not before", async () => {
    app = await makeTestApp();
    const test = app;
    const key = "k7Qx9ZpL2mWvR4t";
    const url = `rtmp://a.rtmp.example.com/live2/${key}`;
    const channel = await createChannel(test, {
      id: "shared",
      name: "Shared",
      rtp_port: 5918,
      outputs: [
        { name: "One", protocol: "rtmp", url },
        { name: "Two", protocol: "rtmp", url: `${url}?via=two` },
      ],
    });
    const [first, second] = channel.outputs.map((output) => output.id);
    const remove = async (id: string | undefined) =>
      expect((await test.request(`/api/channels/shared/outputs/${id}`, { method: "DELETE" })).status).toBe(
        200,
      );

    await remove(first);
    // Still configured on the second output: masked in any text, a channel's name included.
    await createChannel(test, {
      id: "while-live",
      name: `about ${key}`,
      rtp_port: 5920,
    });
    const whileLive = await eventually("the audit line while the key is live", () =>
      linesWith(test, "channel while-live (").at(0),
    );
    expect(whileLive).not.toContain(key);
    expect(whileLive).toContain("about ****");

    await remove(second);
    await createChannel(test, { id: "after-all", name: `about ${key}`, rtp_port: 5922 });
    const afterAll = await eventually("the audit line once no output carries the key", () =>
      linesWith(test, "channel after-all (").at(0),
    );
    expect(afterAll).toContain(`about ${key}`);
  });

  it("an import in replace mode releases the secrets of the channels it deletes", async () => {
    app = await makeTestApp();
    const test = app;
    const passphrase = "Zr8vN3qLx5TwYp2";
    await createChannel(test, {
      id: "replaced",
      name: "Replaced",
      rtp_port: 5924,
      outputs: [{ name: "Srt", protocol: "srt", url: `srt://192.0.2.1:9000?passphrase=${passphrase}` }],
    });
    expect(maskSecrets(`said ${passphrase}`)).toBe("said ****");
    const imported = await test.request("/api/config?mode=replace", {
      method: "POST",
      body: JSON.stringify({
        version: 1,
        channels: [{ id: "kept", name: "Kept", rtp_ip: "127.0.0.1", rtp_port: 5926, outputs: [] }],
      }),
    });
    expect(imported.status).toBe(200);
    expect(maskSecrets(`said ${passphrase}`)).toBe(`said ${passphrase}`);
  });

  it("ids in a line's fields are written as they are, even equal to a live key; the message masks it", async () => {
    app = await makeTestApp();
    const test = app;
    const key = "zq81lp0xwm3k";
    await createChannel(test, {
      id: "keyed",
      name: "Keyed",
      rtp_port: 5930,
      outputs: [{ name: "Tube", protocol: "rtmp", url: `rtmp://a.rtmp.example.com/live2/${key}` }],
    });
    await createChannel(test, { id: key, name: "Same as the key", rtp_port: 5932 });
    const line = await eventually("the audit line of the channel named like the key", () =>
      linesWith(test, "(Same as the key) created").at(0),
    );
    expect(line).toContain(`"channel":"${key}"`);
    expect(line).toContain('"msg":"channel **** (Same as the key) created');
  });

  it("a revoked token's secret leaves the list", async () => {
    app = await makeTestApp();
    const test = app;
    const created = await json(
      await test.request("/api/tokens", {
        method: "POST",
        body: JSON.stringify({ name: "short-lived", role: "viewer" }),
      }),
    );
    const secret = String(created.token);
    expect(maskKnownSecrets(`got ${secret}`)).toBe("got ****");
    expect((await test.request(`/api/tokens/${created.id}`, { method: "DELETE" })).status).toBe(200);
    expect(maskKnownSecrets(`got ${secret}`)).toBe(`got ${secret}`);
  });

  it("the admin token from the environment is not stored: listed as such, never revoked, always masked", async () => {
    app = await makeTestApp();
    const test = app;
    const second = await test.request("/api/tokens", {
      method: "POST",
      body: JSON.stringify({ name: "second admin", role: "admin" }),
    });
    expect(second.status).toBe(201);
    const listed = (await json(await test.request("/api/tokens"))).tokens as Array<Record<string, unknown>>;
    expect(listed.map((token) => [token.name, token.source])).toEqual([
      ["second admin", "stored"],
      ["admin (DISTRIBUTARY_ADMIN_TOKEN)", "environment"],
    ]);
    const refused = await test.request("/api/tokens/admin-from-env", { method: "DELETE" });
    expect(refused.status).toBe(409);
    expect(String((await json(refused)).detail)).toContain("unset it and restart the node to remove it");
    expect((await test.request("/api/channels", { token: ADMIN_TOKEN })).status).toBe(200);
    expect(maskKnownSecrets(`got ${ADMIN_TOKEN}`)).toBe("got ****");
  });

  it("a configured secret in an error text is still masked", async () => {
    app = await makeTestApp();
    const key = "Hq4wE9sTz1LmKd7";
    await createChannel(app, {
      id: "live-key",
      name: "Live key",
      rtp_port: 5928,
      outputs: [{ name: "Tube", protocol: "rtmp", url: `rtmp://a.rtmp.example.com/live2/${key}` }],
    });
    expect(maskSecrets(`Error opening output: ${key}: Input/output error`)).toBe(
      "Error opening output: ****: Input/output error",
    );
  });

  it("no word of the service's own event lines can be held as a secret to blank it out", () => {
    const common = { seq: 1, at: "2026-01-01T00:00:00.000Z", channel: "c", output: "o" };
    const names = { channel_name: null, output_name: null };
    const samples: ReadonlyArray<ChannelEvent> = [
      { ...common, ...names, type: "channel_started" },
      { ...common, ...names, type: "channel_stopped" },
      { ...common, ...names, type: "channel_failed", message: "failed" },
      { ...common, ...names, type: "input_lost" },
      { ...common, ...names, type: "input_restored", input: "primary" },
      { ...common, ...names, type: "slate_on", reason: "input_lost" },
      { ...common, ...names, type: "slate_off", seconds: 21.5 },
      {
        ...common,
        ...names,
        type: "input_switched",
        from: "primary",
        to: "backup",
        reason: "primary_restored",
      },
      {
        ...common,
        ...names,
        type: "input_switch_held",
        from: "primary",
        to: "backup",
        reason: "silence",
        rule: "silent",
      },
      { ...common, ...names, type: "output_state", state: "connecting", error: null },
      { ...common, ...names, type: "output_state", state: "error", error: null },
      { ...common, ...names, type: "output_reconnect", reconnects: 1, error: "refused", delay_ms: 1000 },
      { ...common, ...names, type: "output_queue_drops", packets: 1 },
      {
        ...common,
        ...names,
        type: "remux_frames_dropped",
        frames: 3,
        reasons: { bad_parameter_sets: 1, no_keyframe_yet: 2 },
        detail: "the keyframe's SPS is not a usable parameter set",
      },
      {
        ...common,
        ...names,
        type: "channel_backing_off",
        failures: 4,
        delay_ms: 10_000,
        message: "failed",
      },
      { ...common, ...names, type: "worker_restarted", worker: 1, channels: [], reason: "crashed" },
      {
        ...common,
        ...names,
        type: "handover",
        kind: "thread",
        mode: "thread",
        from: "thread 1",
        to: "thread 2",
        packets_at_cut: 123456,
        duration_ms: 5,
        lost: 0,
        repeated: 0,
      },
      {
        ...common,
        ...names,
        type: "upgrade",
        outcome: "done",
        from: { pid: 100, version: "1.0.0" },
        to: { pid: 200, version: "1.0.1" },
        channels: [],
        duration_ms: 420,
        reason: null,
      },
      {
        ...common,
        ...names,
        type: "medialive_action",
        action: "stop",
        by: "cost_guard",
        ok: true,
        message: "channel 1234567: stop asked by the cost guard: no output sent for 15 min; it is STOPPING",
      },
      { ...common, ...names, type: "medialive_state", state: "RUNNING", previous: "STARTING" },
      {
        ...common,
        ...names,
        type: "schedule_phase",
        window: "sat",
        occurrence: "2026-12-05T19:00:00.000Z",
        phase: "preroll",
        previous: "warming",
        by: "schedule",
        message: "outputs enabled on the slate",
      },
      {
        ...common,
        ...names,
        type: "schedule_missed",
        window: "sat",
        occurrence: "2026-12-05T19:00:00.000Z",
        message: "no node ran it",
      },
      { ...common, ...names, type: "node_down", node: "node-b", message: "lease ran out" },
      { ...common, ...names, type: "node_up", node: "node-b", message: "renews again" },
      {
        ...common,
        ...names,
        type: "rist_auth_failed",
        input: "primary",
        refusals: 4,
        user: "encoder-7",
        reason: "wrong_password",
        message:
          "RIST primary input: EAP-SRP turned the caller 'encoder-7' away (4 refusals since the last such event): its password was refused",
      },
      {
        ...common,
        ...names,
        type: "rtmp_publish_refused",
        input: "backup",
        publisher: "192.0.2.7:50000",
        reason: "busy",
        message:
          "RTMP backup input: a publisher from 192.0.2.7:50000 was refused: the stream key is already in use: another publisher (192.0.2.8:50001) is sending to this channel",
      },
      {
        ...common,
        ...names,
        type: "srt_caller_refused",
        input: "primary",
        caller: "192.0.2.7:50000",
        stream_id: "#!::r=cam1,m=publish",
        port: 9000,
        reason: "wrong_passphrase",
        code: 10,
        code_name: "SRT_REJ_BADSECRET",
        refusals: 2,
        message:
          "SRT primary input: the SRT caller 192.0.2.7:50000 asking for stream id '#!::r=cam1,m=publish' on port 9000 was refused (SRT_REJ_BADSECRET): its passphrase does not match the one of this stream id (or it gave none)",
      },
    ];
    expect(new Set(samples.map((event) => event.type)).size).toBe(EVENT_TYPES.length - 2);
    const text = samples.map((event) => describeEvent(event)?.[1] ?? "").join("\n");
    const words = new Set(text.match(/[A-Za-z]{6,}/g) ?? []);
    expect(words.size).toBeGreaterThan(10);
    for (const word of words) {
      holdSecrets("test:word", [word]);
      expect(maskKnownSecrets(text)).toBe(text);
    }
    releaseSecrets("test:word");
  });
});
