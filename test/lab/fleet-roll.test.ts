/**
 * A fleet rolled from the previous release to this one, one node at a time, on air (issue 65, point 4): three
 * nodes of the previous release (test/support/previous-release.ts: the release before the last schema change)
 * on one PostgreSQL, 10 channels fed one multicast input each (every node receives every group), each sending by
 * UDP to rx, and API writes going on throughout through whichever nodes run. The roll is docs/upgrades.md's:
 *
 *   1. c, which holds nothing (third in every channel's order), is stopped and started on the new code: it
 *      brings the schema to this release's (migration 9) while a and b, old, go on;
 *   2. a's channels are moved to c (`POST /api/channels/{id}/move`), a is stopped and started on the new code;
 *   3. b's channels are moved to a and c, b is stopped and started on the new code.
 *
 * What a user checks: at every UDP output every datagram of the input once at least (0 lost; repeats counted
 * and printed), never two nodes sending at once; every write the API acknowledged present at the end, read
 * through each node; and between the steps, on every running node of either version, the API answering, a
 * stored token opening it and a page session made on a node of the other version opening its pages.
 *
 * The new code is this tree's; DISTRIBUTARY_ROLL_TO=<commit> rolls to that commit's code instead (set up as
 * the previous release is), to try a roll between two commits.
 */
import { beforeAll, expect, it } from "vitest";
import { eventually } from "../support/app.ts";
import { clock, doubleSending, type Received, streamIndex } from "../support/fleet-analysis.ts";
import { type FleetNode, useFleetLab } from "../support/fleet-lab.ts";
import {
  awaitHolder,
  awaitOnAir,
  leaseRows,
  logBetween,
  nowMs,
  pause,
  REFERENCE_PORT,
  report,
} from "../support/fleet-scenario.ts";
import { cuedStream, newGenerator } from "../support/lab-channel.ts";
import { describeLab } from "../support/netlab.ts";
import { previousRelease, type Release } from "../support/previous-release.ts";

const LEASE_MS = 3000;
const CHANNELS = 10;
const BITRATE = 500_000;
/** Long enough for the whole roll on a loaded 2-core machine; the test checks the sender was still going. */
const STREAM_S = 300;
const GROUP = "239.18.22.1";
const INPUT_BASE = 22_100;
const OUTPUT_BASE = 22_200;
const TOKEN_NAME = "roll desk";
/** a and b hold the channels, alternately first; c, third everywhere, holds nothing until the roll. */
const orderOf = (i: number) => (i % 2 === 0 ? ["a", "b", "c"] : ["b", "a", "c"]);

interface Written {
  readonly name: string;
  /** Every name acknowledged for it, in order (`name` the last). */
  readonly names: ReadonlyArray<string>;
  readonly outputs: string[];
}

