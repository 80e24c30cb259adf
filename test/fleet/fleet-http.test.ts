/**
 * The fleet's API and metrics on two real nodes (`bin/distributary serve` on 127.0.0.1, one PostgreSQL), in
 * the order an operator meets them: the nodes list and each channel's holder, term and standbys from either
 * node; a channel's change sent to any node carried out by its holder in the caller's name; discovery, the peer
 * credential and the fleet's series; a move; a holder that hangs (reads answered here after 2 s, a change it
 * took answered 504 and applied once it wakes); a killed node shown unreachable within 4 s and taken over at
 * once, even just after a database outage; a drain; the audit trail from the database.
 */
import { readFile } from "node:fs/promises";
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { peerProof } from "../../src/http/forward.ts";
import { freeUdpPort, json } from "../support/app.ts";
import { useFleetNodes } from "../support/fleet-nodes.ts";
import { asRtp, chunkTs, sendInterleaved } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

// Long enough that a hung holder keeps its lease while the requests sent to it wait.
const LEASE_MS = 10_000;
const fleet = useFleetNodes({
  dbPort: 18851,
  ports: { a: 18801, b: 18802 },
  env: { DISTRIBUTARY_LEASE_MS: String(LEASE_MS), DISTRIBUTARY_THUMBNAILS: "off" },
});
const { api, fleetOf, nodesSeenBy, until } = fleet;
const metricsOf = async (id: string) => (await api(id, "/metrics")).text();
/** The audit rows of one channel, oldest first: which node changed it, in whose name. */
const changesOf = (channel: string) =>
  fleet
    .pg()
    .admin<{ node: string; actor: string; action: string }>(
      "select node, actor, action from audit where channel = $1 order by id",
      [channel],
    );
/** The fleet's audit rows of one action as a node's API reads them, newest first. */
const auditOf = async (id: string, action: string) =>
  (
    (await json(await api(id, "/api/audit?limit=1000"))).entries as Array<{
      node: string;
      actor: string;
      action: string;
      channel: string | null;
      detail: string;
    }>
  ).filter((entry) => entry.action === action);
const apiChanges = async (id: string, action: string) =>
  (
    (await json(await api(id, "/api/events?type=api_change"))).events as Array<Record<string, unknown>>
  ).filter((event) => event.action === action);

let desk = "";
/** The headers a peer sends with a request it forwards, made with the fleet's peer credential. */
const forwardedBy = async (node: string, method: string, path: string) => {
  const [row] = await fleet
    .pg()
    .admin<{ value: string }>("select value from cluster where key = 'peer_token'");
  return {
    "x-distributary-forwarded-by": node,
    "x-distributary-peer-proof": peerProof(String(row?.value), node, method, path),
  };
};

