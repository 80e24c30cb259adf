/**
 * `bin/distributary migrate --to postgres://…`: a one-box config directory imported into a fleet database
 * (channels, and tokens that keep working), a database already holding channels refused unless --replace,
 * and the URL's password never printed.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LATEST_VERSION } from "../../src/effects/config/postgres/migrations.ts";
import { layerFile } from "../../src/effects/config/store.ts";
import { freeUdpPort, json, makeTestApp } from "../support/app.ts";
import { nodeStore, type Postgres, startPostgres } from "../support/postgres.ts";
import { bin } from "../support/service.ts";

let pg: Postgres;
let dir: string;
let tokenSecret: string;
beforeAll(async () => {
  pg = await startPostgres({ port: 18705 });
  dir = await mkdtemp(join(tmpdir(), "distributary-migrate-"));
  const app = await makeTestApp(layerFile(dir));
  for (const [id, name] of [
    ["news", "News"],
    ["sport", "Sport"],
  ]) {
    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ id, name, rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort() }),
    });
    expect(created.status).toBe(201);
  }
  const token = await json(
    await app.request("/api/tokens", {
      method: "POST",
      body: JSON.stringify({ name: "ops", role: "operator" }),
    }),
  );
  tokenSecret = String(token.token);
  await app.close();
});
afterAll(async () => {
  await pg?.close();
  await rm(dir, { recursive: true, force: true });
});

const migrate = (...args: ReadonlyArray<string>) => execa(bin, ["migrate", ...args], { reject: false });
/** With the URL in the environment only, run where no configuration directory is (a Kubernetes Job). */
const migrateFromEnv = async (url: string) => {
  const empty = await mkdtemp(join(tmpdir(), "distributary-migrate-empty-"));
  try {
    return await execa(bin, ["migrate"], {
      reject: false,
      cwd: empty,
      env: { DISTRIBUTARY_DATABASE_URL: url, DISTRIBUTARY_CONFIG_DIR: join(empty, "config") },
      extendEnv: false,
    });
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
};

describe("distributary migrate", () => {
  it("imports a config directory, refuses to mix it with another, and replaces on --replace", async () => {
    const first = await migrate("--to", pg.url, "--config-dir", dir);
    expect(first.stderr).toBe("");
    expect(first.exitCode).toBe(0);
    expect(first.stdout).toContain("imported 2 channel(s) (News, Sport) and 1 token(s) (ops)");
    expect(first.stdout).toContain(`postgres://distributary:****@127.0.0.1:${pg.port}/distributary`);
    expect(first.stdout).toContain(`(schema version ${LATEST_VERSION})`);
    expect(first.stdout + first.stderr).not.toContain(pg.password);
    expect(await pg.admin("select id from channels order by position")).toEqual([
      { id: "news" },
      { id: "sport" },
    ]);
    expect(
      await pg.admin("select node, actor, action from audit where action = 'channel.create' order by id"),
    ).toEqual([
      { node: null, actor: "distributary migrate", action: "channel.create" },
      { node: null, actor: "distributary migrate", action: "channel.create" },
    ]);

    // A node on the database lists the channels, and the one-box token lets its holder in.
    const node = await makeTestApp(nodeStore(pg.url), undefined, {
      DISTRIBUTARY_NODE_ID: "a",
    });
    try {
      const listed = await node.request("/api/channels", { token: tokenSecret });
      expect(listed.status).toBe(200);
      expect(JSON.stringify(await json(listed))).toContain('"name":"Sport"');
    } finally {
      await node.close();
    }

    const again = await migrate("--to", pg.url, "--config-dir", dir);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toBe(
      "distributary migrate: the database already holds 2 channel(s) (News, Sport); nothing was imported. " +
        "Pass --replace to replace them with the directory's",
    );

    await pg.admin("update channels set body = jsonb_set(body, '{name}', '\"Changed\"') where id = 'news'");
    const replaced = await migrate("--to", pg.url, "--config-dir", dir, "--replace");
    expect(replaced.exitCode).toBe(0);
    expect(replaced.stdout).toContain("replaced 2 channel(s); imported 2 channel(s) (News, Sport)");
    expect(await pg.admin("select body->>'name' as name from channels order by position")).toEqual([
      { name: "News" },
      { name: "Sport" },
    ]);
  });

  it("with nothing to import and the URL from DISTRIBUTARY_DATABASE_URL, brings only the schema up to date", async () => {
    const other = "distributary_schema_only";
    await pg.admin(`drop database if exists ${other}`);
    await pg.admin(`create database ${other} owner distributary`);
    const url = pg.url.replace(/\/distributary$/, `/${other}`);
    const first = await migrateFromEnv(url);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stdout).toContain(`is at version ${LATEST_VERSION}; nothing imported`);
    expect(first.stdout + first.stderr).not.toContain(pg.password);
    const again = await migrateFromEnv(url);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toContain(`is at version ${LATEST_VERSION}`);
  });

  it("says in words what is wrong, never printing the password", async () => {
    const notUrl = await migrate("--to", "localhost", "--config-dir", dir);
    expect(notUrl.exitCode).toBe(1);
    expect(notUrl.stderr).toContain("--to (or DISTRIBUTARY_DATABASE_URL) needs the database's URL");

    const noConfig = await migrate("--to", pg.url, "--config-dir", join(dir, "missing"));
    expect(noConfig.exitCode).toBe(1);
    expect(noConfig.stderr).toContain(`there is no channels.json in ${join(dir, "missing")}`);

    const nobody = pg.url.replace(`:${pg.port}/`, ":18749/");
    const unreachable = await migrate("--to", nobody, "--config-dir", dir);
    expect(unreachable.exitCode).toBe(1);
    expect(unreachable.stderr).toContain("cannot be reached");
    expect(unreachable.stderr).toContain("****@127.0.0.1:18749");
    expect(unreachable.stdout + unreachable.stderr).not.toContain(pg.password);
  });
});
