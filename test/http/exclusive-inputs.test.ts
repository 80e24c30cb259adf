/**
 * A channel's unicast input is its own: another socket cannot bind the port while it runs (not even with
 * SO_REUSEADDR), a port someone else holds fails the start in words, and the conflict check sees one address
 * however it is written (IPv6 spellings, IPv4 written as IPv6, wildcards).
 */
import { createSocket, type Socket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";

let app: TestApp | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await app?.close();
  app = undefined;
});

const bindShared = (port: number) =>
  new Promise<string>((resolve) => {
    const socket = createSocket({ type: "udp4", reuseAddr: true });
    sockets.push(socket);
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
    socket.bind(port, "127.0.0.1", () => resolve("bound"));
  });

describe("exclusive inputs", () => {
  it("the same port under another spelling of the address is a 409 naming the channel that has it", async () => {
    app = await makeTestApp();
    const port = await freeUdpPort();
    const create = (id: string, ip: string) =>
      app?.request("/api/channels", {
        method: "POST",
        body: JSON.stringify({ id, name: id, rtp_ip: ip, rtp_port: port }),
      });
    expect((await create("first", "127.0.0.1"))?.status).toBe(201);
    for (const spelling of ["::ffff:127.0.0.1", "0:0:0:0:0:0:0:0", "::", "0.0.0.0", "127.0.0.1"]) {
      const response = await create(`other-${spelling.replaceAll(/[^0-9a-f]/g, "")}`, spelling);
      expect(response?.status, spelling).toBe(409);
      expect(String((await json(response as Response)).detail)).toContain("channel 'first'");
    }
    expect((await create("elsewhere", "127.0.0.2"))?.status).toBe(201);
  });

  it("while a channel runs no other socket can bind its port; a port someone holds fails the start", async () => {
    app = await makeTestApp();
    const port = await freeUdpPort();
    await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ id: "mine", name: "mine", rtp_ip: "127.0.0.1", rtp_port: port }),
    });
    expect((await app.request("/api/channels/mine/start", { method: "POST" })).status).toBe(200);
    expect(await bindShared(port)).toBe("EADDRINUSE");

    const taken = await freeUdpPort();
    expect(await bindShared(taken)).toBe("bound");
    await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ id: "late", name: "late", rtp_ip: "127.0.0.1", rtp_port: taken }),
    });
    const start = await app.request("/api/channels/late/start", { method: "POST" });
    expect(start.status).toBe(409);
    expect(String((await json(start)).detail)).toContain("another program or channel already uses this port");
    expect((await json(await app.request("/api/channels/late"))).status).toBe("error");
  });
});
