/**
 * The windows in which two nodes of a fleet could both send a channel, each opened on purpose and measured at
 * the receiver: the holder (a) cut off from the database while five changes wait on it; its renewals blocked
 * by a lock another session holds; its main thread paused for twice the lease while its forwarding thread
 * runs; and, with DISTRIBUTARY_ISOLATED=stop, cut off from the database and its peer. In each, no 100 ms in
 * which datagrams of one output arrive from both nodes, and the gap is within the lease time + 1 s.
 *
 *   db, a, b, tx, rx on one bridge; PostgreSQL in db; a and b each a node
 */
import { expect, it } from "vitest";
import { clock } from "../support/fleet-analysis.ts";
import { useFleetLab } from "../support/fleet-lab.ts";
import { leaseRows, nowMs, report } from "../support/fleet-scenario.ts";
import { type OnAir, twoNodeScenarios } from "../support/fleet-two-nodes.ts";
import { describeLab } from "../support/netlab.ts";

const LEASE_MS = 3000;

describeLab("no window in which two nodes send", () => {
  const fleet = useFleetLab("flw", { nodes: ["a", "b"], leaseMs: LEASE_MS });
  const { nodesWith, onAirFromA, stopAll, measureOnB } = twoNodeScenarios(fleet);

  /** Measures every output once b sends it, and checks: b holds it, no overlap, the gap within the limit. */
  const expectHandedOver = async (
    run: OnAir,
    title: string,
    sinceMs: number,
    extra: ReadonlyArray<string>,
  ) => {
    const measured = await measureOnB(run, sinceMs, 2_000);
    const leases = await leaseRows(fleet);
    report(`${title}; limit ${LEASE_MS + 1000} ms`, [...measured.map((m) => m.line), ...extra]);
    for (const m of measured) {
      expect(m.doubles, `double sending at :${m.port}`).toBe(0);
      expect(m.silence.ms, `longest silence at :${m.port}`).toBeLessThanOrEqual(LEASE_MS + 1000);
      expect(m.after?.contiguous, `the stream after the gap at :${m.port}`).toBe(true);
    }
    for (const id of run.channels.ids) expect(leases.get(id)?.holder).toBe("b");
  };

  it("the holder cut off from the database with five changes queued at it: it stops before b starts", async () => {
    await nodesWith({});
    const a = fleet.node("a");
    const run = await onAirFromA("Cut, changes queued", 0, 2);
    const cut = await fleet.cutFromDatabase(a);
    try {
      const cutMs = nowMs();
      // Each waits for the API's lock and then for a database that does not answer.
      const changes = Array.from({ length: 5 }, (_, i) =>
        a
          .api(`/api/channels/${run.channels.ids[i % 2]}/outputs/out`, {
            method: "PUT",
            body: {
              name: `Out ${i}`,
              protocol: "udp",
              url: `udp://${fleet.rxAddress}:${run.channels.outputPorts[i % 2]}`,
            },
          })
          .then(
            async (answer) => ({
              status: answer.status,
              title: ((await answer.json()) as { title?: string }).title ?? "",
            }),
            () => ({ status: 0, title: "no answer" }),
          ),
      );
      await expectHandedOver(run, `Cut with 5 changes queued at ${clock(cutMs)}`, cutMs, []);
      await cut.heal();
      const answered = await Promise.all(changes);
      const updates = await fleet.db.admin<{ count: string }>(
        "select count(*) from audit where action = 'channel.update' and channel = any($1) and at > to_timestamp($2 / 1000.0)",
        [run.channels.ids, cutMs],
      );
      const saved = Number(updates[0]?.count);
      report("  the five changes answered", [
        ...answered.map((answer) => `  ${answer.status} ${answer.title}`),
        `  ${saved} saved (the audit's updates since the cut)`,
      ]);
      // Refused in words while the database was out of reach, carried out once it answered, or, when the
      // database went quiet during the commit itself, said to be unknown: never lost, never a wrong answer.
      for (const { status } of answered) expect([200, 503]).toContain(status);
      const done = answered.filter((answer) => answer.status === 200).length;
      const unknown = answered.filter((answer) => /unconfirmed/.test(answer.title)).length;
      expect(saved).toBeGreaterThanOrEqual(done);
      expect(saved).toBeLessThanOrEqual(done + unknown);
    } finally {
      await cut.heal();
      await stopAll(run, run.channels);
    }
  }, 120_000);

  it("the holder's renewals blocked by another session's lock: it stops before b starts", async () => {
    await nodesWith({});
    const run = await onAirFromA("Renewals blocked", 10, 2);
    // A renewal is the round's update of the node's own row: held here, every round of a waits, while its
    // other statements (and b's reading of a's lease) go through.
    const session = await fleet.db.session();
    try {
      await session.query("begin");
      await session.query("select 1 from nodes where id = 'a' for update");
      const lockedMs = nowMs();
      await expectHandedOver(run, `Node a's row locked at ${clock(lockedMs)}`, lockedMs, []);
    } finally {
      await session.query("rollback").catch(() => undefined);
      await session.end();
      await stopAll(run, run.channels);
    }
  }, 120_000);

  it("the holder's main thread paused for twice the lease while its forwarding thread runs: it stops before b starts", async () => {
    await nodesWith({});
    const a = fleet.node("a");
    const run = await onAirFromA("Main thread paused", 20, 2);
    try {
      // The inspector on a's loopback (SIGUSR1 opens it), driven from inside a's namespace.
      process.kill(a.pid() ?? 0, "SIGUSR1");
      const pausedMs = nowMs();
      const pausing = a.ns.exec(process.execPath, ["--input-type=module", "-e", PAUSE, String(2 * LEASE_MS)]);
      await expectHandedOver(run, `Node a's main thread paused at ${clock(pausedMs)}`, pausedMs, []);
      const said = JSON.parse(await pausing) as { pausedMs: number; resumedMs: number };
      report("  the pause", [`  from ${clock(said.pausedMs)} to ${clock(said.resumedMs)}`]);
      expect(said.resumedMs - said.pausedMs).toBeGreaterThanOrEqual(2 * LEASE_MS);
    } finally {
      await stopAll(run, run.channels);
    }
  }, 120_000);

  it("DISTRIBUTARY_ISOLATED=stop: the holder cut off from the database and its peer stops before b starts", async () => {
    await nodesWith({ DISTRIBUTARY_ISOLATED: "stop" });
    const [a, b] = [fleet.node("a"), fleet.node("b")];
    const run = await onAirFromA("Isolated, stop", 30, 2);
    // The input and the receiver stay reachable, so that what a sends is seen.
    const cut = await fleet.cutFrom(a, [fleet.dbAddress, b.address]);
    try {
      const cutMs = nowMs();
      await expectHandedOver(run, `Node a cut from the database and b at ${clock(cutMs)}`, cutMs, []);
      // Why it stopped: isolated with DISTRIBUTARY_ISOLATED=stop, or its leases' deadline, when that came
      // before its probe of b had timed out (a loaded machine): the same stop, and both right for `stop`. It
      // never keeps sending.
      const log = a.log();
      const why = ["DISTRIBUTARY_ISOLATED=stop", "its leases ran out without a renewal"].filter((words) =>
        log.includes(words),
      );
      report("  why a stopped", [`  ${why.join("; ")}`]);
      expect(why.length, log).toBeGreaterThan(0);
      expect(log).not.toContain("it keeps sending");
    } finally {
      await cut.heal();
      await stopAll(run, run.channels);
    }
  }, 120_000);
});

/**
 * Run in the node's namespace with the pause in ms: pauses the service's main thread through the inspector
 * (Debugger.pause), resumes it after that long, and prints when both happened (epoch ms).
 */
const PAUSE = `
const ms = Number(process.argv[1]);
const [target] = await (await fetch("http://127.0.0.1:9229/json/list")).json();
const socket = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((open) => socket.addEventListener("open", open, { once: true }));
const events = [];
socket.addEventListener("message", (message) => events.push(JSON.parse(message.data)));
const until = async (method) => { while (!events.some((e) => e.method === method)) await new Promise((r) => setTimeout(r, 5)); };
socket.send(JSON.stringify({ id: 1, method: "Debugger.enable" }));
socket.send(JSON.stringify({ id: 2, method: "Debugger.pause" }));
await until("Debugger.paused");
const pausedMs = Date.now();
await new Promise((r) => setTimeout(r, ms));
socket.send(JSON.stringify({ id: 3, method: "Debugger.resume" }));
await until("Debugger.resumed");
const resumedMs = Date.now();
socket.send(JSON.stringify({ id: 4, method: "Debugger.disable" }));
socket.close();
console.log(JSON.stringify({ pausedMs, resumedMs }));
`;