describe("a fleet of two nodes", () => {
  it("starts: News held by a (first in its order) with b standing by, Sport by b alone", async () => {
    await fleet.start("a");
    // b's metrics (and so its discovery) are for this host only, without a token.
    await fleet.start("b", { DISTRIBUTARY_METRICS_AUTH: "loopback" });
    for (const [id, name, nodes] of [
      ["both", "News", ["a", "b"]],
      ["only-b", "Sport", ["b"]],
    ] as const) {
      const body = JSON.stringify({ id, name, rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort(), nodes });
      const created = await api("a", "/api/channels", { method: "POST", body });
      expect(created.status, await created.clone().text()).toBe(201);
      expect((await api("a", `/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
    }
    // Each node publishes what it learns of the leases within a second or so: wait for both to agree.
    const picture = async (id: string) => ({
      nodes: (await nodesSeenBy(id)).map((node) => [node.id, node.state, node.self, node.channels_held]),
      both: await fleetOf(id, "both"),
      only: await fleetOf(id, "only-b"),
    });
    await until("both nodes to see News held by a and Sport by b", async () => {
      for (const id of ["a", "b"]) {
        const seen = await picture(id);
        if (seen.both?.holder !== "a" || seen.only?.holder !== "b" || seen.both.standbys.length !== 1)
          return false;
      }
      return true;
    });
    for (const id of ["a", "b"]) {
      const seen = await picture(id);
      expect(seen.nodes).toEqual([
        ["a", "up", id === "a", 1],
        ["b", "up", id === "b", 1],
      ]);
      expect(seen.both).toMatchObject({ holder: "a", standbys: ["b"], holder_reachable: true });
      expect(seen.both?.term).toBeGreaterThanOrEqual(1);
      expect(seen.only).toMatchObject({ holder: "b", standbys: [], holder_reachable: true });
      expect((await nodesSeenBy(id))[0]?.version).toMatch(/^\d+\.\d+\.\d+/);
    }
  }, 60_000);

  it("a channel's change sent to another node is carried out by its holder, in the caller's name", async () => {
    const created = await json(
      await api("a", "/api/tokens", {
        method: "POST",
        body: JSON.stringify({ name: "desk", role: "operator" }),
      }),
    );
    desk = String(created.token);
    await until("b to know the new token", async () => (await api("b", "/api/nodes", { token: desk })).ok);
    // Sport is held by b; the request goes to a.
    const added = await api("a", "/api/channels/only-b/outputs", {
      method: "POST",
      token: desk,
      body: JSON.stringify({ id: "out1", name: "Out", protocol: "udp", url: "udp://127.0.0.1:19999" }),
    });
    expect(added.status, await added.clone().text()).toBe(201);
    expect(added.headers.get("content-type")).toContain("application/json");
    expect((await json(added)).id).toBe("out1");
    // Forwarded once by a peer that proves it, a request is answered where it arrives: a here, once it has
    // b's change.
    const path = "/api/channels/only-b/outputs/out1";
    await until(
      "a to have the output b added",
      async () => (await api("a", path, { token: desk, headers: await forwardedBy("b", "GET", path) })).ok,
    );
    const local = await api("a", path, {
      method: "PATCH",
      token: desk,
      headers: await forwardedBy("b", "PATCH", path),
      body: JSON.stringify({ name: "Renamed on a" }),
    });
    expect(local.status, await local.clone().text()).toBe(200);
    expect((await changesOf("only-b")).filter((row) => row.actor === "desk")).toEqual([
      { node: "b", actor: "desk", action: "channel.update" },
      { node: "a", actor: "desk", action: "channel.update" },
    ]);
    // What the holder refuses comes back as it said it: problem+json, in words.
    const refused = await api("a", "/api/channels/only-b/outputs", {
      method: "POST",
      token: desk,
      body: JSON.stringify({ name: "No URL", protocol: "udp" }),
    });
    expect(refused.status).toBe(400);
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    expect(JSON.stringify(await json(refused))).toContain("url");
  });

  it("a cue sent with a forged forwarded-by header goes to the holder and airs there; the header alone opens nothing", async () => {
    // News is held by a; b is asked, by an admin that names a as the node that forwarded it.
    const cue = (eventId: number, headers: Record<string, string>) =>
      api("b", "/api/channels/both/cues", {
        method: "POST",
        headers,
        body: JSON.stringify({ command: "splice_insert", event_id: eventId }),
      });
    const port = Number((await json(await api("a", "/api/channels/both"))).rtp_port);
    const generator = new TsGenerator({ seed: 49, bitrate: 2_000_000 });
    const ts = generator.packets(Math.round((8 * 2_000_000) / (188 * 8)));
    // Both nodes listen on the port (SO_REUSEPORT), and the kernel gives each sender's datagrams to one of
    // them: sent from twelve addresses, the holder gets the input all but one time in 4,096 (the copies that
    // reach it from several senders are one stream: an RTP input drops the sequence numbers it already took).
    const datagrams = asRtp(chunkTs(ts));
    const senders = Array.from({ length: 12 }, (_, i) => ({ datagrams, from: `127.0.0.${i + 1}` }));
    const sending = Effect.runPromise(sendInterleaved(senders, port, 0.2));
    // Until the holder has seen the input's PMT, a cue is refused (409): nothing is inserted.
    await until(
      "a cue with the forged header to be inserted",
      async () => (await cue(4901, { "x-distributary-forwarded-by": "a" })).status === 201,
    );
    // A proof made for another path, or with a guessed credential, opens nothing either.
    const replayed = await cue(4902, await forwardedBy("a", "GET", "/api/channels/both"));
    expect(replayed.status, await replayed.clone().text()).toBe(201);
    // The holder says it inserted both; the node asked says it inserted nothing.
    expect((await apiChanges("a", "cue.insert")).map((event) => event.detail)).toEqual([
      expect.stringContaining("operator inserted a splice_insert out (event 4901,"),
      expect.stringContaining("operator inserted a splice_insert out (event 4902,"),
    ]);
    expect(await apiChanges("b", "cue.insert")).toEqual([]);
    const aired = (await json(await api("a", "/api/channels/both/cues"))).cues as Array<{
      event_id: number;
      origin: string;
    }>;
    expect(aired.filter((entry) => entry.origin === "operator").map((entry) => entry.event_id)).toEqual(
      expect.arrayContaining([4901, 4902]),
    );
    await sending;
  }, 30_000);

  it("GET /api/cluster/sd lists every live node as a target, labelled with its node and version", async () => {
    // b's metrics are loopback-only: no token from this host; a's need one.
    const fromB = await api("b", "/api/cluster/sd", { token: null });
    expect(fromB.status).toBe(200);
    const groups = (await fromB.json()) as Array<{ targets: string[]; labels: Record<string, string> }>;
    expect(groups.map((group) => [group.targets, group.labels.node])).toEqual([
      [["127.0.0.1:18801"], "a"],
      [["127.0.0.1:18802"], "b"],
    ]);
    expect(groups[0]?.labels.version).toMatch(/^\d+\.\d+\.\d+/);
    expect((await api("a", "/api/cluster/sd", { token: null })).status).toBe(401);
    expect((await api("a", "/api/cluster/sd", { token: desk })).status).toBe(200);
  });

  it("the peer credential is a viewer to the API, and nothing to the pages, the token list or the logs", async () => {
    const [row] = await fleet
      .pg()
      .admin<{ value: string }>("select value from cluster where key = 'peer_token'");
    const peer = row?.value ?? "";
    expect(peer.length).toBeGreaterThan(20);
    const reach = await api("b", "/api/cluster/database", { token: peer });
    expect(reach.status).toBe(200);
    const said = (await reach.json()) as { reachable: boolean; last_ok_ms_ago: number };
    expect(said.reachable).toBe(true);
    // A round every third of the lease: the last statement that reached the database is at most that old, and
    // a second for a round under way.
    expect(said.last_ok_ms_ago).toBeGreaterThanOrEqual(0);
    expect(said.last_ok_ms_ago).toBeLessThan(LEASE_MS / 3 + 1_000);
    expect((await api("b", "/api/channels", { token: peer })).status).toBe(200);
    const write = await api("b", "/api/tokens", { token: peer });
    expect(write.status).toBe(403);
    expect(String((await json(write)).detail)).toBe("this needs the admin role; the token 'peer' has viewer");
    const tokens = JSON.stringify(await json(await api("a", "/api/tokens")));
    expect(tokens).not.toContain(peer);
    expect(tokens).not.toContain('"peer"');
    const login = await fetch(`${fleet.base("a")}/login`, {
      method: "POST",
      headers: { origin: fleet.base("a"), "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: peer, next: "/" }).toString(),
      redirect: "manual",
    });
    expect(login.status).toBe(401);
    for (const id of ["a", "b"]) expect(fleet.process(id).output()).not.toContain(peer);
  });

  it("every series the nodes dashboard and the fleet's alerts read is in a node's /metrics", async () => {
    const text = await metricsOf("a");
    const dashboard = JSON.parse(await readFile("grafana/dashboards/nodes.json", "utf8")) as {
      panels: Array<{ targets?: Array<{ expr: string }> }>;
    };
    const rules = parse(await readFile("prometheus/alerts.yml", "utf8")) as {
      groups: Array<{ name: string; rules: Array<{ expr: string }> }>;
    };
    const exprs = [
      ...dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr)),
      ...(rules.groups.find((group) => group.name === "distributary-fleet")?.rules ?? []).map(
        (rule) => rule.expr,
      ),
    ];
    const names = new Set(exprs.flatMap((expr) => expr.match(/distributary_[a-z_]+/g) ?? []));
    expect(names.size).toBe(7);
    for (const name of names) expect(text, name).toMatch(new RegExp(`^${name}(\\{[^}]*\\})? `, "m"));
    expect(text).toMatch(/^distributary_node_up\{node="b"\} 1$/m);
    expect(text).toMatch(/^distributary_lease_held\{channel="both"\} 1$/m);
    // Only the leases a node holds have series: b holds only-b, a has none for it.
    expect(text).not.toMatch(/^distributary_lease_held\{channel="only-b"\}/m);
    expect(text).toMatch(/^distributary_lease_term\{channel="both"\} [1-9]/m);
    // A histogram of every renewal since the start: the node has renewed at least once.
    expect(text).toMatch(/^distributary_fleet_lease_renewal_seconds_bucket\{le="0.1"\} /m);
    expect(
      Number(text.match(/^distributary_fleet_lease_renewal_seconds_count (\d+)$/m)?.[1]),
    ).toBeGreaterThan(0);
    expect(text).toMatch(/^distributary_channels_without_holder 0$/m);
    expect(text).toMatch(/^distributary_cluster_isolated 0$/m);
    expect(text).toMatch(/^distributary_cluster_database_reachable 1$/m);
  });

  it("a move to a node hands the lease over, raising the term; a node that does not receive it is refused", async () => {
    const before = (await fleetOf("a", "both"))?.term ?? 0;
    // Sent to b, carried out by a, which holds News.
    const moved = await api("b", "/api/channels/both/move", {
      method: "POST",
      body: JSON.stringify({ node: "b" }),
    });
    expect(moved.status, await moved.clone().text()).toBe(200);
    // The same move sent again at once to a, whose last round still shows it the holder, and reaching b before
    // b has started it: done already, not refused, and not audited twice.
    const again = await api("a", "/api/channels/both/move", {
      method: "POST",
      body: JSON.stringify({ node: "b" }),
    });
    expect(again.status, await again.clone().text()).toBe(200);
    await until("b to hold News", async () => (await fleetOf("a", "both"))?.holder === "b");
    expect((await fleetOf("a", "both"))?.term).toBeGreaterThan(before);
    expect((await apiChanges("a", "channel.move")).map((event) => event.detail)).toEqual([
      "channel both: moved from node a to b",
    ]);
    // The fleet's audit trail has it too, read on the node that was asked: a carried it out.
    expect(
      (await auditOf("b", "channel.move")).map(({ node, channel, detail }) => [node, channel, detail]),
    ).toEqual([["a", "both", "channel both: moved from node a to b"]]);
    const nowhere = await api("a", "/api/channels/only-b/move", {
      method: "POST",
      body: JSON.stringify({ node: "a" }),
    });
    expect(nowhere.status).toBe(400);
    expect(String((await json(nowhere)).detail)).toContain("does not receive channel 'Sport'");
  });

  it("a holder that hangs: reads are answered by the node asked after 2 s; a change it took is a 504, applied once it wakes", async () => {
    fleet.process("b").process.kill("SIGSTOP");
    try {
      const askedAt = Date.now();
      const read = await api("a", "/api/channels/both");
      expect(read.status).toBe(200);
      expect((await json(read)).name).toBe("News");
      expect(Date.now() - askedAt).toBeGreaterThanOrEqual(1_900);
      expect(Date.now() - askedAt).toBeLessThan(3_500);
      const change = await api("a", "/api/channels/only-b/outputs/out1", {
        method: "PATCH",
        token: desk,
        body: JSON.stringify({ name: "Sent while b hung" }),
      });
      expect(change.status).toBe(504);
      expect(String((await json(change)).detail)).toBe(
        "the node holding channel 'only-b' (http://127.0.0.1:18802) did not answer within 15 s; the change may " +
          "or may not have been made: check GET /api/channels/only-b before sending it again",
      );
    } finally {
      fleet.process("b").process.kill("SIGCONT");
    }
    // Meanwhile b's lease on News ran out and a, its standby, took it: nothing moves back by itself.
    await until("a to hold News", async () => (await fleetOf("a", "both"))?.holder === "a");
    expect(await metricsOf("a")).toMatch(/^distributary_takeovers_total\{reason="expired"\} 1$/m);
    // Nothing was applied twice: b carries the change out when it wakes, and a did not.
    await until("b to apply the change it took", async () =>
      JSON.stringify(await json(await api("a", "/api/channels/only-b/outputs/out1"))).includes(
        "Sent while b hung",
      ),
    );
    expect((await changesOf("only-b")).filter((row) => row.actor === "desk").map((row) => row.node)).toEqual([
      "b",
      "a",
      "b",
    ]);
  }, 40_000);

  it("a killed holder is shown unreachable within 4 s, and its standby takes over at once, even just after a database outage", async () => {
    await until(
      "b to see a up",
      async () => (await nodesSeenBy("b")).find((node) => node.id === "a")?.state === "up",
    );
    // b, woken from its hang, may not have read the leases again yet: it must know a holds News.
    await until("b to see a hold News", async () => (await fleetOf("b", "both"))?.holder === "a");
    // The database goes away and comes back: for a lease time after, b takes no lease that merely expired (its
    // holder may have sent on through the outage), but a holder whose process is gone is taken over at once.
    const databaseReached = async (id: string) =>
      ((await json(await api(id, "/api/cluster/database"))) as { reachable: boolean }).reachable;
    await fleet.pg().stop({ mode: "immediate" });
    await until("b to miss the database", async () => !(await databaseReached("b")));
    await fleet.pg().start();
    await until("b to reach the database again", () => databaseReached("b"));
    fleet.process("a").process.kill("SIGKILL");
    const killedAt = Date.now();
    await until(
      "b to see a unreachable",
      async () => (await nodesSeenBy("b")).find((node) => node.id === "a")?.state === "unreachable",
      4_000,
    );
    expect(Date.now() - killedAt).toBeLessThan(4_000);
    // Its port refuses: b does not wait for the lease to run out.
    await until("b to take News over", async () => (await fleetOf("b", "both"))?.holder === "b", 4_000);
    const text = await metricsOf("b");
    expect(text).toMatch(/^distributary_node_up\{node="a"\} 0$/m);
    expect(text).toMatch(/^distributary_takeovers_total\{reason="holder_gone"\} 1$/m);
    expect(text).toMatch(/^distributary_channels_without_holder 0$/m);
  }, 30_000);

  it("a drain hands the node's channels to their standbys, and a drained node is no scrape target", async () => {
    await fleet.start("a");
    // Nothing moves back by itself: News stays on b.
    await until("a to see b hold News", async () => (await fleetOf("a", "both"))?.holder === "b", 20_000);
    const drained = await api("a", "/api/nodes/b/drain", { method: "POST" });
    expect(drained.status, await drained.clone().text()).toBe(200);
    expect(await json(drained)).toEqual({ node: "b", released: 2 });
    await until("a to hold News", async () => (await fleetOf("a", "both"))?.holder === "a");
    expect((await nodesSeenBy("a")).find((node) => node.id === "b")?.state).toBe("drained");
    // Sport lists only b: nobody may take it, and the metric says so.
    await until("Sport to have no holder", async () => (await fleetOf("a", "only-b"))?.holder === null);
    const text = await metricsOf("a");
    expect(text).toMatch(/^distributary_takeovers_total\{reason="drain"\} 1$/m);
    expect(text).toMatch(/^distributary_channels_without_holder 1$/m);
    expect((await apiChanges("a", "node.drain")).map((event) => [event.actor, event.detail])).toEqual([
      ["admin (DISTRIBUTARY_ADMIN_TOKEN)", "node b drained: 2 channels handed to standbys"],
    ]);
    expect(
      (await auditOf("a", "node.drain")).map(({ node, actor, detail }) => [node, actor, detail]),
    ).toEqual([["a", "admin (DISTRIBUTARY_ADMIN_TOKEN)", "node b drained: 2 channels handed to standbys"]]);
    const groups = (await (await api("a", "/api/cluster/sd", { token: desk })).json()) as Array<{
      labels: Record<string, string>;
    }>;
    expect(groups.map((group) => group.labels.node)).toEqual(["a"]);
    const unknown = await api("a", "/api/nodes/zz/drain", { method: "POST" });
    expect(unknown.status).toBe(404);
    expect(String((await json(unknown)).detail)).toBe("node 'zz' does not exist");
    // Stopped after its drain (maintenance), b is out of service on purpose: drained, not down.
    fleet.process("b").process.kill("SIGKILL");
    await until(
      "b's heartbeat to stop",
      async () => ((await nodesSeenBy("a")).find((node) => node.id === "b")?.heartbeat_age_ms ?? 0) > 3_000,
    );
    expect((await nodesSeenBy("a")).find((node) => node.id === "b")?.state).toBe("drained");
    expect(await metricsOf("a")).toMatch(/^distributary_node_up\{node="b"\} 1$/m);
  }, 60_000);

  it("GET /api/audit reads the fleet's audit trail from the database, newest first, for admins", async () => {
    const answer = await api("a", "/api/audit?limit=3");
    expect(answer.status).toBe(200);
    const entries = (await json(answer)).entries as Array<{ node: string; actor: string; action: string }>;
    expect(entries).toHaveLength(3);
    // The drain was the last thing done, on a.
    expect(entries[0]).toMatchObject({
      node: "a",
      actor: "admin (DISTRIBUTARY_ADMIN_TOKEN)",
      action: "node.drain",
    });
    expect((await api("a", "/api/audit", { token: desk })).status).toBe(403);
    const bad = await api("a", "/api/audit?limit=0");
    expect(bad.status).toBe(400);
    expect(String((await json(bad)).detail)).toBe('limit: must be a whole number from 1 to 1000, got "0"');
  });
});
