/**
 * A fleet node whose database connections are slow to connect while it starts: it starts all the same, and
 * says it tried again. Between the node and its PostgreSQL sits a TCP proxy (node:net) that holds new
 * connections back 1.5 s — longer than the second the node gives a connection — from the node's fourth
 * connection on, for 3 s. Its first three are the schema's (whose step already waited for the database), the
 * listening client and the node's lock; those after them carry the statements that follow "store loaded": the
 * coordinator's peer token and its registration, which ended the process ("timeout exceeded when trying to
 * connect") before they were tried again. The slow connections are chosen, not made by loading the machine.
 */
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/app.ts";
import { type Postgres, startPostgres } from "../support/postgres.ts";
import { type ServiceProcess, spawnService } from "../support/service.ts";

const DB_PORT = 29101;
const PROXY_PORT = 29102;
const NODE_PORT = 29103;
const DELAY_MS = 1500;

/**
 * A proxy on PROXY_PORT to `target` that holds back every connection from the `from`-th on, for `windowMs` after
 * that one arrived, by DELAY_MS before it passes a byte; `slowed` counts them.
 */
const slowProxy = async (target: number, from: number, windowMs: number) => {
  let count = 0;
  let slowSince: number | undefined;
  let slowed = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    count += 1;
    if (count === from) slowSince = Date.now();
    const slow = slowSince !== undefined && Date.now() - slowSince < windowMs;
    if (slow) slowed += 1;
    sockets.add(client);
    client.pause();
    client.on("error", () => undefined);
    const connect = () => {
      if (client.destroyed) return;
      const upstream = createConnection({ host: "127.0.0.1", port: target });
      sockets.add(upstream);
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    };
    if (slow) setTimeout(connect, DELAY_MS);
    else connect();
  });
  server.listen(PROXY_PORT, "127.0.0.1");
  await once(server, "listening");
  return {
    slowed: () => slowed,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
};

const messages = (node: ServiceProcess) =>
  node
    .output()
    .split("\n")
    .map((line) => /"msg":"([^"]*)"/.exec(line)?.[1] ?? line);

let pg: Postgres;
let dir = "";
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "distributary-slow-connect-"));
  pg = await startPostgres({ port: DB_PORT });
});
afterAll(async () => {
  await pg?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("a fleet node whose database connections are slow while it starts", () => {
  it("starts, says it tried again, registers and renews", async () => {
    const proxy = await slowProxy(DB_PORT, 4, 3000);
    const node = spawnService({
      port: NODE_PORT,
      after: ["--host", "127.0.0.1", "--config-dir", join(dir, "a")],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DISTRIBUTARY_ADMIN_TOKEN: "h9-slow-connect-admin-token-5d0c2e8b71a4",
        DISTRIBUTARY_WORKERS: "0",
        DISTRIBUTARY_DATABASE_URL: pg.url.replace(`:${DB_PORT}/`, `:${PROXY_PORT}/`),
        DISTRIBUTARY_NODE_ID: "a",
        DISTRIBUTARY_NODE_URL: `http://127.0.0.1:${NODE_PORT}`,
        DISTRIBUTARY_LEASE_MS: "3000",
        DISTRIBUTARY_THUMBNAILS: "off",
      },
    });
    try {
      await node.ready(30_000);
      // The proxy held connections back: the node met what it is tested for.
      expect(proxy.slowed()).toBeGreaterThan(0);
      const said = messages(node);
      expect(said.some((line) => /timeout exceeded when trying to connect; trying again/.test(line))).toBe(
        true,
      );
      expect(said.some((line) => line.startsWith("fleet: node a (") && line.includes("joined"))).toBe(true);
      // Registered, and its rounds renew it: the heartbeat moves on after the node said it was ready.
      const [since] = await pg.admin<{ at: string }>("select now()::text as at");
      await eventually(
        "node a's heartbeat after it was ready",
        async () => {
          const rows = await pg.admin("select id from nodes where id = 'a' and heartbeat_at > $1", [
            since?.at,
          ]);
          return rows.length === 1 ? true : undefined;
        },
        15_000,
      );
      expect(node.process.exitCode).toBeNull();
      expect((await fetch(`http://127.0.0.1:${NODE_PORT}/api/ready`)).status).toBe(200);
    } finally {
      node.process.kill("SIGKILL");
      await node.exited;
      await proxy.close();
    }
  }, 60_000);
});
