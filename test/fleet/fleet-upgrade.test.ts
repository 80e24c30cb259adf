/**
 * The one-box upgrade (SIGUSR2, `distributary upgrade`, `systemctl reload`) asked of a fleet node: the new
 * process finds the node's lock in the database held by the running one (src/effects/config/postgres/
 * node-lock.ts) and stops without registering, so the upgrade fails and the running node keeps its channel,
 * its lease and its boot, and says why. A fleet node is upgraded by moving its channels away, stopping it and
 * starting the new code (docs/upgrades.md); this test keeps that statement true.
 */
import { expect, it } from "vitest";
import { FLEET_ADMIN, useFleetNodes } from "../support/fleet-nodes.ts";

const fleet = useFleetNodes({ dbPort: 22_712, ports: { a: 22_713 }, env: { DISTRIBUTARY_LEASE_MS: "3000" } });

it("SIGUSR2 to a fleet node fails in words; the node keeps its channel, lease and boot", async () => {
  await fleet.start("a");
  const created = await fleet.api("a", "/api/channels", {
    method: "POST",
    body: JSON.stringify({ name: "kept", rtp_ip: "127.0.0.1", rtp_port: 22_714, nodes: ["a"], outputs: [] }),
  });
  expect(created.status, await created.clone().text()).toBe(201);
  const { id } = (await created.json()) as { id: string };
  expect((await fleet.api("a", `/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
  await fleet.until("a to hold the channel", async () => (await fleet.fleetOf("a", id))?.holder === "a");
  const before = await fleet.pg().admin<{ boot_id: string }>("select boot_id from nodes where id = 'a'");
  const term = (await fleet.fleetOf("a", id))?.term;

  const node = fleet.process("a");
  node.process.kill("SIGUSR2");
  await fleet.until(
    "the upgrade's outcome in a's log",
    async () => /upgrade \(SIGUSR2\) failed: /.test(node.output()),
    60_000,
  );
  const outcome = /upgrade \(SIGUSR2\) failed: [^"]*/.exec(node.output())?.[0] ?? "";
  console.log(`SIGUSR2 to fleet node a: ${outcome}`);
  // The new process said why it stopped: another process runs as the node.
  expect(node.output()).toContain("another process is running as node a");
  expect(outcome).toContain("keeps every channel");
  expect(node.process.exitCode).toBe(null);
  expect((await fleet.api("a", "/api/ready", { token: FLEET_ADMIN })).status).toBe(200);
  expect(await fleet.fleetOf("a", id)).toMatchObject({ holder: "a", term });
  expect(await fleet.pg().admin("select boot_id from nodes where id = 'a'")).toEqual(before);
}, 120_000);
