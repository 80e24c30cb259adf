/**
 * Notifications in a fleet of three nodes on one PostgreSQL (bin/distributary serve, 127.0.0.1): a notifier
 * made on one node is every node's; when a node is killed, its lease runs out and the two others notice it,
 * but `node_down` is said, and delivered to a real receiver, once; started again, `node_up` once. The
 * delivery, written to the fleet's outbox by the node that sent it, is seen from every node.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json } from "../support/app.ts";
import { untilLeaseRunOutSeen, useNotifyingFleet } from "../support/fleet-nodes.ts";
import { type HttpReceiver, httpReceiver } from "../support/http-receiver.ts";

const LEASE_MS = 3_000;
const fleet = useNotifyingFleet(22851, { a: 22801, b: 22802, c: 22803 }, LEASE_MS);
const { api, until } = fleet;
let receiver: HttpReceiver;

beforeAll(async () => {
  receiver = await httpReceiver();
  await Promise.all(["a", "b", "c"].map((id) => fleet.start(id)));
}, 90_000);
afterAll(async () => {
  await receiver?.close();
});

const bodiesOf = (type: string) =>
  receiver.received
    .map((entry) => JSON.parse(entry.body) as { type: string; node: string; data: { node?: string } })
    .filter((body) => body.type === type);
const eventsOn = async (node: string, type: string) =>
  ((await json(await api(node, `/api/events?type=${type}`))).events as Array<{ node: string }>).filter(
    (event) => event.node === "c",
  ).length;

describe("notifications in a fleet", () => {
  it("node_down and node_up are each said and delivered once, by one node, and seen from every node", async () => {
    const created = await json(
      await api("a", "/api/notifiers", {
        method: "POST",
        body: JSON.stringify({
          name: "fleet",
          kind: "webhook",
          url: receiver.url,
          events: ["node_down", "node_up"],
        }),
      }),
    );
    const id = String(created.id);
    await until(
      "node b to know the notifier",
      async () => (await api("b", `/api/notifiers/${id}`)).status === 200,
    );

    fleet.process("c").process.kill("SIGKILL");
    await until("c's node_down delivered", async () => bodiesOf("node_down").length > 0, 20_000);
    await untilLeaseRunOutSeen(fleet, ["a", "b"], "c", LEASE_MS);
    const [down] = bodiesOf("node_down");
    expect(down?.data.node).toBe("c");
    expect(["a", "b"]).toContain(down?.node);
    expect(bodiesOf("node_down")).toHaveLength(1);
    expect((await eventsOn("a", "node_down")) + (await eventsOn("b", "node_down"))).toBe(1);

    // The delivery is in the fleet's outbox: the node that did not send it shows it too.
    const other = down?.node === "a" ? "b" : "a";
    const seen = await json(await api(other, `/api/notifiers/${id}`));
    expect(seen.deliveries).toEqual([
      expect.objectContaining({ type: "node_down", state: "delivered", status: 200, node: down?.node }),
    ]);

    await fleet.start("c");
    await until("c's node_up delivered", async () => bodiesOf("node_up").length > 0, 20_000);
    expect(bodiesOf("node_up")[0]?.data.node).toBe("c");
    await until("a and b to see c renewing", async () => {
      const ages = await Promise.all(
        ["a", "b"].map(async (node) => {
          const nodes = (await json(await api(node, "/api/nodes"))).nodes as Array<{
            id: string;
            heartbeat_age_ms: number;
          }>;
          return nodes.find((seen) => seen.id === "c")?.heartbeat_age_ms ?? Number.POSITIVE_INFINITY;
        }),
      );
      return ages.every((age) => age < LEASE_MS);
    });
    // Each change of c's state was said by one node only: across the three nodes, c's events alternate down,
    // up, down, … (a node starting on a loaded machine may miss a renewal: that is a real down and up, whose up
    // may still be on its way), and the receiver got each once.
    const saidOfC = async () =>
      (
        await Promise.all(
          ["a", "b", "c"].map(async (node) =>
            (
              (
                await json(await api(node, "/api/events?type=node_down,node_up"))
              ).events as Array<{
                type: string;
                node: string;
                at: string;
              }>
            ).filter((event) => event.node === "c"),
          ),
        )
      )
        .flat()
        .sort((x, y) => (x.at < y.at ? -1 : 1))
        .map((event) => event.type);
    let said: string[] = [];
    const count = (type: string) => said.filter((seen) => seen === type).length;
    await until("c's last change said to be an up, and each change delivered", async () => {
      said = await saidOfC();
      return (
        said.at(-1) === "node_up" &&
        bodiesOf("node_down").length >= count("node_down") &&
        bodiesOf("node_up").length >= count("node_up")
      );
    });
    expect(said.length % 2).toBe(0);
    expect(said).toEqual(said.map((_, index) => (index % 2 === 0 ? "node_down" : "node_up")));
    expect(bodiesOf("node_down")).toHaveLength(said.length / 2);
    expect(bodiesOf("node_up")).toHaveLength(said.length / 2);
  }, 90_000);
});
