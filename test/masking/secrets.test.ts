/**
 * A unique secret planted in output URLs (an RTMP stream key, an SRT passphrase and a token-like streamid)
 * appears in no API response, problem, log line or WebSocket message; it stays in the store (0600). A token
 * is shown once, in the answer that creates it.
 */
import { describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, useTestApp } from "../support/app.ts";

const KEY = `key${crypto.randomUUID().replaceAll("-", "")}`;
const PASSPHRASE = `pass${crypto.randomUUID().replaceAll("-", "")}`;
const STREAM_ID = `sid${crypto.randomUUID().replaceAll("-", "")}`;
const secrets = [KEY, PASSPHRASE, STREAM_ID];

const app = useTestApp();
const seen: string[] = [];
const record = async (response: Response) => {
  seen.push(await response.clone().text());
  return response;
};

describe("secrets", () => {
  it("never leave the store", async () => {
    const inputPort = await freeUdpPort();
    const rtmpUrl = `rtmp://127.0.0.1:1/live2/${KEY}`;
    const srtUrl = `srt://127.0.0.1:1?mode=caller&passphrase=${PASSPHRASE}&streamid=${STREAM_ID}`;
    const created = await json(
      await record(
        await app.request("/api/channels", {
          method: "POST",
          body: JSON.stringify({
            name: "Secret",
            rtp_ip: "127.0.0.1",
            rtp_port: inputPort,
            outputs: [
              { id: "yt", protocol: "rtmp", url: rtmpUrl },
              { id: "srt", protocol: "srt", url: srtUrl },
            ],
          }),
        }),
      ),
    );
    const id = String(created.id);
    expect(created.outputs).toEqual([
      expect.objectContaining({ url: "rtmp://127.0.0.1:1/live2/****" }),
      expect.objectContaining({ url: expect.stringContaining("passphrase=****") }),
    ]);

    const port = await app.listen();
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { "x-api-key": "test-admin-token-0123456789abcdef" },
    });
    const messages: string[] = [];
    socket.onmessage = (event) => messages.push(String(event.data));

    // Start it: the RTMP and SRT outputs fail to connect (nothing listens on port 1), so errors get logged.
    await record(await app.request(`/api/channels/${id}/start`, { method: "POST" }));
    const calls: Array<[string, RequestInit?]> = [
      ["/api/channels"],
      [`/api/channels/${id}`],
      [`/api/channels/${id}/stats`],
      [`/api/channels/${id}/outputs/yt`],
      ["/api/config"],
      [`/api/channels/${id}/outputs/yt`, { method: "PATCH", body: JSON.stringify({ url: `${rtmpUrl};x` }) }],
      [
        `/api/channels/${id}/outputs/srt`,
        { method: "PUT", body: JSON.stringify({ protocol: "rtmp", url: srtUrl }) },
      ],
      [
        `/api/channels/${id}/outputs`,
        { method: "POST", body: JSON.stringify({ protocol: "rtmp", url: `rtmp://h/a/${KEY} x` }) },
      ],
      [
        `/api/channels/${id}/outputs`,
        { method: "POST", body: JSON.stringify({ protocol: "srt", url: `${srtUrl}&latency=-1` }) },
      ],
      [`/api/channels/${id}/outputs/yt/disable`, { method: "POST" }],
      [`/api/channels/${id}/outputs/yt/enable`, { method: "POST" }],
    ];
    for (const [path, init] of calls) await record(await app.request(path, init));

    // What could leak a secret must be there to be read: WebSocket messages, and the outputs' failures logged.
    await eventually("two WebSocket messages and an output's reconnecting in the log", () =>
      messages.length >= 2 && app.logs.some((line) => line.includes("reconnecting")) ? true : undefined,
    );
    socket.close();
    await record(await app.request(`/api/channels/${id}/stop`, { method: "POST" }));

    expect(messages.length).toBeGreaterThan(0);
    expect(app.logs.length).toBeGreaterThan(0);
    for (const text of [...seen, ...messages, ...app.logs]) {
      for (const secret of secrets) expect(text).not.toContain(secret);
    }
    // The store keeps them: it is what a restart starts from.
    const stored = (await app.storeText()) ?? "";
    for (const secret of secrets) expect(stored).toContain(secret);
  });

  it("a query with a malformed percent escape is saved, and its key and query stay masked", async () => {
    const key = `key${crypto.randomUUID().replaceAll("-", "")}`;
    const query = `sig=${crypto.randomUUID().replaceAll("-", "")}%E0%A4%A`;
    const outputs = [
      { id: "rtmp", protocol: "rtmp", url: `rtmp://127.0.0.1:1/app/${key}?${query}` },
      { id: "rtsp", protocol: "rtsp", url: `rtsp://127.0.0.1:1/live?${query}` },
    ];
    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "escapes",
        name: "Escapes",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        outputs,
      }),
    });
    const text = await created.text();
    expect(created.status, text).toBe(201);
    const changed = await app.request("/api/channels/escapes/outputs/rtmp", {
      method: "PUT",
      body: JSON.stringify({ protocol: "rtmp", url: `rtmp://127.0.0.1:1/app/${key}?x=%ZZ${query}` }),
    });
    expect(changed.status, await changed.clone().text()).toBe(200);
    const exported = await (await app.request("/api/config")).text();
    for (const shown of [text, await changed.text(), exported, ...app.logs]) {
      expect(shown).not.toContain(key);
      expect(shown).not.toContain(query);
    }
  });

  it("a token is shown once, at creation", async () => {
    const created = await json(
      await app.request("/api/tokens", {
        method: "POST",
        body: JSON.stringify({ name: "ci", role: "viewer" }),
      }),
    );
    const token = String(created.token);
    expect(token).toMatch(/^dst_/);
    const listed = await app.request("/api/tokens");
    expect(await listed.text()).not.toContain(token);
    const used = await app.request("/api/channels", { token });
    expect(used.status).toBe(200);
    const denied = await app.request("/api/tokens", { token });
    expect(await denied.text()).not.toContain(token);
    for (const line of app.logs) expect(line).not.toContain(token);
  });
});
