/**
 * The project's seeded fault schedule (`npm run chaos -- --seed N --minutes M`; CI runs it for a few minutes
 * with a fixed seed). PostgreSQL and three nodes, each in its own namespace (so nftables there cuts that node
 * alone from the database); twelve channels, each on all three nodes and fed by its own multicast group that
 * every node joins; an RTP output of each at the receiver. At the schedule's moments (test/support/chaos.ts) a
 * node is killed and started again, stopped (SIGSTOP) and continued, cut from the database and healed, every
 * node's database sessions are terminated, or PostgreSQL is restarted, while a client renames channels through
 * random nodes, one write at a time.
 *
 * It fails on any window in which two senders (address, source port and SSRC) delivered to one output, on any
 * acknowledged write missing or overwritten at the end, on a lease term held by two nodes or going back, and on
 * a channel not on air after 30 s of calm. The report gives each fault's off-air time per channel, the figures
 * per fault kind, the writes and the seed; with DISTRIBUTARY_CHAOS_REPORT it is also written to that file.
 *
 *   db, a, b, c, tx, rx on one bridge; PostgreSQL in db
 */
import { writeFile } from "node:fs/promises";
import { expect, it } from "vitest";
import {
  type DoubleWindow,
  doubleSenders,
  FAULT_KINDS,
  faultSchedule,
  lostWrites,
  offAirMs,
  type PlannedFault,
  type Write,
} from "../support/chaos.ts";
import { clock, longestSilence } from "../support/fleet-analysis.ts";
import { type FleetNode, useFleetLab } from "../support/fleet-lab.ts";
import { awaitOnAir, type Lease, leaseRows, nowMs, pause, report } from "../support/fleet-scenario.ts";
import { cuedStream, newGenerator } from "../support/lab-channel.ts";
import { describeLab } from "../support/netlab.ts";

const SEED = Number(process.env.DISTRIBUTARY_CHAOS_SEED ?? 20261128);
const MINUTES = Number(process.env.DISTRIBUTARY_CHAOS_MINUTES ?? 1.5);
const REPORT_FILE = process.env.DISTRIBUTARY_CHAOS_REPORT ?? "";
/** The service's default lease. */
const LEASE_MS = 6000;
const CALM_MS = 30_000;
const BITRATE = 300_000;
const CHANNELS = 12;
const NODES = ["a", "b", "c"];
const OUTPUT_BASE = 7000;
const groupOf = (i: number) => `239.18.1.${i + 1}`;
const inputPortOf = (i: number) => 5000 + 2 * i;

interface RunFault extends PlannedFault {
  startMs: number;
  endMs: number;
  note: string;
}

const quantile = (values: ReadonlyArray<number>, q: number) => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
};
const seconds = (ms: number) => (ms / 1000).toFixed(2);

