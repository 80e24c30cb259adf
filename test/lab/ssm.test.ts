/**
 * IPv4 source-specific multicast through a router that forwards only source-specific joins. The router (rtr)
 * runs smcrouted, the kernel's multicast forwarding; what it forwards is decided from the joins it sees on its
 * downstream segment: the segment's bridge snoops IGMPv3 (its mdb lists each (S,G) a host joined), and for
 * every (S,G) there a route from the interface S is on is added; a (*,G) join gets no route. So a receiver that
 * joins the group for any sender gets nothing, and the service, whose input on 232.6.0.1 lists its sender in
 * rtp_allowed_sources, joins (S,G) and gets that sender's stream byte for byte with every cue; a second sender
 * to the same group is never forwarded.
 *
 *   enc (S) ─┐
 *            rtr ── sw (bridge, IGMPv3 snooping) ── svc ── rx
 *   rogue  ──┘
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, it } from "vitest";
import { analyse } from "../support/analyse.ts";
import { eventually } from "../support/app.ts";
import { bytesArrived, channelOf, cuedStream, newGenerator, sendStream } from "../support/lab-channel.ts";
import { describeLab, labSink, type Namespace, throughService, useLab } from "../support/netlab.ts";

const BITRATE = 2_000_000;
const GROUP = "232.6.0.1";
const PORT = 26200;

interface MdbEntry {
  readonly grp?: string;
  readonly src?: string;
  readonly port?: string;
}

/** The (S,G) joins the bridge `dev` in `sw` has seen, as `S G`. */
const sourceJoins = async (sw: Namespace, dev: string): Promise<ReadonlyArray<string>> => {
  const shown = JSON.parse((await sw.exec("bridge", ["-j", "mdb", "show", "dev", dev])) || "[]") as Array<{
    mdb?: ReadonlyArray<MdbEntry>;
  }>;
  return shown
    .flatMap((item) => item.mdb ?? [])
    .filter((entry) => entry.src !== undefined && entry.src !== "0.0.0.0" && entry.grp !== undefined)
    .map((entry) => `${entry.src} ${entry.grp}`);
};

