/**
 * A bounded chaos run: three nodes, 30 channels each received by two of them (a+b, b+c, c+a), and for about 60 s
 * one fault after another (about ten, each held 3–7 s, 0.5–1.5 s apart), drawn from a seeded generator: a node
 * killed (and started again), cut off from the database, or cut off from everything. The lease table, sampled
 * every 100 ms, never shows two holders for one term of a channel nor a term going back; within the lease time +
 * 2 s of the last fault every channel is on air at the receiver. The report lists the faults and each channel's
 * longest silence and handovers.
 *
 *   db, a, b, c, tx, rx on one bridge; PostgreSQL in db
 */
import { expect, it } from "vitest";
import { clock, doubleSending, handovers, longestSilence } from "../support/fleet-analysis.ts";
import { type FleetNode, useFleetLab } from "../support/fleet-lab.ts";
import {
  awaitOnAir,
  createChannels,
  inputsOf,
  type Lease,
  leaseRows,
  nowMs,
  pause,
  report,
} from "../support/fleet-scenario.ts";
import { cuedStream, newGenerator } from "../support/lab-channel.ts";
import { describeLab } from "../support/netlab.ts";
import { prng } from "../support/ts-generator.ts";

const LEASE_MS = 3000;
const BITRATE = 300_000;
const CHANNELS = 30;
const CHAOS_MS = 60_000;
const SEED = 29;
const PAIRS = [
  ["a", "b"],
  ["b", "c"],
  ["c", "a"],
];
const pairOf = (index: number) => PAIRS[index % 3] as ReadonlyArray<string>;

interface Fault {
  readonly kind: "kill" | "cut from the database" | "cut off from everything";
  readonly node: string;
  readonly startMs: number;
  endMs: number;
}