describeLab("the seeded fault schedule over three nodes", () => {
  const fleet = useFleetLab("chs", { nodes: NODES, leaseMs: LEASE_MS });

  it(
    `seed ${SEED}, ${MINUTES} min: kills, stops, cuts from the database, backends terminated, PostgreSQL restarted; no two senders at an output, no acknowledged write lost, every channel on air after ${CALM_MS / 1000} s of calm`,
    async () => {
      await fleet.startNodes();
      const ports = Array.from({ length: CHANNELS }, (_, i) => OUTPUT_BASE + i);
      const receiver = await fleet.receiver(ports, false);
      const a = fleet.node("a");
      const ids: string[] = [];
      for (let i = 0; i < CHANNELS; i++) {
        // Every node may hold every channel; the first in each channel's order differs, so each node holds some.
        const order = [0, 1, 2].map((k) => NODES[(i + k) % 3] as string);
        const created = await a.api("/api/channels", {
          method: "POST",
          body: {
            name: `Chaos ${i + 1}`,
            rtp_ip: groupOf(i),
            rtp_port: inputPortOf(i),
            nodes: order,
            outputs: [
              { id: "rtp", name: "rx", protocol: "rtp", url: `rtp://${fleet.rxAddress}:${OUTPUT_BASE + i}` },
            ],
          },
        });
        expect(created.status, await created.clone().text()).toBe(201);
        const { id } = (await created.json()) as { id: string };
        const started = await a.api(`/api/channels/${id}/start`, { method: "POST" });
        expect(started.status, await started.clone().text()).toBe(200);
        ids.push(id);
      }
      const plan = faultSchedule(SEED, MINUTES, NODES, LEASE_MS);
      const runMs = MINUTES * 60_000 + CALM_MS + 60_000;
      const stream = cuedStream(newGenerator(SEED, BITRATE), BITRATE, runMs / 1000 + 30);
      const sender = await fleet.send(
        "chaos",
        stream.datagrams,
        stream.perMs,
        ids.map((_, i) => `${groupOf(i)}:${inputPortOf(i)}`),
      );
      const onAirMs = nowMs();
      await awaitOnAir(receiver, ports, onAirMs, { count: 20, timeoutMs: 30_000 });

      // The lease table every 200 ms: each (channel, term) seen with one holder only, and no term going back.
      const samples: Array<{ atMs: number; leases: ReadonlyMap<string, Lease> }> = [];
      let running = true;
      const sampler = (async () => {
        while (running) {
          const atMs = nowMs();
          const leases = await leaseRows(fleet).catch(() => undefined);
          if (leases !== undefined) samples.push({ atMs, leases });
          await pause(Math.max(0, 200 - (nowMs() - atMs)));
        }
      })();

      // The client: one rename at a time, through a node drawn at random (a stopped or dead one included).
      const writes: Write[] = [];
      let refused = 0;
      const writer = (async () => {
        let n = 0;
        while (running) {
          const i = n % CHANNELS;
          const node = fleet.node(NODES[(n * 7 + Math.floor(n / CHANNELS)) % 3] as string);
          const write: Write = {
            object: ids[i] as string,
            value: `Chaos ${i + 1} #${n}`,
            via: node.id,
            atMs: nowMs(),
            acknowledged: null,
          };
          writes.push(write);
          n++;
          try {
            const answer = await fetch(`${node.base}/api/channels/${write.object}`, {
              method: "PATCH",
              headers: { authorization: `Bearer ${fleet.token}`, "content-type": "application/json" },
              body: JSON.stringify({ name: write.value }),
              signal: AbortSignal.timeout(5000),
            });
            await answer.arrayBuffer();
            write.acknowledged = answer.status === 200;
            if (answer.status !== 200) refused++;
          } catch {
            // No answer (refused connection, a stopped node's time-out): the write may or may not have been made.
          }
          await pause(250);
        }
      })();

      const faults: RunFault[] = [];
      const chaosMs = nowMs();
      try {
        for (const planned of plan) {
          await pause(Math.max(0, chaosMs + planned.atMs - nowMs()));
          const fault: RunFault = { ...planned, startMs: nowMs(), endMs: 0, note: "" };
          faults.push(fault);
          const node: FleetNode | undefined = planned.node === null ? undefined : fleet.node(planned.node);
          if (fault.kind === "kill" && node !== undefined) {
            await node.kill();
            await pause(planned.holdMs);
            await node.start();
          } else if (fault.kind === "stop" && node !== undefined) {
            const pid = node.pid();
            if (pid === undefined) throw new Error(`node ${node.id} is not running`);
            process.kill(pid, "SIGSTOP");
            try {
              await pause(planned.holdMs);
            } finally {
              process.kill(pid, "SIGCONT");
            }
          } else if (fault.kind === "cut from the database" && node !== undefined) {
            const cut = await fleet.cutFromDatabase(node);
            await pause(planned.holdMs);
            await cut.heal();
          } else if (fault.kind === "backends terminated") {
            const ended = await fleet.db.admin<{ n: string }>(
              "select count(pg_terminate_backend(pid)) as n from pg_stat_activity where application_name = 'distributary'",
            );
            fault.note = `${ended[0]?.n ?? 0} sessions`;
          } else if (fault.kind === "PostgreSQL restarted") {
            await fleet.db.stop({ mode: "immediate" });
            await pause(planned.holdMs);
            await fleet.db.start();
          }
          fault.endMs = nowMs();
        }
        const calmFromMs = Math.max(nowMs(), ...faults.map((fault) => fault.endMs));
        await pause(calmFromMs + CALM_MS - nowMs());
        // On air after the calm: every output keeps coming for the next 5 s, no gap over half a second.
        const checkFromMs = nowMs();
        await pause(5000);
        running = false;
        await Promise.all([sampler, writer]);
        const endMs = nowMs();

        // The final names, as every node answers them once they agree.
        const finals = new Map<string, string | undefined>();
        let disagreeing: string[] = [];
        const deadline = nowMs() + 15_000;
        do {
          disagreeing = [];
          for (const id of ids) {
            const names = await Promise.all(
              NODES.map(async (name) => {
                const answer = await fleet.node(name).api(`/api/channels/${id}`);
                return answer.status === 200 ? ((await answer.json()) as { name: string }).name : undefined;
              }),
            );
            finals.set(id, names[0]);
            if (new Set(names).size !== 1) disagreeing.push(`${id}: ${names.join(" / ")}`);
          }
          if (disagreeing.length > 0) await pause(500);
        } while (disagreeing.length > 0 && nowMs() < deadline);
        const lost = lostWrites(writes, finals);

        // Per fault: each channel's time off air from the fault to the next one (or the calm's end), and windows
        // of two senders.
        const doubles = ports.map((port) =>
          doubleSenders(receiver.at(port).filter((x) => x.atMs >= onAirMs && x.atMs <= endMs)),
        );
        const perFault = faults.map((fault, k) => {
          const untilMs = faults[k + 1]?.startMs ?? checkFromMs;
          const off = ports.map((port) => offAirMs(receiver.at(port), fault.startMs, untilMs));
          const windows = doubles.flatMap((list, i) =>
            list
              .filter((w) => w.atMs >= fault.startMs && w.atMs < untilMs)
              .map((w) => ({ channel: i + 1, window: w })),
          );
          return { fault, off, windows };
        });
        const settled = ports.map((port) =>
          longestSilence(
            receiver.at(port).filter((x) => x.atMs >= checkFromMs),
            { fromMs: checkFromMs, untilMs: endMs },
          ),
        );
        // Terms and holders, channel by channel, over every sample.
        const leaseProblems: string[] = [];
        const holderOfTerm = new Map<string, string>();
        const lastTerm = new Map<string, number>();
        for (const { atMs, leases } of samples)
          for (const id of ids) {
            const lease = leases.get(id);
            if (lease === undefined) continue;
            if (lease.term < (lastTerm.get(id) ?? 0))
              leaseProblems.push(
                `${clock(atMs)}: ${id}'s term went back from ${lastTerm.get(id)} to ${lease.term}`,
              );
            lastTerm.set(id, lease.term);
            const seen = holderOfTerm.get(`${id}@${lease.term}`);
            if (lease.holder !== null && seen !== undefined && seen !== lease.holder)
              leaseProblems.push(
                `${clock(atMs)}: ${id} term ${lease.term} held by ${seen} and by ${lease.holder}`,
              );
            if (lease.holder !== null) holderOfTerm.set(`${id}@${lease.term}`, lease.holder);
          }

        const names = (w: DoubleWindow) =>
          w.senders
            .map((sender) => `${fleet.names.get(sender.split(":")[0] ?? "") ?? "?"} ${sender}`)
            .join(" + ");
        const byKind = FAULT_KINDS.map((kind) => {
          const of = perFault.filter((p) => p.fault.kind === kind);
          const offs = of.flatMap((p) => p.off);
          return (
            `| ${kind} | ${of.length} | ${seconds(quantile(offs, 0.5))} | ${seconds(quantile(offs, 0.95))} | ` +
            `${seconds(Math.max(0, ...offs))} | ${of.reduce((sum, p) => sum + p.windows.length, 0)} |`
          );
        });
        const acked = writes.filter((w) => w.acknowledged === true).length;
        const unanswered = writes.filter((w) => w.acknowledged === null).length;
        const lines = [
          `Replay: \`npm run chaos -- --seed ${SEED} --minutes ${MINUTES}\`. Three nodes, lease ${LEASE_MS} ms, ${CHANNELS} channels on multicast inputs every node receives, ${seconds(endMs - chaosMs)} s from the first fault to the end.`,
          "",
          "| fault | count | off air per channel, p50 (s) | p95 (s) | max (s) | windows of two senders |",
          "| --- | --- | --- | --- | --- | --- |",
          ...byKind,
          "",
          `Writes: ${writes.length} renames through random nodes, ${acked} acknowledged, ${refused} refused in words, ${unanswered} unanswered; ${lost.length} acknowledged writes lost or overwritten${lost.length === 0 ? "" : `: ${lost.map((l) => `${l.object} ${l.kind} (expected "${l.expected}", found "${l.found}")`).join("; ")}`}.`,
          `Lease table: ${samples.length} samples, ${leaseProblems.length} problems${leaseProblems.length === 0 ? "" : `: ${leaseProblems.slice(0, 5).join("; ")}`}.`,
          `After ${CALM_MS / 1000} s of calm: longest silence per channel ${settled.map((s) => Math.round(s.ms)).join(", ")} ms.${disagreeing.length === 0 ? "" : ` Nodes disagreeing on names: ${disagreeing.join("; ")}.`}`,
          "",
          "| at | fault | node | held (s) | off air per channel (s) | windows of two senders |",
          "| --- | --- | --- | --- | --- | --- |",
          ...perFault.map(
            ({ fault, off, windows }) =>
              `| ${clock(fault.startMs)} | ${fault.kind}${fault.note === "" ? "" : ` (${fault.note})`} | ${fault.node ?? "–"} | ` +
              `${seconds(fault.endMs - fault.startMs)} | ${off.map(seconds).join(" ")} | ` +
              `${windows.length === 0 ? "none" : windows.map(({ channel, window }) => `ch ${channel} ${clock(window.atMs)}–${clock(window.untilMs)} (${names(window)})`).join("; ")} |`,
          ),
        ];
        report(`Chaos: seed ${SEED}, ${faults.length} faults in ${MINUTES} min`, lines);
        if (REPORT_FILE !== "")
          await writeFile(
            REPORT_FILE,
            `# Chaos run: seed ${SEED}, ${MINUTES} minutes, ${new Date(chaosMs).toISOString()}\n\n${lines.join("\n")}\n`,
          );

        expect(faults.length).toBe(plan.length);
        expect(
          doubles.flatMap((list, i) => list.map((w) => `channel ${i + 1}: ${clock(w.atMs)} ${names(w)}`)),
        ).toEqual([]);
        expect(lost).toEqual([]);
        expect(acked).toBeGreaterThan(writes.length / 2);
        expect(leaseProblems).toEqual([]);
        expect(disagreeing).toEqual([]);
        for (const [i, silence] of settled.entries())
          expect(silence.ms, `channel ${i + 1} after the calm`).toBeLessThanOrEqual(500);
      } finally {
        running = false;
        await Promise.all([sampler, writer]);
        await sender.stop();
        await receiver.stop();
      }
    },
    MINUTES * 60_000 + 300_000,
  );
});
