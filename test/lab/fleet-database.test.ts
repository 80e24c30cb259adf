/**
 * The fleet's database fails while channels stream: PostgreSQL crashes and restarts at once, then stays down
 * for 35 s (past the 30 s after which a node counts as down). Nothing on air may change: no output loses
 * anything (no silence over 200 ms at the receiver), no lease changes holder or term; during the outage the
 * API refuses writes with a 503 that says why and keeps answering reads; what was changed before the outage
 * is there after it.
 *
 *   db, a, b, tx, rx on one bridge; PostgreSQL in db; a and b each a node
 */
import { expect, it } from "vitest";
import { clock, continuation, streamIndex } from "../support/fleet-analysis.ts";
import { useFleetLab } from "../support/fleet-lab.ts";
import {
  awaitHolder,
  awaitOnAir,
  createChannels,
  inputsOf,
  leaseRows,
  logBetween,
  measureOutputs,
  nowMs,
  pause,
  REFERENCE_PORT,
  report,
} from "../support/fleet-scenario.ts";
import { cuedStream, newGenerator } from "../support/lab-channel.ts";
import { describeLab } from "../support/netlab.ts";

const LEASE_MS = 3000;
const BITRATE = 1_000_000;
// Past 30 s: the nodes' heartbeats in the database are older than the 30 s after which a node counts as down
// (lease-book.ts) when it answers again, and a full pass over the leases (every 30 s) has failed.
const OUTAGE_MS = 35_000;
const PAIR = () => ["a", "b"];

