/**
 * ConfigState.reload and Auth.reload: a node takes what another node stored as current, learning the new
 * outputs' secrets and forgetting a revoked token; StoreChanges tells it when; the audit trail reads back
 * what node a did. Nodes without an admin of their own that start together on an empty store make one first
 * admin between them.
 */
import { ConfigProvider, Effect, Layer, ManagedRuntime, Option, Stream } from "effect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConfigState } from "../../src/effects/config/config-state.ts";
import { auditTrail } from "../../src/effects/config/postgres/audit.ts";
import { Database } from "../../src/effects/config/postgres/database.ts";
import { holdSecretsOf, maskKnownSecrets } from "../../src/effects/config/secrets.ts";
import { StoreChanges } from "../../src/effects/config/store-changes.ts";
import { Auth } from "../../src/effects/control/auth.ts";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { ADMIN_TOKEN, eventually, freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";
import { nodeStore, type Postgres, startPostgres } from "../support/postgres.ts";

let pg: Postgres;
beforeAll(async () => {
  pg = await startPostgres({ port: 18707 });
});
afterAll(() => pg?.close());

const runtimes: Array<{ readonly dispose: () => Promise<void> }> = [];
const apps: TestApp[] = [];
/** Node `id` as its Auth and ConfigState see it, with `adminToken` as its variable (null: none). */
const node = (id: string, adminToken: string | null = ADMIN_TOKEN) => {
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(ConfigState.Default, Auth.Default).pipe(
      Layer.provideMerge(Layer.merge(EventBus.Default, nodeStore(pg.url))),
      Layer.provide(
        Layer.setConfigProvider(
          ConfigProvider.fromMap(
            new Map([
              ["DISTRIBUTARY_NODE_ID", id],
              ...(adminToken === null ? [] : [["DISTRIBUTARY_ADMIN_TOKEN", adminToken] as const]),
            ]),
          ),
        ),
      ),
    ),
  );
  runtimes.push(runtime);
  return runtime;
};
afterEach(async () => {
  await Promise.all(
    [...runtimes.splice(0), ...apps.splice(0).map((app) => ({ dispose: app.close }))].map((r) => r.dispose()),
  );
});

const streamKey = "live_reload_key_8f3a91c2";

describe("reload", () => {
  it("takes another node's stored change as current, with its secrets, and its tokens", async () => {
    const b = node("b");
    await b.runPromise(Effect.flatMap(ConfigState, (configs) => Effect.sync(() => configs.current())));
    const heard = b.runPromise(
      Effect.flatMap(StoreChanges, (changes) =>
        Stream.runHead(
          Stream.filter(changes.changes, (notice) => "document" in notice && notice.node === "a"),
        ),
      ).pipe(Effect.timeout("10 seconds")),
    );
    const a = await makeTestApp(nodeStore(pg.url), undefined, {
      DISTRIBUTARY_NODE_ID: "a",
    });
    apps.push(a);
    const created = await a.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "r1",
        name: "Reloaded",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        outputs: [{ name: "CDN", protocol: "rtmp", url: `rtmp://cdn.example.com/live/${streamKey}` }],
      }),
    });
    expect(created.status).toBe(201);
    const stored = (await json(
      await a.request("/api/tokens", {
        method: "POST",
        body: JSON.stringify({ name: "ops", role: "operator" }),
      }),
    )) as { id: string; token: string };
    expect(Option.isSome(await heard)).toBe(true);

    // Both nodes share this process's masker: forget what node a taught it, so b's reload must teach it again.
    holdSecretsOf("config:", new Map());
    expect(maskKnownSecrets(`pushing to ${streamKey}`)).toBe(`pushing to ${streamKey}`);
    const { previous, current } = await b.runPromise(
      Effect.flatMap(ConfigState, (configs) => configs.locked(configs.reload)),
    );
    expect(previous.channels).toEqual([]);
    expect(current.channels.map((c) => c.name)).toEqual(["Reloaded"]);
    expect(maskKnownSecrets(`pushing to ${streamKey}`)).toBe("pushing to ****");

    const tokens = await b.runPromise(Effect.flatMap(Auth, (auth) => auth.reload));
    expect(tokens.current.map((token) => token.name)).toContain("ops");
    expect(
      Option.isSome(await b.runPromise(Effect.map(Auth, (auth) => auth.authenticate(stored.token)))),
    ).toBe(true);
    expect((await a.request(`/api/tokens/${stored.id}`, { method: "DELETE" })).status).toBeLessThan(300);
    await b.runPromise(Effect.flatMap(Auth, (auth) => auth.reload));
    expect(
      Option.isNone(await b.runPromise(Effect.map(Auth, (auth) => auth.authenticate(stored.token)))),
    ).toBe(true);

    const trail = await b.runPromise(Effect.flatMap(Database, (db) => auditTrail(db, 2)));
    expect(trail.map((entry) => [entry.node, entry.action])).toEqual([
      ["a", "token.revoke"],
      ["a", "token.create"],
    ]);
    expect(trail[0]?.detail).toBe(`token ops (${stored.id}) revoked`);

    // The database's password and the fleet's peer token are known to the masker too.
    const [peer] = await pg.admin<{ value: string }>("select value from cluster where key = 'peer_token'");
    expect(maskKnownSecrets(`${pg.password} ${peer?.value}`)).toBe("**** ****");
  });

  it("makes one first admin when nodes without the variable start together on an empty store", async () => {
    await pg.dropAndCreate();
    const schema = ManagedRuntime.make(nodeStore(pg.url, { node: null }));
    await schema.runPromise(Effect.void);
    await schema.dispose();
    // Both nodes read the empty token list; neither may write until both have: the race, every time.
    const blocker = await pg.session();
    await blocker.query("begin");
    await blocker.query("lock table tokens in exclusive mode");
    const nodes = [node("x", null), node("y", null)];
    const secrets = nodes.map((runtime) =>
      runtime.runPromise(Effect.map(Auth, (auth) => auth.takeFirstStartSecret())),
    );
    await eventually("both nodes to wait to write", async () => {
      const [waiting] = await pg.admin<{ count: string }>(
        "select count(*) from pg_locks where relation = 'tokens'::regclass and not granted",
      );
      return Number(waiting?.count) === 2 ? true : undefined;
    });
    await blocker.query("commit");
    await blocker.end();

    const made = (await Promise.all(secrets)).filter((secret) => secret !== null);
    expect(made).toHaveLength(1);
    expect(await pg.admin("select id from tokens")).toEqual([{ id: "first-admin" }]);
    for (const runtime of nodes) {
      await runtime.runPromise(Effect.flatMap(Auth, (auth) => auth.reload));
      const principal = await runtime.runPromise(
        Effect.map(Auth, (auth) => auth.authenticate(made[0] ?? "")),
      );
      expect(Option.map(principal, (p) => p.role)).toEqual(Option.some("admin"));
    }
  });
});
