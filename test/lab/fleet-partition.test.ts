/**
 * The holder cut off from the database, and only from it, again and again: 10 cuts of 2–9 s with the default
 * lease (6 s), then 10 with a 3 s lease, each of whatever node holds the channels then, drawn from a seeded
 * generator. Its peer reaches the database all along, so the cut node must never take the database for down
 * for all: it stops before its leases can pass to the standby, and no output ever hears both nodes at once
 * (fleet-analysis.ts `doubleSending`: datagrams from the two nodes interleaving). Each cut's report line
 * says what the cut node logged.
 *
 *   db, a, b, tx, rx on one bridge; PostgreSQL in db; a and b each a node
 */
import { expect, it } from "vitest";
import { clock, doubleSending } from "../support/fleet-analysis.ts";
import { useFleetLab } from "../support/fleet-lab.ts";
import {
  awaitHolder,
  awaitOnAir,
  createChannels,
  deleteChannels,
  inputsOf,
  leaseRows,
  logBetween,
  nowMs,
  pause,
  report,
} from "../support/fleet-scenario.ts";
import { cuedStream, newGenerator } from "../support/lab-channel.ts";
import { describeLab } from "../support/netlab.ts";
import { prng } from "../support/ts-generator.ts";

const DEFAULT_LEASE_MS = 6000;
const BITRATE = 300_000;
const CHANNELS = 2;
const CUTS = 10;
const SEED = 64;
const PAIR = () => ["a", "b"];

describeLab("the holder cut off from the database, 20 times", () => {
  const fleet = useFleetLab("h8p", { nodes: ["a", "b"], leaseMs: DEFAULT_LEASE_MS });

  /** Both nodes live by the database's clock: each has renewed its node lease. */
  const bothLive = async () => {
    const rows = await fleet.db.admin<{ live: boolean }>("select lease_until > now() as live from nodes");
    return rows.length === 2 && rows.every((row) => row.live);
  };

  const cutsWith = async (leaseMs: number, base: number) => {
    for (const node of fleet.nodes.values()) await node.stop();
    await fleet.startNodes(undefined, { DISTRIBUTARY_LEASE_MS: String(leaseMs) });
    const ports = Array.from({ length: CHANNELS }, (_, i) => 7000 + base + i);
    const receiver = await fleet.receiver(ports, false);
    const channels = await createChannels(fleet, fleet.node("a"), {
      name: `Cut ${leaseMs}`,
      count: CHANNELS,
      nodes: PAIR,
      inputBase: 5000 + base * 2,
      outputBase: 7000 + base,
    });
    const stream = cuedStream(newGenerator(SEED, BITRATE), BITRATE, 200);
    const sender = await fleet.send(
      `cuts-${leaseMs}`,
      stream.datagrams,
      stream.perMs,
      inputsOf(fleet, channels, PAIR),
    );
    const random = prng(SEED + leaseMs);
    const lines: string[] = [];
    try {
      const startedMs = nowMs();
      await awaitOnAir(receiver, ports, startedMs, { timeoutMs: 30_000 });
      for (let cut = 0; cut < CUTS; cut++) {
        // Whichever node holds the channels now is cut; the other reaches the database all along.
        const leases = await awaitHolder(fleet, channels.ids);
        const holder = fleet.node(leases.get(channels.ids[0] ?? "")?.holder ?? "a");
        const holdMs = 2000 + random() * 7000;
        const cutMs = nowMs();
        const impairment = await fleet.cutFromDatabase(holder);
        await pause(holdMs);
        await impairment.heal();
        const healedMs = nowMs();
        // Back to a quiet fleet before the next cut: both nodes renewing, every channel held and on air.
        await awaitHolder(fleet, channels.ids, undefined, 30_000);
        const deadline = nowMs() + 30_000;
        while (!(await bothLive().catch(() => false))) {
          if (nowMs() > deadline) throw new Error("the nodes did not both renew within 30 s of the heal");
          await pause(100);
        }
        await awaitOnAir(receiver, ports, healedMs, { count: 20, timeoutMs: 30_000 });
        const said = logBetween(holder, cutMs, nowMs())
          .map((line) => /"msg":"(fleet: [^"]*)"/.exec(line)?.[1])
          .filter(
            (message) => message !== undefined && /stopped sending|no peer can|sends again/.test(message),
          );
        lines.push(
          `  ${clock(cutMs)} ${holder.id} cut for ${Math.round(holdMs)} ms; it said: ${said.join(" | ") || "nothing"}`,
        );
      }
      const endMs = nowMs();
      const doubles = ports.flatMap((port) =>
        doubleSending(receiver.at(port).filter((a) => a.atMs >= startedMs && a.atMs <= endMs)).map(
          (stretch) =>
            `:${port} ${clock(stretch.atMs)}–${clock(stretch.untilMs)} (${Math.round(stretch.untilMs - stretch.atMs)} ms, ${stretch.sources.map((source) => fleet.names.get(source) ?? source).join("+")})`,
        ),
      );
      report(`Lease ${leaseMs} ms: ${CUTS} cuts of the holder from the database`, [
        ...lines,
        `  two senders at once: ${doubles.length === 0 ? "never" : doubles.join(", ")}`,
      ]);
      return doubles;
    } catch (error) {
      const leases = await leaseRows(fleet).catch(() => new Map());
      report(`Lease ${leaseMs} ms: cuts stopped`, [...lines, `  leases ${JSON.stringify([...leases])}`]);
      throw error;
    } finally {
      await sender.stop();
      await receiver.stop();
      await deleteChannels(fleet.node("a"), channels.ids).catch(() => undefined);
    }
  };

  it("10 cuts of 2–9 s with the default lease, 10 with a 3 s lease: never two nodes sending one output", async () => {
    const withDefault = await cutsWith(DEFAULT_LEASE_MS, 0);
    const withShort = await cutsWith(3000, 10);
    expect([...withDefault, ...withShort]).toEqual([]);
  }, 600_000);
});
