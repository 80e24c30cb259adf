/**
 * A change about a channel sent to a healthy node while the channel's holder is cut off from the database: the
 * holder answers that it could not save it, so the node asked makes it (200, not 503); the holder, back on the
 * database within its lease, keeps the channel and applies the change from there — its output goes to the new
 * destination, from the holder.
 *
 *   db, a, b, tx, rx on one bridge; PostgreSQL in db; a and b each a node
 */
import { expect, it } from "vitest";
import { useFleetLab } from "../support/fleet-lab.ts";
import { awaitOnAir, leaseRows, nowMs, pause, report } from "../support/fleet-scenario.ts";
import { twoNodeScenarios } from "../support/fleet-two-nodes.ts";
import { describeLab } from "../support/netlab.ts";

// Long enough that a cut of 3.5 s ends well before the holder's lease could run out.
const LEASE_MS = 9000;
const NEW_PORT = 7100;

describeLab("a change while the holder is cut off from the database", () => {
  const fleet = useFleetLab("h8c", { nodes: ["a", "b"], leaseMs: LEASE_MS });
  const { nodesWith, onAirFromA, stopAll } = twoNodeScenarios(fleet);

  it("made by the node asked, applied by the holder when it is back", async () => {
    await nodesWith({});
    const [a, b] = [fleet.node("a"), fleet.node("b")];
    const run = await onAirFromA("Cut change", 0, 1, [NEW_PORT]);
    const id = run.channels.ids[0] ?? "";
    const termBefore = (await leaseRows(fleet)).get(id)?.term;
    try {
      const cut = await fleet.cutFromDatabase(a);
      const cutMs = nowMs();
      let answer: { status: number; text: string };
      try {
        await pause(500);
        const changed = await b.api(`/api/channels/${id}/outputs/out`, {
          method: "PUT",
          body: { name: "rx", protocol: "udp", url: `udp://${fleet.rxAddress}:${NEW_PORT}` },
        });
        answer = { status: changed.status, text: await changed.text() };
        await pause(Math.max(0, cutMs + 3500 - nowMs()));
      } finally {
        await cut.heal();
      }
      const healedMs = nowMs();
      report("A change sent to b while a is cut off from the database", [
        `  PUT via b: ${answer.status} ${answer.text.slice(0, 300)}`,
      ]);
      expect(answer.status, answer.text).toBe(200);
      await awaitOnAir(run.receiver, [NEW_PORT], healedMs, { source: a.address, count: 50 });
      const lease = (await leaseRows(fleet)).get(id);
      expect(lease?.holder).toBe("a");
      expect(lease?.term).toBe(termBefore);
      const view = (await (await a.api(`/api/channels/${id}`)).json()) as {
        outputs: ReadonlyArray<{ url: string }>;
      };
      expect(view.outputs[0]?.url).toBe(`udp://${fleet.rxAddress}:${NEW_PORT}`);
    } finally {
      await stopAll(run, run.channels);
    }
  }, 180_000);
});
