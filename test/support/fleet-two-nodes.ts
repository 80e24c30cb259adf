/**
 * The two-node scenarios of the fleet labs: nodes a and b of a fleet lab, channels listing both, one cued
 * stream sent by tx to both nodes (MediaLive's two pipelines) and to rx directly, held by a and on air at rx;
 * then, once something happened, every output measured after b took over.
 */
import { expect } from "vitest";
import { eventually } from "./app.ts";
import { streamIndex } from "./fleet-analysis.ts";
import type { FleetLab } from "./fleet-lab.ts";
import {
  awaitHolder,
  awaitOnAir,
  createChannels,
  deleteChannels,
  type FleetChannels,
  inputsOf,
  leaseRows,
  logBetween,
  measureOutputs,
  nowMs,
  pause,
  REFERENCE_PORT,
  report,
} from "./fleet-scenario.ts";
import { cuedStream, newGenerator } from "./lab-channel.ts";

const BITRATE = 1_000_000;
const PAIR = () => ["a", "b"];

export const twoNodeScenarios = (fleet: FleetLab) => {
  // One stream for every scenario: 60 s of TS with a cue every second, the same to every channel.
  const stream = cuedStream(newGenerator(29, BITRATE), BITRATE, 60, 1);
  const index = streamIndex(stream.datagrams);

  /** Nodes a and b running with `env` (started again when their settings change), a started first. */
  let nodeEnv = "";
  const nodesWith = async (env: NodeJS.ProcessEnv = {}) => {
    const key = JSON.stringify(env);
    if (key !== nodeEnv) for (const node of fleet.nodes.values()) await node.stop();
    nodeEnv = key;
    for (const node of fleet.nodes.values()) if (!node.running()) await node.start(env);
  };

  /** `count` channels on a and b, streaming, held by a and on air at rx from a. */
  const onAirFromA = async (
    name: string,
    base: number,
    count: number,
    extraPorts: ReadonlyArray<number> = [],
  ) => {
    const a = fleet.node("a");
    const receiver = await fleet.receiver(
      [...Array.from({ length: count }, (_, i) => 7000 + base + i), ...extraPorts, REFERENCE_PORT],
      true,
    );
    const channels = await createChannels(fleet, a, {
      name,
      count,
      nodes: PAIR,
      inputBase: 5000 + base * 2,
      outputBase: 7000 + base,
    });
    const sender = await fleet.send(name, stream.datagrams, stream.perMs, [
      ...inputsOf(fleet, channels, PAIR),
      `${fleet.rxAddress}:${REFERENCE_PORT}`,
    ]);
    const startedMs = nowMs();
    try {
      // a is first in every channel's order; on a loaded machine b, a second behind, may still take a new
      // channel first (nothing moves back by itself): the scenario moves those to a, once, as an operator would.
      const taken = await awaitHolder(fleet, channels.ids);
      for (const [id, lease] of taken) {
        if (lease.holder === "a") continue;
        // A node started again for this scenario is up once the fleet has its first heartbeat: until then a
        // move to it is refused in words (409), and asked again.
        const moved = await eventually(`channel ${id} moved to a`, async () => {
          const answer = await a.api(`/api/channels/${id}/move`, { method: "POST", body: { node: "a" } });
          return answer.status === 409 && (await answer.clone().text()).includes("is not up")
            ? undefined
            : answer;
        });
        expect(moved.status, await moved.clone().text()).toBe(200);
      }
      const leases = await awaitHolder(fleet, channels.ids, "a");
      await awaitOnAir(receiver, channels.outputPorts, startedMs, { source: a.address, count: 100 });
      return { receiver, channels, sender, leases, onAirMs: nowMs() };
    } catch (error) {
      // What the fleet looked like, for whoever reads the failure: the leases, the nodes, what each node logged.
      const leases = await leaseRows(fleet).catch(() => new Map());
      report(`${name}: not on air from a`, [
        `  leases: ${channels.ids.map((id) => `${id} ${JSON.stringify(leases.get(id))}`).join("; ")}`,
        ...(
          await fleet.db
            .admin("select id, boot_id, draining, lease_until > now() as live from nodes")
            .catch(() => [])
        ).map((row) => `  node ${JSON.stringify(row)}`),
        ...[...fleet.nodes.entries()].flatMap(([id, node]) =>
          logBetween(node, startedMs - 5_000, nowMs()).map((line) => `  ${id}: ${line}`),
        ),
      ]);
      // Nothing of a scenario that could not start is left for the next one (its ports above all).
      await stopAll({ receiver, sender }, channels);
      throw error;
    }
  };

  const stopAll = async (
    parts: { receiver: { stop: () => Promise<void> }; sender: { stop: () => Promise<void> } },
    channels: FleetChannels,
  ) => {
    await parts.sender.stop();
    await parts.receiver.stop();
    const via = [...fleet.nodes.values()].find((node) => node.running());
    if (via !== undefined) await deleteChannels(via, channels.ids);
  };

  /**
   * Waits until every output hears b after `sinceMs`, lets the stream run `runMs` more (the cues and datagrams
   * the measure compares), then measures every output from just before the channels went on air.
   */
  const measureOnB = async (
    run: Awaited<ReturnType<typeof onAirFromA>>,
    sinceMs: number,
    runMs: number,
    timeoutMs = 15_000,
  ) => {
    await awaitOnAir(run.receiver, run.channels.outputPorts, sinceMs, {
      source: fleet.node("b").address,
      count: 1,
      timeoutMs,
    });
    await pause(runMs);
    return measureOutputs(
      fleet,
      run.receiver,
      run.channels.outputPorts,
      { fromMs: run.onAirMs - 500, untilMs: nowMs() },
      { datagrams: stream.datagrams, index },
    );
  };

  return { stream, index, nodesWith, onAirFromA, stopAll, measureOnB } as const;
};

export type OnAir = Awaited<ReturnType<ReturnType<typeof twoNodeScenarios>["onAirFromA"]>>;
