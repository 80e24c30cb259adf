/**
 * Two nodes started together, again and again, as a fleet's hosts come up after maintenance: each start, every
 * channel is taken once by a node that keeps it — no node loses a channel it had just taken ("its lease passed
 * to another node"), and no channel is taken from a node whose process is there ("holder_gone"). A node that
 * took leases before its port accepted connections lost them to a peer that probed it meanwhile and found it
 * refused, the sign of a process gone; and a node whose round was sent just before it took a lease read the
 * lease as lost (the round's statement saw the rows from before the take: round-race.test.ts).
 *
 * START_LOOP starts (5 by default, as CI runs it; `scripts/start-loop.sh` runs 50).
 */
import { describe, expect, it } from "vitest";
import { eventually, freeUdpPort } from "../support/app.ts";
import { useFleetNodes } from "../support/fleet-nodes.ts";

const STARTS = Number(process.env.START_LOOP ?? 5);
const CHANNELS = 4;
const fleet = useFleetNodes({
  dbPort: 24852,
  ports: { a: 24803, b: 24804 },
  env: { DISTRIBUTARY_LEASE_MS: "3000", DISTRIBUTARY_THUMBNAILS: "off" },
});

const stop = async (id: string) => {
  const node = fleet.process(id);
  if (node.process.exitCode !== null || node.process.signalCode !== null) return;
  node.process.kill("SIGTERM");
  await node.exited;
};

/** Every channel held by a node whose lease runs, by the database: holder and term. */
const heldByLive = async () => {
  const rows = await fleet
    .pg()
    .admin<{ channel: string; holder: string | null; term: string; live: boolean }>(
      `select l.channel, l.holder, l.term, exists (select 1 from nodes n where n.id = l.holder
       and n.boot_id = l.holder_boot and n.lease_until > now()) as live from leases l order by l.channel`,
    );
  return rows.length === CHANNELS && rows.every((row) => row.live) ? rows : undefined;
};

/** Until both nodes have run `rounds` more rounds: each round beats the node's heartbeat in the database. */
const roundsPass = async (rounds: number) => {
  for (let round = 1; round <= rounds; round++) {
    const [since] = await fleet.pg().admin<{ at: string }>("select now()::text as at");
    await eventually(
      `round ${round} of both nodes`,
      async () => {
        const beat = await fleet
          .pg()
          .admin("select id from nodes where id in ('a', 'b') and heartbeat_at > $1", [since?.at]);
        return beat.length === 2 ? true : undefined;
      },
      20_000,
    );
  }
};

describe(`two nodes started together ${STARTS} times`, () => {
  it(
    "no start loses a channel a node took",
    async () => {
      await fleet.start("a");
      await fleet.start("b");
      for (let i = 0; i < CHANNELS; i++) {
        const body = JSON.stringify({
          id: `c${i}`,
          name: `Channel ${i}`,
          rtp_ip: "127.0.0.1",
          rtp_port: await freeUdpPort(),
          nodes: i % 2 === 0 ? ["a", "b"] : ["b", "a"],
        });
        expect((await fleet.api("a", "/api/channels", { method: "POST", body })).status).toBe(201);
        expect((await fleet.api("a", `/api/channels/c${i}/start`, { method: "POST" })).status).toBe(200);
      }
      const losses: string[] = [];
      for (let start = 1; start <= STARTS; start++) {
        await Promise.all([stop("a"), stop("b")]);
        await Promise.all([fleet.start("a"), fleet.start("b")]);
        const held = await eventually("every channel held", heldByLive, 20_000);
        // Two rounds more of each node: a peer that was going to take a channel over has done it by then.
        await roundsPass(2);
        for (const id of ["a", "b"]) {
          const lines = fleet
            .process(id)
            .output()
            .split("\n")
            .filter((line) => /its lease passed to another node|holder_gone/.test(line));
          for (const line of lines) {
            losses.push(`start ${start}, node ${id}: ${/"msg":"([^"]*)"/.exec(line)?.[1] ?? line}`);
            // What the nodes said of that channel meanwhile, for whoever reads the failure.
            const channel = / channel (c\d+)/.exec(line)?.[1];
            for (const other of ["a", "b"])
              for (const said of fleet.process(other).output().split("\n"))
                if (channel !== undefined && said.includes(`channel ${channel} `))
                  losses.push(`    ${other}: ${/"msg":"([^"]*)"/.exec(said)?.[1] ?? said}`);
          }
        }
        expect(held.length).toBe(CHANNELS);
      }
      if (losses.length > 0) console.log(["Channels lost at a start:", ...losses].join("\n  "));
      expect(losses).toEqual([]);
    },
    60_000 + STARTS * 30_000,
  );
});