describeLab("a fleet rolled from the previous release to this one, one node at a time", () => {
  const fleet = useFleetLab("h2roll", { nodes: ["a", "b", "c"], leaseMs: LEASE_MS });
  let release: Release;
  let target: Release | undefined;
  beforeAll(async () => {
    release = await previousRelease();
    const to = process.env.DISTRIBUTARY_ROLL_TO;
    target = to === undefined || to === "" ? undefined : await previousRelease(to);
  }, 300_000);

  it("10 channels on air and API writes throughout: 0 lost at every UDP output, never two senders, every acknowledged write kept, sign-on and the API on both versions", async () => {
    const [a, b, c] = [fleet.node("a"), fleet.node("b"), fleet.node("c")];
    const version = new Map<string, "old" | "new">();
    /** The nodes that are up (started and not being stopped): the writes go through these. */
    const serving = new Set<FleetNode>();
    const startOn = async (node: FleetNode, code: "old" | "new") => {
      version.set(node.id, code);
      await node.start({}, code === "old" ? release.bin : target?.bin);
      serving.add(node);
    };
    // One after another: three starting at once on a loaded 2-core machine have timed out connecting to the
    // database, and the previous release gives up at its start when it does.
    for (const node of [a, b, c]) await startOn(node, "old");

    const stream = cuedStream(newGenerator(65, BITRATE), BITRATE, STREAM_S, 2);
    const index = streamIndex(stream.datagrams);
    const outputPorts = Array.from({ length: CHANNELS }, (_, i) => OUTPUT_BASE + i);
    const receiver = await fleet.receiver([...outputPorts, REFERENCE_PORT], true);
    const ids: string[] = [];
    for (let i = 0; i < CHANNELS; i++) {
      const created = await a.api("/api/channels", {
        method: "POST",
        body: {
          name: `roll ${i + 1}`,
          rtp_ip: GROUP,
          rtp_port: INPUT_BASE + 2 * i,
          nodes: orderOf(i),
          outputs: [
            { id: "out", name: "rx", protocol: "udp", url: `udp://${fleet.rxAddress}:${OUTPUT_BASE + i}` },
          ],
        },
      });
      expect(created.status, await created.clone().text()).toBe(201);
      const { id } = (await created.json()) as { id: string };
      ids.push(id);
      const started = await a.api(`/api/channels/${id}/start`, { method: "POST" });
      expect(started.status, await started.clone().text()).toBe(200);
    }
    const sender = await fleet.send("roll", stream.datagrams, stream.perMs, [
      ...ids.map((_, i) => `${GROUP}:${INPUT_BASE + 2 * i}`),
      `${fleet.rxAddress}:${REFERENCE_PORT}`,
    ]);
    let senderDone = false;
    sender.done.then(
      () => {
        senderDone = true;
      },
      () => undefined,
    );
    const lines: string[] = [];
    const say = (line: string) => {
      lines.push(`  ${clock(nowMs())} ${line}`);
    };
    let writer: Promise<void> | undefined;
    let writing = true;
    try {
      // Each channel held by the first of its order (a node started a moment late may have taken one first:
      // moved back once, between old nodes, before anything is measured).
      const first = await awaitHolder(fleet, ids, undefined, 30_000);
      for (const [i, id] of ids.entries()) {
        const want = orderOf(i)[0] as string;
        if (first.get(id)?.holder === want) continue;
        const moved = await fleet.node(first.get(id)?.holder ?? "a").api(`/api/channels/${id}/move`, {
          method: "POST",
          body: { node: want },
        });
        expect(moved.status, await moved.clone().text()).toBe(200);
      }
      for (const holder of ["a", "b"])
        await awaitHolder(
          fleet,
          ids.filter((_, i) => orderOf(i)[0] === holder),
          holder,
        );
      await awaitOnAir(receiver, outputPorts, nowMs(), { count: 50, timeoutMs: 30_000 });
      const onAirMs = nowMs();
      say(
        `10 channels on air from a and b (previous release ${release.commit.slice(0, 7)}); the roll begins`,
      );

      // A stored token made on an old node, and a page session made with it there.
      const made = await a.api("/api/tokens", {
        method: "POST",
        body: { name: TOKEN_NAME, role: "operator" },
      });
      expect(made.status, await made.clone().text()).toBe(201);
      const token = String(((await made.json()) as { token: string }).token);
      // Stored tokens are shared: each node knows it once it has read the change (its notice, or its next read).
      for (const node of [a, b, c])
        await eventually(`node ${node.id} to know the stored token`, async () =>
          (await fetch(`${node.base}/api/channels`, { headers: { authorization: `Bearer ${token}` } })).ok
            ? true
            : undefined,
        );
      const sessions: Array<{ madeOn: string; cookie: string }> = [
        { madeOn: `a (old)`, cookie: await login(a, token) },
      ];

      // API writes throughout, through each running node in turn; only what was acknowledged is kept.
      const acknowledged = new Map<string, Written>();
      let [asked, refused] = [0, 0];
      const refusals = new Map<string, number>();
      writer = (async () => {
        let last: string | undefined;
        for (let k = 0; writing; k++) {
          const running = [a, b, c].filter((node) => serving.has(node));
          const via = running[k % Math.max(1, running.length)];
          if (via === undefined) {
            await pause(100);
            continue;
          }
          asked++;
          const kind = last === undefined ? 0 : k % 3;
          const request =
            kind === 0
              ? via.api("/api/channels", {
                  method: "POST",
                  body: { name: `write ${k}`, rtp_ip: "0.0.0.0", rtp_port: 24_000 + k, outputs: [] },
                })
              : kind === 1
                ? via.api(`/api/channels/${last}`, { method: "PATCH", body: { name: `write ${k}` } })
                : via.api(`/api/channels/${last}/outputs`, {
                    method: "POST",
                    body: {
                      id: `o${k}`,
                      name: `o${k}`,
                      protocol: "udp",
                      // Through a new node, what only the new release accepts (an IPv6 destination): the old
                      // nodes must still read the channel and every other change.
                      url:
                        version.get(via.id) === "new" ? "udp://[fd00::65]:9" : `udp://${fleet.rxAddress}:9`,
                    },
                  });
          const answer = await request.catch((error: unknown) => ({ status: 0, error }));
          const ok = "ok" in answer && answer.ok;
          if (!ok) {
            refused++;
            const why = `${kind === 0 ? "create" : kind === 1 ? "rename" : "add output"} via ${via.id} (${version.get(via.id)}): ${answer.status}`;
            refusals.set(why, (refusals.get(why) ?? 0) + 1);
          } else if (kind === 0) {
            const { id } = (await (answer as Response).json()) as { id: string };
            acknowledged.set(id, { name: `write ${k}`, names: [`write ${k}`], outputs: [] });
            last = id;
          } else if (kind === 1 && last !== undefined) {
            const entry = acknowledged.get(last);
            if (entry !== undefined)
              acknowledged.set(last, { ...entry, name: `write ${k}`, names: [...entry.names, `write ${k}`] });
          } else if (last !== undefined) acknowledged.get(last)?.outputs.push(`o${k}`);
          await pause(200);
        }
      })();

      /** What of `written` (the writes acknowledged so far) `node` does not show within 20 s, in words. */
      const showsWrites = async (node: FleetNode, written: ReadonlyMap<string, Written>) => {
        const want = new Map([...written].map(([id, w]) => [id, { ...w, outputs: [...w.outputs] }]));
        const lacking = async () => {
          const answer = await node.api("/api/channels");
          if (answer.status !== 200) return [`GET /api/channels answered ${answer.status}`];
          const { channels } = (await answer.json()) as {
            channels: Array<{ id: string; name: string; outputs: Array<{ id: string; url: string }> }>;
          };
          const listed = new Map(channels.map((channel) => [channel.id, channel]));
          return [...want.entries()].flatMap(([id, expected]) => {
            const got = listed.get(id);
            if (got === undefined) return [`${expected.name} (${id}) absent`];
            const outputs = expected.outputs.filter((output) => !got.outputs.some((o) => o.id === output));
            return [
              // The name then or one acknowledged since (the writes go on meanwhile).
              ...((acknowledged.get(id)?.names ?? []).indexOf(got.name) >= expected.names.length - 1
                ? []
                : [`${id} named "${got.name}", not "${expected.name}" or later`]),
              ...(outputs.length === 0 ? [] : [`${id} without output ${outputs.join(", ")}`]),
            ];
          });
        };
        await eventually(
          `node ${node.id} to show every acknowledged write`,
          async () => ((await lacking()).length === 0 ? true : undefined),
          20_000,
        ).catch(() => undefined);
        return lacking();
      };

      /** Every running node, of whichever version: ready, the stored token and every page session open it. */
      // In the report's order of events.
      const signOn = lines;
      const checkSignOn = async (step: string) => {
        for (const node of [a, b, c].filter((n) => n.running())) {
          const who = `${node.id} (${version.get(node.id)})`;
          const ready = (await fetch(`${node.base}/api/ready`)).status;
          const api = (
            await fetch(`${node.base}/api/channels`, { headers: { authorization: `Bearer ${token}` } })
          ).status;
          const pages = await Promise.all(
            sessions.map(
              async (session) =>
                `session from ${session.madeOn} ${
                  (await fetch(`${node.base}/`, { headers: { cookie: session.cookie }, redirect: "manual" }))
                    .status
                }`,
            ),
          );
          const lacking = await showsWrites(node, acknowledged);
          signOn.push(
            `  ${step}: ${who}: ready ${ready}, token ${api}, ${pages.join(", ")}; ${acknowledged.size} channels written so far: ${lacking.length === 0 ? "all shown" : lacking.join("; ")}`,
          );
          expect(lacking, `${who}: the writes acknowledged so far ${step}`).toEqual([]);
          expect(ready, `${who} ready ${step}`).toBe(200);
          expect(api, `${who}: the stored token ${step}`).toBe(200);
          expect(pages, `${who}: the pages ${step}`).toEqual(
            sessions.map((s) => `session from ${s.madeOn} 200`),
          );
        }
      };
      await checkSignOn("before the roll");

      /** Stops `node` and starts it on the new code; the moment it was gone and the moment it was back. */
      const upgrade = async (node: FleetNode) => {
        serving.delete(node);
        const stoppedMs = nowMs();
        await node.stop();
        const goneMs = nowMs();
        await startOn(node, "new");
        say(
          `${node.id}: stopped in ${Math.round(goneMs - stoppedMs)} ms, ready on the new code ${Math.round(nowMs() - goneMs)} ms later`,
        );
      };
      /** Moves each of `channels` to the node named by `to(i)`, through its holder; waits until they hold them. */
      const moveAll = async (from: FleetNode, channels: ReadonlyArray<string>, to: (i: number) => string) => {
        const askedMs = nowMs();
        // A node back on new code is taken as up by the holder once it has seen its heartbeat and reached it.
        for (const target of new Set(channels.map((_, i) => to(i))))
          await eventually(
            `${from.id} to see ${target} up`,
            async () => {
              const answer = await from.api("/api/nodes");
              const { nodes } = (await answer.json()) as {
                nodes: ReadonlyArray<{ id: string; state: string }>;
              };
              return nodes.find((node) => node.id === target)?.state === "up" ? true : undefined;
            },
            30_000,
          );
        for (const [i, id] of channels.entries()) {
          const answer = await from.api(`/api/channels/${id}/move`, {
            method: "POST",
            body: { node: to(i) },
          });
          expect(answer.status, `move ${id} to ${to(i)}: ${await answer.clone().text()}`).toBe(200);
        }
        for (const target of new Set(channels.map((_, i) => to(i))))
          await awaitHolder(
            fleet,
            channels.filter((_, i) => to(i) === target),
            target,
          );
        say(
          `${channels.length} channels moved from ${from.id} (${version.get(from.id)}) to ${[...new Set(channels.map((_, i) => to(i)))].join(" and ")} (new) in ${Math.round(nowMs() - askedMs)} ms`,
        );
      };
      const heldBy = async (node: string) =>
        [...(await leaseRows(fleet)).entries()]
          .filter(([id, lease]) => ids.includes(id) && lease.holder === node && lease.live)
          .map(([id]) => id);

      // 1. c holds nothing: upgraded first (it applies the new release's migrations).
      expect(await heldBy("c")).toEqual([]);
      await upgrade(c);
      await checkSignOn("c upgraded");
      sessions.push({ madeOn: "c (new)", cookie: await login(c, token) });
      await checkSignOn("c upgraded, a session made on c");

      // 2. a's channels to c, then a upgraded.
      await moveAll(a, await heldBy("a"), () => "c");
      await upgrade(a);
      await checkSignOn("a upgraded");

      // 3. b's channels to a and c, then b upgraded.
      await moveAll(b, await heldBy("b"), (i) => (i % 2 === 0 ? "a" : "c"));
      await upgrade(b);
      await checkSignOn("b upgraded: every node on the new code");

      // The stream goes on from the new holders; then the writes stop and what was acknowledged is read back.
      await awaitOnAir(receiver, outputPorts, nowMs(), { count: 50, timeoutMs: 20_000 });
      writing = false;
      await writer;
      const endMs = nowMs();
      expect(senderDone, "the sender still sent when the roll ended (STREAM_S too short)").toBe(false);

      const missing = new Map<string, string[]>();
      for (const node of [a, b, c]) missing.set(node.id, await showsWrites(node, acknowledged));

      // Each output: every datagram of the stream between its first and last arrival, at least once.
      const outputs = outputPorts.map((port) => {
        const arrivals = receiver.at(port).filter((x) => x.atMs >= onAirMs && x.atMs <= endMs);
        const positions = arrivals.map((x: Received) =>
          x.datagram === undefined ? -1 : (index.get(x.datagram.toString("latin1")) ?? -1),
        );
        const known = positions.filter((p) => p >= 0);
        const [lowest, highest] = [Math.min(...known), Math.max(...known)];
        const seen = new Set(known);
        const lost = highest - lowest + 1 - seen.size;
        const repeated = known.length - seen.size;
        const foreign = positions.length - known.length;
        const doubles = doubleSending(arrivals).length;
        const senders = [...new Set(arrivals.map((x) => fleet.names.get(x.source) ?? x.source))];
        // Where each lost datagram was: at a hand-over (the senders before and after it differ) or within one
        // holder's stream, and whether the sender's direct copy to rx (REFERENCE_PORT) had it.
        const direct = new Set(
          receiver
            .at(REFERENCE_PORT)
            .map((x) => (x.datagram === undefined ? -1 : (index.get(x.datagram.toString("latin1")) ?? -1))),
        );
        const sourceOf = (at: number) => {
          const i = positions.indexOf(at);
          return i < 0 ? "?" : (fleet.names.get(arrivals[i]?.source ?? "") ?? arrivals[i]?.source ?? "?");
        };
        const where: string[] = [];
        for (let at = lowest; at <= highest && where.length < 5; at++) {
          if (seen.has(at)) continue;
          let [before, after] = [at - 1, at + 1];
          while (before > lowest && !seen.has(before)) before--;
          while (after < highest && !seen.has(after)) after++;
          const [from, to] = [sourceOf(before), sourceOf(after)];
          where.push(
            `#${at} (${from === to ? `within ${from}'s stream` : `at the hand-over ${from} → ${to}`}, ${direct.has(at) ? "in" : "NOT in"} the direct copy)`,
          );
        }
        return {
          port,
          lost,
          repeated,
          foreign,
          doubles,
          senders,
          count: arrivals.length,
          lowest,
          highest,
          where,
        };
      });
      report(`Fleet roll from ${release.commit.slice(0, 7)} to this tree, ${CHANNELS} channels`, [
        ...lines,
        ...outputs.map(
          (o) =>
            `  output :${o.port}: ${o.count} datagrams (#${o.lowest}–#${o.highest}) from ${o.senders.join(" → ")}: ` +
            `${o.lost} lost (${o.lost * 7} TS packets)${o.where.length === 0 ? "" : `: ${o.where.join(", ")}`}, ${o.repeated} repeated, ${o.foreign} not of the stream, ${o.doubles} stretches of double sending`,
        ),
        `  total: ${outputs.reduce((n, o) => n + o.lost, 0) * 7} TS packets lost, ${outputs.reduce((n, o) => n + o.repeated, 0) * 7} repeated`,
        `  API writes: ${asked} asked, ${asked - refused} acknowledged (${acknowledged.size} channels), ${refused} refused: ${[...refusals.entries()].map(([why, n]) => `${why} ×${n}`).join("; ") || "none"}`,
        ...[...missing.entries()].map(
          ([node, lacking]) =>
            `  read through ${node}: ${lacking.length === 0 ? "every acknowledged write" : lacking.join("; ")}`,
        ),
      ]);
      for (const o of outputs) {
        expect(o.lost, `TS packets lost at :${o.port}`).toBe(0);
        expect(o.foreign, `datagrams not of the stream at :${o.port}`).toBe(0);
        expect(o.doubles, `double sending at :${o.port}`).toBe(0);
      }
      expect(Object.fromEntries(missing)).toEqual({ a: [], b: [], c: [] });
      expect(acknowledged.size).toBeGreaterThan(3);
    } catch (error) {
      report("Fleet roll: failed", [
        ...lines,
        ...[...(await leaseRows(fleet).catch(() => new Map())).entries()].map(
          ([id, lease]) => `  lease ${id} ${JSON.stringify(lease)}`,
        ),
        ...[a, b, c].flatMap((node) =>
          logBetween(node, nowMs() - 30_000, nowMs())
            .slice(-40)
            .map((line) => `  ${node.id}: ${line}`),
        ),
      ]);
      throw error;
    } finally {
      writing = false;
      await writer?.catch(() => undefined);
      await sender.stop();
      await receiver.stop();
    }
  }, 900_000);
});

/** The pages' login with `token` on `node`: the session's cookie ("name=value"). */
const login = async (node: FleetNode, token: string) => {
  const answer = await fetch(`${node.base}/login`, {
    method: "POST",
    body: new URLSearchParams({ token, next: "/" }).toString(),
    redirect: "manual",
    headers: { origin: node.base, "content-type": "application/x-www-form-urlencoded" },
  });
  expect(answer.status, `login on ${node.id}: ${await answer.clone().text()}`).toBe(303);
  return (answer.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
};
