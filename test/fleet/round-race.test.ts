/**
 * A node's round and its takes run side by side, on connections of their own: a lease taken while a round is
 * under way is missing from what that round read, for the round's statement saw the database as it was before
 * the take. Such a round must not read the lease as passed to another node (the start-up loss: a node that took
 * its channels while its round was in flight dropped one, and took it again a pass later).
 *
 * The round is held up where it would be by a loaded machine: its node row is locked by another session, so
 * its statement waits with the snapshot it began with, while the node takes a new channel's lease.
 */
import { describe, expect, it } from "vitest";
import { eventually, freeUdpPort } from "../support/app.ts";
import { useFleetNodes } from "../support/fleet-nodes.ts";

const fleet = useFleetNodes({
  dbPort: 24853,
  ports: { a: 24805 },
  env: { DISTRIBUTARY_LEASE_MS: "6000", DISTRIBUTARY_THUMBNAILS: "off" },
});

describe("a lease taken while a round is under way", () => {
  it("is kept: the round does not read it as passed to another node", async () => {
    await fleet.start("a");
    await fleet.until("node a joined", async () => (await fleet.api("a", "/api/ready")).status === 200);
    const lock = await fleet.pg().session();
    try {
      await lock.query("begin");
      await lock.query("select 1 from nodes where id = 'a' for update");
      // a's next round waits on the row, its snapshot taken.
      await eventually(
        "a's round waiting on its node row",
        async () =>
          (
            await fleet
              .pg()
              .admin(
                "select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like 'with beat%'",
              )
          )[0],
        10_000,
      );
      const body = JSON.stringify({
        id: "c0",
        name: "Channel 0",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        nodes: ["a"],
      });
      expect((await fleet.api("a", "/api/channels", { method: "POST", body })).status).toBe(201);
      expect((await fleet.api("a", "/api/channels/c0/start", { method: "POST" })).status).toBe(200);
      await fleet.until("a holds c0", async () =>
        fleet.process("a").output().includes("holds channel c0 (term 1)"),
      );
    } finally {
      await lock.query("commit").catch(() => undefined);
      await lock.end();
    }
    const released = (await fleet.pg().admin<{ now: Date }>("select now()"))[0]?.now;
    // The round after the one held up has been read: the held-up one was answered before it.
    await fleet.until("a's next round", async () => {
      const [row] = await fleet
        .pg()
        .admin<{ after: boolean }>("select heartbeat_at > $1 as after from nodes where id = 'a'", [released]);
      return row?.after === true;
    });
    const said = fleet
      .process("a")
      .output()
      .split("\n")
      .filter((line) => /node a (holds|no longer sends) channel c0/.test(line))
      .map((line) => /"msg":"([^"]*)"/.exec(line)?.[1] ?? line);
    expect(said).toEqual(["fleet: node a holds channel c0 (term 1)"]);
    const [lease] = await fleet.pg().admin("select holder, term from leases where channel = 'c0'");
    expect(lease).toEqual({ holder: "a", term: "1" });
  }, 60_000);
});
