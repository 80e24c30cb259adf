/**
 * A channel's outputs move between two nodes of a fleet, measured at the receiver: tx sends the same cued
 * stream to node a and node b (MediaLive's two pipelines); only the lease holder sends to rx. The holder is
 * killed (with and without the fast takeover), drained, cut off from the database, and frozen (SIGSTOP) past its
 * lease and within it; an output changed during a takeover is applied once, on the new holder.
 *
 *   db, a, b, tx, rx on one bridge; PostgreSQL in db; a and b each a node
 */
import { expect, it } from "vitest";
import { analyse } from "../support/analyse.ts";
import { clock, type Received } from "../support/fleet-analysis.ts";
import { useFleetLab } from "../support/fleet-lab.ts";
import {
  awaitOnAir,
  leaseRows,
  logBetween,
  measureOutputs,
  nowMs,
  pause,
  REFERENCE_PORT,
  report,
  since,
} from "../support/fleet-scenario.ts";
import { twoNodeScenarios } from "../support/fleet-two-nodes.ts";
import { describeLab } from "../support/netlab.ts";

const LEASE_MS = 3000;

const hex = (ssrc: number) => `0x${ssrc.toString(16).padStart(8, "0")}`;

describeLab("a channel's outputs move between two nodes", () => {
  const fleet = useFleetLab("flt", { nodes: ["a", "b"], leaseMs: LEASE_MS });
  const { stream, index, nodesWith, onAirFromA, stopAll, measureOnB } = twoNodeScenarios(fleet);

  const killHolder = async (title: string, base: number, limitMs: number, env: NodeJS.ProcessEnv) => {
    await nodesWith(env);
    const a = fleet.node("a");
    const rtpPort = 7000 + base + 9;
    const run = await onAirFromA(title, base, 4, [rtpPort]);
    const { receiver, channels } = run;
    try {
      // One channel also sends RTP: its SSRC tells the holders apart at the receiver.
      const first = channels.ids[0] ?? "";
      const rtp = await a.api(`/api/channels/${first}/outputs`, {
        method: "POST",
        body: { id: "rtp", name: "RTP", protocol: "rtp", url: `rtp://${fleet.rxAddress}:${rtpPort}` },
      });
      expect(rtp.status, await rtp.clone().text()).toBe(201);
      await awaitOnAir(receiver, [rtpPort], run.onAirMs, { source: a.address, count: 10 });
      const killedMs = nowMs();
      await a.kill();
      // Four cues of the stream after the last output resumed.
      const measured = await measureOnB(run, killedMs, 4_000);
      const taken = await leaseRows(fleet);
      report(`${title}: node a, holder of 4 channels, killed at ${clock(killedMs)}; limit ${limitMs} ms`, [
        ...measured.map((m) => m.line),
        `  terms ${channels.ids.map((id) => `${run.leases.get(id)?.term}→${taken.get(id)?.term}`).join(", ")}`,
      ]);
      for (const m of measured) {
        expect(m.silence.ms, `longest silence at :${m.port}`).toBeLessThanOrEqual(limitMs);
        expect(m.doubles, `double sending at :${m.port}`).toBe(0);
        expect(m.after?.contiguous, `the stream after the gap at :${m.port}`).toBe(true);
        expect(m.after?.cues.length, `cues after the gap at :${m.port}`).toBeGreaterThanOrEqual(3);
        expect(m.after?.cues).toEqual(m.after?.expectedCues);
      }
      for (const id of channels.ids) {
        expect(taken.get(id)?.holder).toBe("b");
        expect(taken.get(id)?.term).toBeGreaterThan(run.leases.get(id)?.term ?? Number.POSITIVE_INFINITY);
      }
      // Each holder's RTP datagrams carry one SSRC, whose low 16 bits are the term it holds.
      const ssrcsFrom = (address: string) =>
        new Set(
          receiver
            .at(rtpPort)
            .filter((received) => received.source === address && received.datagram !== undefined)
            .map((received) => received.datagram?.readUInt32BE(8) ?? 0),
        );
      const [before, after] = [ssrcsFrom(a.address), ssrcsFrom(fleet.node("b").address)];
      report(
        `${title}: RTP SSRC from a ${[...before].map(hex).join(", ")}, from b ${[...after].map(hex).join(", ")}`,
        [],
      );
      expect(before.size).toBe(1);
      expect(after.size).toBe(1);
      const [ssrcA, ssrcB] = [[...before][0] ?? 0, [...after][0] ?? 0];
      expect(ssrcB).not.toBe(ssrcA);
      expect(ssrcA & 0xffff).toBe(run.leases.get(first)?.term);
      expect(ssrcB & 0xffff).toBe(taken.get(first)?.term);

      // The killed node comes back; more than two leases later it still holds nothing and sends nothing.
      await a.start(env);
      const backMs = nowMs();
      await pause(2 * LEASE_MS + 1000);
      const later = await leaseRows(fleet);
      const fromA = channels.outputPorts.map((port) => since(receiver, port, backMs, a.address).length);
      report(`${title}: node a back for ${2 * LEASE_MS + 1000} ms`, [
        `  holders ${channels.ids.map((id) => `${later.get(id)?.holder}@${later.get(id)?.term}`).join(", ")}; datagrams from a since: ${fromA.join(", ")}`,
      ]);
      for (const id of channels.ids)
        expect(later.get(id)).toMatchObject({ holder: "b", term: taken.get(id)?.term });
      expect(fromA).toEqual(channels.outputPorts.map(() => 0));
    } finally {
      await stopAll(run, channels);
    }
  };

  it("kill -9 of the holder of 4 streaming channels, fast takeover: each output back from b within 1.5 s, the stream and its cues whole, RTP under a new SSRC carrying the term; a restarted does not take them back", async () => {
    await killHolder("Kill, fast takeover", 0, 1500, {});
  }, 120_000);

  // Asked of the holder itself, the drain is done before b's next heartbeat round shows a draining: b, which
  // ranks second in every channel's order, must still take over at once, not a rank step later.
  it("drain of the holder, asked of it: each output on b after a gap under 1 s, with no overlap", async () => {
    await nodesWith({});
    const [a, b] = [fleet.node("a"), fleet.node("b")];
    const run = await onAirFromA("Drain", 20, 4);
    const { channels } = run;
    try {
      const drainMs = nowMs();
      const answer = await a.api("/api/nodes/a/drain", { method: "POST" });
      const said = await answer.text();
      const measured = await measureOnB(run, drainMs, 2_000, 10_000);
      const { nodes } = (await (await b.api("/api/nodes")).json()) as {
        nodes: Array<{ id: string; state: string; channels_held: number }>;
      };
      report(`Drain: POST /api/nodes/a/drain at ${clock(drainMs)} answered ${answer.status} ${said}`, [
        ...measured.map((m) => m.line),
        `  GET /api/nodes: ${nodes.map((node) => `${node.id} ${node.state}, ${node.channels_held} held`).join("; ")}`,
      ]);
      expect(answer.status).toBe(200);
      for (const m of measured) {
        expect(m.silence.ms, `longest silence at :${m.port}`).toBeLessThan(1000);
        expect(m.doubles, `double sending at :${m.port}`).toBe(0);
        expect(m.after?.contiguous, `the stream after the gap at :${m.port}`).toBe(true);
      }
      const leases = await leaseRows(fleet);
      for (const id of channels.ids) expect(leases.get(id)?.holder).toBe("b");
    } finally {
      await stopAll(run, channels);
      // A drained node is started again for the next scenario.
      await a.stop();
    }
  }, 120_000);

  it("the holder cut off from the database only: it stops before b starts (no overlap), the gap within the lease time + 1 s", async () => {
    await nodesWith({});
    const a = fleet.node("a");
    const run = await onAirFromA("Cut off", 30, 4);
    const { receiver, channels } = run;
    const cut = await fleet.cutFromDatabase(a);
    try {
      const cutMs = nowMs();
      const measured = await measureOnB(run, cutMs, 2_000);
      const dropped = await cut.dropped();
      await cut.heal();
      const healedMs = nowMs();
      await pause(2 * LEASE_MS + 1000);
      const leases = await leaseRows(fleet);
      const fromA = channels.outputPorts.map((port) => since(receiver, port, healedMs, a.address).length);
      report(
        `Cut off: node a's traffic with the database dropped from ${clock(cutMs)} (${dropped} packets), healed at ${clock(healedMs)}; limit ${LEASE_MS + 1000} ms`,
        [
          ...measured.map((m) => m.line),
          `  holders ${LEASE_MS * 2 + 1000} ms after the heal: ${channels.ids.map((id) => `${leases.get(id)?.holder}@${leases.get(id)?.term}`).join(", ")}; datagrams from a since: ${fromA.join(", ")}`,
        ],
      );
      for (const m of measured) {
        expect(m.silence.ms, `longest silence at :${m.port}`).toBeLessThanOrEqual(LEASE_MS + 1000);
        expect(m.doubles, `double sending at :${m.port}`).toBe(0);
        expect(m.after?.contiguous, `the stream after the gap at :${m.port}`).toBe(true);
      }
      for (const id of channels.ids) expect(leases.get(id)?.holder).toBe("b");
      expect(fromA).toEqual(channels.outputPorts.map(() => 0));
    } finally {
      await cut.heal();
      await stopAll(run, channels);
    }
  }, 120_000);

  it("an output changed during a takeover is applied once, on the new holder: the new port hears b alone, the old one goes quiet", async () => {
    await nodesWith({});
    const [a, b] = [fleet.node("a"), fleet.node("b")];
    const newPorts = [7050, 7051];
    const run = await onAirFromA("Changed in a takeover", 40, 2, newPorts);
    const { receiver, channels } = run;
    try {
      const killedMs = nowMs();
      await a.kill();
      const answers = await Promise.all(
        channels.ids.map((id, i) =>
          b.api(`/api/channels/${id}/outputs/out`, {
            method: "PATCH",
            body: { url: `udp://${fleet.rxAddress}:${newPorts[i]}` },
          }),
        ),
      );
      const patchedMs = nowMs();
      await awaitOnAir(receiver, newPorts, killedMs, { count: 1, timeoutMs: 15_000 });
      await pause(3_000);
      const endMs = nowMs();
      const measured = measureOutputs(
        fleet,
        receiver,
        newPorts,
        { fromMs: patchedMs, untilMs: endMs },
        {
          datagrams: stream.datagrams,
          index,
        },
      );
      const oldAfter = channels.outputPorts.map((port) => since(receiver, port, patchedMs + 1000).length);
      const newSenders = newPorts.map((port) => [
        ...new Set(receiver.at(port).map((arrival) => arrival.source)),
      ]);
      report(
        `Changed in a takeover: a killed at ${clock(killedMs)}, outputs patched through b (${answers.map((x) => x.status).join(", ")}) by ${clock(patchedMs)}`,
        [
          ...measured.map((m) => m.line),
          `  old ports: ${channels.outputPorts.map((port, i) => `:${port} ${oldAfter[i]} datagrams from 1 s after the change`).join(", ")}`,
        ],
      );
      expect(answers.map((x) => x.status)).toEqual([200, 200]);
      expect(newSenders).toEqual([[b.address], [b.address]]);
      expect(oldAfter).toEqual([0, 0]);
      for (const m of measured) {
        expect(m.doubles).toBe(0);
        expect(m.after?.contiguous, `the stream at :${m.port}`).toBe(true);
      }
    } finally {
      await stopAll(run, channels);
    }
  }, 120_000);

  /** The holder's process stopped (SIGSTOP, every thread of it) and, `frozen` later, continued. */
  const freeze = async (frozen: () => Promise<unknown>) => {
    const pid = fleet.node("a").pid();
    if (pid === undefined) throw new Error("node a is not running");
    process.kill(pid, "SIGSTOP");
    const stoppedMs = nowMs();
    // Read before the signal: the node may run again, and send, before this process does.
    let continuedMs = stoppedMs;
    try {
      await frozen();
    } finally {
      continuedMs = nowMs();
      process.kill(pid, "SIGCONT");
    }
    return { stoppedMs, continuedMs };
  };
  const ssrcOf = (arrival: Received) => arrival.datagram?.readUInt32BE(8) ?? 0;
  /** The most datagrams from `source` that came within any `windowMs` at or after `fromMs`. */
  const burst = (arrivals: ReadonlyArray<Received>, source: string, fromMs: number, windowMs: number) => {
    const times = arrivals.filter((x) => x.source === source && x.atMs >= fromMs).map((x) => x.atMs);
    let most = 0;
    for (let [i, j] = [0, 0]; j < times.length; j++) {
      while ((times[j] as number) - (times[i] as number) > windowMs) i++;
      most = Math.max(most, j - i + 1);
    }
    return most;
  };

  it("the holder stopped (SIGSTOP) past its lease, then continued: not one datagram from it after b's first, none of what queued in its inputs sent late, 0 continuity errors on UDP, no old SSRC on RTP", async () => {
    await nodesWith({});
    const [a, b] = [fleet.node("a"), fleet.node("b")];
    const [udpPort, rtpPort] = [7060, 7069];
    const run = await onAirFromA("Stalled", 60, 1, [rtpPort]);
    const { receiver, channels } = run;
    try {
      const id = channels.ids[0] ?? "";
      const rtp = await a.api(`/api/channels/${id}/outputs`, {
        method: "POST",
        body: { id: "rtp", name: "RTP", protocol: "rtp", url: `rtp://${fleet.rxAddress}:${rtpPort}` },
      });
      expect(rtp.status, await rtp.clone().text()).toBe(201);
      await awaitOnAir(receiver, [rtpPort], run.onAirMs, { source: a.address, count: 10 });
      // Stopped until b sends both outputs, and a second more: a's input sockets fill with what tx sends it.
      const { stoppedMs, continuedMs } = await freeze(async () => {
        await awaitOnAir(receiver, [udpPort, rtpPort], nowMs(), { source: b.address, count: 1 });
        await pause(1000);
      });
      // What a does when it runs again: its first turns read seconds of queued stream.
      await pause(2000);
      const taken = await leaseRows(fleet);
      const fromB = (port: number) => {
        const arrivals = receiver.at(port).filter((x) => x.atMs >= run.onAirMs);
        const first = arrivals.findIndex((x) => x.source === b.address);
        return { arrivals, after: first < 0 ? [] : arrivals.slice(first) };
      };
      const udp = fromB(udpPort);
      const rtpOut = fromB(rtpPort);
      const fromAAfter = [udp, rtpOut].map(({ after }) => after.filter((x) => x.source === a.address).length);
      const ccErrors = analyse(Buffer.concat(udp.after.map((x) => x.datagram ?? Buffer.alloc(0)))).ccErrors;
      const ssrcA = ssrcOf(rtpOut.arrivals.find((x) => x.source === a.address) as Received);
      const ssrcB = ssrcOf(rtpOut.after[0] as Received);
      const oldSsrcAfter = rtpOut.after.filter((x) => ssrcOf(x) !== ssrcB).length;
      report(
        `Stalled: node a stopped at ${clock(stoppedMs)}, continued at ${clock(continuedMs)} (${Math.round(continuedMs - stoppedMs)} ms)`,
        [
          ...measureOutputs(fleet, receiver, [udpPort, rtpPort], {
            fromMs: run.onAirMs,
            untilMs: nowMs(),
          }).map((m) => m.line),
          `  from b's first datagram on: ${fromAAfter.join(" and ")} datagrams from a; ${ccErrors} continuity errors on :${udpPort}; ${oldSsrcAfter} RTP datagrams not of b's SSRC ${hex(ssrcB)} (a's ${hex(ssrcA)})`,
          `  holder ${taken.get(id)?.holder}@${taken.get(id)?.term}`,
          ...logBetween(a, continuedMs - 1000, nowMs()).map((line) => `  a: ${line}`),
        ],
      );
      expect(taken.get(id)?.holder).toBe("b");
      expect(udp.after.length).toBeGreaterThan(100);
      expect(fromAAfter).toEqual([0, 0]);
      expect(ccErrors).toBe(0);
      expect(ssrcB).not.toBe(ssrcA);
      expect(oldSsrcAfter).toBe(0);
      // The node says what it dropped, and why.
      expect(a.log()).toMatch(
        /datagrams that waited in its inputs were dropped, not sent late: its forwarding thread stalled for \d+ ms/,
      );
    } finally {
      await stopAll(run, channels);
    }
  }, 120_000);

  it("the holder stopped for less than its lease keeps it and goes on with the stream of now: what queued in its inputs is dropped, not sent in a burst", async () => {
    await nodesWith({});
    const a = fleet.node("a");
    const udpPort = 7070;
    const run = await onAirFromA("Paused", 70, 1);
    const { receiver, channels } = run;
    try {
      const id = channels.ids[0] ?? "";
      // 1.2 s: longer than a forwarding thread may stall (a fifth of the lease, 600 ms), well inside the lease.
      const { stoppedMs, continuedMs } = await freeze(() => pause(1200));
      await awaitOnAir(receiver, [udpPort], continuedMs, { source: a.address, count: 100 });
      const leases = await leaseRows(fleet);
      const arrivals = receiver.at(udpPort).filter((x) => x.atMs >= run.onAirMs);
      const most = burst(arrivals, a.address, continuedMs, 100);
      // The stream's own pace: what tx sent to rx directly over the same 100 ms windows.
      const direct = receiver.at(REFERENCE_PORT);
      const paced = burst(direct, direct[0]?.source ?? "", continuedMs, 100);
      report(`Paused: node a stopped at ${clock(stoppedMs)} for ${Math.round(continuedMs - stoppedMs)} ms`, [
        ...measureOutputs(fleet, receiver, [udpPort], { fromMs: run.onAirMs, untilMs: nowMs() }).map(
          (m) => m.line,
        ),
        `  after it: at most ${most} datagrams from a within 100 ms (the direct copy: ${paced}); holder ${leases.get(id)?.holder}@${leases.get(id)?.term} (was @${run.leases.get(id)?.term})`,
        ...logBetween(a, continuedMs - 1000, nowMs()).map((line) => `  a: ${line}`),
      ]);
      expect(leases.get(id)).toMatchObject({ holder: "a", term: run.leases.get(id)?.term });
      // 1.2 s of the stream is about 115 datagrams; at its pace about 10 come in 100 ms.
      expect(most).toBeLessThanOrEqual(30);
      expect(a.log()).toMatch(
        /datagrams that waited in its inputs were dropped, not sent late: its forwarding thread stalled/,
      );
    } finally {
      await stopAll(run, channels);
    }
  }, 120_000);

  // Last: it starts both nodes again with the fast takeover off.
  it("kill -9 of the holder without the fast takeover: each output back within the lease time + 1 s", async () => {
    await killHolder("Kill, lease expiry", 10, LEASE_MS + 1000, { DISTRIBUTARY_FAST_TAKEOVER: "off" });
  }, 120_000);
});