describeLab("the fleet's database restarted and down", () => {
  const fleet = useFleetLab("fld", { nodes: ["a", "b"], leaseMs: LEASE_MS });

  it("a PostgreSQL crash and restart, then 35 s down: every output whole, no change of holder, writes 503 in words, reads answered, earlier changes kept", async () => {
    await fleet.startNodes(["a"]);
    const [a, b] = [fleet.node("a"), fleet.node("b")];
    const receiver = await fleet.receiver([7000, 7001, REFERENCE_PORT], true);
    const channels = await createChannels(fleet, a, {
      name: "Database",
      count: 2,
      nodes: PAIR,
      inputBase: 5000,
      outputBase: 7000,
    });
    const stream = cuedStream(newGenerator(4, BITRATE), BITRATE, 100);
    const index = streamIndex(stream.datagrams);
    const sender = await fleet.send("database", stream.datagrams, stream.perMs, [
      ...inputsOf(fleet, channels, PAIR),
      `${fleet.rxAddress}:${REFERENCE_PORT}`,
    ]);
    try {
      const startedMs = nowMs();
      const before = await awaitHolder(fleet, channels.ids, "a");
      // b, the standby, starts once a holds every channel: started beside it, b takes a channel that a, slow on a
      // loaded machine, has not taken within its 1 s head start (leases.ts `shouldTry`).
      await fleet.startNodes(["b"]);
      await awaitOnAir(receiver, channels.outputPorts, startedMs, { source: a.address, count: 100 });
      const [renamed] = channels.ids;
      const rename = await b.api(`/api/channels/${renamed}`, {
        method: "PATCH",
        body: { name: "Renamed before" },
      });
      expect(rename.status).toBe(200);
      const fromMs = nowMs();

      // A crash, started again at once.
      await fleet.db.stop({ mode: "immediate" });
      const crashMs = nowMs();
      await fleet.db.start();
      await pause(2 * LEASE_MS);
      const afterRestart = await leaseRows(fleet);

      // Down for 35 s: writes refused in words, reads answered.
      await fleet.db.stop({ mode: "immediate" });
      const downMs = nowMs();
      await pause(2 * LEASE_MS);
      const write = await b.api("/api/channels", {
        method: "POST",
        body: { name: "During the outage", rtp_ip: "0.0.0.0", rtp_port: 5100, nodes: ["a", "b"] },
      });
      const writeSaid = await write.text();
      const patch = await a.api(`/api/channels/${renamed}`, {
        method: "PATCH",
        body: { name: "Renamed during" },
      });
      const patchSaid = await patch.text();
      const reads = await Promise.all([a, b].map((node) => node.api("/api/channels")));
      const listed = await Promise.all(
        reads.map(
          async (read) => ((await read.json()) as { channels: Array<{ id: string; name: string }> }).channels,
        ),
      );
      await pause(Math.max(0, downMs + OUTAGE_MS - nowMs()));
      await fleet.db.start();
      const upMs = nowMs();
      await pause(2 * LEASE_MS + 1000);
      const after = await leaseRows(fleet);
      const untilMs = nowMs();
      const named = (await (await a.api(`/api/channels/${renamed}`)).json()) as { name: string };
      const writable = await b.api(`/api/channels/${renamed}`, {
        method: "PATCH",
        body: { name: "Renamed after" },
      });

      const measured = measureOutputs(fleet, receiver, channels.outputPorts, { fromMs, untilMs });
      // Every datagram of the stream over the whole time, none lost, none twice.
      // The sender's direct copy too: a break there as well was the sender's or the machine's.
      const whole = [...channels.outputPorts, REFERENCE_PORT].map((port) => ({
        port,
        ...continuation(
          receiver.at(port).filter((arrival) => arrival.atMs <= untilMs),
          fromMs,
          stream.datagrams,
          index,
        ),
      }));
      // The nodes' logs around what went wrong (the first break in a stream, or a long silence), cues left out.
      const longest = measured.reduce((worst, m) => (m.silence.ms > worst.silence.ms ? m : worst));
      const firstBreak = whole.flatMap((w) => (w.port === REFERENCE_PORT ? [] : w.breaks))[0];
      const around =
        firstBreak !== undefined
          ? firstBreak.atMs
          : longest.silence.ms > 200
            ? longest.silence.toMs
            : undefined;
      const evidence =
        around === undefined
          ? []
          : [a, b].flatMap((node) =>
              logBetween(node, around - 1500, around + 500)
                .filter((line) => !line.includes('"scte35_cue"'))
                .map((line) => `  ${node.id} log: ${line.slice(0, 300)}`),
            );
      const terms = (leases: ReadonlyMap<string, { holder: string | null; term: number }>) =>
        channels.ids.map((id) => `${leases.get(id)?.holder}@${leases.get(id)?.term}`).join(", ");
      report(
        `Database: crash and restart at ${clock(crashMs)}; down from ${clock(downMs)} to ${clock(upMs)} (${Math.round(upMs - downMs)} ms)`,
        [
          ...measured.map((m) => m.line),
          `  leases before ${terms(before)}; after the restart ${terms(afterRestart)}; after the outage ${terms(after)}`,
          `  during the outage: POST /api/channels ${write.status} ${writeSaid}`,
          `  during the outage: PATCH ${patch.status} ${patchSaid}`,
          `  during the outage: GET /api/channels ${reads.map((read, i) => `${read.status} (${listed[i]?.length} channels)`).join(", ")}`,
          `  after: the name "${named.name}"; a PATCH answered ${writable.status}`,
          `  the stream from ${clock(fromMs)}: ${whole
            .map(
              (w) =>
                `:${w.port} ${w.count} datagrams ${
                  w.contiguous
                    ? "contiguous"
                    : `NOT contiguous: ${w.breaks.length} breaks, first ${w.breaks
                        .slice(0, 3)
                        .map((x) => `at ${clock(x.atMs)} #${x.got} instead of #${x.expected}`)
                        .join(", ")}`
                }`,
            )
            .join("; ")}`,
          ...evidence.slice(0, 20),
        ],
      );
      for (const w of whole.filter((w) => w.port !== REFERENCE_PORT))
        expect(w.contiguous, `the stream at :${w.port}`).toBe(true);
      for (const m of measured) {
        // A pause of the machine or of the sender shows at the sender's direct copy too: only what the fleet
        // adds to it counts.
        expect(
          m.silence.ms - (m.directSilenceMs ?? 0),
          `silence the fleet added at :${m.port}`,
        ).toBeLessThanOrEqual(200);
        expect(m.doubles).toBe(0);
      }
      expect(terms(afterRestart)).toBe(terms(before));
      expect(terms(after)).toBe(terms(before));
      expect([write.status, patch.status]).toEqual([503, 503]);
      for (const said of [writeSaid, patchSaid]) expect(said).toMatch(/database/i);
      expect(reads.map((read) => read.status)).toEqual([200, 200]);
      for (const list of listed)
        expect(list.map((channel) => channel.id).sort()).toEqual([...channels.ids].sort());
      expect(named.name).toBe("Renamed before");
      expect(writable.status).toBe(200);
    } finally {
      await sender.stop();
      await receiver.stop();
    }
  }, 180_000);
});
