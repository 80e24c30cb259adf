/**
 * Limits hold however they are reached: at most 64 outputs a channel (at creation and one by one), at most
 * 20 WebSockets a token (the next is closed with 4429 and a reason; closing one frees a place).
 */
import { afterEach, describe, expect, it } from "vitest";
import { MAX_OUTPUTS } from "../../src/domain/channel/channel.ts";
import { MAX_SOCKETS_PER_TOKEN } from "../../src/http/ws.ts";
import { eventually, json, makeTestApp, type TestApp } from "../support/app.ts";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const output = (n: number) => ({ name: `o${n}`, protocol: "udp", url: `udp://127.0.0.1:${30000 + n}` });

describe("limits", () => {
  it("a channel has at most 64 outputs, added at creation or one by one", async () => {
    app = await makeTestApp();
    const outputs = Array.from({ length: MAX_OUTPUTS }, (_, n) => output(n));
    const tooMany = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        name: "Big",
        rtp_ip: "127.0.0.1",
        rtp_port: 5700,
        outputs: [...outputs, output(99)],
      }),
    });
    expect(tooMany.status).toBe(400);
    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ id: "big", name: "Big", rtp_ip: "127.0.0.1", rtp_port: 5700, outputs }),
    });
    expect(created.status).toBe(201);
    const one = await app.request("/api/channels/big/outputs", {
      method: "POST",
      body: JSON.stringify(output(100)),
    });
    expect(one.status).toBe(409);
    expect(String((await json(one)).detail)).toContain(`already has ${MAX_OUTPUTS} outputs`);
    // Replacing one is not adding one.
    const channel = await json(await app.request("/api/channels/big"));
    const first = (channel.outputs as Array<{ id: string }>)[0]?.id;
    const replaced = await app.request(`/api/channels/big/outputs/${first}`, {
      method: "PUT",
      body: JSON.stringify(output(101)),
    });
    expect(replaced.status).toBe(200);
  });

  it("a token holds at most 20 WebSockets; the next is closed with a reason", async () => {
    app = await makeTestApp();
    const port = await app.listen();
    const viewer = await json(
      await app.request("/api/tokens", {
        method: "POST",
        body: JSON.stringify({ name: "wall", role: "viewer" }),
      }),
    );
    const url = `ws://127.0.0.1:${port}/ws?token=${String(viewer.token)}`;
    const openOne = () =>
      new Promise<WebSocket>((resolve, reject) => {
        const socket = new WebSocket(url);
        socket.onmessage = () => resolve(socket);
        socket.onerror = () => reject(new Error("WebSocket failed"));
      });
    const sockets: WebSocket[] = [];
    for (let i = 0; i < MAX_SOCKETS_PER_TOKEN; i++) sockets.push(await openOne());
    const refused = await new Promise<{ code: number; reason: string }>((resolve) => {
      const socket = new WebSocket(url);
      socket.onclose = (event) => resolve({ code: event.code, reason: event.reason });
    });
    expect(refused.code).toBe(4429);
    expect(refused.reason).toContain(`at most ${MAX_SOCKETS_PER_TOKEN}`);
    // Closing one frees a place.
    const closed = new Promise((resolve) => {
      (sockets[0] as WebSocket).onclose = resolve;
    });
    sockets[0]?.close();
    await closed;
    // The server frees the place when it sees the close: try until it has.
    const tryOne = () =>
      new Promise<WebSocket | undefined>((resolve) => {
        const socket = new WebSocket(url);
        socket.onmessage = () => resolve(socket);
        socket.onclose = () => resolve(undefined);
      });
    sockets.push(await eventually("a freed place", tryOne));
    for (const socket of sockets) socket.close();
  });
});
