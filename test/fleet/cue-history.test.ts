/**
 * With the PostgreSQL store, the cue history is the `cues` table: cues of a channel this node holds go there
 * (once a second) and a node that starts serves them again from there. The database
 * keeps each channel's last 100.
 */
import { createSocket } from "node:dgram";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { eventually, freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import { nodeStore, type Postgres, startPostgres } from "../support/postgres.ts";
import { chunkTs } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

let pg: Postgres;
let app: TestApp | undefined;
beforeAll(async () => {
  pg = await startPostgres({ port: 18706 });
});
afterEach(async () => {
  await app?.close();
  app = undefined;
});
afterAll(() => pg?.close());

const start = () => makeTestApp(nodeStore(pg.url), undefined, { DISTRIBUTARY_NODE_ID: "a" });
const cuesOf = async (test: TestApp, id: string) =>
  (await json(await test.request(`/api/channels/${id}/cues`))).cues as ReadonlyArray<{
    section_base64: string;
  }>;

describe("cue history in PostgreSQL", () => {
  it("is kept in the cues table and served again after a restart, the last 100 of a channel", async () => {
    const port = await freeUdpPort();
    app = await start();
    const first = app;
    expect(
      (
        await first.request("/api/channels", {
          method: "POST",
          body: JSON.stringify({ id: "cued", name: "Cued", rtp_ip: "127.0.0.1", rtp_port: port }),
        })
      ).status,
    ).toBe(201);
    expect((await first.request("/api/channels/cued/start", { method: "POST" })).status).toBe(200);
    const generator = new TsGenerator({ seed: 9, bitrate: 8_000_000 });
    for (let n = 0; n < 103; n += 1) generator.insertScte35(encodeSection(immediateSpliceOut(n)), 10 + n * 5);
    const socket = createSocket("udp4");
    for (const datagram of chunkTs(generator.packets(7 * 500))) {
      await new Promise<void>((resolve) => socket.send(datagram, port, "127.0.0.1", () => resolve()));
      await new Promise((resolve) => setImmediate(resolve));
    }
    socket.close();
    const seen = await eventually("103 cues seen, the last 100 served", async () => {
      const channel = await json(await first.request("/api/channels/cued"));
      return (channel.cues as { total: number }).total >= 103 ? cuesOf(first, "cued") : undefined;
    });
    expect(seen).toHaveLength(100);
    // Written by the history's own fiber, once a second: wait for the table.
    await eventually("the table to hold the last cue", async () => {
      const [last] = await pg.admin<{ section: string }>(
        "select record->>'section_base64' as section from cues order by id desc limit 1",
      );
      return last?.section === seen[99]?.section_base64 ? true : undefined;
    });
    expect(
      await pg.admin("select count(*)::int as n, min(node) as node from cues where channel = 'cued'"),
    ).toEqual([{ n: 100, node: null }]);
    await first.close();
    app = undefined;

    app = await start();
    expect(await cuesOf(app, "cued")).toEqual(seen);
  });
});