describeLab("a bounded chaos run over three nodes and 30 channels", () => {
  const fleet = useFleetLab("flc", { nodes: ["a", "b", "c"], leaseMs: LEASE_MS });

  it("seeded kills and partitions: one holder per term of each channel at every sample, terms only grow, every channel on air within the lease time + 2 s of the last fault", async () => {
    await fleet.startNodes();
    const a = fleet.node("a");
    const ports = Array.from({ length: CHANNELS }, (_, i) => 7000 + i);
    const receiver = await fleet.receiver(ports, false);
    const channels = await createChannels(fleet, a, {
      name: "Chaos",
      count: CHANNELS,
      nodes: pairOf,
      inputBase: 5000,
      outputBase: 7000,
    });
    const stream = cuedStream(newGenerator(SEED, BITRATE), BITRATE, CHAOS_MS / 1000 + 50);
    const sender = await fleet.send(
      "chaos",
      stream.datagrams,
      stream.perMs,
      inputsOf(fleet, channels, pairOf),
    );
    const startedMs = nowMs();
    await awaitOnAir(receiver, ports, startedMs, { count: 30, timeoutMs: 30_000 });

    // The lease table every 100 ms: each (channel, term) seen with one holder only, and no term going back.
    const samples: Array<{ atMs: number; leases: ReadonlyMap<string, Lease> }> = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const atMs = nowMs();
        const leases = await leaseRows(fleet).catch(() => undefined);
        if (leases !== undefined) samples.push({ atMs, leases });
        await pause(Math.max(0, 100 - (nowMs() - atMs)));
      }
    })();

    const random = prng(SEED);
    const pick = <A>(items: ReadonlyArray<A>) => items[Math.floor(random() * items.length)] as A;
    const faults: Fault[] = [];
    const chaosMs = nowMs();
    try {
      while (nowMs() - chaosMs < CHAOS_MS) {
        const node: FleetNode = fleet.node(pick(["a", "b", "c"]));
        const kind = pick<Fault["kind"]>(["kill", "cut from the database", "cut off from everything"]);
        const fault: Fault = { kind, node: node.id, startMs: nowMs(), endMs: 0 };
        faults.push(fault);
        const holdMs = 3000 + random() * 4000;
        if (kind === "kill") {
          await node.kill();
          await pause(holdMs);
          await node.start();
        } else {
          const cut =
            kind === "cut from the database" ? await fleet.cutFromDatabase(node) : await fleet.isolate(node);
          await pause(holdMs);
          await cut.heal();
        }
        fault.endMs = nowMs();
        await pause(500 + random() * 1000);
      }
      const last = faults.at(-1) as Fault;
      const deadlineMs = last.startMs + LEASE_MS + 2000;
      await pause(Math.max(deadlineMs, last.endMs) + 3000 - nowMs());
      const endMs = nowMs();
      sampling = false;
      await sampler;

      // Terms and holders, channel by channel, over every sample.
      const problems: string[] = [];
      const holderOfTerm = new Map<string, string | null>();
      const lastTerm = new Map<string, number>();
      let withoutHolder = 0;
      for (const { atMs, leases } of samples)
        for (const id of channels.ids) {
          const lease = leases.get(id);
          if (lease === undefined) {
            problems.push(`${clock(atMs)}: no lease row for ${id}`);
            continue;
          }
          if (lease.holder === null || !lease.live) withoutHolder++;
          if (lease.term < (lastTerm.get(id) ?? 0))
            problems.push(`${clock(atMs)}: ${id}'s term went back from ${lastTerm.get(id)} to ${lease.term}`);
          lastTerm.set(id, lease.term);
          const key = `${id}@${lease.term}`;
          const seen = holderOfTerm.get(key);
          if (lease.holder !== null && seen !== undefined && seen !== null && seen !== lease.holder)
            problems.push(`${clock(atMs)}: ${id} term ${lease.term} held by ${seen} and by ${lease.holder}`);
          if (lease.holder !== null) holderOfTerm.set(key, lease.holder);
        }

      const perChannel = ports.map((port, i) => {
        const arrivals = receiver
          .at(port)
          .filter((arrival) => arrival.atMs >= chaosMs && arrival.atMs <= endMs);
        const settled = arrivals.filter((arrival) => arrival.atMs >= deadlineMs);
        return {
          name: `Chaos ${i + 1} (${pairOf(i).join("+")})`,
          longest: longestSilence(arrivals, { fromMs: chaosMs, untilMs: endMs }),
          afterDeadline: longestSilence(settled, { fromMs: deadlineMs, untilMs: endMs }).ms,
          handovers: handovers(arrivals).length,
          doubles: doubleSending(arrivals).map(
            (stretch) =>
              `${clock(stretch.atMs)}–${clock(stretch.untilMs)} (${stretch.sources.map((source) => fleet.names.get(source) ?? source).join("+")})`,
          ),
          term: lastTerm.get(channels.ids[i] ?? "") ?? 0,
        };
      });
      report(
        `Chaos: seed ${SEED}, ${faults.length} faults in ${Math.round((endMs - chaosMs) / 1000)} s, ${samples.length} samples of the lease table (${withoutHolder} channel-samples without a live holder)`,
        [
          ...faults.map(
            (fault) =>
              `  ${clock(fault.startMs)} ${fault.kind} ${fault.node} for ${Math.round(fault.endMs - fault.startMs)} ms`,
          ),
          ...perChannel.map(
            (channel) =>
              `  ${channel.name}: longest silence ${Math.round(channel.longest.ms)} ms (${clock(channel.longest.fromMs)} → ${clock(channel.longest.toMs)}), ${Math.round(channel.afterDeadline)} ms after ${clock(deadlineMs)}; ` +
              `${channel.handovers} handovers, double sending ${channel.doubles.length === 0 ? "none" : channel.doubles.join(", ")}, term ${channel.term}`,
          ),
          ...problems.slice(0, 10).map((problem) => `  PROBLEM ${problem}`),
        ],
      );
      expect(problems).toEqual([]);
      expect(samples.length).toBeGreaterThan(CHAOS_MS / 200);
      // On air from the deadline on: nothing silent for more than half a second (a datagram every 35 ms).
      for (const channel of perChannel) expect(channel.afterDeadline, channel.name).toBeLessThanOrEqual(500);
    } finally {
      sampling = false;
      await sampler;
      await sender.stop();
      await receiver.stop();
    }
  }, 300_000);
});
