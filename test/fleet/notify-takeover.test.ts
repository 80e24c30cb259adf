/**
 * A fleet node's pending notifications outlive it (three nodes on one PostgreSQL, bin/distributary serve on
 * 127.0.0.1, a real receiver): node c holds a channel whose input is lost, its receiver answers the first
 * attempt 500, and the delivery waits for its next try on c. When c's lease runs out, a live node takes the
 * delivery over and sends it, same webhook-id (verified by `standardwebhooks`), once. A c that was only cut
 * off (stopped, then let go on) finds the delivery no longer its own and drops it unsent; a c killed never
 * has to start again for its delivery to arrive, and started again it does not take back what was taken over.
 */
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeUdpPort, json, udpSource } from "../support/app.ts";
import { untilLeaseRunOutSeen, useNotifyingFleet } from "../support/fleet-nodes.ts";
import { type HttpReceiver, httpReceiver, type Received } from "../support/http-receiver.ts";

const LEASE_MS = 3_000;
const fleet = useNotifyingFleet(22861, { a: 22811, b: 22812, c: 22813 }, LEASE_MS);
const { api, until } = fleet;
const CHANNEL = "c-only";
let receiver: HttpReceiver;
let notifier = "";
let secret = "";
let rtpPort = 0;

const idOf = (request: Received) => String(request.headers["webhook-id"]);
/** How many attempts of each delivery are answered 500 (every later one 200). */
let failing = 1;
const firstFail = (_: number, request: Received) => ({
  status: receiver.received.filter((earlier) => idOf(earlier) === idOf(request)).length < failing ? 500 : 200,
});
const attemptsOf = (id: string) => receiver.received.filter((request) => idOf(request) === id);

interface DeliverySeen {
  readonly id: string;
  readonly node: string;
  readonly state: string;
  readonly attempts: number;
  readonly status: number | null;
}
const deliveries = async (node: string) =>
  (await json(await api(node, `/api/notifiers/${notifier}`))).deliveries as ReadonlyArray<DeliverySeen>;
const backlogOn = async (node: string) => {
  const metrics = await (await api(node, "/metrics")).text();
  const line = metrics.split("\n").find((entry) => entry.startsWith("distributary_notification_backlog{"));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
};

const restoredOnC = async () =>
  ((await json(await api("c", `/api/events?type=input_restored&channel=${CHANNEL}`))).events as unknown[])
    .length;

/** c's channel gets its input and loses it: c's input_lost delivery, once its first attempt was answered 500. */
const pendingOnC = async () => {
  const before = new Set((await deliveries("a")).map((delivery) => delivery.id));
  await until(
    "c to hold the channel",
    async () => (await fleet.fleetOf("a", CHANNEL))?.holder === "c",
    20_000,
  );
  const restored = await restoredOnC();
  const source = udpSource(rtpPort);
  await until("the input on c", async () => (await restoredOnC()) > restored);
  await source.close();
  let pending: DeliverySeen | undefined;
  await until(
    "c's delivery pending after its first attempt",
    async () => {
      pending = (await deliveries("a")).find(
        (delivery) => !before.has(delivery.id) && delivery.state === "pending" && delivery.attempts === 1,
      );
      return pending !== undefined;
    },
    20_000,
  );
  if (pending === undefined) throw new Error("unreachable");
  expect(pending).toMatchObject({ node: "c", status: 500 });
  expect(attemptsOf(pending.id)).toHaveLength(1);
  expect(await backlogOn("c")).toBe(1);
  return pending;
};

/** The delivery, delivered by a live node at its second attempt. */
const deliveredByOther = async (id: string) => {
  let delivered: DeliverySeen | undefined;
  await until(
    "the delivery taken over and delivered",
    async () => {
      delivered = (await deliveries("b")).find(
        (delivery) => delivery.id === id && delivery.state === "delivered",
      );
      return delivered !== undefined;
    },
    20_000,
  );
  expect(delivered).toMatchObject({ attempts: 2, status: 200 });
  expect(["a", "b"]).toContain(delivered?.node);
  const [first, second] = attemptsOf(id);
  expect(attemptsOf(id)).toHaveLength(2);
  // The same delivery as the receiver knows it: its id, signed with the notifier's secret, the event on c.
  const payload = new Webhook(secret).verify(second?.body ?? "", {
    "webhook-id": idOf(second as Received),
    "webhook-timestamp": String(second?.headers["webhook-timestamp"]),
    "webhook-signature": String(second?.headers["webhook-signature"]),
  });
  expect(payload).toMatchObject({ type: "input_lost", node: "c", channel: { id: CHANNEL } });
  // The same body (its keys in the order PostgreSQL's jsonb keeps them: a retry from the outbox's row).
  expect(JSON.parse(second?.body ?? "")).toEqual(JSON.parse(first?.body ?? ""));
};