describeLab("IPv4 source-specific multicast through a router of (S,G) joins alone", () => {
  const lab = useLab("h6ssm");

  it("an any-source join gets nothing; the input's (S,G) join gets its sender byte for byte, another sender never", async () => {
    const { enc, svc, service, sink: out, udpOutput } = await throughService(lab);
    const rogue = await lab.namespace("rogue");
    const rtr = await lab.namespace("rtr");
    const encRtr = await lab.link(enc, rtr);
    const rogueRtr = await lab.link(rogue, rtr);
    const { ends } = await lab.bridge([rtr, svc]);
    const [rtrEnd, svcEnd] = ends;
    if (rtrEnd === undefined || svcEnd === undefined) throw new Error("the bridge has two ports");
    // The segment's bridge snoops IGMPv3 and asks for reports as the querier: its mdb holds each (S,G).
    const sw = rtrEnd.peer.ns;
    const bridgeDev = `dl${lab.run}-br0`;
    await sw.exec("ip", [
      ...["link", "set", bridgeDev, "type", "bridge"],
      ...["mcast_snooping", "1", "mcast_igmp_version", "3", "mcast_querier", "1"],
    ]);
    // Senders reach the router over their links, and a route back to them for the kernel's checks.
    for (const [ns, link] of [
      [enc, encRtr],
      [rogue, rogueRtr],
    ] as const) {
      await ns.exec("ip", ["route", "add", "224.0.0.0/4", "dev", link.a.dev]);
    }
    await svc.exec("ip", ["route", "add", "198.18.0.0/24", "via", rtrEnd.address]);
    await rtr.exec("sysctl", ["-qw", "net.ipv4.conf.all.rp_filter=0"]);

    // smcrouted: the kernel's multicast routes, none until the controller below adds one.
    const config = join(lab.dir, "smcroute.conf");
    await writeFile(config, "");
    const socket = join(lab.dir, "smcroute.sock");
    lab.spawn(rtr, "smcrouted", [
      "-n",
      "-l",
      "info",
      "-f",
      config,
      "-u",
      socket,
      "-P",
      join(lab.dir, "smc.pid"),
    ]);
    const smcroutectl = (args: ReadonlyArray<string>) => rtr.exec("smcroutectl", ["-u", socket, ...args]);
    await eventually(
      "smcrouted to answer",
      async () => (await smcroutectl(["show"]).catch(() => null)) ?? undefined,
    );

    // The controller: a route for each (S,G) the segment joined, from the link S is on; none for a (*,G).
    const routed = new Set<string>();
    const inbound = new Map([
      [encRtr.a.address, encRtr.b.dev],
      [rogueRtr.a.address, rogueRtr.b.dev],
    ]);
    let controlling = true;
    const control = (async () => {
      while (controlling) {
        for (const join of await sourceJoins(sw, bridgeDev).catch(() => [])) {
          const [source = "", group = ""] = join.split(" ");
          const iif = inbound.get(source);
          if (routed.has(join) || iif === undefined) continue;
          await smcroutectl(["add", iif, source, group, rtrEnd.dev]);
          routed.add(join);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    try {
      // Both senders send to the group from the start.
      const generator = newGenerator(26, BITRATE);
      const noise = await sendStream(
        lab,
        rogue,
        join(lab.dir, "rogue"),
        cuedStream(newGenerator(27, BITRATE), BITRATE, 30),
        `${GROUP}:${PORT}`,
      );
      const before = cuedStream(generator, BITRATE, 3);
      const anySource = await labSink(lab, svc, svcEnd.address, PORT, GROUP);
      const early = await sendStream(lab, enc, join(lab.dir, "before"), before, `${GROUP}:${PORT}`);
      await early.done;
      // Nothing to await but time: three seconds of two senders, and the any-source join got nothing.
      expect(anySource.totalBytes(), "an any-source join is not forwarded").toBe(0);
      expect(routed.size).toBe(0);
      await anySource.process.stop();

      const created = await service.api("/api/channels", {
        method: "POST",
        body: {
          id: "ssm",
          name: "SSM",
          rtp_ip: GROUP,
          rtp_port: PORT,
          rtp_allowed_sources: [encRtr.a.address],
          outputs: [udpOutput],
        },
      });
      expect(created.status, await created.clone().text()).toBe(201);
      expect((await service.api("/api/channels/ssm/start", { method: "POST" })).status).toBe(200);
      // IGMPv3: the service's socket joined the group for its sender alone (INCLUDE, one source).
      const hex = (address: string) =>
        address
          .split(".")
          .map((octet) => Number(octet).toString(16).padStart(2, "0"))
          .join("");
      const filter = await eventually("the service's source-specific join", async () => {
        const table = await svc.exec("cat", ["/proc/net/mcfilter"]);
        return table.includes(`0x${hex(GROUP)}`) ? table : undefined;
      }).catch(async (error: unknown) => {
        throw new Error(
          `${String(error)}: ${await svc.exec("cat", ["/proc/net/mcfilter"])} ${await svc.exec("ip", ["maddr"])} ${JSON.stringify((await channelOf(service, "ssm")).inputs)}`,
        );
      });
      expect(filter).toContain(`0x${hex(encRtr.a.address)}`);
      await eventually("the router's (S,G) route", () =>
        routed.has(`${encRtr.a.address} ${GROUP}`) ? true : undefined,
      );

      const stream = cuedStream(generator, BITRATE, 6);
      const sender = await sendStream(lab, enc, join(lab.dir, "ssm"), stream, `${GROUP}:${PORT}`);
      await sender.done;
      await bytesArrived("the channel's UDP output", out.totalBytes, stream.ts.length);
      expect(out.bytes().equals(Buffer.from(stream.ts)), "byte for byte").toBe(true);
      expect(analyse(out.bytes()).sections).toEqual(stream.cues);
      const input = (await channelOf(service, "ssm")).inputs[0] as {
        rejected: { sender_not_allowed: number };
      };
      // The other sender's datagrams never reached the service: the router has no route for them.
      expect(input.rejected.sender_not_allowed).toBe(0);
      expect([...routed]).toEqual([`${encRtr.a.address} ${GROUP}`]);
      await noise.process.stop();
      console.log(
        `SSM ${GROUP}: an any-source join got 0 bytes in 3 s; the input's (S,G) join for ${encRtr.a.address} ` +
          `got ${stream.datagrams.length} datagrams byte for byte with ${stream.cues.length} cues, the router ` +
          `routing only ${[...routed].join(", ")}; the other sender's datagrams reached it 0 times`,
      );
    } finally {
      controlling = false;
      await control;
    }
  }, 180_000);
});
