/**
 * A node of this release does not write what a live node of an older release cannot read: such a node refuses
 * the whole stored configuration once one channel holds it, and applies no change after (what the fleet roll,
 * test/lab/fleet-roll.test.ts, found with an IPv6 output written through a new node). The older node is a row
 * of `nodes` with a running node lease and no `node_reads` row, as a node of the previous release leaves.
 */
import { describe, expect, it } from "vitest";
import { newReads } from "../../src/domain/channel/config-reads.ts";
import { useFleetNodes } from "../support/fleet-nodes.ts";

const fleet = useFleetNodes({ dbPort: 22_720, ports: { a: 22_721, b: 22_722 } });

const channel = (id: string, urls: ReadonlyArray<string>) =>
  ({
    id,
    name: id,
    outputs: urls.map((url, i) => ({ id: `o${i}`, url })),
  }) as never;

describe("what only this release reads", () => {
  it("is named when a change adds it, and not when it was there before", () => {
    const before = [channel("news", ["udp://10.0.0.1:5000"])];
    const after = [channel("news", ["udp://10.0.0.1:5000", "udp://[fd00::1]:5000"])];
    expect(newReads(before, after)).toEqual([
      {
        read: "ipv6_destinations",
        what: "channel news's output o1: an IPv6 address in a URL ([address]:port)",
      },
    ]);
    expect(newReads(after, after)).toEqual([]);
    expect(newReads([], [channel("x", ["srt://[2001:db8::1]:9000?mode=caller"])])).toHaveLength(1);
    expect(newReads([], [channel("x", ["srt://user@host:9000", "rtmp://a.example/live/key"])])).toEqual([]);
  });
});

describe("a node of this release beside one of an older release", () => {
  it("refuses an IPv6 output in words while the older node is live; accepts it once every node reads it", async () => {
    await Promise.all([fleet.start("a"), fleet.start("b")]);
    await fleet.pg().admin(
      `insert into nodes (id, url, boot_id, version, started_at, heartbeat_at, lease_until)
       values ('old', 'http://127.0.0.1:9', 'boot-old', '0.1.0', now(), now(), now() + interval '1 hour')`,
    );
    const created = await fleet.api("a", "/api/channels", {
      method: "POST",
      body: JSON.stringify({
        name: "ipv6 later",
        rtp_ip: "127.0.0.1",
        rtp_port: 22_723,
        nodes: ["a"],
        outputs: [],
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const add = (output: string, url: string) =>
      fleet.api("a", `/api/channels/${id}/outputs`, {
        method: "POST",
        body: JSON.stringify({ id: output, name: output, protocol: "udp", url }),
      });

    const refused = await add("v6", "udp://[fd00::65]:5000");
    const words = await refused.text();
    console.log(`an IPv6 output beside a node of an older release: ${refused.status} ${words}`);
    expect(refused.status).toBe(409);
    expect(refused.headers.get("content-type")).toContain("application/problem+json");
    expect(words).toContain("node old of the fleet runs an older release, which cannot read");
    expect(words).toContain("Upgrade every node first");
    // b, of this release, said what it reads: it is not named.
    expect(words).not.toMatch(/node [^"]*\bb\b[^"]* of the fleet/);
    // What the older node reads is written as ever.
    expect((await add("v4", "udp://127.0.0.1:5000")).status).toBe(201);

    // The older node upgraded (its row now says what it reads): the same change is taken.
    await fleet.pg().admin(`insert into node_reads (node, reads) values ('old', '["ipv6_destinations"]')`);
    expect((await add("v6", "udp://[fd00::65]:5000")).status).toBe(201);
  }, 120_000);
});
