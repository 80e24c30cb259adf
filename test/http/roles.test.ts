/**
 * Roles, for every route in the OpenAPI document: no token gets 401, a role below the route's gets 403, and
 * the route's own role gets past the check. Plus the WebSocket, and the limit on wrong tokens.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { makeFailureLimiter } from "../../src/http/auth.ts";
import { json, useTestApp } from "../support/app.ts";

const app = useTestApp();
const tokens: Record<string, string> = {};

interface Route {
  readonly method: string;
  readonly path: string;
  readonly role: string;
}
let routes: Route[] = [];

beforeAll(async () => {
  for (const role of ["viewer", "operator"]) {
    const created = await json(
      await app.request("/api/tokens", { method: "POST", body: JSON.stringify({ name: role, role }) }),
    );
    tokens[role] = String(created.token);
  }
  await app.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      id: "base",
      name: "Base",
      rtp_ip: "127.0.0.1",
      rtp_port: 6200,
      outputs: [{ id: "out1", protocol: "udp", url: "udp://127.0.0.1:7200" }],
    }),
  });
  const document = await json(await app.request("/api/openapi.json", { token: null }));
  const paths = document.paths as Record<string, Record<string, { "x-required-role": string }>>;
  routes = Object.entries(paths).flatMap(([path, operations]) =>
    Object.entries(operations).map(([method, operation]) => ({
      method: method.toUpperCase(),
      path: path.replace("{id}", "base").replace("{oid}", "out1"),
      role: operation["x-required-role"],
    })),
  );
});

const below: Record<string, ReadonlyArray<string>> = {
  public: [],
  viewer: [],
  operator: ["viewer"],
  admin: ["viewer", "operator"],
};

describe("roles", () => {
  it("the OpenAPI document lists every route with its role", () => {
    expect(routes.length).toBeGreaterThanOrEqual(20);
    expect(routes).toEqual(
      expect.arrayContaining([
        { method: "POST", path: "/api/channels", role: "admin" },
        { method: "DELETE", path: "/api/channels/base", role: "admin" },
        { method: "POST", path: "/api/channels/base/start", role: "operator" },
        { method: "POST", path: "/api/channels/base/outputs", role: "operator" },
        { method: "GET", path: "/api/channels", role: "viewer" },
        { method: "POST", path: "/api/config", role: "admin" },
        { method: "POST", path: "/api/tokens", role: "admin" },
        { method: "GET", path: "/api/health", role: "public" },
      ]),
    );
  });

  it("every route: no token → 401, a lower role → 403, its role passes", async () => {
    for (const route of routes) {
      const init = { method: route.method, ...(route.method === "GET" ? {} : { body: "{}" }) };
      const anonymous = await app.request(route.path, { ...init, token: null });
      if (route.role === "public") {
        expect(anonymous.status, `${route.method} ${route.path}`).toBe(200);
        continue;
      }
      expect(anonymous.status, `${route.method} ${route.path} without a token`).toBe(401);
      expect(anonymous.headers.get("content-type")).toBe("application/problem+json");
      for (const role of below[route.role] ?? []) {
        const denied = await app.request(route.path, { ...init, token: tokens[role] ?? "" });
        expect(denied.status, `${route.method} ${route.path} as ${role}`).toBe(403);
      }
      // Its own role passes the check. Only calls without effect are made: reads, and writes with the body
      // "{}", which routes refuse (400) or apply as an empty change.
      const own = route.role === "admin" ? {} : { token: tokens[route.role] ?? "" };
      if (route.method === "GET") {
        // out1 is a udp output: its recordings routes pass the role check and answer that it has none; the
        // fleet's routes pass it and answer that one box has no fleet.
        // An unlinked channel has no MediaLive channel to show, one without a slate no slate picture, and one
        // without a schedule no schedule. There is no notifier "base": its routes pass the role check and answer
        // that it does not exist.
        const expected =
          route.path.includes("/recordings") ||
          route.path.startsWith("/api/notifiers/base") ||
          route.path.endsWith("/medialive") ||
          route.path.endsWith("/slate/image") ||
          route.path.endsWith("/schedule") ||
          route.path.endsWith("/schedule.ics") ||
          FLEET_ONLY.test(route.path)
            ? 404
            : 200;
        expect((await app.request(route.path, { ...init, ...own })).status, `${route.path}`).toBe(expected);
      } else if (takesBody(route)) {
        const status = (await app.request(route.path, { ...init, ...own })).status;
        expect([401, 403, 429], `${route.method} ${route.path}`).not.toContain(status);
      }
    }
  });

  it("the WebSocket needs a token too", async () => {
    const port = await app.listen();
    // Without a token the socket carries nothing: it is closed at once with 4401 and what to add (a browser
    // could not read a refused upgrade's status).
    const refused = await new Promise<{ code: number; messages: number }>((resolve) => {
      const anonymous = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      let messages = 0;
      anonymous.onmessage = () => {
        messages += 1;
      };
      anonymous.onclose = (event) => resolve({ code: event.code, messages });
    });
    expect(refused).toEqual({ code: 4401, messages: 0 });
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${tokens.viewer}`);
    const first = await new Promise<string>((resolve, reject) => {
      socket.onmessage = (event) => resolve(String(event.data));
      socket.onerror = () => reject(new Error("viewer WebSocket refused"));
    });
    socket.close();
    expect(JSON.parse(first)).toHaveProperty("channels");
  });

  it("revoking a token closes its open WebSocket within a second", async () => {
    const port = await app.listen();
    const created = await json(
      await app.request("/api/tokens", {
        method: "POST",
        body: JSON.stringify({ name: "wall", role: "viewer" }),
      }),
    );
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${String(created.token)}`);
    await new Promise<void>((resolve, reject) => {
      socket.onmessage = () => resolve();
      socket.onerror = () => reject(new Error("WebSocket failed"));
    });
    const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) => {
      socket.onclose = (event) => resolve({ code: event.code, reason: event.reason, at: Date.now() });
    });
    const revokedAt = Date.now();
    expect((await app.request(`/api/tokens/${String(created.id)}`, { method: "DELETE" })).status).toBe(200);
    const { code, reason, at } = await closed;
    expect(code).toBe(4403);
    expect(reason).toBe("the token was revoked");
    expect(at - revokedAt).toBeLessThan(1500);
    // Both changes are in the audit trail, with who made them.
    const audit = (await json(await app.request("/api/events?type=api_change"))).events as Array<
      Record<string, unknown>
    >;
    const actions = audit.filter((event) => String(event.detail).includes(String(created.id)));
    expect(actions.map((event) => event.action)).toEqual(["token.create", "token.revoke"]);
    expect(JSON.stringify(actions)).not.toContain(String(created.token));
  });

  it("wrong tokens are limited per address: 429 with Retry-After", async () => {
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 12; attempt++) {
      const response = await app.request("/api/channels", { token: `dst_wrong${attempt}` });
      statuses.push(response.status);
      if (response.status === 429) expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
    }
    expect(statuses).toContain(429);
    expect((await app.request("/api/channels", { token: "dst_wrong_again" })).status).toBe(429);
    // The rightful token from the same address is never locked out: only failures are limited.
    expect((await app.request("/api/channels")).status).toBe(200);
    expect((await app.request("/api/channels", { token: "dst_wrong_once_more" })).status).toBe(429);
  });

  it("the limiter's table is bounded: the stalest addresses are forgotten first", () => {
    const limiter = makeFailureLimiter(10, 60_000, 1000);
    const now = Date.now();
    for (let i = 0; i < 5000; i++)
      for (let n = 0; n < 10; n++) limiter.recordFailure(`10.0.${i >> 8}.${i & 255}`, now);
    expect(limiter.size()).toBe(1000);
    // The newest addresses are still limited, the oldest forgotten.
    expect(limiter.retryAfter("10.0.19.135", now)).toBeGreaterThan(0);
    expect(limiter.retryAfter("10.0.0.1", now)).toBe(0);
  });
});

const FLEET_ONLY = /^\/api\/(nodes|cluster|audit)(\/|$)/;

const takesBody = (route: Route) =>
  route.method !== "DELETE" && !/\/(start|stop|enable|disable)$/.test(route.path);