beforeAll(async () => {
  receiver = await httpReceiver(firstFail);
  await Promise.all(["a", "b", "c"].map((id) => fleet.start(id)));
  const created = await json(
    await api("a", "/api/notifiers", {
      method: "POST",
      body: JSON.stringify({ name: "on-call", kind: "webhook", url: receiver.url, events: ["input_lost"] }),
    }),
  );
  notifier = String(created.id);
  secret = String(created.secret);
  rtpPort = await freeUdpPort();
  const channel = await api("a", "/api/channels", {
    method: "POST",
    body: JSON.stringify({ id: CHANNEL, name: "On c", rtp_ip: "127.0.0.1", rtp_port: rtpPort, nodes: ["c"] }),
  });
  expect(channel.status).toBe(201);
  expect((await api("a", `/api/channels/${CHANNEL}/start`, { method: "POST", body: "{}" })).status).toBe(200);
  await until(
    "c to know the notifier",
    async () => (await api("c", `/api/notifiers/${notifier}`)).status === 200,
  );
}, 90_000);
afterAll(async () => {
  await receiver?.close();
});

describe("a fleet node's pending notifications", () => {
  it("a node cut off past its lease finds its delivery taken over, delivered once, and drops it unsent", async () => {
    const pending = await pendingOnC();
    const c = fleet.process("c").process;
    c.kill("SIGSTOP");
    try {
      await deliveredByOther(pending.id);
    } finally {
      c.kill("SIGCONT");
    }
    // Back, c's try was long due: it asks, finds the row another node's, and lets it go without a request.
    await until("c to let the delivery go", async () => (await backlogOn("c")) === 0, 20_000);
    expect(attemptsOf(pending.id)).toHaveLength(2);
    expect(fleet.process("c").output()).toContain(`delivery ${pending.id} was taken over by another node`);
    expect((await deliveries("c")).find((delivery) => delivery.id === pending.id)).toMatchObject({
      state: "delivered",
      attempts: 2,
    });
  }, 90_000);

  it("a node killed has its delivery sent by another, once, without starting again", async () => {
    const pending = await pendingOnC();
    fleet.process("c").process.kill("SIGKILL");
    await deliveredByOther(pending.id);
    // Both live nodes have seen c down (and handed its rows over) by now: one took it, the other found none.
    await untilLeaseRunOutSeen(fleet, ["a", "b"], "c", LEASE_MS);
    expect(attemptsOf(pending.id)).toHaveLength(2);
    expect((await backlogOn("a")) + (await backlogOn("b"))).toBe(0);
  }, 90_000);

  it("a node started again under its id does not take back what a live node took over", async () => {
    await fleet.start("c");
    failing = 2;
    const pending = await pendingOnC();
    fleet.process("c").process.kill("SIGKILL");
    let taken: DeliverySeen | undefined;
    await until(
      "the delivery taken over, and its second attempt failed",
      async () => {
        taken = (await deliveries("a")).find(
          (delivery) => delivery.id === pending.id && delivery.attempts === 2,
        );
        return taken !== undefined;
      },
      20_000,
    );
    expect(taken).toMatchObject({ state: "pending", status: 500 });
    const holder = String(taken?.node);
    expect(["a", "b"]).toContain(holder);
    // c, started again (its outbox read before it is ready), holds nothing of it; its new holder still does.
    await fleet.start("c");
    expect(await backlogOn("c")).toBe(0);
    expect(await backlogOn(holder)).toBe(1);
    expect((await deliveries("c")).find((delivery) => delivery.id === pending.id)).toMatchObject({
      node: holder,
      state: "pending",
      attempts: 2,
    });
    expect(attemptsOf(pending.id)).toHaveLength(2);
  }, 90_000);
});
