/**
 * A second process started with a live node's id (a unit started twice, a restart script that does not wait):
 * on the node's own port, and on another port, where binding it would not have stopped it. Each is refused
 * before it registers — exit code 3, and a line that says another process runs as the node — and the live
 * node is not disturbed: its boot id and terms stay, and every output carries the stream, byte for byte, from
 * the live node alone.
 *
 *   db, a, b, tx, rx on one bridge; PostgreSQL in db; the duplicates run in a's namespace
 */
import { join } from "node:path";
import { expect, it } from "vitest";
import { continuation, handovers } from "../support/fleet-analysis.ts";
import { useFleetLab } from "../support/fleet-lab.ts";
import { leaseRows, nowMs, pause, report } from "../support/fleet-scenario.ts";
import { twoNodeScenarios } from "../support/fleet-two-nodes.ts";
import { describeLab } from "../support/netlab.ts";
import { spawnService } from "../support/service.ts";

const LEASE_MS = 3000;

describeLab("a second process with a live node's id", () => {
  const fleet = useFleetLab("h8d", { nodes: ["a", "b"], leaseMs: LEASE_MS });
  const { nodesWith, onAirFromA, stopAll, stream, index } = twoNodeScenarios(fleet);

  it("refused before it registers, on the node's port and on another; the live node's outputs unbroken, byte for byte", async () => {
    await nodesWith({});
    const a = fleet.node("a");
    const run = await onAirFromA("Twice", 0, 2);
    try {
      const bootOf = async () =>
        (await fleet.db.admin<{ boot_id: string }>("select boot_id from nodes where id = 'a'"))[0]?.boot_id;
      const bootBefore = await bootOf();
      const leasesBefore = await leaseRows(fleet);
      const fromMs = nowMs();
      const attempts: Array<{ port: number; code: number | null; output: string }> = [];
      for (const port of [8000, 8001]) {
        const twin = spawnService({
          port,
          wrapper: ["ip", "netns", "exec", a.ns.name],
          after: ["--config-dir", join(fleet.lab.dir, `node-a-twice-${port}`)],
          env: {
            ...process.env,
            DISTRIBUTARY_ADMIN_TOKEN: fleet.token,
            DISTRIBUTARY_WORKERS: "1",
            DISTRIBUTARY_DATABASE_URL: fleet.db.url,
            DISTRIBUTARY_NODE_ID: "a",
            DISTRIBUTARY_NODE_URL: `http://${a.address}:${port}`,
            DISTRIBUTARY_LEASE_MS: String(LEASE_MS),
          },
        });
        const timer = setTimeout(() => twin.process.kill("SIGKILL"), 30_000);
        const code = await twin.exited;
        clearTimeout(timer);
        attempts.push({ port, code, output: twin.output() });
      }
      // Two rounds of the live node after the last attempt: a registration would have shown by then.
      await pause(2 * LEASE_MS);
      const untilMs = nowMs();
      const leasesAfter = await leaseRows(fleet);
      const bootAfter = await bootOf();
      const outputs = run.channels.outputPorts.map((port) => {
        const arrivals = run.receiver.at(port).filter((x) => x.atMs >= fromMs && x.atMs <= untilMs);
        return {
          port,
          senders: [...new Set(arrivals.map((x) => fleet.names.get(x.source) ?? x.source))],
          handovers: handovers(arrivals).length,
          after: continuation(arrivals, fromMs, stream.datagrams, index),
        };
      });
      report("A second process as node a", [
        ...attempts.map(
          (attempt) =>
            `  on port ${attempt.port}: exit ${attempt.code}; ${/another process is running as node a[^"\n]*/.exec(attempt.output)?.[0] ?? attempt.output.slice(-600)}`,
        ),
        `  boot ${bootBefore?.slice(0, 8)} → ${bootAfter?.slice(0, 8)}`,
        ...outputs.map(
          (output) =>
            `  :${output.port} senders ${output.senders.join(", ")}, ${output.handovers} handovers, ${output.after.count} datagrams ${output.after.contiguous ? "contiguous" : `NOT contiguous (${output.after.breaks.length} breaks)`}`,
        ),
      ]);
      for (const attempt of attempts) {
        expect(attempt.code, attempt.output.slice(-2000)).toBe(3);
        expect(attempt.output).toContain("another process is running as node a");
        expect(attempt.output).not.toContain("joined");
      }
      expect(bootAfter).toBe(bootBefore);
      for (const id of run.channels.ids) expect(leasesAfter.get(id)).toEqual(leasesBefore.get(id));
      for (const output of outputs) {
        expect(output.senders).toEqual(["a"]);
        expect(output.handovers).toBe(0);
        expect(output.after.contiguous, `:${output.port}`).toBe(true);
        expect(output.after.count).toBeGreaterThan(500);
      }
    } finally {
      await stopAll(run, run.channels);
    }
  }, 180_000);
});
